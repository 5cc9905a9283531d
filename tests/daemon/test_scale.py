"""5 000 PodEndpoints on one gateway reach the kernel from a cold start; GatewayStatus stays bounded; a
resync and a restart over the converged node write nothing. Timings are printed, never asserted (bench/)."""

from __future__ import annotations

import pytest

from tests.daemon.harness import World
from tests.daemon.scale import run_scale
from tests.fixtures.topology import Topology

pytestmark = [pytest.mark.netns, pytest.mark.apiserver]

N = 5000


def test_5000_peers_converge_bounded_status_and_quiet_restart(world: tuple[World, Topology]) -> None:
    w, _ = world
    result = run_scale(w, N)
    print(result.to_json())
    assert result.status_max_bytes < 512 * 1024
    assert result.projected_50k_max_bytes < 512 * 1024
    assert result.resync_kernel_writes == 0
    assert result.restart_kernel_writes == 0
