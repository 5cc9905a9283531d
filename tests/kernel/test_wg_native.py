"""egw's genetlink WireGuard backend and rtnetlink calls against the real kernel module (kernel tier, in the VM).

Set up namespaces → create the link from the node namespace directly inside the gateway namespace →
sync peers → read back with our decoder and with wireguard-tools' `wg show dump` (an independent reader)
→ compare; the no-op proof (zero SET messages); removal budgets; error attribution mid-batch; dumps
taken while another thread keeps changing the device.
"""

from __future__ import annotations

import base64
import errno
import ipaddress
import threading
from collections.abc import Callable

import pytest

from egw.dataplane import _native
from egw.dataplane.rtnl import Rtnl
from egw.dataplane.wg import WireGuard, clamp, create_kernel_link
from egw.model import net
from tests.dataplane.wgutil import peers, pod_ip, pub
from tests.kernel.nsutil import nsexec

pytestmark = pytest.mark.kernel

PRIV = clamp(bytes(range(1, 33)))
PORT = 51820


def _udp_ports(ns: str) -> set[int]:
    ports: set[int] = set()
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        for line in nsexec(ns, "cat", table).splitlines()[1:]:
            ports.add(int(line.split()[1].rsplit(":", 1)[1], 16))
    return ports


def _wg_dump(ns: str, ifname: str = "wg0") -> dict[str, list[str]]:
    lines = nsexec(ns, "wg", "show", ifname, "dump").splitlines()[1:]
    return {f[0]: f[3].split(",") if f[3] != "(none)" else [] for f in (line.split("\t") for line in lines)}


@pytest.fixture
def gw(make_netns: Callable[[str], str]):
    node, gwns = make_netns("node"), make_netns("gw")
    create_kernel_link("wg0", node_netns=node, target_netns=gwns)
    with WireGuard("wg0", netns=gwns) as wg:
        yield node, gwns, wg


def test_link_created_in_target_keeps_socket_in_node_namespace(gw) -> None:
    node, gwns, wg = gw
    assert wg.backend == "kernel"
    wg.sync(net.WgDevice("wg0", private_key=PRIV, listen_port=PORT))
    with Rtnl(gwns) as rt:
        rt.link_set("wg0", up=True)
        assert rt.link_index("wg0") is not None
    with Rtnl(node) as rt:
        assert rt.link_index("wg0") is None
    assert PORT in _udp_ports(node)
    assert PORT not in _udp_ports(gwns)


@pytest.mark.parametrize("n", [1, 100, 5000])
def test_sync_adds_reads_back_and_noop(gw, n: int) -> None:
    _, gwns, wg = gw
    desired = net.WgDevice("wg0", private_key=PRIV, listen_port=PORT, peers=peers(n))
    report = wg.sync(desired)
    assert (report.added, report.removed) == (n, 0)
    # 72..80 bytes per gateway-style add in ≤65000-byte peer nests (spec §1.3)
    assert -(-n * 72 // 65000) <= report.messages <= -(-n * 80 // 65000)
    shown = _wg_dump(gwns)
    assert len(shown) == n
    state = wg.read()  # a multi-part dump for n >= 100
    assert state.peers == {p.public_key: p for p in desired.peers}
    assert state.private_key == PRIV and state.listen_port == PORT
    before = wg.stats.messages
    assert wg.sync(desired).messages == 0
    assert wg.stats.messages == before


def test_remove_with_budget_and_replace_allowed_ips(gw) -> None:
    _, gwns, wg = gw
    wg.sync(net.WgDevice("wg0", private_key=PRIV, peers=peers(200)))
    wg.removal_budget = 32
    moved = net.WgPeer(pub(150), frozenset({ipaddress.ip_network("198.51.100.7/32")}))
    desired = {p for p in peers(100, start=100) if p.public_key != pub(150)} | {moved}
    before = wg.stats.messages
    report = wg.sync(net.WgDevice("wg0", peers=frozenset(desired)))
    assert (report.added, report.changed, report.removed) == (0, 1, 100)
    assert wg.stats.messages - before == 4 + 1  # 32+32+32+4 removals, then the change
    assert wg.stats.max_send_ns > 0
    shown = _wg_dump(gwns)
    assert len(shown) == 100
    assert shown[base64.b64encode(pub(150)).decode()] == ["198.51.100.7/32"]
    assert wg.sync(net.WgDevice("wg0", peers=frozenset(desired))).messages == 0


class _FakeNet:
    version = 4
    prefixlen = 40
    network_address = ipaddress.ip_address("10.9.9.9")


def _bad_peer(i: int) -> net.WgPeer:
    """A peer whose allowed IP has CIDR 40 on IPv4: the model refuses it, so build it around validation."""
    fake = _FakeNet()
    p = object.__new__(net.WgPeer)
    for k, v in dict(
        public_key=pub(i), allowed_ips=frozenset({fake}), endpoint=None, keepalive=0, preshared_key=None
    ).items():
        object.__setattr__(p, k, v)
    return p


def test_error_is_attributed_to_the_failing_message_and_the_rest_applies(gw) -> None:
    _, gwns, wg = gw
    wg.sync(net.WgDevice("wg0", private_key=PRIV))
    good = sorted(peers(60), key=lambda p: p.public_key)
    ops = [(p, 0) for p in good[:30]] + [(_bad_peer(999), 0)] + [(p, 0) for p in good[30:]]
    wg.max_nest = 800  # ≈9 peers per message, so the bad one shares a message with a few good ones
    with pytest.raises(_native.PermanentNativeError) as info:
        wg.apply(None, ops)
    assert info.value.errno == errno.EINVAL
    assert 0 <= info.value.index <= 30
    results = info.value.results
    failed = [i for i, r in enumerate(results) if r]
    assert 30 in failed and all(results[i] in (-errno.EINVAL, -errno.ECANCELED) for i in failed)
    assert len(failed) <= 12  # one message's worth (≈11 peers in 800 bytes), not the whole batch
    assert failed[-1] < len(ops) - 1  # later messages were still processed
    applied = set(_wg_dump(gwns))
    for i, (p, _) in enumerate(ops):
        if results[i] == 0:
            assert base64.b64encode(p.public_key).decode() in applied
    # the kernel creates a peer before parsing its allowed IPs: the bad one exists, without any
    assert _wg_dump(gwns).get(base64.b64encode(pub(999)).decode()) == []
    # the next sync repairs from read-back: the half-made peer goes, the skipped ones come
    report = wg.sync(net.WgDevice("wg0", peers=frozenset(good)))
    assert 1 <= report.added <= len(failed) - 1
    assert report.removed == 1
    assert len(_wg_dump(gwns)) == 60


def test_dump_while_device_changes_is_consistent_or_temporary(gw) -> None:
    _, gwns, wg = gw
    wg.sync(net.WgDevice("wg0", private_key=PRIV, peers=peers(2000)))
    stop = threading.Event()

    def churn() -> None:
        with WireGuard("wg0", netns=gwns) as w:
            i = 0
            while not stop.is_set():
                w.set_peers([net.WgPeer(pub(10_000 + i), frozenset({pod_ip(10_000 + i)}))])
                i += 1

    t = threading.Thread(target=churn)
    t.start()
    outcomes = {"ok": 0, "temporary": 0}
    try:
        for _ in range(20):
            try:
                state = wg.read()
            except _native.TemporaryNativeError as exc:
                # restarted EGW_DUMP_RETRIES times, then gave up rather than return a torn view
                assert exc.errno == errno.EAGAIN
                outcomes["temporary"] += 1
                continue
            assert all(pub(i) in state.peers for i in range(2000))
            outcomes["ok"] += 1
    finally:
        stop.set()
        t.join()
    assert outcomes["ok"] + outcomes["temporary"] == 20
