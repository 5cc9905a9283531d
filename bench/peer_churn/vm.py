"""Run the kernel-backend peer-churn benchmark inside the QEMU VM (tests/vm/runner.py) and fetch its JSON.

Usage: python -m bench.peer_churn.vm [--timeout S] [--memory MB] -- <args for bench.peer_churn>
The guest runs ``python -m bench.peer_churn --backend kernel --out /run/egw-vm/peer_churn.kernel.json ...``
in this checkout (read-only over 9p); the result lands in bench/results/peer_churn.kernel.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from tests.vm import runner

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.peer_churn.vm")
    p.add_argument("--timeout", type=float, default=1500.0)
    p.add_argument("--memory", type=int, default=3072)
    p.add_argument("args", nargs="*")
    a = p.parse_args()
    image = runner.cached_image()
    argv = [
        sys.executable,
        "-m",
        "bench.peer_churn",
        "--backend",
        "kernel",
        "--out",
        "/run/egw-vm/peer_churn.kernel.json",
    ]
    env = {k: os.environ[k] for k in ("PATH", "VIRTUAL_ENV") if k in os.environ}
    env["PYTHONPATH"] = str(ROOT)
    result = runner.run(
        image,
        [*argv, *a.args],
        cwd=str(ROOT),
        env=env,
        timeout=a.timeout,
        memory_mb=a.memory,
        echo=lambda line: print(line, flush=True),
    )
    out = result.rundir / "peer_churn.kernel.json"
    dest = ROOT / "bench" / "results" / "peer_churn.kernel.json"
    if out.exists():
        shutil.copyfile(out, dest)  # partial results are kept (marked "complete": false)
        print(f"kernel results: {dest}")
    else:
        # the share did not get the file (VM killed before 9p flushed): rebuild the rows from the console
        rows = [json.loads(line[8:]) for line in result.console.splitlines() if line.startswith("EGW-ROW ")]
        if rows:
            info = {"note": "rebuilt from the VM console (the result file was not written)", "complete": False}
            dest.write_text(json.dumps({"backend": "kernel", "machine": info, "rows": rows}, indent=1) + "\n")
            print(f"kernel results (from the console): {dest}")
    if result.rc != 0 or not out.exists():
        print(runner.describe_failure(result, "the benchmark VM"), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
