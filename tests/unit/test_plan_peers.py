"""plan.peers: one peer per valid PodEndpoint; invalid ones rejected with field and value, deterministically."""

from __future__ import annotations

import ipaddress

import pytest

from egw.plan import peers
from tests.unit import plan_samples as s

pytestmark = pytest.mark.unit
NETNS = "gw-17f83d68-4cab-422d-a3af-ed320a761cee-10_243_0_6"


def test_valid_endpoints_become_sorted_peers_and_routes() -> None:
    k1, k2 = s.key(), s.key()
    plan = peers.plan_peers(NETNS, [s.pe("b", "10.244.0.21/32", k2), s.pe("a", "10.244.0.20/32", k1)])
    assert [(p.pod_endpoint, p.public_key, str(p.pod_ip)) for p in plan.peers] == [
        ("default/a", k1, "10.244.0.20/32"),
        ("default/b", k2, "10.244.0.21/32"),
    ]
    assert plan.routes == (
        (ipaddress.ip_network("10.244.0.20/32"), "wg0"),
        (ipaddress.ip_network("10.244.0.21/32"), "wg0"),
    )
    assert plan.rejected == ()


def test_invalid_endpoints_are_rejected_and_the_rest_kept() -> None:
    good = s.pe("good", "10.244.0.20/32")
    bad_key = s.pe("badkey", "10.244.0.22/32", "not-a-key")
    not_host = s.pe("subnet", "10.244.0.0/24")
    plan = peers.plan_peers(NETNS, [bad_key, good, not_host])
    assert [p.pod_endpoint for p in plan.peers] == ["default/good"]
    msgs = {r.pod_endpoint: r.message for r in plan.rejected}
    assert 'spec.podPublicKey: invalid value "not-a-key"' in msgs["default/badkey"]
    assert 'spec.podIpAddress: invalid value "10.244.0.0/24"' in msgs["default/subnet"]


def test_duplicates_keep_the_oldest() -> None:
    k = s.key()
    old = s.pe("old", "10.244.0.20/32", k, ts="2026-01-01T00:00:00Z")
    new_same_key = s.pe("new", "10.244.0.30/32", k, ts="2026-01-02T00:00:00Z")
    new_same_ip = s.pe("newer", "10.244.0.20/32", ts="2026-01-03T00:00:00Z")
    for order in ([old, new_same_key, new_same_ip], [new_same_ip, new_same_key, old]):
        plan = peers.plan_peers(NETNS, order)
        assert [p.pod_endpoint for p in plan.peers] == ["default/old"]
        msgs = {r.pod_endpoint: r.message for r in plan.rejected}
        assert "already used by PodEndpoint default/old" in msgs["default/new"]
        assert "spec.podIpAddress" in msgs["default/newer"] and "default/old" in msgs["default/newer"]


def test_pod_ip_must_match_a_known_pod() -> None:
    pods = {
        "default/a": {"status": {"podIPs": [{"ip": "10.244.0.20"}]}},
        "default/b": {"status": {"podIPs": [{"ip": "10.244.0.99"}]}},
        "default/c": {"status": {}},  # IP not reported yet: accepted
    }
    eps = [
        s.pe("a", "10.244.0.20/32"),
        s.pe("b", "10.244.0.21/32"),
        s.pe("c", "10.244.0.22/32"),
        s.pe("d", "10.244.0.23/32"),
    ]
    plan = peers.plan_peers(NETNS, eps, pods.get)
    assert [p.pod_endpoint for p in plan.peers] == ["default/a", "default/c", "default/d"]
    (rej,) = plan.rejected
    assert rej.pod_endpoint == "default/b"
    assert (
        'spec.podIpAddress: invalid value "10.244.0.21/32": does not match the IPs of Pod default/b (10.244.0.99)'
        in rej.message
    )


def test_endpoints_for_selects_by_namespace_and_name() -> None:
    eps = [s.pe("a", "10.244.0.1/32"), s.pe("b", "10.244.0.2/32", sgc_name="other"), s.pe("c", "10.244.0.3/32", ns="x")]
    assert [e["metadata"]["name"] for e in peers.endpoints_for(eps, "default", "gw001")] == ["a"]


def test_incumbent_keeps_its_key_and_same_second_ties_use_the_revision() -> None:
    k = s.key()
    a = s.pe("zeta", "10.244.0.20/32", k)
    b = s.pe("alpha", "10.244.0.30/32", k)
    a["metadata"]["resourceVersion"] = "100"
    b["metadata"]["resourceVersion"] = "101"
    plan = peers.plan_peers(NETNS, [b, a])
    assert [p.pod_endpoint for p in plan.peers] == ["default/zeta"]  # same second: the lower revision wins
    plan = peers.plan_peers(NETNS, [b, a], incumbent=["default/alpha"])
    assert [p.pod_endpoint for p in plan.peers] == ["default/alpha"]  # the applied one is never displaced
