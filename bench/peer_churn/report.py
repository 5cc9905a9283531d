"""Merge the per-backend peer-churn results into bench/results/peer_churn.json, a README table and a chart.

Run by ``make bench`` after the UAPI (host) and kernel (VM) runs of ``python -m bench.peer_churn``.
The Markdown table replaces whatever sits between the README markers; the chart needs matplotlib
(the ``bench`` extra) and is skipped with a message when it is missing.
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
README = ROOT / "README.md"
BEGIN, END = "<!-- peer_churn:begin -->", "<!-- peer_churn:end -->"
ORDER = ["egw", "egw-event", "limit", "wgctrl-go", "wg-setconf", "pyroute2", "wg-set"]


def load() -> dict[str, Any]:
    """Every part file: peer_churn.<backend>.json, plus peer_churn.<backend>-<label>.json from runs split in
    pieces (e.g. the VM's W1 sizes and its W2a-W4 in two boots); a later file wins for the same case+impl."""
    machine: dict[str, Any] = {}
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for backend in ("uapi", "kernel"):
        for f in sorted(RESULTS.glob(f"peer_churn.{backend}*.json")):
            part = json.loads(f.read_text())
            machine[f.stem.removeprefix("peer_churn.")] = part["machine"]
            for r in part["rows"]:
                rows[(r["backend"], r["workload"], r["n"], r["batch"], r["impl"])] = r
    return {"machine": machine, "rows": list(rows.values())}


def _range(r: dict[str, Any]) -> str:
    return f"{_ms(r['min_s'])}-{_ms(r['max_s'])}" if r.get("min_s") is not None else "—"


def _ms(s: float | None) -> str:
    if s is None:
        return "—"
    return f"{s * 1e3:.1f}" if s < 10 else f"{s:.1f} s"


def micro_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["", "| micro (host) | N | impl | median (ms) | min-max (ms) |", "|---|---|---|---|---|"]
    for r in sorted(rows, key=lambda r: (r["workload"], r["impl"])):
        lines.append(f"| {r['workload']} | {r['n']} | {r['impl']} | {_ms(r['median_s'])} | {_range(r)} |")
    return lines


def table(data: dict[str, Any]) -> str:
    groups: dict[tuple[str, str, int, int], dict[str, dict[str, Any]]] = defaultdict(dict)
    micro = [r for r in data["rows"] if r["workload"].startswith("W8")]
    for r in data["rows"]:
        if not r["workload"].startswith("W8"):
            groups[(r["backend"], r["workload"], r["n"], r["batch"])][r["impl"]] = r
    impls = [i for i in ORDER if any(i in g for g in groups.values())]
    head = [
        "backend",
        "workload",
        "N",
        "batch",
        *[f"{i} (ms)" for i in impls],
        "egw/limit",
        "egw SET msgs",
        "longest msg (ms)",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (backend, wl, n, batch), g in sorted(groups.items()):
        cells = [backend, wl, str(n), str(batch) if batch else "—"]
        cells += [_ms(g[i]["median_s"]) if i in g else "" for i in impls]
        egw, limit = g.get("egw"), g.get("limit")
        ev = g.get("egw-event")
        ratio = f"{egw['median_s'] / limit['median_s']:.2f}x" if egw and limit and limit["median_s"] else ""
        if ev and limit and limit["median_s"]:
            ratio += f" (event {ev['median_s'] / limit['median_s']:.2f}x)"
        cells.append(ratio)
        cells.append(str(egw["set_messages"]) if egw and egw["set_messages"] is not None else "")
        cells.append(_ms(egw["max_message_s"]) if egw and egw["max_message_s"] else "")
        lines.append("| " + " | ".join(cells) + " |")
    lines += micro_table(micro)
    m = data["machine"]
    notes = [
        "",
        "Medians of ≥5 interleaved repetitions on fresh devices (min/max in bench/results/peer_churn.json).",
        "`limit` = the C core with pre-built arrays and no read-back (the floor); `egw` = full sync "
        "(read back, diff, minimal write) incl. routes. W4 rows with batch — are baselines with their own "
        "batching. Empty cells: a slow baseline not run at that size (limits per backend below: "
        "max_ops_*), or not applicable (pyroute2 has no UAPI backend; W3 has nothing for per-peer tools to do). "
        "W8 = host micro benchmarks: 10k routes (egw batch sync vs `ip -batch`; pyroute2 per call at 1k), "
        "iptables (one egw restore document of 1k rules vs one exec per rule for 100 rules).",
    ]
    for b, info in m.items():
        notes.append(f"- {b}: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    return "\n".join(lines + notes)


def write_readme(md: str) -> None:
    text = README.read_text() if README.exists() else ""
    block = f"{BEGIN}\n{md}\n{END}"
    if BEGIN in text and END in text:
        text = text[: text.index(BEGIN)] + block + text[text.index(END) + len(END) :]
    else:
        text = text.rstrip("\n") + "\n\n## Peer-churn benchmark (`make bench`)\n\n" + block + "\n"
    README.write_text(text)


def chart(data: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no chart (pip install '.[bench]')", file=sys.stderr)
        return False
    backends = sorted({r["backend"] for r in data["rows"] if r["workload"] in ("W1", "W2a", "W3")})
    fig, axes = plt.subplots(1, max(1, len(backends)), figsize=(7 * max(1, len(backends)), 4.5), squeeze=False)
    for ax, backend in zip(axes[0], backends, strict=False):
        rows = [r for r in data["rows"] if r["backend"] == backend and r["workload"] in ("W1", "W2a", "W3")]
        cases = sorted({(r["workload"], r["n"]) for r in rows})
        impls = [i for i in ORDER if any(r["impl"] == i for r in rows)]
        width = 0.8 / max(1, len(impls))
        for k, impl in enumerate(impls):
            ys = []
            for c in cases:
                hit = [r for r in rows if (r["workload"], r["n"]) == c and r["impl"] == impl]
                ys.append(hit[0]["median_s"] if hit else 0)
            ax.bar([x + k * width for x in range(len(cases))], ys, width, label=impl)
        ax.set_xticks([x + 0.4 - width / 2 for x in range(len(cases))])
        ax.set_xticklabels([f"{w}\nN={n}" for w, n in cases])
        ax.set_yscale("log")
        ax.set_ylabel("seconds (median, log)")
        ax.set_title(f"peer churn — {backend} backend")
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main() -> int:
    data = load()
    if not data["rows"]:
        print("no results in bench/results/peer_churn.<backend>.json", file=sys.stderr)
        return 1
    (RESULTS / "peer_churn.json").write_text(json.dumps(data, indent=1) + "\n")
    md = table(data)
    write_readme(md)
    (RESULTS / "peer_churn.md").write_text(md + "\n")
    chart(data, RESULTS / "peer_churn.png")
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
