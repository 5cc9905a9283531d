"""Deterministic names of everything the gateway daemon creates, and validation of every name before use.

Callers: ``egw.plan.gateway`` / ``egw.plan.iptables`` / ``egw.plan.status`` and the daemon. Names follow
the seed (``shared/seed/troubleshooting.md``, ``upstream-spec.md`` §4.3):

* gateway network namespace ``gw-<SGC uid>-<ILB IPv4 with "." as "_">``;
* host-side veth ``gw-<first 8 characters of the uid>``, namespace-side veth ``host0``, WireGuard ``wg0``;
* the host nat exemption's comment ``no SNAT for traffic from netns <netns>``.

Invariant: a name returned here is safe to put on a command line, into an iptables-restore document or a
netlink request: UIDs must be canonical lower-case UUIDs, IPs must parse, interface names are 1..15 bytes of
``[A-Za-z0-9_.-]``. Anything else raises :class:`~egw.model.errors.ValidationError` naming field and value.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re

from egw.model.errors import ValidationError

NETNS_PREFIX = "gw-"
WG_IFNAME = "wg0"
GATEWAY_VETH_IFNAME = "host0"
WG_ADDRESS = "fe80::1/64"
IFNAMSIZ = 15
NETNS_MAX = 255
# GatewayStatus objects beyond the first (named after the node) are named "<node>.peers-<i>".
STATUS_SHARD_SEPARATOR = ".peers-"

_UID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_NAME_CHARS_RE = re.compile(r"[A-Za-z0-9_.-]+")
_NETNS_RE = re.compile(r"gw-([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})-([0-9_]{7,15})")
_DNS_SUBDOMAIN_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def validate_uid(uid: object, path: str = "metadata.uid") -> str:
    if not isinstance(uid, str) or not _UID_RE.fullmatch(uid):
        raise ValidationError.single(path, uid, "must be a lower-case UUID (8-4-4-4-12 hex digits)")
    return uid


def validate_ipv4(ip: object, path: str) -> ipaddress.IPv4Address:
    if not isinstance(ip, str):
        raise ValidationError.single(path, ip, "must be an IPv4 address")
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        raise ValidationError.single(path, ip, "must be an IPv4 address") from None
    if not isinstance(addr, ipaddress.IPv4Address) or str(addr) != ip:
        raise ValidationError.single(path, ip, "must be an IPv4 address in dotted-decimal form")
    return addr


def validate_ifname(name: object, path: str = "ifname") -> str:
    """Linux interface name: 1..15 bytes; we also forbid anything outside ``[A-Za-z0-9_.-]``."""
    if (
        not isinstance(name, str)
        or not 0 < len(name.encode()) <= IFNAMSIZ
        or not _NAME_CHARS_RE.fullmatch(name)
        or name in (".", "..")
    ):
        raise ValidationError.single(path, name, "must be an interface name: 1-15 characters of [A-Za-z0-9_.-]")
    return name


def validate_netns_name(name: object, path: str = "netnsName") -> str:
    if (
        not isinstance(name, str)
        or not 0 < len(name) <= NETNS_MAX
        or not _NAME_CHARS_RE.fullmatch(name)
        or name in (".", "..")
    ):
        raise ValidationError.single(path, name, "must be a network namespace name of [A-Za-z0-9_.-]")
    return name


def validate_node_name(name: object, path: str = "nodeName") -> str:
    if not isinstance(name, str) or not 0 < len(name) <= 253 or not _DNS_SUBDOMAIN_RE.fullmatch(name):
        raise ValidationError.single(path, name, "must be a Kubernetes node name (lower-case DNS subdomain)")
    return name


def netns_name(sgc_uid: str, ilb_ip: str) -> str:
    """``gw-<uid>-<ip with dots as underscores>``, e.g. ``gw-17f83d68-4cab-422d-a3af-ed320a761cee-10_243_0_6``."""
    validate_uid(sgc_uid)
    addr = validate_ipv4(ilb_ip, "status.gatewayServerProfile.ip")
    return f"{NETNS_PREFIX}{sgc_uid}-{str(addr).replace('.', '_')}"


def parse_netns_name(name: str) -> tuple[str, ipaddress.IPv4Address] | None:
    """(uid, ILB IP) of one of our gateway namespace names, or None when the name is not of that form."""
    m = _NETNS_RE.fullmatch(name)
    if m is None:
        return None
    try:
        ip = ipaddress.IPv4Address(m.group(2).replace("_", "."))
    except ValueError:
        return None
    if str(ip).replace(".", "_") != m.group(2):
        return None
    return m.group(1), ip


def host_veth_name(sgc_uid: str) -> str:
    """Host end of the gateway veth: ``gw-`` + the first 8 characters of the SGC uid (11 bytes)."""
    validate_uid(sgc_uid)
    return validate_ifname(NETNS_PREFIX + sgc_uid[:8])


def wg_birth_name(netns: str) -> str:
    """Name a WireGuard device has while it is created in the node namespace, before the move and the
    rename to ``wg0``. Unique per gateway namespace; wireguard-go keeps its control socket under this name."""
    validate_netns_name(netns)
    return validate_ifname("egw" + hashlib.sha256(netns.encode()).hexdigest()[:12])


def nat_exemption_comment(netns: str) -> str:
    """The seed's comment on the host nat RETURN rule; iptables allows 256 bytes, ours is at most 85."""
    validate_netns_name(netns)
    return f"no SNAT for traffic from netns {netns}"


def ilb_address_label(ifname: str) -> str | None:
    """Address label marking the ILB IP we add to the node's interface (``eth0:egress``), when it fits."""
    validate_ifname(ifname)
    for suffix in (":egress", ":egw"):
        if len(ifname) + len(suffix) <= IFNAMSIZ:
            return ifname + suffix
    return None


def status_shard_name(node: str, index: int) -> str:
    """GatewayStatus object holding peer shard ``index``: shard 0 is the node-named object itself."""
    validate_node_name(node)
    if index < 0:
        raise ValidationError.single("shardIndex", index, "must be >= 0")
    name = node if index == 0 else f"{node}{STATUS_SHARD_SEPARATOR}{index}"
    if len(name) > 253:
        raise ValidationError.single("nodeName", node, "too long to name GatewayStatus shards (253 characters)")
    return name
