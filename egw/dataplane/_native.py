"""The only importer of the compiled ``egw._native`` extension (see csrc/egw_nl.h for the contract).

Thin binding layer (PyNaCl style): marshals egw.model.net values into the header's flat struct
arrays and back, calls ``lib``, and passes every result through :func:`ensure`, the single error
gate that turns ``-errno`` plus the kernel's extended-ACK text into a typed exception:
:class:`TemporaryNativeError` (retry later) or :class:`PermanentNativeError`, both ``OSError``
subclasses carrying ``errno``, ``detail`` and the ``index`` of the item the kernel blamed.
Everything above this module deals in Python values; nothing here logs or echoes private keys.
"""

from __future__ import annotations

import errno
import importlib
import ipaddress
import os
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from egw.errors import PermanentError, TemporaryError
from egw.model import net

_mod: Any
if os.environ.get("EGW_NATIVE_MODULE") == "_egw_native_asan":  # sanitizer build (csrc/ffibuild.py, mk/native.mk)
    MODULE = "_egw_native_asan"
    # libasan is preloaded for this process only: tools we start (ip, iptables) must not inherit it
    os.environ.pop("LD_PRELOAD", None)
    _mod = importlib.import_module(MODULE)
else:
    MODULE = "egw._native"
    import egw._native as _mod  # type: ignore[no-redef]
ffi: Any = _mod.ffi
lib: Any = _mod.lib
AF_INET = 2
AF_INET6 = 10
NETLINK_ROUTE = lib.EGW_NETLINK_ROUTE
NETLINK_GENERIC = lib.EGW_NETLINK_GENERIC

# -errno values worth retrying: contention, interrupted dumps, transient resource shortage.
TEMPORARY_ERRNOS = frozenset(
    {errno.EAGAIN, errno.EBUSY, errno.EINTR, errno.ENOBUFS, errno.ENOMEM, errno.ETIMEDOUT, errno.ECONNREFUSED}
)


class NativeError(OSError):
    """A C call failed; ``errno`` holds the code, ``detail`` the kernel's extended ACK text, ``index`` the item."""

    def __init__(self, code: int, call: str, detail: str = "", index: int = -1) -> None:
        msg = f"{call}: {os.strerror(code)}"
        if detail:
            msg += f": {detail}"
        if index >= 0:
            msg += f" (item {index})"
        super().__init__(code, msg)
        self.call = call
        self.detail = detail
        self.index = index


class TemporaryNativeError(NativeError, TemporaryError):
    def __init__(self, code: int, call: str, detail: str = "", index: int = -1) -> None:
        NativeError.__init__(self, code, call, detail, index)
        self.delay = 1.0


class PermanentNativeError(NativeError, PermanentError):
    pass


def make_error(code: int, call: str, detail: str = "", index: int = -1) -> NativeError:
    cls = TemporaryNativeError if code in TEMPORARY_ERRNOS else PermanentNativeError
    return cls(code, call, detail, index)


def ensure(result: int, call: str, err: Any = None) -> int:
    """The error gate: pass non-negative results through, raise a typed NativeError for -errno."""
    if result < 0:
        detail, index = "", -1
        if err is not None:
            detail = ffi.string(err.msg).decode("utf-8", "replace")
            index = err.index
        raise make_error(-result, call, detail, index)
    return result


# ---- namespaces -----------------------------------------------------------------------------------


def ns_name_valid(name: str) -> bool:
    return bool(lib.egw_ns_name_valid(name.encode()))


def ns_open(name: str) -> int:
    """Open /run/netns/<name>; the caller owns (and closes) the returned fd."""
    if not ns_name_valid(name):
        raise make_error(errno.EINVAL, f"egw_ns_open({name!r})", "not a valid network namespace name")
    return ensure(lib.egw_ns_open(name.encode()), f"egw_ns_open({name!r})")


def ns_open_current() -> int:
    return ensure(lib.egw_ns_open_current(), "egw_ns_open_current")


def ns_same(fd_a: int, fd_b: int) -> bool:
    return bool(ensure(lib.egw_ns_same(fd_a, fd_b), "egw_ns_same"))


Netns = int | str | None  # an open fd, a name under /run/netns, or None for the caller's namespace


def nl_open(netns: Netns, protocol: int) -> int:
    """A netlink socket created inside ``netns``; the caller closes it."""
    if isinstance(netns, str):
        if not ns_name_valid(netns):
            raise make_error(errno.EINVAL, "egw_nl_open", f"not a valid network namespace name: {netns!r}")
        return ensure(lib.egw_nl_open(-1, netns.encode(), protocol), f"egw_nl_open({netns!r})")
    return ensure(lib.egw_nl_open(-1 if netns is None else netns, ffi.NULL, protocol), "egw_nl_open")


def genl_family(fd: int, name: str) -> int | None:
    r = lib.egw_genl_family(fd, name.encode())
    if r == -errno.ENOENT:
        return None
    return ensure(r, f"egw_genl_family({name!r})")


# ---- statistics -----------------------------------------------------------------------------------


@dataclass
class Stats:
    """Counters of what was written to the kernel (SET/NEW/DEL requests) — the no-op sync proof."""

    messages: int = 0
    sends: int = 0
    bytes: int = 0
    max_send_ns: int = 0

    def add(self, c: Any) -> None:
        self.messages += c.messages
        self.sends += c.sends
        self.bytes += c.bytes
        self.max_send_ns = max(self.max_send_ns, c.max_send_ns)


def _new_err() -> Any:
    return ffi.new("struct egw_err *")


def _new_stats() -> Any:
    return ffi.new("struct egw_stats *")


# ---- WireGuard marshalling ------------------------------------------------------------------------

# op flags for wg_set / uapi_set peers (the header's EGW_WGPEER_* operation bits)
REMOVE_ME = lib.EGW_WGPEER_REMOVE_ME
REPLACE_AIPS = lib.EGW_WGPEER_REPLACE_AIPS
UPDATE_ONLY = lib.EGW_WGPEER_UPDATE_ONLY


@dataclass
class DeviceSpec:
    """Device-level part of a SET: ``None`` fields are not sent."""

    name: str
    private_key: bytes | None = field(default=None, repr=False)
    listen_port: int | None = None
    fwmark: int | None = None
    replace_peers: bool = False


@dataclass(frozen=True)
class PeerStatus:
    last_handshake: float
    rx_bytes: int
    tx_bytes: int


@dataclass
class DeviceState:
    """A device as read back: settings, peers by public key, and per-peer counters."""

    name: str
    ifindex: int
    private_key: bytes | None = field(repr=False)
    public_key: bytes | None
    listen_port: int
    fwmark: int
    peers: dict[bytes, net.WgPeer]
    status: dict[bytes, PeerStatus]


def _fill_device(dev: DeviceSpec) -> Any:
    c = ffi.new("struct egw_wg_device *")
    name = net.check_ifname(dev.name, "device.name").encode()
    c.ifname = name
    flags = 0
    if dev.private_key is not None:
        ffi.memmove(c.private_key, dev.private_key, 32)
        flags |= lib.EGW_WGDEV_HAS_PRIVATE_KEY
    if dev.listen_port is not None:
        c.listen_port = dev.listen_port
        flags |= lib.EGW_WGDEV_HAS_LISTEN_PORT
    if dev.fwmark is not None:
        c.fwmark = dev.fwmark
        flags |= lib.EGW_WGDEV_HAS_FWMARK
    if dev.replace_peers:
        flags |= lib.EGW_WGDEV_REPLACE_PEERS
    c.flags = flags
    return c


def fill_peers(ops: Sequence[tuple[net.WgPeer, int]]) -> tuple[Any, Any]:
    """(peer, op flags) pairs → (struct egw_wg_peer[], struct egw_wg_aip[])."""
    total = sum(len(p.allowed_ips) for p, _ in ops)
    peers = ffi.new("struct egw_wg_peer[]", max(len(ops), 1))
    aips = ffi.new("struct egw_wg_aip[]", max(total, 1))
    memmove = ffi.memmove
    j = 0
    for i, (p, flags) in enumerate(ops):
        c = peers[i]
        memmove(c.public_key, p.public_key, 32)
        if not flags & REMOVE_ME:
            if p.preshared_key is not None:
                memmove(c.preshared_key, p.preshared_key, 32)
                flags |= lib.EGW_WGPEER_HAS_PRESHARED_KEY
            if p.keepalive:
                c.keepalive = p.keepalive
                flags |= lib.EGW_WGPEER_HAS_KEEPALIVE
            if p.endpoint is not None:
                a = p.endpoint.address
                c.endpoint_family = AF_INET if a.version == 4 else AF_INET6
                c.endpoint_port = p.endpoint.port
                memmove(c.endpoint_addr, a.packed, len(a.packed))
                flags |= lib.EGW_WGPEER_HAS_ENDPOINT
            c.first_aip = j
            for nw in sorted(p.allowed_ips, key=_net_sort):
                a = aips[j]
                packed = nw.network_address.packed
                a.family = AF_INET if nw.version == 4 else AF_INET6
                a.cidr = nw.prefixlen
                memmove(a.addr, packed, len(packed))
                j += 1
            c.n_aips = j - c.first_aip
        c.flags = flags
    return peers, aips


def _net_sort(nw: net.IPNetwork) -> tuple[int, int, int]:
    return (nw.version, int(nw.network_address), nw.prefixlen)


_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network
_A4 = ipaddress.IPv4Address
_A6 = ipaddress.IPv6Address


def fast_network(packed: bytes, prefixlen: int) -> net.IPNetwork:
    """An IPv4/IPv6Network for kernel-provided (already masked) prefixes without ipaddress's parser.

    Read-back is the hot path of every sync (10k peers and routes per resync); the regular constructor
    costs ~5 µs. Sets the same three attributes ``ipaddress`` itself sets (network_address, netmask,
    _prefixlen); tests/native/test_golden_wg.py checks equality and hashing against the constructor.
    """
    n: Any
    if len(packed) == 4:
        n = object.__new__(_V4)
        n.network_address = _A4(packed)
        n.netmask, n._prefixlen = _V4._make_netmask(prefixlen)  # type: ignore[attr-defined]
    else:
        n = object.__new__(_V6)
        n.network_address = _A6(packed)
        n.netmask, n._prefixlen = _V6._make_netmask(prefixlen)  # type: ignore[attr-defined]
    return cast(net.IPNetwork, n)


_PEER_SIZE = ffi.sizeof("struct egw_wg_peer")
_AIP_SIZE = ffi.sizeof("struct egw_wg_aip")
_OFF = {f: ffi.offsetof("struct egw_wg_peer", f) for f in ("flags", "keepalive", "endpoint_family", "first_aip")}
_OFF_HS = ffi.offsetof("struct egw_wg_peer", "last_handshake_sec")
_OFF_PSK = ffi.offsetof("struct egw_wg_peer", "preshared_key")
_OFF_EP = ffi.offsetof("struct egw_wg_peer", "endpoint_addr")
_HAS_ENDPOINT = lib.EGW_WGPEER_HAS_ENDPOINT
_HAS_PSK = lib.EGW_WGPEER_HAS_PRESHARED_KEY


def _decode_device(name: str, dev: Any, peers: Any, n: int, aips: Any, n_aips: int) -> DeviceState:
    """C arrays → DeviceState. Hot path of every resync: decoded from two byte copies with struct,
    not field by field through cffi, and without re-validating what the kernel produced."""
    flags = dev.flags
    out: dict[bytes, net.WgPeer] = {}
    status: dict[bytes, PeerStatus] = {}
    new = object.__new__
    setattr_ = object.__setattr__
    unpack = struct.unpack_from
    praw = ffi.buffer(peers, n * _PEER_SIZE)[:] if n else b""
    araw = ffi.buffer(aips, n_aips * _AIP_SIZE)[:] if n_aips else b""
    o_flags, o_keep, o_epfam, o_first = _OFF["flags"], _OFF["keepalive"], _OFF["endpoint_family"], _OFF["first_aip"]
    for i in range(n):
        base = i * _PEER_SIZE
        key = praw[base : base + 32]
        (pflags,) = unpack("=I", praw, base + o_flags)
        (keepalive,) = unpack("=H", praw, base + o_keep)
        first, count = unpack("=II", praw, base + o_first)
        ips = []
        for k in range(first, first + count):
            a = k * _AIP_SIZE
            alen = 4 if araw[a] == AF_INET else 16
            ips.append(fast_network(araw[a + 4 : a + 4 + alen], araw[a + 2]))
        endpoint = None
        if pflags & _HAS_ENDPOINT:
            fam, port = unpack("=HH", praw, base + o_epfam)
            alen = 4 if fam == AF_INET else 16
            ep = new(net.Endpoint)
            setattr_(ep, "address", ipaddress.ip_address(praw[base + _OFF_EP : base + _OFF_EP + alen]))
            setattr_(ep, "port", port)
            endpoint = ep
        psk = praw[base + _OFF_PSK : base + _OFF_PSK + 32] if pflags & _HAS_PSK else None
        p = new(net.WgPeer)
        setattr_(p, "public_key", key)
        setattr_(p, "allowed_ips", frozenset(ips))
        setattr_(p, "endpoint", endpoint)
        setattr_(p, "keepalive", keepalive)
        setattr_(p, "preshared_key", psk)
        out[key] = p
        sec, nsec, rx, tx = unpack("=qqQQ", praw, base + _OFF_HS)
        status[key] = PeerStatus(sec + nsec / 1e9, rx, tx)
    return DeviceState(
        name=ffi.string(dev.ifname).decode() or name,
        ifindex=dev.ifindex,
        private_key=bytes(ffi.buffer(dev.private_key, 32)) if flags & lib.EGW_WGDEV_HAS_PRIVATE_KEY else None,
        public_key=bytes(ffi.buffer(dev.public_key, 32)) if flags & lib.EGW_WGDEV_HAS_PUBLIC_KEY else None,
        listen_port=dev.listen_port,
        fwmark=dev.fwmark,
        peers=out,
        status=status,
    )


def _read_with_growth(call: str, fn: Any, name: str, hint: int) -> DeviceState:
    cap_p, cap_a = max(hint, 16), max(hint, 16)
    for _ in range(4):
        dev = ffi.new("struct egw_wg_device *")
        peers = ffi.new("struct egw_wg_peer[]", cap_p)
        aips = ffi.new("struct egw_wg_aip[]", cap_a)
        n_p = ffi.new("uint32_t *", cap_p)
        n_a = ffi.new("uint32_t *", cap_a)
        err = _new_err()
        r = fn(dev, peers, n_p, aips, n_a, err)
        if r == -errno.ENOSPC:
            # the device grew: retry with what the C side counted, plus headroom
            cap_p, cap_a = n_p[0] + n_p[0] // 8 + 16, n_a[0] + n_a[0] // 8 + 16
            continue
        ensure(r, call, err)
        return _decode_device(name, dev, peers, n_p[0], aips, n_a[0])
    raise make_error(errno.EAGAIN, call, "device kept growing while being read")


def wg_get(fd: int, family: int, ifname: str, hint: int = 256) -> DeviceState:
    net.check_ifname(ifname)
    name = ifname.encode()
    return _read_with_growth(
        f"egw_wg_get({ifname})",
        lambda *a: lib.egw_wg_get(fd, family, name, *a),
        ifname,
        hint,
    )


def wg_set(
    fd: int,
    family: int,
    dev: DeviceSpec,
    ops: Sequence[tuple[net.WgPeer, int]],
    stats: Stats,
    *,
    max_nest: int = 0,
    removal_budget: int = 0,
    max_send: int = 0,
) -> list[int]:
    """Apply ``ops`` (peer, op flags) in order; returns the per-peer results (0 or -errno).

    On failure the raised NativeError carries ``results`` too: 0 for applied peers, -errno for the peer(s)
    blamed, -ECANCELED for those after the blamed one in the same message.
    """
    cdev = _fill_device(dev)
    peers, aips = fill_peers(ops)
    opts = ffi.new(
        "struct egw_wg_opts *", {"max_nest": max_nest, "removal_budget": removal_budget, "max_send": max_send}
    )
    cstats = _new_stats()
    results = ffi.new("int32_t[]", max(len(ops), 1))
    err = _new_err()
    r = lib.egw_wg_set(fd, family, cdev, peers, len(ops), aips, opts, cstats, results, err)
    stats.add(cstats)
    out = list(results[0 : len(ops)])
    try:
        ensure(r, f"egw_wg_set({dev.name})", err)
    except NativeError as exc:
        # the kernel goes on with the next messages after a failed one: say which peers did not apply
        exc.results = out  # type: ignore[attr-defined]
        raise
    return out


def uapi_get(path: str, ifname: str, hint: int = 256) -> DeviceState:
    p = path.encode()
    return _read_with_growth(f"egw_uapi_get({ifname})", lambda *a: lib.egw_uapi_get(p, *a), ifname, hint)


def uapi_set(path: str, dev: DeviceSpec, ops: Sequence[tuple[net.WgPeer, int]], stats: Stats) -> None:
    cdev = _fill_device(dev)
    peers, aips = fill_peers(ops)
    cstats = _new_stats()
    err = _new_err()
    r = lib.egw_uapi_set(path.encode(), cdev, peers, len(ops), aips, cstats, err)
    stats.add(cstats)
    ensure(r, f"egw_uapi_set({dev.name})", err)


def wg_build(
    family: int,
    seq: int,
    dev: DeviceSpec,
    ops: Sequence[tuple[net.WgPeer, int]],
    *,
    max_nest: int = 0,
    removal_budget: int = 0,
    cap: int = 1 << 20,
) -> tuple[bytes, int]:
    """The SET messages egw_wg_set would send (pure; for golden tests). Returns (bytes, message count)."""
    cdev = _fill_device(dev)
    peers, aips = fill_peers(ops)
    opts = ffi.new("struct egw_wg_opts *", {"max_nest": max_nest, "removal_budget": removal_budget})
    buf = ffi.new("uint8_t[]", cap)
    n = ffi.new("uint32_t *")
    r = ensure(lib.egw_wg_build(buf, cap, family, seq, cdev, peers, len(ops), aips, opts, n), "egw_wg_build")
    return bytes(ffi.buffer(buf, r)), n[0]


def wg_parse(data: bytes, cap: int = 4096) -> DeviceState:
    """Decode captured GET_DEVICE replies (pure; for golden tests and fuzzing)."""
    return _read_with_growth("egw_wg_parse", lambda *a: lib.egw_wg_parse(data, len(data), *a[:5]), "", cap)


def uapi_build(dev: DeviceSpec, ops: Sequence[tuple[net.WgPeer, int]], cap: int = 1 << 20) -> str:
    cdev = _fill_device(dev)
    peers, aips = fill_peers(ops)
    buf = ffi.new("char[]", cap)
    r = lib.egw_uapi_build(buf, cap, cdev, peers, len(ops), aips)
    ensure(int(r), "egw_uapi_build")
    return bytes(ffi.buffer(buf, r)).decode()


def uapi_parse(text: str, cap: int = 4096) -> DeviceState:
    data = text.encode()
    return _read_with_growth("egw_uapi_parse", lambda *a: lib.egw_uapi_parse(data, len(data), *a[:5]), "", cap)


# ---- rtnetlink ------------------------------------------------------------------------------------

RT_ROUTE = lib.EGW_RT_ROUTE
RT_RULE = lib.EGW_RT_RULE
RT_ADDR = lib.EGW_RT_ADDR
OP_ADD = lib.EGW_OP_ADD
OP_REPLACE = lib.EGW_OP_REPLACE
OP_DEL = lib.EGW_OP_DEL


@dataclass(frozen=True)
class RtOp:
    """One route/rule/address operation or dump entry, mirroring struct egw_rt_op (addresses as bytes)."""

    kind: int
    op: int = 0
    family: int = AF_INET
    dst: bytes | None = None
    dst_len: int = 0
    src: bytes | None = None
    src_len: int = 0
    gateway: bytes | None = None
    gw_family: int = 0
    prefsrc: bytes | None = None
    oif: int | None = None
    table: int = 0
    priority: int | None = None
    fwmark: int | None = None
    fwmask: int = 0
    scope: int = 0
    protocol: int = 0
    type: int = 0


def _fill_rt(c: Any, o: RtOp) -> None:
    c.kind = o.kind
    c.op = o.op
    c.family = o.family
    c.dst_len = o.dst_len
    c.src_len = o.src_len
    c.scope = o.scope
    c.protocol = o.protocol
    c.type = o.type
    c.table = o.table
    c.gw_family = o.gw_family
    c.fwmask = o.fwmask
    flags = 0
    if o.dst is not None:
        ffi.memmove(c.dst, o.dst, len(o.dst))
        flags |= lib.EGW_RT_HAS_DST
    if o.src is not None:
        ffi.memmove(c.src, o.src, len(o.src))
        flags |= lib.EGW_RT_HAS_SRC
    if o.gateway is not None:
        ffi.memmove(c.gateway, o.gateway, len(o.gateway))
        flags |= lib.EGW_RT_HAS_GATEWAY
    if o.prefsrc is not None:
        ffi.memmove(c.prefsrc, o.prefsrc, len(o.prefsrc))
        flags |= lib.EGW_RT_HAS_PREFSRC
    if o.oif is not None:
        c.oif = o.oif
        flags |= lib.EGW_RT_HAS_OIF
    if o.priority is not None:
        c.priority = o.priority
        flags |= lib.EGW_RT_HAS_PRIORITY
    if o.fwmark is not None:
        c.fwmark = o.fwmark
        flags |= lib.EGW_RT_HAS_FWMARK
    c.flags = flags


def _read_rt(c: Any) -> RtOp:
    f = c.flags
    alen = 16 if c.family == AF_INET6 else 4
    glen = 16 if (c.gw_family or c.family) == AF_INET6 else 4

    def b(field_: Any, n: int, bit: int) -> bytes | None:
        return bytes(ffi.buffer(field_, n)) if f & bit else None

    return RtOp(
        kind=c.kind,
        family=c.family,
        dst=b(c.dst, alen, lib.EGW_RT_HAS_DST),
        dst_len=c.dst_len,
        src=b(c.src, alen, lib.EGW_RT_HAS_SRC),
        src_len=c.src_len,
        gateway=b(c.gateway, glen, lib.EGW_RT_HAS_GATEWAY),
        gw_family=c.gw_family,
        prefsrc=b(c.prefsrc, alen, lib.EGW_RT_HAS_PREFSRC),
        oif=c.oif if f & lib.EGW_RT_HAS_OIF else None,
        table=c.table,
        priority=c.priority if f & lib.EGW_RT_HAS_PRIORITY else None,
        fwmark=c.fwmark if f & lib.EGW_RT_HAS_FWMARK else None,
        fwmask=c.fwmask,
        scope=c.scope,
        protocol=c.protocol,
        type=c.type,
    )


def rt_apply(fd: int, ops: Sequence[RtOp], stats: Stats) -> list[int]:
    """Apply a batch; returns per-op results (0 or -errno). Never raises for per-op kernel errors."""
    if not ops:
        return []
    arr = ffi.new("struct egw_rt_op[]", len(ops))
    for i, o in enumerate(ops):
        _fill_rt(arr[i], o)
    cstats = _new_stats()
    err = _new_err()
    r = lib.egw_rt_apply(fd, arr, len(ops), cstats, err)
    stats.add(cstats)
    results = [arr[i].result for i in range(len(ops))]
    if r < 0 and not any(results):
        ensure(r, "egw_rt_apply", err)  # a transport failure, not a per-op result
    return results


def _rt_dump_raw(fd: int, kind: int, family: int, hint: int) -> tuple[Any, int]:
    """One egw_rt_dump into a C array, grown and retried while the kernel reports -ENOSPC."""
    cap = max(hint, 16)
    for _ in range(4):
        arr = ffi.new("struct egw_rt_op[]", cap)
        n = ffi.new("uint32_t *", cap)
        err = _new_err()
        r = lib.egw_rt_dump(fd, kind, family, arr, n, err)
        if r == -errno.ENOSPC:
            cap = n[0] + n[0] // 8 + 16
            continue
        ensure(r, "egw_rt_dump", err)
        return arr, n[0]
    raise make_error(errno.EAGAIN, "egw_rt_dump", "table kept growing while being read")


def rt_dump(fd: int, kind: int, family: int = 0, hint: int = 256) -> list[RtOp]:
    arr, count = _rt_dump_raw(fd, kind, family, hint)
    return [_read_rt(arr[i]) for i in range(count)]


_RT_SIZE = ffi.sizeof("struct egw_rt_op")
_RT_HEAD = struct.Struct("=BBBBBBBBB3xIIIIII16s16s16s16si")


def rt_records(fd: int, kind: int, family: int = 0, hint: int = 256) -> list[tuple[Any, ...]]:
    """Like :func:`rt_dump` but as raw tuples decoded from one byte copy (the read-back hot path):
    (kind, op, family, dst_len, src_len, scope, protocol, type, gw_family, flags, table, oif, priority,
    fwmark, fwmask, dst, src, gateway, prefsrc, result), addresses as 16-byte fields (struct egw_rt_op order)."""
    arr, count = _rt_dump_raw(fd, kind, family, hint)
    raw = ffi.buffer(arr, count * _RT_SIZE)[:]
    return list(_RT_HEAD.iter_unpack(raw)) if raw else []


def rt_build(op: RtOp, seq: int) -> bytes:
    c = ffi.new("struct egw_rt_op *")
    _fill_rt(c, op)
    buf = ffi.new("uint8_t[]", 4096)
    r = ensure(int(lib.egw_rt_build(buf, 4096, c, seq)), "egw_rt_build")
    return bytes(ffi.buffer(buf, r))


def rt_parse(data: bytes, cap: int = 1024) -> list[RtOp]:
    arr = ffi.new("struct egw_rt_op[]", cap)
    n = ffi.new("uint32_t *", cap)
    r = lib.egw_rt_parse(data, len(data), arr, n)
    if r == -errno.ENOSPC:
        return rt_parse(data, n[0])
    ensure(r, "egw_rt_parse")
    return [_read_rt(arr[i]) for i in range(n[0])]


# ---- links ----------------------------------------------------------------------------------------


def link_add(fd: int, ifname: str, kind: str, target_ns_fd: int = -1) -> None:
    net.check_ifname(ifname)
    err = _new_err()
    ensure(lib.egw_link_add(fd, ifname.encode(), kind.encode(), target_ns_fd, err), f"egw_link_add({ifname})", err)


def link_set(fd: int, ifname: str, *, up: bool, mtu: int = 0) -> None:
    net.check_ifname(ifname)
    err = _new_err()
    ensure(lib.egw_link_set(fd, ifname.encode(), 1 if up else 0, mtu, err), f"egw_link_set({ifname})", err)


def link_del(fd: int, ifname: str) -> None:
    net.check_ifname(ifname)
    err = _new_err()
    ensure(lib.egw_link_del(fd, ifname.encode(), err), f"egw_link_del({ifname})", err)


def link_index(fd: int, ifname: str) -> int | None:
    net.check_ifname(ifname)
    r = lib.egw_link_index(fd, ifname.encode())
    if r == -errno.ENODEV:
        return None
    return ensure(r, f"egw_link_index({ifname})")


__all__ = [
    "DeviceSpec",
    "DeviceState",
    "NativeError",
    "PermanentNativeError",
    "RtOp",
    "Stats",
    "TemporaryNativeError",
    "ensure",
    "ffi",
    "ns_name_valid",
    "ns_open",
    "ns_open_current",
    "ns_same",
]
