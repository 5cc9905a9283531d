"""Routes, rules, addresses and links through rtnetlink, batched (one C call per sync).

Callers: the gateway daemon (gateway netns routes, per-pod /32 routes), the CNI plugin (pod netns
routes and rule), bench/peer_churn. One :class:`Rtnl` per namespace; its netlink socket is created
inside that namespace by the C core, so no Python code runs there.

Ownership: every route and rule egw writes carries ``protocol = RTPROT_EGW`` (see egw.model.net);
``sync_*`` reads back only objects with that marker, diffs them against the desired set and writes the
difference in one batch, so objects of other owners are never touched and an unchanged state sends
no NEW/DEL message at all (``stats.messages`` stays put). Deleting something already gone counts as
success.
"""

from __future__ import annotations

import errno
import ipaddress
import os
from collections.abc import Iterable
from dataclasses import dataclass, replace

from egw.dataplane import _native
from egw.model import net
from egw.model.diff import diff

_IPV6_DEFAULT_METRIC = 1024  # the kernel assigns it to IPv6 routes given without a metric


@dataclass(frozen=True)
class SyncReport:
    added: int
    changed: int
    removed: int
    messages: int


def _af(version: int) -> int:
    return _native.AF_INET if version == 4 else _native.AF_INET6


def _ip(b: bytes | None, family: int) -> net.IPAddress | None:
    if b is None:
        return None
    return ipaddress.ip_address(b[:4] if family == _native.AF_INET else b[:16])


def _same_route(obs: net.Route, want: net.Route) -> bool:
    # a route given only a gateway reads back with the device the kernel resolved it to
    if want.dev is None:
        obs = replace(obs, dev=None)
    return obs == want


class Rtnl:
    def __init__(self, netns: _native.Netns = None) -> None:
        self.netns = netns
        self.stats = _native.Stats()
        self._fd = _native.nl_open(netns, _native.NETLINK_ROUTE)
        self._index: dict[str, int] = {}

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- links -------------------------------------------------------------------------------------

    def link_index(self, name: str, *, cached: bool = True) -> int | None:
        if cached and name in self._index:
            return self._index[name]
        idx = _native.link_index(self._fd, name)
        if idx is not None:
            self._index[name] = idx
        else:
            self._index.pop(name, None)
        return idx

    def link_add(self, name: str, kind: str, *, target_netns: str | int | None = None) -> None:
        """Create a link; with ``target_netns`` directly inside that namespace (IFLA_NET_NS_FD)."""
        if target_netns is None:
            _native.link_add(self._fd, name, kind)
            return
        fd = _native.ns_open(target_netns) if isinstance(target_netns, str) else target_netns
        try:
            _native.link_add(self._fd, name, kind, fd)
        finally:
            if isinstance(target_netns, str):
                os.close(fd)

    def link_set(self, name: str, *, up: bool, mtu: int = 0) -> None:
        _native.link_set(self._fd, name, up=up, mtu=mtu)

    def link_del(self, name: str) -> bool:
        """Delete a link; False when it was already gone."""
        self._index.pop(name, None)
        try:
            _native.link_del(self._fd, name)
        except _native.NativeError as exc:
            if exc.errno == errno.ENODEV:
                return False
            raise
        return True

    # ---- raw batch ---------------------------------------------------------------------------------

    def apply(self, ops: list[_native.RtOp]) -> list[int]:
        return _native.rt_apply(self._fd, ops, self.stats)

    def _apply_checked(self, ops: list[_native.RtOp], what: list[object]) -> None:
        results = self.apply(ops)
        failed = [
            (what[i], r)
            for i, r in enumerate(results)
            if r and not (ops[i].op == _native.OP_DEL and -r in (errno.ESRCH, errno.ENOENT, errno.EADDRNOTAVAIL))
        ]
        if failed:
            obj, code = failed[0]
            raise _native.make_error(-code, "rtnl apply", f"{len(failed)} of {len(ops)} ops failed, first: {obj}")

    # ---- routes ------------------------------------------------------------------------------------

    def _route_op(self, r: net.Route, op: int) -> _native.RtOp:
        fam = _af(r.dst.version)
        oif = None
        if r.dev is not None:
            oif = self.link_index(r.dev)
            if oif is None:
                raise _native.make_error(errno.ENODEV, "rtnl route", f"route.dev: no such interface {r.dev!r}")
        gw = r.gateway
        return _native.RtOp(
            kind=_native.RT_ROUTE,
            op=op,
            family=fam,
            dst=r.dst.network_address.packed,
            dst_len=r.dst.prefixlen,
            gateway=gw.packed if gw is not None else None,
            gw_family=_af(gw.version) if gw is not None else 0,
            prefsrc=r.prefsrc.packed if r.prefsrc is not None else None,
            oif=oif,
            table=r.table,
            priority=r.metric,
            scope=r.scope,
            protocol=r.protocol,
        )

    @staticmethod
    def _normalise(r: net.Route) -> net.Route:
        if r.dst.version == 6 and r.metric is None:
            return replace(r, metric=_IPV6_DEFAULT_METRIC)
        if r.metric == 0:
            return replace(r, metric=None)
        return r

    def routes(self, *, protocol: int = net.RTPROT_EGW, family: int = 0) -> list[net.Route]:
        """Read back routes carrying ``protocol`` (all tables). Built without re-validation (hot path)."""
        names = {v: k for k, v in self._index.items()}
        out = []
        new, set_ = object.__new__, object.__setattr__
        has_dst, has_gw, has_oif = (
            _native.lib.EGW_RT_HAS_DST,
            _native.lib.EGW_RT_HAS_GATEWAY,
            _native.lib.EGW_RT_HAS_OIF,
        )
        has_prefsrc, has_prio = _native.lib.EGW_RT_HAS_PREFSRC, _native.lib.EGW_RT_HAS_PRIORITY
        fast = _native.fast_network
        v6 = _native.AF_INET6
        for rec in _native.rt_records(self._fd, _native.RT_ROUTE, family):
            # field order of struct egw_rt_op (see _native.rt_records)
            fam, dst_len, _, scope, proto, rtype, gw_fam, flags, table, oif, prio = rec[2:13]
            dst, gw, psrc = rec[15], rec[17], rec[18]
            if proto != protocol or rtype != 1:  # RTN_UNICAST only
                continue
            alen = 16 if fam == v6 else 4
            r = new(net.Route)
            set_(r, "dst", fast(dst[:alen] if flags & has_dst else bytes(alen), dst_len))
            set_(r, "dev", (names.get(oif) or f"ifindex{oif}") if flags & has_oif else None)
            set_(r, "gateway", _ip(gw, gw_fam or fam) if flags & has_gw else None)
            set_(r, "table", table)
            set_(r, "scope", scope)
            set_(r, "metric", (prio or None) if flags & has_prio else None)
            set_(r, "prefsrc", _ip(psrc, fam) if flags & has_prefsrc else None)
            set_(r, "protocol", proto)
            out.append(r)
        return out

    def sync_routes(self, desired: Iterable[net.Route], *, protocol: int = net.RTPROT_EGW) -> SyncReport:
        want = {r.key: r for r in (self._normalise(r) for r in desired)}
        for r in want.values():
            if r.protocol != protocol:
                raise ValueError(f"route.protocol: invalid value {r.protocol}: sync owns protocol {protocol}")
            if r.dev is not None:
                self.link_index(r.dev)
        have = {r.key: r for r in self.routes(protocol=protocol)}
        delta = diff(want, have, _same_route)
        ops = [self._route_op(r, _native.OP_DEL) for r in delta.remove.values()]
        what: list[object] = list(delta.remove.values())
        for r in list(delta.add.values()) + [w for _, w in delta.change.values()]:
            ops.append(self._route_op(r, _native.OP_REPLACE))
            what.append(r)
        before = self.stats.messages
        if ops:
            self._apply_checked(ops, what)
        return SyncReport(len(delta.add), len(delta.change), len(delta.remove), self.stats.messages - before)

    def update_routes(self, add: Iterable[net.Route] = (), remove: Iterable[net.Route] = ()) -> int:
        """Event path (no read-back): replace ``add``, delete ``remove`` (already gone is fine), one batch.

        Returns the number of NEW/DEL messages sent. The periodic ``sync_routes`` repairs any drift.
        """
        rm, ad = list(remove), list(add)
        ops = [self._route_op(r, _native.OP_DEL) for r in rm] + [self._route_op(r, _native.OP_REPLACE) for r in ad]
        before = self.stats.messages
        if ops:
            self._apply_checked(ops, [*rm, *ad])
        return self.stats.messages - before

    # ---- rules -------------------------------------------------------------------------------------

    @staticmethod
    def _rule_op(r: net.Rule, op: int) -> _native.RtOp:
        return _native.RtOp(
            kind=_native.RT_RULE,
            op=op,
            family=_af(r.family),
            dst=r.dst.network_address.packed if r.dst else None,
            dst_len=r.dst.prefixlen if r.dst else 0,
            src=r.src.network_address.packed if r.src else None,
            src_len=r.src.prefixlen if r.src else 0,
            table=r.table,
            priority=r.priority,
            fwmark=r.fwmark,
            fwmask=r.fwmask,
            protocol=r.protocol,
            type=1,  # FR_ACT_TO_TBL
        )

    def rules(self, *, protocol: int = net.RTPROT_EGW, family: int = 0) -> list[net.Rule]:
        out = []
        for o in _native.rt_dump(self._fd, _native.RT_RULE, family):
            if o.protocol != protocol:
                continue
            alen = 4 if o.family == _native.AF_INET else 16
            out.append(
                net.Rule(
                    priority=o.priority or 0,
                    table=o.table,
                    family=4 if o.family == _native.AF_INET else 6,
                    fwmark=o.fwmark,
                    fwmask=o.fwmask if o.fwmark is not None else 0xFFFFFFFF,
                    src=ipaddress.ip_network((o.src[:alen], o.src_len)) if o.src else None,
                    dst=ipaddress.ip_network((o.dst[:alen], o.dst_len)) if o.dst else None,
                    protocol=o.protocol,
                )
            )
        return out

    def sync_rules(self, desired: Iterable[net.Rule], *, protocol: int = net.RTPROT_EGW) -> SyncReport:
        want = {r: r for r in desired}
        have = {r: r for r in self.rules(protocol=protocol)}
        delta = diff(want, have)
        ops = [self._rule_op(r, _native.OP_DEL) for r in delta.remove]
        ops += [self._rule_op(r, _native.OP_ADD) for r in delta.add]
        before = self.stats.messages
        if ops:
            self._apply_checked(ops, [*delta.remove, *delta.add])
        return SyncReport(len(delta.add), 0, len(delta.remove), self.stats.messages - before)

    # ---- addresses ---------------------------------------------------------------------------------

    def addresses(self, dev: str) -> list[net.Address]:
        idx = self.link_index(dev, cached=False)
        out = []
        for o in _native.rt_dump(self._fd, _native.RT_ADDR, 0):
            if o.oif != idx or o.dst is None:
                continue
            ip = _ip(o.dst, o.family)
            out.append(net.Address(dev, ipaddress.ip_interface(f"{ip}/{o.dst_len}"), o.scope))
        return out

    def ensure_addresses(self, desired: Iterable[net.Address]) -> int:
        """Add the missing addresses (never removes others); returns how many were added."""
        want = list(desired)
        have: set[tuple[str, str]] = set()
        for dev in {a.dev for a in want}:
            have |= {a.key for a in self.addresses(dev)}
        missing = [a for a in want if a.key not in have]
        ops = []
        for a in missing:
            idx = self.link_index(a.dev)
            if idx is None:
                raise _native.make_error(errno.ENODEV, "rtnl address", f"address.dev: no such interface {a.dev!r}")
            ops.append(
                _native.RtOp(
                    kind=_native.RT_ADDR,
                    op=_native.OP_REPLACE,
                    family=_af(a.address.version),
                    dst=a.address.ip.packed,
                    dst_len=a.address.network.prefixlen,
                    oif=idx,
                    scope=a.scope,
                )
            )
        if ops:
            self._apply_checked(ops, list(missing))
        return len(ops)
