"""Value types for the node datapath: WireGuard devices and peers, routes, rules, addresses.

Pure and frozen (hashable), built by egw.plan and read back by egw.dataplane; the dataplane diffs
desired against observed values by their ``key``. Every constructor validates its input and raises
:class:`egw.model.errors.ValidationError` naming the field and value, so nothing invalid ever
reaches the kernel, a netlink message or an iptables-restore document. Private keys are never
echoed (``repr`` hides them, errors redact them).
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field
from typing import Union

from egw.model.errors import ValidationError
from egw.model.keys import KEY_LEN, format_key, parse_key

IPNetwork = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]  # noqa: UP007 - runtime alias
IPAddress = Union[ipaddress.IPv4Address, ipaddress.IPv6Address]  # noqa: UP007

IFNAME_MAX = 15
# Kernel limit is 15 bytes and no '/', ':' or whitespace; we also refuse anything outside this set so
# names are safe in every log, command line and netns path they end up in.
_IFNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")

# rtnetlink protocol number marking egw's routes and rules (unused by iproute2's rt_protos list).
RTPROT_EGW = 0xEB
RT_TABLE_MAIN = 254
SCOPE_UNIVERSE = 0
SCOPE_LINK = 253
SCOPE_HOST = 254


def check_ifname(name: object, path: str = "ifname") -> str:
    if not isinstance(name, str) or not _IFNAME_RE.fullmatch(name):
        raise ValidationError.single(
            path, name, f"must be 1..{IFNAME_MAX} characters of [A-Za-z0-9_.-], starting with a letter or digit"
        )
    return name


def parse_network(value: object, path: str = "prefix") -> IPNetwork:
    """An IP prefix from text or an ipaddress object; host bits must be zero, length in range."""
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return value
    if not isinstance(value, str):
        raise ValidationError.single(path, value, "must be an IP prefix such as 10.0.0.1/32")
    try:
        return ipaddress.ip_network(value, strict=True)
    except ValueError as exc:
        raise ValidationError.single(path, value, f"not a valid IP prefix ({exc})") from exc


def parse_address(value: object, path: str = "address") -> IPAddress:
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    if not isinstance(value, str):
        raise ValidationError.single(path, value, "must be an IP address")
    try:
        return ipaddress.ip_address(value)
    except ValueError as exc:
        raise ValidationError.single(path, value, "not a valid IP address") from exc


def _key(value: object, path: str, *, secret: bool = False) -> bytes:
    if isinstance(value, bytes):
        if len(value) != KEY_LEN:
            raise ValidationError.single(path, value, "must be 32 bytes", secret=secret)
        return value
    return parse_key(value, path, secret=secret)


def _u(value: object, path: str, bits: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < (1 << bits):
        raise ValidationError.single(path, value, f"must be an integer in 0..{(1 << bits) - 1}")
    return value


@dataclass(frozen=True)
class Endpoint:
    address: IPAddress
    port: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "address", parse_address(self.address, "endpoint.address"))
        _u(self.port, "endpoint.port", 16)

    def __str__(self) -> str:
        host = f"[{self.address}]" if self.address.version == 6 else str(self.address)
        return f"{host}:{self.port}"


@dataclass(frozen=True)
class WgPeer:
    """A WireGuard peer. ``endpoint=None`` means "not configured by us" (WireGuard learns it from traffic)."""

    public_key: bytes
    allowed_ips: frozenset[IPNetwork] = frozenset()
    endpoint: Endpoint | None = None
    keepalive: int = 0
    preshared_key: bytes | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "public_key", _key(self.public_key, "peer.publicKey"))
        ips = self.allowed_ips
        if isinstance(ips, str | bytes) or not hasattr(ips, "__iter__"):
            raise ValidationError.single("peer.allowedIPs", ips, "must be a collection of IP prefixes")
        object.__setattr__(
            self,
            "allowed_ips",
            frozenset(parse_network(p, f"peer[{format_key(self.public_key)}].allowedIPs") for p in ips),
        )
        _u(self.keepalive, "peer.persistentKeepalive", 16)
        if self.preshared_key is not None:
            object.__setattr__(self, "preshared_key", _key(self.preshared_key, "peer.presharedKey", secret=True))

    @property
    def key(self) -> bytes:
        return self.public_key


@dataclass(frozen=True)
class WgDevice:
    """A WireGuard device's own settings and its complete desired peer set.

    ``private_key``/``listen_port``/``fwmark`` of ``None`` mean "leave as it is".
    """

    name: str
    private_key: bytes | None = field(default=None, repr=False)
    listen_port: int | None = None
    fwmark: int | None = None
    peers: frozenset[WgPeer] = frozenset()

    def __post_init__(self) -> None:
        check_ifname(self.name, "device.name")
        if self.private_key is not None:
            object.__setattr__(self, "private_key", _key(self.private_key, "device.privateKey", secret=True))
        if self.listen_port is not None:
            _u(self.listen_port, "device.listenPort", 16)
        if self.fwmark is not None:
            _u(self.fwmark, "device.fwmark", 32)
        peers = frozenset(self.peers)
        keys = [p.public_key for p in peers]
        if len(set(keys)) != len(keys):
            raise ValidationError.single("device.peers", len(keys), "two peers share a public key")
        object.__setattr__(self, "peers", peers)


@dataclass(frozen=True)
class Route:
    """A route; ``dev`` is an interface name in the namespace the route lives in."""

    dst: IPNetwork
    dev: str | None = None
    gateway: IPAddress | None = None
    table: int = RT_TABLE_MAIN
    scope: int = SCOPE_UNIVERSE
    metric: int | None = None
    prefsrc: IPAddress | None = None
    protocol: int = RTPROT_EGW

    def __post_init__(self) -> None:
        object.__setattr__(self, "dst", parse_network(self.dst, "route.dst"))
        if self.dev is not None:
            check_ifname(self.dev, "route.dev")
        if self.gateway is not None:
            object.__setattr__(self, "gateway", parse_address(self.gateway, "route.gateway"))
        if self.prefsrc is not None:
            object.__setattr__(self, "prefsrc", parse_address(self.prefsrc, "route.prefsrc"))
        _u(self.table, "route.table", 32)
        _u(self.scope, "route.scope", 8)
        _u(self.protocol, "route.protocol", 8)
        if self.metric is not None:
            _u(self.metric, "route.metric", 32)
        if self.dev is None and self.gateway is None:
            raise ValidationError.single("route", str(self.dst), "needs a device or a gateway")

    @property
    def key(self) -> tuple[int, int, IPNetwork, int]:
        # the kernel's identity of a route: family, table, destination, metric
        return (self.dst.version, self.table, self.dst, self.metric or 0)


@dataclass(frozen=True)
class Rule:
    priority: int
    table: int
    family: int = 4
    fwmark: int | None = None
    fwmask: int = 0xFFFFFFFF
    src: IPNetwork | None = None
    dst: IPNetwork | None = None
    protocol: int = RTPROT_EGW

    def __post_init__(self) -> None:
        _u(self.priority, "rule.priority", 32)
        _u(self.table, "rule.table", 32)
        if self.family not in (4, 6):
            raise ValidationError.single("rule.family", self.family, "must be 4 or 6")
        if self.fwmark is not None:
            _u(self.fwmark, "rule.fwmark", 32)
        _u(self.fwmask, "rule.fwmask", 32)
        for name in ("src", "dst"):
            v = getattr(self, name)
            if v is not None:
                net = parse_network(v, f"rule.{name}")
                if net.version != self.family:
                    raise ValidationError.single(f"rule.{name}", str(net), f"is not IPv{self.family}")
                object.__setattr__(self, name, net)

    @property
    def key(self) -> Rule:
        return self


@dataclass(frozen=True)
class Address:
    dev: str
    address: ipaddress.IPv4Interface | ipaddress.IPv6Interface
    scope: int = SCOPE_UNIVERSE

    def __post_init__(self) -> None:
        check_ifname(self.dev, "address.dev")
        a = self.address
        if isinstance(a, str):
            try:
                a = ipaddress.ip_interface(a)
            except ValueError as exc:
                raise ValidationError.single("address.address", self.address, "not an address/prefix") from exc
        if not isinstance(a, ipaddress.IPv4Interface | ipaddress.IPv6Interface):
            raise ValidationError.single("address.address", a, "must be an address/prefix")
        object.__setattr__(self, "address", a)
        _u(self.scope, "address.scope", 8)

    @property
    def key(self) -> tuple[str, str]:
        return (self.dev, str(self.address))
