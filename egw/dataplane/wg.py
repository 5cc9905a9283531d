"""WireGuard devices: read back, diff, write only the difference (kernel genetlink or wireguard-go UAPI).

Callers: the gateway daemon's peer reconciler and the CNI plugin (via egw.daemon / egw.cni), and
bench/peer_churn. One :class:`WireGuard` per device; it owns one netlink socket (kernel backend) opened
inside the device's namespace, so no Python code ever runs in that namespace.

Design (after wireguard-tools' syncconf and Calico felix's delta apply):
- ``sync(desired)`` = one dump → :func:`plan` (pure keyed diff) → at most one ``wg_set`` call, which the
  C core packs into ≤64 KiB messages, several per sendmsg, removals in budgeted messages of their own.
  When nothing differs, nothing is sent: ``stats.messages`` does not move (tests count it).
- Unchanged peers are never re-sent: re-sending with REPLACE_ALLOWEDIPS opens a window in which packets
  to those IPs find no peer. A changed peer whose allowed IPs only grew gets just the new IPs; only a
  peer that lost an IP is sent with REPLACE_ALLOWEDIPS.
- Endpoints we did not configure (``endpoint=None``) are ignored when comparing: WireGuard learns them
  from traffic (pods initiate to the gateway).
- Backend choice: ``"auto"`` uses the kernel when the "wireguard" genetlink family exists in the target
  namespace, else wireguard-go's UAPI socket (one ``set=1`` transaction per sync).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, replace

from egw.dataplane import _native
from egw.errors import PermanentError
from egw.model import net
from egw.model.diff import diff

DEFAULT_UAPI_DIR = "/var/run/wireguard"
ZERO_KEY = bytes(32)
DEFAULT_REMOVAL_BUDGET = 32

Op = tuple[net.WgPeer, int]


@dataclass(frozen=True)
class Plan:
    device: _native.DeviceSpec | None  # None: device settings already match
    ops: list[Op]
    added: int
    changed: int
    removed: int

    def __bool__(self) -> bool:
        return self.device is not None or bool(self.ops)


def _same_peer(obs: net.WgPeer, want: net.WgPeer) -> bool:
    return (
        obs.allowed_ips == want.allowed_ips
        and obs.keepalive == want.keepalive
        and obs.preshared_key == want.preshared_key
        and (want.endpoint is None or obs.endpoint == want.endpoint)
    )


def _change_op(obs: net.WgPeer, want: net.WgPeer) -> Op:
    psk = want.preshared_key
    if psk is None and obs.preshared_key is not None:
        psk = ZERO_KEY  # all zeros removes a preshared key
    if obs.allowed_ips <= want.allowed_ips:
        # only additions: no REPLACE window for the IPs the peer already routes
        return replace(want, allowed_ips=want.allowed_ips - obs.allowed_ips, preshared_key=psk), 0
    return replace(want, preshared_key=psk), _native.REPLACE_AIPS


def clamp(private_key: bytes) -> bytes:
    """Curve25519 clamping, which WireGuard applies to a private key before storing it."""
    k = bytearray(private_key)
    k[0] &= 248
    k[31] = (k[31] & 127) | 64
    return bytes(k)


def plan(desired: net.WgDevice, observed: _native.DeviceState) -> Plan:
    """Pure: the minimal device settings and peer operations that turn ``observed`` into ``desired``."""
    dev = _native.DeviceSpec(name=desired.name)
    dev_changed = False
    if desired.private_key is not None and (
        observed.private_key is None or clamp(desired.private_key) != clamp(observed.private_key)
    ):
        dev.private_key, dev_changed = desired.private_key, True
    if desired.listen_port is not None and desired.listen_port != observed.listen_port:
        dev.listen_port, dev_changed = desired.listen_port, True
    if desired.fwmark is not None and desired.fwmark != observed.fwmark:
        dev.fwmark, dev_changed = desired.fwmark, True
    delta = diff({p.public_key: p for p in desired.peers}, observed.peers, _same_peer)
    ops: list[Op] = [(p, _native.REMOVE_ME) for p in delta.remove.values()]
    pending: list[tuple[bytes, Op]] = [(k, (p, 0)) for k, p in delta.add.items()]
    pending += [(k, _change_op(o, w)) for k, (o, w) in delta.change.items()]
    pending.sort(key=lambda kv: kv[0])
    ops += [op for _, op in pending]
    return Plan(dev if dev_changed else None, ops, len(delta.add), len(delta.change), len(delta.remove))


@dataclass(frozen=True)
class SyncReport:
    added: int
    changed: int
    removed: int
    messages: int  # SET messages (kernel) or transactions (UAPI) this sync sent


class WireGuard:
    """One WireGuard device in one namespace; ``stats`` counts every write ever sent through it."""

    def __init__(
        self,
        ifname: str,
        *,
        netns: _native.Netns = None,
        backend: str = "auto",
        uapi_path: str | None = None,
        removal_budget: int = DEFAULT_REMOVAL_BUDGET,
        max_nest: int = 0,
    ) -> None:
        net.check_ifname(ifname)
        if backend not in ("auto", "kernel", "uapi"):
            raise ValueError(f"backend: invalid value {backend!r}: must be auto, kernel or uapi")
        self.ifname = ifname
        self.removal_budget = removal_budget
        self.max_nest = max_nest
        self.stats = _native.Stats()
        self._fd = -1
        self._family = 0
        self._hint = 256
        if backend in ("auto", "kernel"):
            fd = _native.nl_open(netns, _native.NETLINK_GENERIC)
            family = _native.genl_family(fd, "wireguard")
            if family is None:
                os.close(fd)
                if backend == "kernel":
                    raise PermanentError("the kernel has no WireGuard generic-netlink family (module not loaded)")
            else:
                self._fd, self._family = fd, family
        self.backend = "kernel" if self._fd >= 0 else "uapi"
        self.uapi_path = uapi_path or f"{DEFAULT_UAPI_DIR}/{ifname}.sock"

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> WireGuard:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def read(self) -> _native.DeviceState:
        if self.backend == "kernel":
            state = _native.wg_get(self._fd, self._family, self.ifname, self._hint)
        else:
            state = _native.uapi_get(self.uapi_path, self.ifname, self._hint)
        self._hint = max(256, len(state.peers) + 64)
        return state

    def apply(self, device: _native.DeviceSpec | None, ops: list[Op]) -> list[int]:
        """Send device settings and peer ops as one batch. Returns per-peer results (kernel) or zeros (UAPI)."""
        dev = device or _native.DeviceSpec(name=self.ifname)
        if self.backend == "kernel":
            return _native.wg_set(
                self._fd,
                self._family,
                dev,
                ops,
                self.stats,
                removal_budget=self.removal_budget,
                max_nest=self.max_nest,
            )
        _native.uapi_set(self.uapi_path, dev, ops, self.stats)
        return [0] * len(ops)

    def sync(self, desired: net.WgDevice) -> SyncReport:
        if desired.name != self.ifname:
            raise ValueError(f"device.name: invalid value {desired.name!r}: this handle manages {self.ifname!r}")
        p = plan(desired, self.read())
        before = self.stats.messages
        if p:
            self.apply(p.device, p.ops)
        return SyncReport(p.added, p.changed, p.removed, self.stats.messages - before)

    def set_peers(self, peers: Iterable[net.WgPeer], *, remove: Iterable[bytes] = ()) -> list[int]:
        """Event path (no read-back): upsert ``peers`` and remove keys, in one batch."""
        ops: list[Op] = [(net.WgPeer(k), _native.REMOVE_ME) for k in remove]
        ops += [(p, 0) for p in peers]
        return self.apply(None, ops)


def create_kernel_link(ifname: str, *, node_netns: _native.Netns = None, target_netns: str | int) -> None:
    """Create a kernel WireGuard link inside ``target_netns`` from a socket in ``node_netns``.

    The link's UDP socket then lives in the node namespace (WireGuard binds where it was created),
    without the ~20 ms cost of moving a link between namespaces.
    """
    net.check_ifname(ifname)
    fd = _native.nl_open(node_netns, _native.NETLINK_ROUTE)
    target = _native.ns_open(target_netns) if isinstance(target_netns, str) else target_netns
    try:
        _native.link_add(fd, ifname, "wireguard", target)
    finally:
        os.close(fd)
        if isinstance(target_netns, str):
            os.close(target)
