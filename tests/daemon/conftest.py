"""Fixtures of the daemon tests: the seed topology, an API namespace, a Node object and a daemon harness."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.harness import World, running_world
from tests.fixtures.topology import NodeSpec, PodSpec, Topology, TopologySpec

PRIMARY = "10.243.0.4"


def _spec() -> TopologySpec:
    # the gateway node starts without the ILB IP: the daemon must add it
    return TopologySpec(
        nodes=(
            NodeSpec("node", "10.243.4.4", pod_cidr="10.244.0.0/24", pods=(PodSpec("pod-a", "10.244.0.20/24"),)),
            NodeSpec("gwnode", PRIMARY, uplink=True),
        )
    )


@pytest.fixture
def world(
    control_plane: Any, k8s_namespace: str, topology_factory: Callable[[TopologySpec], Topology], tmp_path: Path
) -> Iterator[tuple[World, Topology]]:
    topo = topology_factory(_spec())
    with running_world(control_plane, k8s_namespace, topo.nodes["gwnode"].ns.name, PRIMARY, tmp_path) as w:
        try:
            yield w, topo
        finally:
            if os.environ.get("EGW_KEEP_LOGS"):
                print(w.log())
