"""Peer-churn benchmark (issue 4, spec performance.md §8): egw's WireGuard + route sync against baselines.

Run by ``make bench`` (mk/bench.mk), once per backend: ``python -m bench.peer_churn --backend uapi`` on
the host (wireguard-go in a scratch namespace) and ``--backend kernel`` inside the QEMU VM (the
kernel module; the VM's root namespace is throwaway). Writes ``bench/results/peer_churn.<backend>.json``;
``python -m bench.peer_churn.report`` merges the parts into peer_churn.json, the README table and the chart.

Method: every case runs on a fresh device set up untimed to the workload's starting state; the
implementations run interleaved (rep 1 of every impl, then rep 2, ...), ≥5 repetitions; only the work
is timed (device handles, files and process-free setup excluded; per-call processes of the shell
baselines are their real cost and are included).

Implementations (``impl``):
  egw         WireGuard.sync(desired) + Rtnl.sync_routes(desired): read back, diff, minimal write
  egw-event   WireGuard.set_peers + Rtnl.update_routes with the known change (the daemon's event path,
              no read-back; the periodic sync repairs drift)
  limit       the C core called with pre-built arrays and no read-back: the fewest syscalls the kernel
              (or wireguard-go) allows for that change, i.e. the floor
  wg-set      one `wg set` process per peer plus one `ip route` process per route (small N only)
  wg-setconf  `wg setconf` (W1) / `wg syncconf` (W2a, W3, W4) from a file, routes via one `ip -batch`
  pyroute2    WireGuard.set + IPRoute.route per peer (kernel backend only; small N only)
  wgctrl-go   bench/wgctrl: one wgctrl-go ConfigureDevice (ReplaceAllowedIPs per peer, as upstream) +
              vishvananda/netlink RouteReplace per route, timed inside the Go process

Workloads: W1 add N peers (one /32 allowed IP + one /32 route each) from empty; W2a against 10k: 1k
adds + 1k removes in one sync; W3 no-change resync of 10k (egw must send zero SET messages); W4 remove
1k of 10k with batch sizes 1/32/256/1024 (removal budget per message; on UAPI, transactions of that
size), recording the longest single message; W8 micro (routes, iptables) on the host.
"""

from __future__ import annotations

import argparse
import base64
import ipaddress
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from egw.dataplane import _native
from egw.dataplane.rtnl import Rtnl
from egw.dataplane.wg import WireGuard, clamp
from egw.model import net

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
WGCTRL_BIN = ROOT / "build" / "wgctrl-bench"
PRIV = clamp(bytes(range(1, 33)))
LISTEN_PORT = 51999
# Slow baselines run only where they can finish (operations per case); set per backend from the CLI.
LIMITS = {"shell": 1000, "wgctrl": 1_000_000}


def key(i: int) -> bytes:
    # any 32 bytes but all-zero are a usable Curve25519 public key; derive them cheaply and deterministically
    return (i + 1).to_bytes(4, "big") * 8


def ip_of(i: int) -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network((0x0AF40000 + i, 32))  # 10.244.0.0 + i


def peer(i: int) -> net.WgPeer:
    return net.WgPeer(key(i), frozenset({ip_of(i)}))


# ---- devices ---------------------------------------------------------------------------------------


@dataclass
class Device:
    """One fresh WireGuard device plus the namespace its routes live in."""

    ifname: str
    netns: str | None  # for routes (UAPI: the TUN's scratch namespace; kernel: None = the VM's root)
    uapi_path: str | None
    proc: subprocess.Popen[bytes] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def ip(self, *args: str) -> list[str]:
        return ["ip", *(["-n", self.netns] if self.netns else []), *args]


class Backend:
    name = ""

    def __init__(self) -> None:
        self.seq = 0

    def new_device(self) -> Device:
        raise NotImplementedError

    def drop(self, dev: Device) -> None:
        raise NotImplementedError

    def wg(self, dev: Device) -> WireGuard:
        return WireGuard(dev.ifname, netns=dev.netns, backend=self.name, uapi_path=dev.uapi_path)

    def close(self) -> None:
        pass


class UapiBackend(Backend):
    """wireguard-go in a scratch namespace; its control socket in the global /var/run/wireguard."""

    name = "uapi"

    def __init__(self) -> None:
        super().__init__()
        self.netns = f"egwb-{os.getpid()}"
        subprocess.run(["ip", "netns", "add", self.netns], check=True)
        subprocess.run(["ip", "-n", self.netns, "link", "set", "lo", "up"], check=True)

    def new_device(self) -> Device:
        self.seq += 1
        name = f"egwb{os.getpid() % 100000}x{self.seq}"
        path = f"/var/run/wireguard/{name}.sock"
        env = dict(os.environ, WG_PROCESS_FOREGROUND="1", LOG_LEVEL="error")
        env.pop("LD_PRELOAD", None)
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.netns, "wireguard-go", "-f", name],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while not os.path.exists(path):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"wireguard-go {name} did not start")
            time.sleep(0.01)
        dev = Device(name, self.netns, path, proc)
        subprocess.run(dev.ip("link", "set", name, "up"), check=True)
        return dev

    def drop(self, dev: Device) -> None:
        if dev.proc is not None:
            dev.proc.kill()
            dev.proc.wait()
        Path(dev.uapi_path or "").unlink(missing_ok=True)

    def close(self) -> None:
        subprocess.run(["ip", "netns", "del", self.netns], check=False)


class KernelBackend(Backend):
    """Kernel WireGuard links in the VM's own (throwaway) root namespace."""

    name = "kernel"

    def new_device(self) -> Device:
        self.seq += 1
        name = f"wgb{self.seq}"
        with Rtnl() as rt:
            rt.link_add(name, "wireguard")
            rt.link_set(name, up=True)
        return Device(name, None, None)

    def drop(self, dev: Device) -> None:
        with Rtnl() as rt:
            rt.link_del(dev.ifname)


# ---- helpers ---------------------------------------------------------------------------------------


def routes(ifname: str, idx: range) -> list[net.Route]:
    return [net.Route(ip_of(i), dev=ifname, scope=net.SCOPE_LINK) for i in idx]


def preload(backend: Backend, dev: Device, idx: range, with_routes: bool = True) -> None:
    """Untimed starting state through the C core."""
    with backend.wg(dev) as wg:
        wg.apply(_native.DeviceSpec(dev.ifname, private_key=PRIV, listen_port=LISTEN_PORT), [(peer(i), 0) for i in idx])
    if with_routes:
        with Rtnl(dev.netns) as rt:
            rt.sync_routes(routes(dev.ifname, idx))


def wg_conf(path: Path, idx: range) -> None:
    lines = ["[Interface]", f"PrivateKey = {base64.b64encode(PRIV).decode()}", f"ListenPort = {LISTEN_PORT}"]
    for i in idx:
        lines += ["[Peer]", f"PublicKey = {base64.b64encode(key(i)).decode()}", f"AllowedIPs = {ip_of(i)}"]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o600)


def run(argv: list[str], stdin: str | None = None) -> str:
    p = subprocess.run(argv, input=stdin, capture_output=True, text=True, check=False)
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:4])}... exited {p.returncode}: {p.stderr.strip()[:500]}")
    return p.stdout


# ---- one case --------------------------------------------------------------------------------------


@dataclass
class Case:
    workload: str
    n: int
    batch: int
    start: range  # peers present before the timed step
    final: range | list[int]  # peers wanted after it
    with_routes: bool = True

    @property
    def adds(self) -> list[int]:
        s = set(self.start)
        return [i for i in self.final if i not in s]

    @property
    def removes(self) -> list[int]:
        f = set(self.final)
        return [i for i in self.start if i not in f]


Result = tuple[float, int, float]  # seconds, SET messages (or transactions), longest message seconds


def impl_egw(backend: Backend, dev: Device, case: Case) -> Result:
    wg = backend.wg(dev)
    rt = Rtnl(dev.netns) if case.with_routes else None
    desired = net.WgDevice(dev.ifname, peers=frozenset(peer(i) for i in case.final))
    want_routes = routes(dev.ifname, case.final) if rt else []  # type: ignore[arg-type]
    if case.workload == "W4":
        wg.removal_budget = case.batch
    ops = [(peer(i), _native.REMOVE_ME) for i in case.removes]
    try:
        t0 = time.perf_counter()
        if case.workload == "W4" and backend.name == "uapi":
            # one transaction per batch of removals (the UAPI analogue of the removal budget)
            for k in range(0, len(ops), case.batch):
                wg.apply(None, ops[k : k + case.batch])
        else:
            wg.sync(desired)
        if rt:
            rt.sync_routes(want_routes)
        dt = time.perf_counter() - t0
        msgs = wg.stats.messages
        return dt, msgs, wg.stats.max_send_ns / 1e9
    finally:
        wg.close()
        if rt:
            rt.close()


def impl_egw_event(backend: Backend, dev: Device, case: Case) -> Result:
    """egw's event path (what the daemon does per batch of PodEndpoint events): no read-back."""
    wg = backend.wg(dev)
    rt = Rtnl(dev.netns) if case.with_routes else None
    adds = [peer(i) for i in case.adds]
    removes = [key(i) for i in case.removes]
    add_routes = routes(dev.ifname, case.adds) if rt else []  # type: ignore[arg-type]
    rm_routes = routes(dev.ifname, case.removes) if rt else []  # type: ignore[arg-type]
    if rt:
        rt.link_index(dev.ifname)
    wg.removal_budget = case.batch or wg.removal_budget
    try:
        t0 = time.perf_counter()
        wg.set_peers(adds, remove=removes)
        if rt:
            rt.update_routes(add_routes, rm_routes)
        dt = time.perf_counter() - t0
        return dt, wg.stats.messages, wg.stats.max_send_ns / 1e9
    finally:
        wg.close()
        if rt:
            rt.close()


def impl_limit(backend: Backend, dev: Device, case: Case) -> Result:
    ffi, lib = _native.ffi, _native.lib
    ops = [(peer(i), _native.REMOVE_ME) for i in case.removes] + [(peer(i), 0) for i in case.adds]
    peers_c, aips_c = _native.fill_peers(ops)
    cdev = ffi.new("struct egw_wg_device *", {"ifname": dev.ifname.encode()})
    stats = ffi.new("struct egw_stats *")
    err = ffi.new("struct egw_err *")
    opts = ffi.new("struct egw_wg_opts *", {"removal_budget": case.batch if case.workload == "W4" else 0})
    rfd = _native.nl_open(dev.netns, _native.NETLINK_ROUTE) if case.with_routes else -1
    rops = []
    if case.with_routes:
        idx = _native.link_index(rfd, dev.ifname)
        for i in case.removes:
            rops.append(
                _native.RtOp(
                    kind=_native.RT_ROUTE,
                    op=_native.OP_DEL,
                    family=2,
                    dst=ip_of(i).network_address.packed,
                    dst_len=32,
                    table=254,
                    protocol=net.RTPROT_EGW,
                )
            )
        for i in case.adds:
            rops.append(
                _native.RtOp(
                    kind=_native.RT_ROUTE,
                    op=_native.OP_REPLACE,
                    family=2,
                    dst=ip_of(i).network_address.packed,
                    dst_len=32,
                    oif=idx,
                    table=254,
                    scope=253,
                    protocol=net.RTPROT_EGW,
                )
            )
    rarr = ffi.new("struct egw_rt_op[]", max(1, len(rops)))
    for k, o in enumerate(rops):
        _native._fill_rt(rarr[k], o)
    rstats = ffi.new("struct egw_stats *")
    dump_arr = ffi.new("struct egw_rt_op[]", len(case.final) + 1024)
    gfd, family = -1, 0
    if backend.name == "kernel":
        gfd = _native.nl_open(None, _native.NETLINK_GENERIC)
        family = _native.genl_family(gfd, "wireguard") or 0
    cap = max(16, len(case.final) + 16)
    gdev = ffi.new("struct egw_wg_device *")
    gpeers = ffi.new("struct egw_wg_peer[]", cap)
    gaips = ffi.new("struct egw_wg_aip[]", cap)
    npp, npa = ffi.new("uint32_t *"), ffi.new("uint32_t *")
    try:
        t0 = time.perf_counter()
        if case.workload == "W3":
            # the floor of a no-change resync: one dump into pre-allocated arrays, nothing written
            npp[0], npa[0] = cap, cap
            if backend.name == "kernel":
                r = lib.egw_wg_get(gfd, family, dev.ifname.encode(), gdev, gpeers, npp, gaips, npa, err)
            else:
                r = lib.egw_uapi_get(dev.uapi_path.encode(), gdev, gpeers, npp, gaips, npa, err)
            if case.with_routes:  # and the routes, as egw reads both back
                nr = ffi.new("uint32_t *", len(dump_arr))
                lib.egw_rt_dump(rfd, lib.EGW_RT_ROUTE, 0, dump_arr, nr, err)
        elif backend.name == "kernel":
            r = lib.egw_wg_set(gfd, family, cdev, peers_c, len(ops), aips_c, opts, stats, ffi.NULL, err)
        elif case.workload == "W4":
            r = 0
            for k in range(0, len(ops), case.batch):
                r = r or lib.egw_uapi_set(
                    dev.uapi_path.encode(), cdev, peers_c + k, min(case.batch, len(ops) - k), aips_c, stats, err
                )
        else:
            r = lib.egw_uapi_set(dev.uapi_path.encode(), cdev, peers_c, len(ops), aips_c, stats, err)
        if rops and case.workload != "W3":
            lib.egw_rt_apply(rfd, rarr, len(rops), rstats, err)
        dt = time.perf_counter() - t0
        _native.ensure(r, "limit", err)
        return dt, stats.messages, stats.max_send_ns / 1e9
    finally:
        for fd in (rfd, gfd):
            if fd >= 0:
                os.close(fd)


def impl_wg_set(backend: Backend, dev: Device, case: Case) -> Result:
    cmds: list[list[str]] = []
    for i in case.removes:
        cmds.append(["wg", "set", dev.ifname, "peer", base64.b64encode(key(i)).decode(), "remove"])
        if case.with_routes:
            cmds.append(dev.ip("route", "del", str(ip_of(i)), "dev", dev.ifname))
    for i in case.adds:
        cmds.append(["wg", "set", dev.ifname, "peer", base64.b64encode(key(i)).decode(), "allowed-ips", str(ip_of(i))])
        if case.with_routes:
            cmds.append(dev.ip("route", "add", str(ip_of(i)), "dev", dev.ifname, "scope", "link"))
    t0 = time.perf_counter()
    for c in cmds:
        run(c)
    return time.perf_counter() - t0, len(case.removes) + len(case.adds), 0.0


def impl_wg_setconf(backend: Backend, dev: Device, case: Case, tmp: Path) -> Result:
    conf = tmp / f"{dev.ifname}.conf"
    wg_conf(conf, case.final)  # type: ignore[arg-type]
    lines = [f"route del {ip_of(i)} dev {dev.ifname}" for i in case.removes]
    lines += [f"route add {ip_of(i)} dev {dev.ifname} scope link" for i in case.adds]
    verb = "setconf" if case.workload == "W1" else "syncconf"
    t0 = time.perf_counter()
    run(["wg", verb, dev.ifname, str(conf)])
    if case.with_routes and lines:
        run(dev.ip("-batch", "-"), stdin="\n".join(lines) + "\n")
    return time.perf_counter() - t0, -1, 0.0


def impl_pyroute2(backend: Backend, dev: Device, case: Case) -> Result:
    from pyroute2 import IPRoute
    from pyroute2 import WireGuard as PrWireGuard

    with PrWireGuard() as w, IPRoute() as ipr:
        idx = ipr.link_lookup(ifname=dev.ifname)[0]
        t0 = time.perf_counter()
        for i in case.removes:
            w.set(dev.ifname, peer={"public_key": base64.b64encode(key(i)).decode(), "remove": True})
            if case.with_routes:
                ipr.route("del", dst=str(ip_of(i)), oif=idx)
        for i in case.adds:
            w.set(dev.ifname, peer={"public_key": base64.b64encode(key(i)).decode(), "allowed_ips": [str(ip_of(i))]})
            if case.with_routes:
                ipr.route("add", dst=str(ip_of(i)), oif=idx, scope=253)
        return time.perf_counter() - t0, len(case.removes) + len(case.adds), 0.0


def impl_wgctrl(backend: Backend, dev: Device, case: Case, tmp: Path) -> Result:
    job = tmp / f"{dev.ifname}.job"
    lines = ["dump"] if case.workload == "W3" else []
    lines += [f"del {base64.b64encode(key(i)).decode()} {ip_of(i)}" for i in case.removes]
    lines += [f"add {base64.b64encode(key(i)).decode()} {ip_of(i)}" for i in case.adds]
    job.write_text("\n".join(lines) + "\n")
    out = run([str(WGCTRL_BIN), dev.ifname, dev.netns or "-", str(job)])
    return float(out.split("seconds=")[1].split()[0]), -1, 0.0


# ---- driver ----------------------------------------------------------------------------------------


def cases(sizes: list[int], base: int, churn: int, batches: list[int]) -> list[Case]:
    out = [Case("W1", n, 0, range(0), range(n)) for n in sizes]
    out.append(Case("W2a", base, 0, range(base), range(churn, base + churn)))
    out.append(Case("W3", base, 0, range(base), range(base)))
    out += [Case("W4", base, b, range(base), range(churn, base), with_routes=False) for b in batches]
    return out


def impls_for(backend: Backend, case: Case, tmp: Path) -> dict[str, Callable[[Device], Result]]:
    """Which implementations run for a case. Baselines without a batch knob run once per W4, in the
    batch=1 case, and are reported with batch 0 ("their own batching")."""
    ops = len(case.adds) + len(case.removes)
    out: dict[str, Callable[[Device], Result]] = {
        "egw": lambda d: impl_egw(backend, d, case),
        "limit": lambda d: impl_limit(backend, d, case),
    }
    if case.workload in ("W1", "W2a") or (case.workload == "W4" and backend.name == "kernel"):
        out["egw-event"] = lambda d: impl_egw_event(backend, d, case)
    once = case.workload != "W4" or case.batch == 1
    if once and case.workload != "W3" and ops <= LIMITS["shell"]:
        out["wg-set"] = lambda d: impl_wg_set(backend, d, case)
        if backend.name == "kernel":
            out["pyroute2"] = lambda d: impl_pyroute2(backend, d, case)
    if once:
        out["wg-setconf"] = lambda d: impl_wg_setconf(backend, d, case, tmp)
        if WGCTRL_BIN.exists() and ops <= LIMITS["wgctrl"]:
            out["wgctrl-go"] = lambda d: impl_wgctrl(backend, d, case, tmp)
    return out


OWN_BATCHING = {"wg-set", "pyroute2", "wg-setconf", "wgctrl-go"}


def measure(backend: Backend, case: Case, reps: int, tmp: Path, log: Callable[[str], None]) -> list[dict[str, Any]]:
    impls = impls_for(backend, case, tmp)
    samples: dict[str, list[Result]] = {k: [] for k in impls}
    for _ in range(reps):
        for name, fn in impls.items():
            dev = backend.new_device()
            try:
                preload(backend, dev, case.start, case.with_routes)
                samples[name].append(fn(dev))
            finally:
                backend.drop(dev)
    rows = []
    for name, rs in samples.items():
        secs = [r[0] for r in rs]
        row = {
            "backend": backend.name,
            "workload": case.workload,
            "n": case.n,
            "batch": 0 if case.workload == "W4" and name in OWN_BATCHING else case.batch,
            "impl": name,
            "ops": len(case.adds) + len(case.removes),
            "median_s": statistics.median(secs),
            "min_s": min(secs),
            "max_s": max(secs),
            "set_messages": rs[0][1] if rs[0][1] >= 0 else None,
            "max_message_s": max(r[2] for r in rs) if any(r[2] for r in rs) else None,
            "reps": len(rs),
        }
        rows.append(row)
        log("EGW-ROW " + json.dumps(row))  # machine-readable copy: bench/peer_churn/vm.py reads the console too
        log(
            f"{backend.name:6} {case.workload:4} n={case.n:<6} batch={case.batch:<5} {name:10} "
            f"median {row['median_s'] * 1e3:9.1f} ms  msgs={row['set_messages']}"
        )
    return rows


def micro_host(reps: int, log: Callable[[str], None]) -> list[dict[str, Any]]:
    """W8 on the host: 10k route adds (egw batch vs ip -batch vs pyroute2 at 1k), 1k iptables rules."""
    from pyroute2 import IPRoute

    from egw.dataplane.iptables import Chain, Document, Iptables

    ns = f"egwb-{os.getpid()}-m"
    rows: list[dict[str, Any]] = []

    def record(workload: str, n: int, impl: str, secs: list[float], msgs: int | None = None) -> None:
        rows.append(
            {
                "backend": "host",
                "workload": workload,
                "n": n,
                "batch": 0,
                "impl": impl,
                "ops": n,
                "median_s": statistics.median(secs),
                "min_s": min(secs),
                "max_s": max(secs),
                "set_messages": msgs,
                "max_message_s": None,
                "reps": len(secs),
            }
        )
        log(f"host   {workload:9} n={n:<6} {impl:12} median {statistics.median(secs) * 1e3:9.1f} ms")

    def fresh() -> None:
        subprocess.run(["ip", "netns", "del", ns], check=False, capture_output=True)
        run(["ip", "netns", "add", ns])
        run(["ip", "-n", ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1"])
        run(["ip", "-n", ns, "link", "set", "d0", "up"])

    n = 10_000
    want = [net.Route(ip_of(i), dev="d0", scope=net.SCOPE_LINK) for i in range(n)]
    batch_txt = "".join(f"route add {ip_of(i)} dev d0 scope link\n" for i in range(n))
    results: dict[str, list[float]] = {"egw": [], "ip-batch": [], "pyroute2": []}
    for _ in range(reps):
        fresh()
        with Rtnl(ns) as rt:
            rt.link_index("d0")
            t0 = time.perf_counter()
            rt.sync_routes(want)
            results["egw"].append(time.perf_counter() - t0)
        fresh()
        t0 = time.perf_counter()
        run(["ip", "-n", ns, "-batch", "-"], stdin=batch_txt)
        results["ip-batch"].append(time.perf_counter() - t0)
        fresh()
        # pyroute2 per call, 1k routes, scaled x10 would be a projection: report it at its own n
        with IPRoute(netns=ns) as ipr:
            idx = ipr.link_lookup(ifname="d0")[0]
            t0 = time.perf_counter()
            for i in range(1000):
                ipr.route("add", dst=str(ip_of(i)), oif=idx, scope=253)
            results["pyroute2"].append(time.perf_counter() - t0)
    record("W8-routes", n, "egw", results["egw"])
    record("W8-routes", n, "ip-batch", results["ip-batch"])
    record("W8-routes", 1000, "pyroute2", results["pyroute2"])

    rules = tuple(("-s", f"{ip_of(i).network_address}/32", "-j", "ACCEPT") for i in range(1000))
    ipt_times: dict[str, list[float]] = {"egw-restore": [], "exec-per-rule": []}
    for _ in range(reps):
        fresh()
        ipt = Iptables(ns, backend="nft")
        t0 = time.perf_counter()
        ipt.sync(Document(chains=(Chain("nat", "EGW-BENCH", rules),)))
        ipt_times["egw-restore"].append(time.perf_counter() - t0)
        fresh()
        run(["ip", "netns", "exec", ns, "iptables-nft", "-t", "nat", "-N", "EGW-BENCH"])
        t0 = time.perf_counter()
        for r in rules[:100]:
            run(["nsenter", f"--net=/run/netns/{ns}", "--", "iptables-nft", "-w", "-t", "nat", "-A", "EGW-BENCH", *r])
        ipt_times["exec-per-rule"].append(time.perf_counter() - t0)
    record("W8-iptables", 1000, "egw-restore", ipt_times["egw-restore"], 1)
    record("W8-iptables", 100, "exec-per-rule", ipt_times["exec-per-rule"], 100)
    subprocess.run(["ip", "netns", "del", ns], check=False)
    return rows


def machine_info(backend: Backend) -> dict[str, Any]:
    info: dict[str, Any] = {
        "kernel": platform.release(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    if backend.name == "kernel":
        dev = backend.new_device()
        try:
            p = Path(f"/sys/class/net/{dev.ifname}/threaded")
            info["threaded_napi"] = p.read_text().strip() if p.exists() else "absent"
        finally:
            backend.drop(dev)
        info["emulated"] = "QEMU TCG (absolute times are emulation-slow; compare ratios)"
    else:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "wireguard-go"], capture_output=True, text=True)
        info["wireguard_go"] = out.stdout.strip()
    return info


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.peer_churn", description=__doc__.split("\n")[0])
    p.add_argument("--backend", choices=["uapi", "kernel"], required=True)
    p.add_argument("--sizes", default="1000,10000,50000", help="W1 peer counts")
    p.add_argument("--base", type=int, default=10_000, help="existing peers for W2a/W3/W4")
    p.add_argument("--churn", type=int, default=1000)
    p.add_argument("--batches", default="1,32,256,1024")
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--micro", action="store_true", help="also run W8 micro benchmarks (host)")
    p.add_argument("--shell-max", type=int, default=1000, help="max ops per case for wg-set and pyroute2")
    p.add_argument("--wgctrl-max", type=int, default=1_000_000, help="max ops per case for wgctrl-go")
    a = p.parse_args()
    LIMITS.update(shell=a.shell_max, wgctrl=a.wgctrl_max)
    out = a.out or RESULTS / f"peer_churn.{a.backend}.json"

    def log(msg: str) -> None:
        print(msg, flush=True)

    backend: Backend = UapiBackend() if a.backend == "uapi" else KernelBackend()
    rows: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        info = machine_info(backend)
        log(f"peer_churn {a.backend}: {json.dumps(info)}")
        info["max_ops_wg_set_pyroute2"] = a.shell_max
        info["max_ops_wgctrl_go"] = a.wgctrl_max

        def save(complete: bool) -> None:
            # after every case, so a run cut short (VM timeout) still leaves what it measured
            info["wall_s"] = round(time.monotonic() - started, 1)
            info["complete"] = complete
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({"backend": a.backend, "machine": info, "rows": rows}, indent=1) + "\n")

        with tempfile.TemporaryDirectory(prefix="egw-bench-") as tmp:
            for case in cases(
                [int(x) for x in a.sizes.split(",") if x], a.base, a.churn, [int(x) for x in a.batches.split(",")]
            ):
                rows += measure(backend, case, a.reps, Path(tmp), log)
                save(False)
        if a.micro:
            rows += micro_host(a.reps, log)
        save(True)
    finally:
        backend.close()
    log(f"wrote {out} ({len(rows)} rows, {info['wall_s']} s)")
    return 0


if __name__ == "__main__":
    if shutil.which("wg") is None:
        sys.exit("wg (wireguard-tools) is required")
    sys.exit(main())
