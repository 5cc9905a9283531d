"""Field checks that exist twice by construction: as Python validation and as OpenAPI/CEL schema.

A :class:`Check` carries the schema fragment the CRD generator writes and the Python predicate the
model runs, side by side, so the API server and our own parsers accept the same values.
CEL rules use the Kubernetes IP/CIDR libraries (``isIP``, ``isCIDR``, ``cidr()``), available since
Kubernetes 1.31; every string carries a ``maxLength`` so CEL cost estimation stays bounded.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from egw.model import keys

# Longest textual IPv6 address (39) plus "/128".
MAX_IP_LEN = 39
MAX_CIDR_LEN = 43


@dataclass(frozen=True)
class Check:
    """``reason(value)`` returns None when the value is fine, else why not (no value echo)."""

    schema: dict[str, Any]
    reason: Callable[[Any], str | None]
    secret: bool = False


def _string_schema(max_length: int, **more: Any) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_length, **more}


def _cel(rule: str, message: str) -> dict[str, Any]:
    return {"x-kubernetes-validations": [{"rule": rule, "message": message}]}


def _parse_ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    if "%" in text:  # zones are not addresses on the wire
        return None
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    # Kubernetes' CEL isIP/isCIDR/cidr() reject IPv4-mapped IPv6 (::ffff:a.b.c.d): so must we, or the
    # apiserver would refuse objects our parsers accept.
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        return None
    return addr


def _parse_cidr(text: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    if "/" not in text or "%" in text:
        return None
    addr, _, plen = text.partition("/")
    if not plen.isdigit() or (len(plen) > 1 and plen.startswith("0")):
        return None
    if _parse_ip(addr) is None:
        return None
    try:
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None


def reason_ip(value: Any) -> str | None:
    if not isinstance(value, str) or _parse_ip(value) is None:
        return "must be an IPv4 or IPv6 address"
    return None


def reason_ipv4(value: Any) -> str | None:
    if not isinstance(value, str) or not isinstance(_parse_ip(value), ipaddress.IPv4Address):
        return "must be an IPv4 address"
    return None


def reason_cidr(value: Any) -> str | None:
    if not isinstance(value, str) or _parse_cidr(value) is None:
        return "must be a CIDR such as 10.0.0.0/8 or fd00::/64"
    return None


def reason_host_prefix(value: Any) -> str | None:
    if not isinstance(value, str):
        return "must be a single-host CIDR (/32 or /128)"
    net = _parse_cidr(value)
    if net is None or net.prefixlen != net.max_prefixlen:
        return "must be a single-host CIDR (/32 or /128)"
    return None


def reason_ip_list(value: Any) -> str | None:
    """Comma-separated IPs, as egressIpPrefix holds for private egress."""
    if not isinstance(value, str):
        return "must be a string"
    for part in value.split(","):
        if reason_ip(part) is not None:
            return "must be a CIDR or a comma-separated list of IP addresses"
    return None


# The CEL rule below splits the string and checks each part, a cost quadratic in maxLength that the
# apiserver's budget refuses at 4096 (measured: 2.7x over); 2048 characters still hold 128+ IPv4 addresses.
MAX_EGRESS_PREFIX_LEN = 2048


def reason_egress_prefix(value: Any) -> str | None:
    if isinstance(value, str) and len(value) > MAX_EGRESS_PREFIX_LEN:
        return f"must be at most {MAX_EGRESS_PREFIX_LEN} characters"
    if reason_cidr(value) is None or reason_ip_list(value) is None:
        return None
    return "must be a CIDR (public IP prefix) or a comma-separated list of private IP addresses"


def reason_public_key(value: Any) -> str | None:
    if not keys.is_key(value):
        return keys.KEY_MESSAGE
    return None


def int_range(lo: int, hi: int) -> Check:
    def reason(value: Any) -> str | None:
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be an integer"
        if not lo <= value <= hi:
            return f"must be between {lo} and {hi}"
        return None

    return Check({"type": "integer", "format": "int32", "minimum": lo, "maximum": hi}, reason)


def enum(*values: str) -> Check:
    def reason(value: Any) -> str | None:
        if value not in values:
            return "must be one of " + ", ".join(repr(v) for v in values)
        return None

    return Check(_string_schema(max(len(v) for v in values), enum=list(values)), reason)


def matching(pattern: str, max_length: int, message: str, *, min_length: int = 0) -> Check:
    """A string matching ``pattern`` within a length bound. Python and the apiserver evaluate the same
    regex, so the pattern must mean the same in Python ``re`` and RE2/ECMA (plain classes, no ``\\d``);
    ``fullmatch`` keeps Python's ``$`` from accepting a trailing newline that RE2 would reject."""
    rx = re.compile(pattern)

    def reason(value: Any) -> str | None:
        if not isinstance(value, str) or not min_length <= len(value) <= max_length or not rx.fullmatch(value):
            return message
        return None

    schema = _string_schema(max_length, pattern=pattern)
    if min_length:
        schema["minLength"] = min_length
    return Check(schema, reason)


def max_length(limit: int) -> Check:
    def reason(value: Any) -> str | None:
        if not isinstance(value, str):
            return "must be a string"
        if len(value) > limit:
            return f"must be at most {limit} characters"
        return None

    return Check(_string_schema(limit), reason)


def non_empty(max_length: int) -> Check:
    def reason(value: Any) -> str | None:
        if not isinstance(value, str) or not value:
            return "must be a non-empty string"
        if len(value) > max_length:
            return f"must be at most {max_length} characters"
        return None

    return Check(_string_schema(max_length, minLength=1), reason)


IP = Check(_string_schema(MAX_IP_LEN, **_cel("isIP(self)", "must be an IPv4 or IPv6 address")), reason_ip)
IPV4 = Check(_string_schema(15, format="ipv4"), reason_ipv4)
CIDR = Check(
    _string_schema(MAX_CIDR_LEN, **_cel("isCIDR(self)", "must be a CIDR such as 10.0.0.0/8 or fd00::/64")),
    reason_cidr,
)
HOST_PREFIX = Check(
    _string_schema(
        MAX_CIDR_LEN,
        **_cel(
            "isCIDR(self) && cidr(self).prefixLength() == (cidr(self).ip().family() == 4 ? 32 : 128)",
            "must be a single-host CIDR (/32 or /128)",
        ),
    ),
    reason_host_prefix,
)
# A CEL rule rather than minLength + pattern, so the apiserver answers with the same message as Python
# (OpenAPI's own messages would be "should be at least 44 chars long" / "should match '^...'").
PUBLIC_KEY = Check(
    _string_schema(
        44,
        **_cel(
            f"self.matches('{keys.KEY_PATTERN}')",
            keys.KEY_MESSAGE,
        ),
    ),
    reason_public_key,
)
PORT = int_range(1, 65535)
EGRESS_PREFIX = Check(
    _string_schema(
        MAX_EGRESS_PREFIX_LEN,
        **_cel(
            "isCIDR(self) || self.split(',').all(a, isIP(a))",
            "must be a CIDR (public IP prefix) or a comma-separated list of private IP addresses",
        ),
    ),
    reason_egress_prefix,
)
