"""Deterministic names of the gateway layout (seed examples) and rejection of anything unsafe."""

from __future__ import annotations

import ipaddress

import pytest

from egw.model import names
from egw.model.errors import ValidationError

pytestmark = pytest.mark.unit

UID = "17f83d68-4cab-422d-a3af-ed320a761cee"


def test_seed_names() -> None:
    assert names.netns_name(UID, "10.243.0.6") == "gw-17f83d68-4cab-422d-a3af-ed320a761cee-10_243_0_6"
    assert names.host_veth_name(UID) == "gw-17f83d68"
    assert names.nat_exemption_comment("gw-x") == "no SNAT for traffic from netns gw-x"
    assert names.ilb_address_label("eth0") == "eth0:egress"
    assert names.ilb_address_label("enp0s31f6x") == "enp0s31f6x:egw"
    assert names.ilb_address_label("abcdefghijklmno") is None


def test_parse_netns_name_roundtrip() -> None:
    name = names.netns_name(UID, "10.243.0.6")
    assert names.parse_netns_name(name) == (UID, ipaddress.IPv4Address("10.243.0.6"))
    for other in ("gw-foo", "cni-1234", "gw-" + UID + "-10_243_0", "gw-" + UID + "-010_243_0_6", name + "x"):
        assert names.parse_netns_name(other) is None


@pytest.mark.parametrize(
    ("uid", "ip"),
    [
        ("17F83D68-4CAB-422D-A3AF-ED320A761CEE", "10.0.0.1"),  # not canonical
        ("../../etc", "10.0.0.1"),
        (UID + ";rm", "10.0.0.1"),
        (UID, "10.0.0.1; ip link del eth0"),
        (UID, "fd00::1"),
        (UID, "10.0.0.01"),
        (UID, ""),
    ],
)
def test_bad_inputs_are_rejected_with_field_and_value(uid: str, ip: str) -> None:
    with pytest.raises(ValidationError) as exc:
        names.netns_name(uid, ip)
    text = str(exc.value)
    assert ("metadata.uid" in text and repr(uid)[1:-1][:20] in text) or ("gatewayServerProfile.ip" in text)


def test_ifname_and_netns_validation() -> None:
    assert names.validate_ifname("gw-17f83d68") == "gw-17f83d68"
    for bad in ("", "a" * 16, "eth0 up", "a/b", "..", 5):
        with pytest.raises(ValidationError):
            names.validate_ifname(bad)
    for bad in ("", "x" * 256, "a b", "../x", "."):
        with pytest.raises(ValidationError):
            names.validate_netns_name(bad)


def test_wg_birth_name_is_unique_short_and_stable() -> None:
    a = names.wg_birth_name(names.netns_name(UID, "10.243.0.6"))
    b = names.wg_birth_name(names.netns_name(UID, "10.243.0.7"))
    assert a != b
    assert a == names.wg_birth_name(names.netns_name(UID, "10.243.0.6"))
    assert len(a) <= 15 and a.startswith("egw")


def test_status_shard_names() -> None:
    assert names.status_shard_name("node-1", 0) == "node-1"
    assert names.status_shard_name("node-1", 3) == "node-1.peers-3"
    with pytest.raises(ValidationError):
        names.status_shard_name("Node_1", 0)
