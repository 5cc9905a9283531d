"""Bench: the gateway daemon converging 5 000 PodEndpoints on one gateway from a cold start.

Run with ``make bench-daemon`` (needs root, wireguard-go and the control-plane binaries of ``make testbin``).
It reuses the test harness (real kube-apiserver, throwaway namespaces, wireguard-go) and writes the
numbers to ``bench/results/daemon_scale.json``: seconds until every peer and route is in the kernel,
seconds until GatewayStatus lists them, GatewayStatus sizes at N and projected at 50 000 peers, kernel
writes of a periodic resync and of a SIGKILL restart over the converged node (both must be 0).
Set ``EGW_BENCH_PEERS`` to change N.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.daemon.harness import World
from tests.daemon.scale import run_scale
from tests.fixtures.topology import Topology

pytestmark = [pytest.mark.netns, pytest.mark.apiserver]

RESULTS = Path(__file__).parent / "results"


def test_bench_daemon_scale(world: tuple[World, Topology]) -> None:
    w, _ = world
    n = int(os.environ.get("EGW_BENCH_PEERS", "5000"))
    result = run_scale(w, n)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "daemon_scale.json").write_text(result.to_json() + "\n")
    print(result.to_json())
