"""PodEndpoints of one gateway → the desired WireGuard peers and peer routes, plus what was rejected and why.

One peer per valid PodEndpoint: public key = ``spec.podPublicKey``, allowed IPs = ``spec.podIpAddress``
(a single host), and a route ``<pod ip> dev wg0 scope link`` in the gateway namespace. Invalid
PodEndpoints are left out and reported, so the rest of the gateway keeps working:

* the object does not parse (bad key, not a single-host CIDR, ...): every field error is reported;
* the pod IP is not one of its Pod's IPs (only checked when the Pod is known and has IPs: the CNI
  plugin creates the PodEndpoint before kubelet reports the pod IP, and an absent Pod in our cache may
  be informer lag; ownerReference GC removes PodEndpoints of deleted pods);
* two PodEndpoints of the gateway share a public key or a pod IP: the one already applied (``incumbent``)
  keeps it, else the oldest (creationTimestamp, then creation resourceVersion, then ``<ns>/<name>``); the
  others are rejected — deterministic, so the choice never flaps.

Callers: ``egw.daemon``. Pure: no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from egw.model import crds, names
from egw.model.errors import FieldError, ValidationError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, order=True)
class Peer:
    pod_endpoint: str  # "<namespace>/<name>"
    public_key: str
    pod_ip: IPNetwork


@dataclass(frozen=True)
class Rejection:
    pod_endpoint: str
    errors: tuple[FieldError, ...]

    @property
    def message(self) -> str:
        return "; ".join(str(e) for e in self.errors)


@dataclass(frozen=True)
class PeersPlan:
    netns: str
    peers: tuple[Peer, ...]
    rejected: tuple[Rejection, ...]

    @property
    def routes(self) -> tuple[tuple[IPNetwork, str], ...]:
        """(pod ip, device) for every peer, in the gateway namespace, scope link."""
        return tuple((p.pod_ip, names.WG_IFNAME) for p in self.peers)

    def by_key(self) -> dict[str, Peer]:
        return {p.public_key: p for p in self.peers}


PodLookup = Callable[[str], Mapping[str, Any] | None]


def pod_ips(pod: Mapping[str, Any]) -> set[str]:
    status = pod.get("status") or {}
    out = {str(p.get("ip")) for p in status.get("podIPs") or () if isinstance(p, Mapping) and p.get("ip")}
    if status.get("podIP"):
        out.add(str(status["podIP"]))
    return out


def endpoints_for(endpoints: Iterable[Mapping[str, Any]], sgc_namespace: str, sgc_name: str) -> list[Mapping[str, Any]]:
    """The PodEndpoints that reference an SGC (same namespace, ``spec.staticGatewayConfiguration`` = name)."""
    out = []
    for pe in endpoints:
        meta = pe.get("metadata") or {}
        if (
            meta.get("namespace") == sgc_namespace
            and (pe.get("spec") or {}).get("staticGatewayConfiguration") == sgc_name
        ):
            out.append(pe)
    return out


def _ref(pe: Mapping[str, Any]) -> str:
    meta = pe.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


def _age_key(pe: Mapping[str, Any], incumbent: frozenset[str]) -> tuple[bool, str, int, str]:
    meta = pe.get("metadata") or {}
    rv = str(meta.get("resourceVersion") or "")
    # timestamps have one-second resolution; etcd revisions order objects created within that second
    return (
        _ref(pe) not in incumbent,
        str(meta.get("creationTimestamp") or ""),
        int(rv) if rv.isdigit() else 2**63,
        _ref(pe),
    )


def plan_peers(
    netns: str,
    endpoints: Iterable[Mapping[str, Any]],
    pods: PodLookup | None = None,
    incumbent: Iterable[str] = (),
) -> PeersPlan:
    """Desired peers of the gateway namespace ``netns`` from its PodEndpoints (raw API dicts).

    ``incumbent``: PodEndpoints whose peers are applied now; they win key/IP conflicts."""
    held = frozenset(incumbent)
    names.validate_netns_name(netns)
    peers: list[Peer] = []
    rejected: list[Rejection] = []
    by_key: dict[str, str] = {}
    by_ip: dict[IPNetwork, str] = {}
    for pe in sorted(endpoints, key=lambda e: _age_key(e, held)):
        ref = _ref(pe)
        try:
            parsed: crds.PodEndpoint = crds.PodEndpoint.from_dict(pe)
        except ValidationError as exc:
            rejected.append(Rejection(ref, exc.errors))
            continue
        ip = ipaddress.ip_network(parsed.spec.pod_ip_address, strict=True)
        key = parsed.spec.pod_public_key
        errors: list[FieldError] = []
        pod = pods(ref) if pods is not None else None
        if pod is not None:
            known = pod_ips(pod)
            if known and str(ip.network_address) not in known:
                errors.append(
                    FieldError(
                        "spec.podIpAddress",
                        parsed.spec.pod_ip_address,
                        f"does not match the IPs of Pod {ref} ({', '.join(sorted(known))})",
                    )
                )
        if key in by_key:
            errors.append(FieldError("spec.podPublicKey", key, f"already used by PodEndpoint {by_key[key]}"))
        if ip in by_ip:
            errors.append(
                FieldError("spec.podIpAddress", parsed.spec.pod_ip_address, f"already used by PodEndpoint {by_ip[ip]}")
            )
        if errors:
            rejected.append(Rejection(ref, tuple(errors)))
            continue
        by_key[key] = ref
        by_ip[ip] = ref
        peers.append(Peer(ref, key, ip))
    return PeersPlan(netns, tuple(sorted(peers)), tuple(sorted(rejected, key=lambda r: r.pod_endpoint)))
