"""plan.status: bounded, deterministic GatewayStatus objects that still answer "is this peer ready here?"."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from egw.model import crds
from egw.plan import status
from tests.unit import plan_samples as s

pytestmark = pytest.mark.unit
NETNS = "gw-17f83d68-4cab-422d-a3af-ed320a761cee-10_243_0_6"
GW = status.ReadyGateway("default/gw001", NETNS)


def _peers(n: int, ns: str = "team-a-production") -> list[status.ReadyPeer]:
    key = s.key()
    return [status.ReadyPeer(f"{ns}/web-frontend-7d9c8b6f5d-{i:06d}", NETNS, key) for i in range(n)]


def test_small_node_looks_like_the_seed() -> None:
    (obj,) = status.plan_status("gw-node-0", s.NODE_UID, "kube-egress-gateway-system", [GW], _peers(3))
    assert obj.name == "gw-node-0"
    assert obj.spec["readyGatewayNamespaces"] == [{"netnsName": NETNS, "staticGatewayConfiguration": "default/gw001"}]
    assert len(obj.spec["readyPeerConfigurations"]) == 3
    assert "peerShardCount" not in obj.spec
    assert obj.status == {"readyGateways": 1, "readyPeers": 3}
    assert obj.body["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Node", "name": "gw-node-0", "uid": s.NODE_UID}
    ]
    # the body parses as our CRD model
    crds.GatewayStatus.from_dict(obj.body)


@pytest.mark.parametrize("n", [5_000, 50_000])
def test_bounded_at_scale_and_lookup_answers(n: int) -> None:
    peers = _peers(n)
    objs = status.plan_status("gw-node-0", s.NODE_UID, "egw", [GW], peers)
    sizes = [o.size() for o in objs]
    assert max(sizes) < 512 * 1024
    assert sum(len(o.spec["readyPeerConfigurations"]) for o in objs) == n
    assert objs[0].status["readyPeers"] == n and "omittedPeers" not in objs[0].status
    by_name = {o.name: o.body for o in objs}
    for p in (peers[0], peers[n // 2], peers[-1]):
        entry = status.lookup(by_name, "gw-node-0", p.pod_endpoint)
        assert entry == {"netnsName": NETNS, "podEndpoint": p.pod_endpoint, "publicKey": p.public_key}
    assert status.lookup(by_name, "gw-node-0", "team-a-production/absent") is None
    if len(objs) > 1:
        assert objs[1].name == "gw-node-0.peers-1"
        assert {o.spec["peerShardCount"] for o in objs} == {len(objs)}


def test_deterministic_regardless_of_input_order() -> None:
    peers = _peers(3000)
    a = status.plan_status("n", s.NODE_UID, "egw", [GW], peers)
    b = status.plan_status("n", s.NODE_UID, "egw", [GW], list(reversed(peers)))
    assert [json.dumps(o.body, sort_keys=True) for o in a] == [json.dumps(o.body, sort_keys=True) for o in b]


def test_spec_equal_ignores_server_fields() -> None:
    (obj,) = status.plan_status("n", s.NODE_UID, "egw", [GW], [])
    current = json.loads(json.dumps(obj.body))
    current["metadata"].update(resourceVersion="5", uid="x", creationTimestamp="t")
    del current["spec"]["readyPeerConfigurations"]  # an empty list may come back omitted
    assert status.spec_equal(current, obj)
    current["spec"]["readyGatewayNamespaces"] = []
    assert not status.spec_equal(current, obj)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 4000), budget=st.integers(8 * 1024, 64 * 1024))
def test_every_object_fits_the_budget_and_nothing_is_lost(n: int, budget: int) -> None:
    peers = _peers(n)
    objs = status.plan_status("n", s.NODE_UID, "egw", [GW], peers, budget=budget)
    assert all(o.size() <= budget for o in objs)
    listed = sum(len(o.spec["readyPeerConfigurations"]) for o in objs)
    assert listed + objs[0].status.get("omittedPeers", 0) == n
    assert objs[0].status.get("omittedPeers", 0) == 0
