"""Sample API objects for the plan unit tests (the seed's addresses)."""

from __future__ import annotations

import base64
import os
from typing import Any

UID = "17f83d68-4cab-422d-a3af-ed320a761cee"
NODE_UID = "0e5f3c1a-1111-4222-8333-944455556666"


def key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def sgc(uid: str = UID, ip: str = "10.243.0.6", port: int = 6000, **status: Any) -> dict[str, Any]:
    st: dict[str, Any] = {
        "egressIpPrefix": "1.2.3.4/31",
        "gatewayServerProfile": {
            "ip": ip,
            "port": port,
            "publicKey": key(),
            "privateKeySecretRef": {"apiVersion": "v1", "kind": "Secret", "name": "gw001"},
        },
    }
    st.update(status)
    return {
        "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
        "kind": "StaticGatewayConfiguration",
        "metadata": {"name": "gw001", "namespace": "default", "uid": uid},
        "spec": {"gatewayNodepoolName": "gwpool", "provisionPublicIps": True},
        "status": st,
    }


def vmc(node: str = "gw-node-0", secondary: str = "10.243.0.7") -> dict[str, Any]:
    return {
        "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
        "kind": "GatewayVMConfiguration",
        "metadata": {"name": "gw001", "namespace": "default"},
        "spec": {"gatewayNodepoolName": "gwpool", "provisionPublicIps": True},
        "status": {"gatewayVMProfiles": [{"nodeName": node, "primaryIP": "10.243.0.4", "secondaryIP": secondary}]},
    }


def node(name: str = "gw-node-0", ip: str = "10.243.0.4") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "uid": NODE_UID},
        "status": {"addresses": [{"type": "Hostname", "address": name}, {"type": "InternalIP", "address": ip}]},
    }


def pe(
    name: str,
    ip: str,
    pubkey: str | None = None,
    sgc_name: str = "gw001",
    ts: str = "2026-01-01T00:00:00Z",
    ns: str = "default",
) -> dict[str, Any]:
    return {
        "apiVersion": "egressgateway.kubernetes.azure.com/v1alpha1",
        "kind": "PodEndpoint",
        "metadata": {"name": name, "namespace": ns, "creationTimestamp": ts},
        "spec": {"staticGatewayConfiguration": sgc_name, "podIpAddress": ip, "podPublicKey": pubkey or key()},
    }
