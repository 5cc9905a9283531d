"""IP, CIDR and single-host parsers, compared with a naive reference on generated inputs."""

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from egw.model import checks

pytestmark = pytest.mark.unit

ipv4 = st.ip_addresses(v=4).map(str)
# IPv4-mapped IPv6 (::ffff:a.b.c.d) is rejected on purpose, as Kubernetes' CEL IP library does.
ipv6 = st.ip_addresses(v=6).filter(lambda a: a.ipv4_mapped is None).map(str)


@given(st.one_of(ipv4, ipv6))
def test_every_address_is_an_ip(text: str) -> None:
    assert checks.reason_ip(text) is None


@given(ipv4, st.integers(0, 32))
def test_every_v4_cidr_is_accepted(addr: str, plen: int) -> None:
    assert checks.reason_cidr(f"{addr}/{plen}") is None
    host = checks.reason_host_prefix(f"{addr}/{plen}")
    assert (host is None) == (plen == 32)


@given(ipv6, st.integers(0, 128))
def test_every_v6_cidr_is_accepted(addr: str, plen: int) -> None:
    assert checks.reason_cidr(f"{addr}/{plen}") is None
    assert (checks.reason_host_prefix(f"{addr}/{plen}") is None) == (plen == 128)


@given(st.text(max_size=50))
def test_cidr_parser_never_accepts_what_ipaddress_rejects(text: str) -> None:
    if checks.reason_cidr(text) is None:
        ipaddress.ip_network(text, strict=False)  # must not raise
        assert "/" in text


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "10.0.0.1",
        "10.0.0.0/33",
        "10.0.0.0/-1",
        "10.0.0.0/08",
        "10.0.0/8",
        "fe80::1%eth0/64",
        "::/129",
        "10.0.0.0/ 8",
        "300.0.0.0/8",
        "010.0.0.0/8",
        "::ffff:10.0.0.0/104",
    ],
)
def test_bad_cidrs(bad: str) -> None:
    assert checks.reason_cidr(bad) is not None


@pytest.mark.parametrize(
    "bad", ["", "10.0.0", "10.0.0.256", "fe80::1%eth0", "1.2.3.4/32", "01.2.3.4", "::ffff:1.2.3.4", None, 5]
)
def test_bad_ips(bad: object) -> None:
    assert checks.reason_ip(bad) is not None


def test_ipv4_only() -> None:
    assert checks.reason_ipv4("10.243.0.6") is None
    assert checks.reason_ipv4("fd00::1") == "must be an IPv4 address"


def test_egress_prefix_forms() -> None:
    assert checks.reason_egress_prefix("1.2.3.4/31") is None
    assert checks.reason_egress_prefix("10.0.1.8,10.0.1.9") is None
    assert checks.reason_egress_prefix("10.0.1.8,bogus") is not None


@pytest.mark.parametrize(
    "value,ok", [(1, True), (65535, True), (0, False), (65536, False), (True, False), ("6000", False)]
)
def test_port_range(value: object, ok: bool) -> None:
    assert (checks.PORT.reason(value) is None) is ok


def test_enum_and_non_empty() -> None:
    e = checks.enum("a", "bb")
    assert e.reason("a") is None and e.reason("c") == "must be one of 'a', 'bb'"
    assert e.schema == {"type": "string", "maxLength": 2, "enum": ["a", "bb"]}
    n = checks.non_empty(3)
    assert n.reason("") and n.reason("abcd") and n.reason("abc") is None


def test_egress_prefix_length_bound_matches_schema() -> None:
    many = ",".join(f"10.0.{i // 256}.{i % 256}" for i in range(200))
    assert len(many) > checks.MAX_EGRESS_PREFIX_LEN
    assert checks.reason_egress_prefix(many) == f"must be at most {checks.MAX_EGRESS_PREFIX_LEN} characters"
    assert checks.EGRESS_PREFIX.schema["maxLength"] == checks.MAX_EGRESS_PREFIX_LEN


@pytest.mark.parametrize(
    "value,ok",
    [("abc", True), ("ab", True), ("abcd", False), ("", False), ("ABC", False), ("abc\n", False), (3, False)],
)
def test_matching_uses_the_schema_pattern_and_bounds(value: object, ok: bool) -> None:
    check = checks.matching(r"^[a-z]+$", 3, "must be lower-case letters", min_length=1)
    assert check.schema == {"type": "string", "maxLength": 3, "pattern": r"^[a-z]+$", "minLength": 1}
    assert (check.reason(value) is None) == ok


def test_max_length() -> None:
    assert checks.max_length(3).reason("abc") is None
    assert checks.max_length(3).reason("") is None
    assert checks.max_length(3).reason("abcd") == "must be at most 3 characters"
    assert checks.max_length(3).reason(None) == "must be a string"
