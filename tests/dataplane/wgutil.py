"""Helpers shared by the WireGuard dataplane tests: deterministic key and address generators."""

from __future__ import annotations

import hashlib
import ipaddress

from egw.model import net


def pub(i: int) -> bytes:
    """A deterministic 32-byte public key (any 32 bytes are a valid Curve25519 public key)."""
    return hashlib.sha256(f"egw-test-peer-{i}".encode()).digest()


def pod_ip(i: int, base: str = "10.244.0.0") -> ipaddress.IPv4Network:
    return ipaddress.IPv4Network((int(ipaddress.IPv4Address(base)) + i, 32))


def peers(n: int, start: int = 0) -> frozenset[net.WgPeer]:
    return frozenset(net.WgPeer(pub(i), frozenset({pod_ip(i)})) for i in range(start, start + n))
