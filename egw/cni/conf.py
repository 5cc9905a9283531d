"""Plugin configuration, CNI_ARGS and prevResult parsing for ``kube-egress-gateway-cni`` (pure, no I/O).

Called by ``egw.cni.skel`` before any side effect, in the shape of containernetworking/plugins'
``parseConfig``: every problem becomes a :class:`CniError` with the spec's code (1 incompatible
version, 4 bad environment, 6 decode failure, 7 invalid config) and a message that names the field
and the offending value. Unknown keys are kept in ``NetConf.raw`` so a pass-through can print the
previous result unchanged.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Codes from the CNI spec (SPEC.md "Error"); >= 100 are ours.
ERR_INCOMPATIBLE_VERSION = 1
ERR_UNSUPPORTED_FIELD = 2
ERR_UNKNOWN_CONTAINER = 3
ERR_INVALID_ENV = 4
ERR_IO = 5
ERR_DECODE = 6
ERR_INVALID_CONFIG = 7
ERR_TRY_AGAIN_LATER = 11
ERR_NOT_AVAILABLE = 50
ERR_NOT_AVAILABLE_LIMITED = 51
ERR_GATEWAY_NOT_FOUND = 100
ERR_INVALID_ANNOTATION = 101
ERR_POD_NETWORK = 102
ERR_CHECK_FAILED = 103
ERR_FOREIGN_POD = 104

# Oldest first. 0.4.0 is the first with CHECK; 1.1.0 adds GC and STATUS.
SUPPORTED_VERSIONS = ("0.4.0", "1.0.0", "1.1.0")
LATEST_VERSION = SUPPORTED_VERSIONS[-1]

_CONTAINER_ID_RE = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$")
_DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
MAX_EXCLUDED_CIDRS = 256


class CniError(Exception):
    """An error the plugin reports to the runtime as the spec's error object."""

    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(f"{msg}: {details}" if details else msg)
        self.code = code
        self.msg = msg
        self.details = details

    def to_json(self, cni_version: str) -> dict[str, Any]:
        return {"cniVersion": cni_version, "code": self.code, "msg": self.msg, "details": self.details}


def version_tuple(version: str) -> tuple[int, int, int]:
    parts = version.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise CniError(ERR_INCOMPATIBLE_VERSION, "invalid cniVersion", repr(version))
    return int(parts[0]), int(parts[1]), int(parts[2])


def _quote(value: object) -> str:
    text = json.dumps(value)
    return text if len(text) <= 200 else text[:197] + "..."


def validate_container_id(value: str) -> None:
    if not value:
        raise CniError(ERR_INVALID_ENV, "required env variable CNI_CONTAINERID is empty")
    if not _CONTAINER_ID_RE.fullmatch(value):
        raise CniError(ERR_INVALID_ENV, "invalid characters in CNI_CONTAINERID", _quote(value))


def validate_ifname(value: str) -> None:
    # The kernel's dev_valid_name rules, as libcni's ValidateInterfaceName applies them.
    if not value:
        raise CniError(ERR_INVALID_ENV, "required env variable CNI_IFNAME is empty")
    if len(value) > 15:
        raise CniError(ERR_INVALID_ENV, "CNI_IFNAME is longer than 15 characters", _quote(value))
    if value in (".", ".."):
        raise CniError(ERR_INVALID_ENV, "CNI_IFNAME must not be . or ..", _quote(value))
    if any(c in value for c in "/:") or any(c.isspace() for c in value):
        raise CniError(ERR_INVALID_ENV, "CNI_IFNAME contains '/', ':' or whitespace", _quote(value))


def parse_cni_args(text: str) -> dict[str, str]:
    """``K=V;K=V`` as runtimes pass it; unknown keys are kept, malformed pairs rejected (code 4)."""
    out: dict[str, str] = {}
    if not text:
        return out
    for pair in text.split(";"):
        if not pair:
            continue
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise CniError(ERR_INVALID_ENV, "CNI_ARGS entry is not KEY=VALUE", _quote(pair))
        out[key] = value
    return out


@dataclass(frozen=True)
class PodRef:
    namespace: str
    name: str
    uid: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


def pod_ref(args: Mapping[str, str]) -> PodRef:
    """The Kubernetes pod a CNI call is for, from CNI_ARGS (code 4 when absent or malformed)."""
    ns = args.get("K8S_POD_NAMESPACE", "")
    name = args.get("K8S_POD_NAME", "")
    if not ns or not name:
        raise CniError(ERR_INVALID_ENV, "CNI_ARGS must carry K8S_POD_NAMESPACE and K8S_POD_NAME")
    if len(ns) > 63 or not _DNS_LABEL_RE.fullmatch(ns):
        raise CniError(ERR_INVALID_ENV, "K8S_POD_NAMESPACE is not a namespace name", _quote(ns))
    if len(name) > 253 or not _DNS_SUBDOMAIN_RE.fullmatch(name):
        raise CniError(ERR_INVALID_ENV, "K8S_POD_NAME is not a pod name", _quote(name))
    return PodRef(ns, name, args.get("K8S_POD_UID", ""))


def valid_object_name(value: str) -> bool:
    return 0 < len(value) <= 253 and _DNS_SUBDOMAIN_RE.fullmatch(value) is not None


@dataclass(frozen=True)
class Attachment:
    container_id: str
    ifname: str


@dataclass(frozen=True)
class NetConf:
    cni_version: str
    name: str
    type: str
    prev_result: dict[str, Any] | None
    excluded_cidrs: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
    valid_attachments: tuple[Attachment, ...] | None
    raw: dict[str, Any] = field(repr=False)


def _string(raw: Mapping[str, Any], key: str, *, required: bool) -> str:
    value = raw.get(key)
    if value is None:
        if required:
            raise CniError(ERR_INVALID_CONFIG, f"config field {key} is required")
        return ""
    if not isinstance(value, str):
        raise CniError(ERR_INVALID_CONFIG, f"config field {key} must be a string", _quote(value))
    return value


def parse_excluded_cidrs(value: Any, where: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise CniError(ERR_INVALID_CONFIG, f"{where} must be a list of CIDRs", _quote(value))
    if len(value) > MAX_EXCLUDED_CIDRS:
        raise CniError(ERR_INVALID_CONFIG, f"{where} has more than {MAX_EXCLUDED_CIDRS} entries")
    out = []
    for i, item in enumerate(value):
        try:
            if not isinstance(item, str) or "/" not in item:
                raise ValueError
            net = ipaddress.ip_network(item.strip(), strict=False)
        except ValueError:
            raise CniError(ERR_INVALID_CONFIG, f"{where}[{i}] is not a CIDR", _quote(item)) from None
        if net.prefixlen == 0:
            raise CniError(ERR_INVALID_CONFIG, f"{where}[{i}] must not be a default route", _quote(item))
        if net not in out:
            out.append(net)
    return tuple(out)


def _attachments(value: Any) -> tuple[Attachment, ...]:
    if not isinstance(value, list):
        raise CniError(ERR_INVALID_CONFIG, "cni.dev/valid-attachments must be a list", _quote(value))
    out = []
    for i, item in enumerate(value):
        if (
            not isinstance(item, dict)
            or not isinstance(item.get("containerID"), str)
            or not isinstance(item.get("ifname"), str)
        ):
            raise CniError(
                ERR_INVALID_CONFIG,
                f"cni.dev/valid-attachments[{i}] must be an object with containerID and ifname",
                _quote(item),
            )
        out.append(Attachment(item["containerID"], item["ifname"]))
    return tuple(out)


def decode_json(stdin: bytes) -> dict[str, Any]:
    try:
        raw = json.loads(stdin)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CniError(ERR_DECODE, "failed to decode the network configuration on stdin", str(exc)) from None
    if not isinstance(raw, dict):
        raise CniError(ERR_DECODE, "the network configuration on stdin must be a JSON object")
    return raw


def parse_netconf(raw: dict[str, Any]) -> NetConf:
    version = _string(raw, "cniVersion", required=False) or "0.1.0"
    if version not in SUPPORTED_VERSIONS:
        raise CniError(
            ERR_INCOMPATIBLE_VERSION,
            "incompatible CNI versions",
            f'config is "{version}", plugin supports {list(SUPPORTED_VERSIONS)}',
        )
    prev = raw.get("prevResult")
    if prev is not None and not isinstance(prev, dict):
        raise CniError(ERR_INVALID_CONFIG, "config field prevResult must be an object", _quote(prev))
    attachments = None
    if "cni.dev/valid-attachments" in raw:
        attachments = _attachments(raw["cni.dev/valid-attachments"])
    return NetConf(
        cni_version=version,
        name=_string(raw, "name", required=False),
        type=_string(raw, "type", required=False),
        prev_result=prev,
        excluded_cidrs=parse_excluded_cidrs(raw.get("excludedCIDRs"), "excludedCIDRs"),
        valid_attachments=attachments,
        raw=raw,
    )


# ------------------------------------------------------------------------------------ prevResult


@dataclass(frozen=True)
class PodAddresses:
    """What the preceding plugin gave the pod on CNI_IFNAME."""

    ipv4: ipaddress.IPv4Interface
    ipv6: tuple[ipaddress.IPv6Interface, ...] = ()


def pod_addresses(prev: Mapping[str, Any] | None, ifname: str, netns: str) -> PodAddresses:
    """The pod's IPv4 from prevResult: an IP on the sandbox interface named CNI_IFNAME, else any IPv4.

    Code 7 when prevResult is missing or has no IPv4: this plugin only runs chained after a main plugin.
    """
    if not prev:
        raise CniError(ERR_INVALID_CONFIG, "prevResult is required: kube-egress-gateway-cni must run chained")
    ifaces = prev.get("interfaces") or []
    ips = prev.get("ips") or []
    if not isinstance(ifaces, list) or not isinstance(ips, list):
        raise CniError(ERR_INVALID_CONFIG, "prevResult interfaces and ips must be lists")
    ours = {
        i
        for i, itf in enumerate(ifaces)
        if isinstance(itf, dict) and itf.get("name") == ifname and itf.get("sandbox") in (netns, "", None)
    }
    v4: list[ipaddress.IPv4Interface] = []
    v6: list[ipaddress.IPv6Interface] = []
    fallback: list[ipaddress.IPv4Interface] = []
    for n, entry in enumerate(ips):
        if not isinstance(entry, dict) or not isinstance(entry.get("address"), str):
            raise CniError(ERR_INVALID_CONFIG, f"prevResult.ips[{n}].address must be a CIDR string")
        try:
            addr = ipaddress.ip_interface(entry["address"])
        except ValueError:
            raise CniError(
                ERR_INVALID_CONFIG, f"prevResult.ips[{n}].address is not a CIDR", _quote(entry["address"])
            ) from None
        on_ours = entry.get("interface") in ours
        if isinstance(addr, ipaddress.IPv4Interface):
            (v4 if on_ours else fallback).append(addr)
        elif on_ours:
            v6.append(addr)
    chosen = v4 or fallback
    if not chosen:
        raise CniError(ERR_INVALID_CONFIG, "prevResult has no IPv4 address for the pod", f"interface {ifname}")
    return PodAddresses(ipv4=chosen[0], ipv6=tuple(v6))


def passthrough(prev: Mapping[str, Any] | None, cni_version: str) -> dict[str, Any]:
    """The previous result printed at the config's version: what a chained plugin that changes nothing outputs."""
    out = dict(prev or {})
    out["cniVersion"] = cni_version
    return out


def with_interface(prev: Mapping[str, Any], cni_version: str, ifname: str, netns: str) -> dict[str, Any]:
    """prevResult plus our WireGuard interface (no IPs: the runtime must keep reporting eth0's IP)."""
    out = passthrough(prev, cni_version)
    ifaces = list(out.get("interfaces") or [])
    entry = {"name": ifname, "sandbox": netns}
    # A retried ADD may get a prevResult that already lists it; indices in ips[] must not move.
    if entry not in ifaces:
        ifaces.append(entry)
    out["interfaces"] = ifaces
    return out
