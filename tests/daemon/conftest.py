"""Fixtures of the daemon tests: the seed topology, an API namespace, a Node object and a daemon harness."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from egw.k8s import client as k8s
from tests.daemon.harness import World, new_node_name
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
    api = k8s.Client.from_kubeconfig(control_plane.kubeconfig)
    (tmp_path / "logs").mkdir()
    w = World(
        api=api,
        namespace=k8s_namespace,
        node_name=new_node_name(),
        node_netns=topo.nodes["gwnode"].ns.name,
        state_dir=tmp_path / "state",
        kubeconfig=Path(control_plane.kubeconfig),
        log_dir=tmp_path / "logs",
    )
    w.create_node(PRIMARY)
    try:
        yield w, topo
    finally:
        w.cleanup()
        api.delete(k8s.NODES, w.node_name)
        api.close()
        if os.environ.get("EGW_KEEP_LOGS"):
            print(w.log())
