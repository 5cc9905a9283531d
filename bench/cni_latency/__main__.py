"""bench/cni_latency: how long the container runtime waits for kube-egress-gateway-cni.

What is measured (root; real kube-apiserver from the test toolchain; throwaway netns; wireguard-go):
* pass-through: the front end exec'd for a pod *without* the annotation (the cost every pod on the node
  pays), process start to exit, sequentially and at N-way concurrency;
* full ADD: the front end for an annotated pod chained after Debian ptp (ptp runs first, untimed), with
  cni-manager's per-phase breakdown (annotation lookup, gateway lookup, netns observe, WireGuard device,
  PodEndpoint publish, routes/rule/mangle) parsed from its log;
* baselines in the same run: exec of /bin/true (process spawn floor from Python) and of Debian's
  ``ptp VERSION`` (a small static Go CNI plugin doing no work).
Results go to stdout and to bench/results/cni_latency.json. Nothing is asserted: speed lives here, not in
tests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from egw.cni import podnet  # noqa: E402
from egw.k8s import client as k8s  # noqa: E402
from tests.cni.harness import start_chain  # noqa: E402
from tests.cni.runtime import Sandbox  # noqa: E402
from tests.fixtures.apiserver import running_control_plane  # noqa: E402
from tests.fixtures.netns import NetnsFactory  # noqa: E402

SHIM = REPO / "build" / "bin" / "kube-egress-gateway-cni"
PHASE_RE = re.compile(r"ADD (\S+) (\S+): wg0 .*?; (.*)$")


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def summary(ms: list[float]) -> dict[str, float]:
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 3),
        "p90_ms": round(pct(ms, 0.90), 3),
        "p99_ms": round(pct(ms, 0.99), 3),
        "max_ms": round(max(ms), 3),
    }


def timed(argv: list[str], env: dict[str, str], data: bytes) -> tuple[float, subprocess.CompletedProcess[bytes]]:
    t = time.perf_counter()
    proc = subprocess.run(argv, input=data, env=env, capture_output=True, check=False)
    return (time.perf_counter() - t) * 1000, proc


def shim_env(chain: Any, sb: Sandbox, command: str = "ADD") -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": sb.container_id,
        "CNI_NETNS": sb.netns,
        "CNI_IFNAME": "eth0",
        "CNI_ARGS": sb.cni_args(),
        "CNI_PATH": str(chain.runtime.bin_dir),
    }


def conf_for(chain: Any, prev: dict[str, Any]) -> bytes:
    net = chain.runtime.network()
    ours = next(p for p in net["plugins"] if p["type"] == "kube-egress-gateway-cni")
    return json.dumps({**ours, "name": net["name"], "cniVersion": net["cniVersion"], "prevResult": prev}).encode()


PREV = {
    "cniVersion": "1.0.0",
    "interfaces": [{"name": "veth0"}, {"name": "eth0", "sandbox": "/run/netns/none"}],
    "ips": [{"address": "10.244.0.20/24", "gateway": "10.244.0.1", "interface": 1}],
    "routes": [{"dst": "0.0.0.0/0"}],
}


def bench_pass_through(chain: Any, n_seq: int, n_conc: int, conc: int) -> dict[str, Any]:
    pods = [chain.pod(f"pt-{i}", sgc=None) for i in range(n_seq + n_conc)]
    time.sleep(1.0)  # let the informer see them all (a miss would fall back to a GET and still be correct)
    data = conf_for(chain, PREV)

    def one(sb: Sandbox) -> float:
        ms, proc = timed([str(SHIM)], shim_env(chain, sb), data)
        if proc.returncode != 0 or json.loads(proc.stdout) != PREV:
            raise RuntimeError(f"pass-through failed: {proc.stdout[:300]!r} {proc.stderr[-300:]!r}")
        return ms

    for sb in pods[:5]:  # warm-up: page cache, manager threads
        one(sb)
    seq = [one(sb) for sb in pods[:n_seq]]
    with ThreadPoolExecutor(conc) as pool:
        par = list(pool.map(one, pods[n_seq:]))
    return {"sequential": summary(seq), f"concurrent_{conc}": summary(par)}


def bench_full_add(chain: Any, n_seq: int, n_conc: int, conc: int) -> dict[str, Any]:
    chain.sgc("gw")
    pods = [chain.pod(f"full-{i}", sgc="gw") for i in range(n_seq + n_conc)]
    time.sleep(1.0)
    net = chain.runtime.network()
    ptp = next(p for p in net["plugins"] if p["type"] == "ptp")
    prevs: dict[str, dict[str, Any]] = {}
    for sb in pods:  # the main plugin first, untimed, as the runtime would
        prevs[sb.container_id] = chain.runtime._exec("ptp", "ADD", sb, chain.runtime._conf(net, ptp, None), {})

    def one(sb: Sandbox) -> float:
        ms, proc = timed([str(SHIM)], shim_env(chain, sb), conf_for(chain, prevs[sb.container_id]))
        if proc.returncode != 0:
            raise RuntimeError(f"full ADD failed: {proc.stdout[:500]!r}")
        return ms

    dels: list[float] = []

    def delete(sb: Sandbox) -> None:
        ms, _ = timed([str(SHIM)], shim_env(chain, sb, "DEL"), conf_for(chain, prevs[sb.container_id]))
        dels.append(ms)
        chain.runtime._exec("ptp", "DEL", sb, chain.runtime._conf(net, ptp, prevs[sb.container_id]), {})

    # Live devices stay bounded: with wireguard-go each one holds an inotify instance and
    # fs.inotify.max_user_instances (128 by default) caps how many can exist on the node at once.
    seq = []
    for sb in pods[:n_seq]:
        seq.append(one(sb))
        delete(sb)
    par: list[float] = []
    rest = pods[n_seq:]
    with ThreadPoolExecutor(conc) as pool:
        for i in range(0, len(rest), conc):
            batch = rest[i : i + conc]
            par.extend(pool.map(one, batch))
            for sb in batch:
                delete(sb)
    phases: dict[str, list[float]] = {}
    for line in chain.log.read_text().splitlines():
        m = PHASE_RE.search(line)
        if m:
            for part in m.group(3).split():
                name, _, value = part.partition("=")
                phases.setdefault(name, []).append(float(value.removesuffix("ms")))
    return {
        "sequential": summary(seq),
        f"concurrent_{conc}": summary(par),
        "phases_p50_ms": {k: round(statistics.median(v), 3) for k, v in phases.items()},
        "phases_p99_ms": {k: round(pct(v, 0.99), 3) for k, v in phases.items()},
        "del": summary(dels),
    }


def baselines(n: int = 100) -> dict[str, Any]:
    true = [timed(["/bin/true"], {}, b"")[0] for _ in range(n)]
    ptp = [timed(["/usr/lib/cni/ptp"], {"CNI_COMMAND": "VERSION"}, b'{"cniVersion":"1.0.0"}')[0] for _ in range(n)]
    py = [timed([sys.executable, "-S", "-c", "pass"], {}, b"")[0] for _ in range(20)]
    return {"exec_true": summary(true), "exec_debian_ptp_version": summary(ptp), "python_S_start": summary(py)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.cni_latency")
    ap.add_argument("--pass-seq", type=int, default=200)
    ap.add_argument("--pass-conc", type=int, default=50)
    ap.add_argument("--full-seq", type=int, default=200)
    ap.add_argument("--full-conc", type=int, default=50)
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "cni_latency.json")
    args = ap.parse_args(argv)
    if not SHIM.exists():
        subprocess.run(["make", "-C", str(REPO), "cni-shim"], check=True)
    before = set(os.listdir(podnet.UAPI_DIR)) if os.path.isdir(podnet.UAPI_DIR) else set()
    stack = contextlib.ExitStack()
    work = Path(tempfile.mkdtemp(prefix="egwb-"))
    factory = NetnsFactory()
    try:
        cp = stack.enter_context(running_control_plane())
        api = k8s.Client.from_kubeconfig(cp.kubeconfig)
        ns = "bench-cni"
        api.create(k8s.NAMESPACES, {"metadata": {"name": ns}})
        (work / "sock").mkdir()
        chain = start_chain(cp, ns, factory("bench-node"), factory, SHIM, work / "sock", work)
        results: dict[str, Any] = {"machine": os.uname().release, "baselines": baselines()}
        results["pass_through"] = bench_pass_through(chain, args.pass_seq, args.pass_conc, args.concurrency)
        results["full_add"] = bench_full_add(chain, args.full_seq, args.full_conc, args.concurrency)
        text = json.dumps(results, indent=2)
        print(text)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
        api.close()
    finally:
        # wireguard-go does not exit when the netns holding its TUN is deleted: end what this run left.
        for entry in set(os.listdir(podnet.UAPI_DIR)) - before if os.path.isdir(podnet.UAPI_DIR) else ():
            if entry.startswith(podnet.POD_DEVICE_PREFIX):
                podnet.remove_device(entry.removesuffix(".sock"))
        factory.cleanup()
        stack.close()
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
