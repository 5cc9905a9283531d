"""StaticGatewayConfiguration + node facts → the desired state of one gateway on this node (seed layout).

Design (``upstream-spec.md`` §4.3 with the §9 deviations): one network namespace per SGC, named
``gw-<uid>-<ILB ip>``, holding ``wg0`` (WireGuard, ``fe80::1/64``, listen port = the SGC's port, UDP
socket in the node namespace because the device is born there) and ``host0`` (veth to the node, the
node's secondary IP /32), routes ``<primary>/32 dev host0 scope link`` + ``default via <primary> dev
host0``, ``-o host0 -j MASQUERADE`` and forwarding switched on explicitly. On the node: the veth's host
end ``gw-<uid[:8]>``, ``<secondary>/32 dev gw-<uid[:8]>``, the nat RETURN exemption for the secondary
IP, and the ILB IP as /32 on the node's primary interface (floating IP).

Inputs come only from the Kubernetes API (no Azure credentials on gateway nodes): the SGC status, the
key Secret, ``GatewayVMConfiguration.status.gatewayVMProfiles`` (this node's secondary IP) and the Node
(primary IP). Callers: ``egw.daemon``. Pure: no I/O; bad input raises ValidationError naming the field.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from egw.model import crds, keys, names
from egw.model.errors import ValidationError

SECRET_PRIVATE_KEY = "PrivateKey"  # noqa: S105 - the Secret data key name, not a secret


@dataclass(frozen=True)
class Route:
    """A route in the plan: ``dst`` via ``gateway`` (optional) out of ``dev``; scope ``link`` or ``global``."""

    dst: ipaddress.IPv4Network | ipaddress.IPv6Network
    dev: str
    gateway: ipaddress.IPv4Address | None = None
    scope: str = "global"


@dataclass(frozen=True)
class GatewayPlan:
    """Everything one gateway needs on this node. ``private_key`` never appears in repr()."""

    sgc: str  # "<namespace>/<name>"
    uid: str
    netns: str
    ilb_ip: ipaddress.IPv4Address
    listen_port: int
    public_key: str
    primary_ip: ipaddress.IPv4Address
    secondary_ip: ipaddress.IPv4Address
    node_ifname: str
    private_key: bytes = field(repr=False)

    @property
    def host_veth(self) -> str:
        return names.host_veth_name(self.uid)

    @property
    def gateway_veth(self) -> str:
        return names.GATEWAY_VETH_IFNAME

    @property
    def wg_ifname(self) -> str:
        return names.WG_IFNAME

    @property
    def wg_birth_name(self) -> str:
        return names.wg_birth_name(self.netns)

    @property
    def wg_address(self) -> ipaddress.IPv6Interface:
        return ipaddress.IPv6Interface(names.WG_ADDRESS)

    @property
    def secondary_address(self) -> ipaddress.IPv4Interface:
        return ipaddress.IPv4Interface(f"{self.secondary_ip}/32")

    @property
    def ilb_address(self) -> ipaddress.IPv4Interface:
        return ipaddress.IPv4Interface(f"{self.ilb_ip}/32")

    @property
    def ilb_label(self) -> str | None:
        return names.ilb_address_label(self.node_ifname)

    @property
    def netns_routes(self) -> tuple[Route, ...]:
        """Routes inside the gateway namespace (peer routes come from ``egw.plan.peers``)."""
        primary = ipaddress.IPv4Network(f"{self.primary_ip}/32")
        return (
            Route(primary, names.GATEWAY_VETH_IFNAME, scope="link"),
            Route(ipaddress.IPv4Network("0.0.0.0/0"), names.GATEWAY_VETH_IFNAME, gateway=self.primary_ip),
        )

    @property
    def node_routes(self) -> tuple[Route, ...]:
        return (Route(ipaddress.IPv4Network(f"{self.secondary_ip}/32"), self.host_veth, scope="link"),)

    @property
    def netns_sysctls(self) -> tuple[tuple[str, str], ...]:
        """Set explicitly (seed relied on inheritance from the node, spec §9 item 4)."""
        return (("net/ipv4/ip_forward", "1"), ("net/ipv4/conf/all/forwarding", "1"))


@dataclass(frozen=True)
class NodeFacts:
    """What the daemon knows about the node it runs on."""

    name: str
    primary_ip: ipaddress.IPv4Address
    ifname: str


def node_facts(node: Mapping[str, Any], ifname: str) -> NodeFacts:
    """Node name and primary IP (first InternalIP of ``status.addresses``) of a Node object."""
    meta = node.get("metadata") or {}
    name = names.validate_node_name(meta.get("name"), "metadata.name")
    names.validate_ifname(ifname, "--node-interface")
    for i, addr in enumerate(((node.get("status") or {}).get("addresses")) or ()):
        if isinstance(addr, Mapping) and addr.get("type") == "InternalIP":
            try:
                ip = names.validate_ipv4(addr.get("address"), f"status.addresses[{i}].address")
            except ValidationError:
                continue  # an IPv6 InternalIP on a dual-stack node; keep looking for the IPv4 one
            return NodeFacts(name, ip, ifname)
    raise ValidationError.single("status.addresses", None, f"Node {name} has no IPv4 InternalIP address")


def vm_profile(vmc: crds.GatewayVMConfiguration | None, node_name: str) -> crds.GatewayVMProfile | None:
    """This node's entry in ``GatewayVMConfiguration.status.gatewayVMProfiles`` (None: not a gateway for it)."""
    if vmc is None or vmc.status is None:
        return None
    for profile in vmc.status.gateway_vm_profiles:
        if profile.node_name == node_name:
            return profile
    return None


def private_key_from_secret(secret: Mapping[str, Any]) -> bytes:
    """The gateway private key from the Secret's ``data.PrivateKey`` (base64 of the key's text form).

    Errors name the field but never echo the value."""
    data = secret.get("data") or {}
    raw = data.get(SECRET_PRIVATE_KEY)
    if not isinstance(raw, str) or not raw:
        raise ValidationError.single(f"data.{SECRET_PRIVATE_KEY}", None, "missing from the Secret", secret=True)
    try:
        text = base64.b64decode(raw, validate=True).decode("ascii").strip()
    except (binascii.Error, UnicodeDecodeError):
        raise ValidationError.single(f"data.{SECRET_PRIVATE_KEY}", raw, "not base64 text", secret=True) from None
    return keys.parse_key(text, f"data.{SECRET_PRIVATE_KEY}", secret=True)


def secret_ref(sgc: crds.StaticGatewayConfiguration) -> tuple[str, str]:
    """(namespace, name) of the key Secret; the namespace defaults to the SGC's (seed placement)."""
    st = sgc.status
    ref = st.gateway_server_profile.private_key_secret_ref if st and st.gateway_server_profile else None
    if ref is None or not ref.name:
        raise ValidationError.single("status.gatewayServerProfile.privateKeySecretRef", None, "not set")
    return (ref.namespace or sgc.metadata.namespace or ""), ref.name


def plan_gateway(
    sgc: crds.StaticGatewayConfiguration,
    profile: crds.GatewayVMProfile,
    node: NodeFacts,
    private_key: bytes,
) -> GatewayPlan:
    """The gateway's desired state on ``node``. The SGC must be ready (``crds.is_ready``)."""
    if not crds.is_ready(sgc):
        raise ValidationError.single("status", None, "StaticGatewayConfiguration is not ready yet")
    assert sgc.status is not None and sgc.status.gateway_server_profile is not None  # is_ready checked it
    gsp = sgc.status.gateway_server_profile
    uid = names.validate_uid(sgc.metadata.uid)
    ilb = names.validate_ipv4(gsp.ip, "status.gatewayServerProfile.ip")
    if not isinstance(gsp.port, int) or not 0 < gsp.port < 65536:
        raise ValidationError.single("status.gatewayServerProfile.port", gsp.port, "must be a port number 1-65535")
    keys.parse_key(gsp.public_key, "status.gatewayServerProfile.publicKey")
    if len(private_key) != keys.KEY_LEN:
        raise ValidationError.single("privateKey", None, "must be 32 bytes", secret=True)
    secondary = names.validate_ipv4(profile.secondary_ip, "status.gatewayVMProfiles[].secondaryIP")
    if secondary == node.primary_ip:
        raise ValidationError.single(
            "status.gatewayVMProfiles[].secondaryIP", str(secondary), "must differ from the node's primary IP"
        )
    if secondary == ilb:
        raise ValidationError.single(
            "status.gatewayVMProfiles[].secondaryIP", str(secondary), "must differ from the ILB frontend IP"
        )
    return GatewayPlan(
        sgc=sgc.key,
        uid=uid,
        netns=names.netns_name(uid, str(ilb)),
        ilb_ip=ilb,
        listen_port=gsp.port,
        public_key=str(gsp.public_key),
        primary_ip=node.primary_ip,
        secondary_ip=secondary,
        node_ifname=node.ifname,
        private_key=private_key,
    )


def wanted_namespaces(
    sgcs: Iterable[Mapping[str, Any]],
    vmc_of: Callable[[str], Mapping[str, Any] | None],
    node_name: str,
) -> set[str]:
    """Gateway namespaces this node must keep (garbage collection removes every other one of ours).

    Conservative on purpose, because removing a namespace breaks every tunnel through it: an SGC that is
    not ready yet but has a UID and ILB IP keeps its namespace, and so does one whose
    GatewayVMConfiguration is missing or has no status yet. Only a deleted (or deleting) SGC, or a
    GatewayVMConfiguration whose status no longer lists this node, lets a namespace go."""
    wanted: set[str] = set()
    for raw in sgcs:
        meta = raw.get("metadata") or {}
        if meta.get("deletionTimestamp"):
            continue
        gsp = ((raw.get("status") or {}).get("gatewayServerProfile")) or {}
        try:
            netns = names.netns_name(str(meta.get("uid")), str(gsp.get("ip")))
        except ValidationError:
            continue
        vmc_raw = vmc_of(f"{meta.get('namespace')}/{meta.get('name')}")
        if vmc_raw is not None:
            try:
                vmc: crds.GatewayVMConfiguration | None = crds.GatewayVMConfiguration.from_dict(vmc_raw)
            except ValidationError:
                vmc = None
            if vmc is not None and vmc.status is not None and vm_profile(vmc, node_name) is None:
                continue  # not (or no longer) a gateway for this node
        wanted.add(netns)
    return wanted
