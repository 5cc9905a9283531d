"""A stateful in-memory stand-in for cni-manager's API-server view (plugin.Cluster), for socket-level tests.

It holds pods, gateways and PodEndpoints like the real ``egw.cni.cluster.KubeCluster`` would, with the
same error codes, and an ``available`` switch that makes every call behave like an unreachable API
server. The real implementation is exercised against the real kube-apiserver in tests/cni/test_chain.py.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from egw.cni import conf
from egw.cni.conf import CniError, PodRef
from egw.cni.plugin import PodInfo
from egw.plan import pod


@dataclass
class Endpoint:
    container_id: str
    sgc: str
    ip: str
    public_key: str
    owner_uid: str


@dataclass
class FakeCluster:
    pods: dict[str, PodInfo] = field(default_factory=dict)
    gateways: dict[str, pod.Gateway | None] = field(default_factory=dict)  # None: exists, not ready
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    available: bool = True
    lookups: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _up(self) -> None:
        if not self.available:
            raise CniError(conf.ERR_TRY_AGAIN_LATER, "try again later: API server unreachable")

    def pod_info(self, ref: PodRef) -> PodInfo:
        self.lookups += 1
        self._up()
        info = self.pods.get(ref.key)
        if info is None:
            raise CniError(conf.ERR_TRY_AGAIN_LATER, "try again later: pod not found", ref.key)
        return info

    def gateway(self, namespace: str, name: str) -> pod.Gateway:
        self._up()
        key = f"{namespace}/{name}"
        if key not in self.gateways:
            raise CniError(conf.ERR_GATEWAY_NOT_FOUND, "StaticGatewayConfiguration not found", key)
        gw = self.gateways[key]
        if gw is None:
            raise CniError(conf.ERR_TRY_AGAIN_LATER, "try again later: the gateway is not ready yet", key)
        return gw

    def publish(self, ref: PodRef, info: PodInfo, container_id: str, sgc: str, ip: str, public_key: str) -> None:
        self._up()
        with self.lock:
            self.endpoints[ref.key] = Endpoint(container_id, sgc, ip, public_key, info.uid)

    def endpoint_key(self, ref: PodRef) -> str | None:
        self._up()
        ep = self.endpoints.get(ref.key)
        return ep.public_key if ep else None

    def withdraw(self, ref: PodRef, container_id: str) -> None:
        self._up()
        with self.lock:
            ep = self.endpoints.get(ref.key)
            if ep is not None and ep.container_id == container_id:
                del self.endpoints[ref.key]

    def collect(self, valid_container_ids: set[str]) -> list[str]:
        self._up()
        with self.lock:
            for key in [k for k, e in self.endpoints.items() if e.container_id not in valid_container_ids]:
                del self.endpoints[key]
        return []

    def ready(self) -> bool:
        return self.available
