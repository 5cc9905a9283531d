"""cni-manager's view of the API server: pod annotations, gateways, PodEndpoints (implements plugin.Cluster).

Pods (only this node's, by field selector) and StaticGatewayConfigurations are cached by informers, so
the pass-through answer for a non-annotated pod needs no API call. A cache miss (the kubelet can run ADD
before our watch delivered the pod) falls back to one GET with a short timeout; when that fails too the
plugin must answer 11 "try again later" — never guess "not annotated".

PodEndpoints are written directly (create, or compare-and-swap replace on conflict) with a controller
ownerReference to the Pod, so the API server's garbage collector removes them with their pod even when
no DEL ever arrives. Two annotations fence stale calls: the container ID of the sandbox that published
the PodEndpoint (a DEL of an old sandbox leaves the new sandbox's PodEndpoint alone) and a node label
(this node's sweep and CNI GC only touch PodEndpoints published here). A StatefulSet pod recreated under
the same name has a new UID: the old PodEndpoint, still owned by the old UID, is replaced.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
from typing import Any

from egw.cni import conf
from egw.cni.conf import CniError, PodRef
from egw.cni.plugin import PodInfo
from egw.k8s import client as k8s
from egw.k8s import errors as k8s_errors
from egw.k8s.informer import Informer
from egw.model import cniproto, crds
from egw.model.errors import ValidationError
from egw.plan import pod

log = logging.getLogger("egw.cni.cluster")

NODE_LABEL = cniproto.NODE_ANNOTATION


class KubeCluster:
    def __init__(self, client: k8s.Client, node_name: str, *, start: bool = True) -> None:
        self.client = client
        self.node_name = node_name
        selector = f"spec.nodeName={node_name}" if node_name else None
        self.pods = Informer(client, k8s.PODS, field_selector=selector, name="pods")
        self.sgcs = Informer(client, k8s.STATIC_GATEWAY_CONFIGURATIONS, name="sgcs")
        self._lock = threading.Lock()
        if start:
            self.pods.start()
            self.sgcs.start()

    def stop(self) -> None:
        self.pods.stop()
        self.sgcs.stop()

    # ------------------------------------------------------------------------------------------ pods

    def pod_info(self, ref: PodRef) -> PodInfo:
        obj = self.pods.get(ref.key)
        if obj is not None and ref.uid and (obj.get("metadata") or {}).get("uid") != ref.uid:
            obj = None  # the cache still has the previous incarnation of this pod name
        if obj is None:
            try:
                obj = self.client.get(k8s.PODS, ref.name, ref.namespace)
            except k8s_errors.NotFound:
                raise CniError(conf.ERR_TRY_AGAIN_LATER, "try again later: pod not found", ref.key) from None
            except k8s_errors.ApiError as exc:
                raise CniError(
                    conf.ERR_TRY_AGAIN_LATER,
                    "try again later: cannot tell whether the pod uses an egress gateway",
                    f"{ref.key}: {type(exc).__name__}",
                ) from None
        meta = obj.get("metadata") or {}
        node = str((obj.get("spec") or {}).get("nodeName") or "")
        if self.node_name and node != self.node_name:
            # Defence in depth behind the root-only socket: only this node's pods get a tunnel from here.
            raise CniError(conf.ERR_FOREIGN_POD, "pod is not scheduled on this node", f"{ref.key} on {node!r}")
        return PodInfo(uid=str(meta.get("uid") or ""), annotations=dict(meta.get("annotations") or {}), node_name=node)

    def ready(self) -> bool:
        if self.pods.has_synced:
            return True
        try:
            self.client.server_version()
            return True
        except k8s_errors.ApiError:
            return False

    # -------------------------------------------------------------------------------------- gateways

    def gateway(self, namespace: str, name: str) -> pod.Gateway:
        key = f"{namespace}/{name}"
        obj = self.sgcs.get(key)
        if obj is None or not _ready_dict(obj):
            try:
                obj = self.client.get(k8s.STATIC_GATEWAY_CONFIGURATIONS, name, namespace)
            except k8s_errors.NotFound:
                raise CniError(
                    conf.ERR_GATEWAY_NOT_FOUND,
                    "StaticGatewayConfiguration not found in the pod's namespace",
                    key,
                ) from None
            except k8s_errors.ApiError as exc:
                raise CniError(
                    conf.ERR_TRY_AGAIN_LATER, "try again later: cannot read the gateway", f"{key}: {type(exc).__name__}"
                ) from None
        try:
            sgc = crds.StaticGatewayConfiguration.from_dict(obj)
        except ValidationError as exc:
            raise CniError(
                conf.ERR_GATEWAY_NOT_FOUND, "StaticGatewayConfiguration is invalid", str(exc)[:300]
            ) from None
        if not crds.is_ready(sgc):
            raise CniError(conf.ERR_TRY_AGAIN_LATER, "try again later: the gateway is not ready yet", key)
        assert sgc.status is not None
        gsp = sgc.status.gateway_server_profile
        assert gsp is not None and gsp.ip and gsp.port and gsp.public_key
        return pod.Gateway(
            endpoint=ipaddress.ip_address(gsp.ip),
            port=gsp.port,
            public_key=gsp.public_key,
            exclude_cidrs=tuple(ipaddress.ip_network(c, strict=False) for c in sgc.spec.exclude_cidrs),
            default_route=sgc.spec.default_route,
        )

    # ---------------------------------------------------------------------------------- PodEndpoints

    def _body(self, ref: PodRef, info: PodInfo, cid: str, sgc: str, ip: str, public_key: str) -> dict[str, Any]:
        body = {
            "apiVersion": crds.API_VERSION,
            "kind": crds.POD_ENDPOINT.kind,
            "metadata": {
                "name": ref.name,
                "namespace": ref.namespace,
                "labels": {NODE_LABEL: self.node_name} if self.node_name else {},
                "annotations": {cniproto.CONTAINER_ID_ANNOTATION: cid},
                "ownerReferences": [
                    {
                        "apiVersion": "v1",
                        "kind": "Pod",
                        "name": ref.name,
                        "uid": info.uid,
                        "controller": True,
                        "blockOwnerDeletion": True,
                    }
                ],
            },
            "spec": {"staticGatewayConfiguration": sgc, "podIpAddress": ip, "podPublicKey": public_key},
        }
        crds.PodEndpoint.from_dict(body)  # validate before it leaves the node (raises naming the field)
        return body

    def publish(self, ref: PodRef, info: PodInfo, container_id: str, sgc: str, ip: str, public_key: str) -> None:
        body = self._body(ref, info, container_id, sgc, ip, public_key)
        try:
            for _ in range(5):
                try:
                    self.client.create(k8s.POD_ENDPOINTS, body, ref.namespace)
                    return
                except k8s_errors.AlreadyExists:
                    pass
                current = self.client.get_or_none(k8s.POD_ENDPOINTS, ref.name, ref.namespace)
                if current is None:
                    continue
                meta = current.get("metadata") or {}
                owners = [o for o in meta.get("ownerReferences") or [] if o.get("controller")]
                if owners and owners[0].get("uid") != info.uid:
                    # Owned by an earlier pod with the same name: replace it rather than adopt it.
                    self.client.delete(k8s.POD_ENDPOINTS, ref.name, ref.namespace, uid=meta.get("uid"))
                    continue
                update = dict(body)
                update["metadata"] = {**body["metadata"], "resourceVersion": meta.get("resourceVersion")}
                try:
                    self.client.replace(k8s.POD_ENDPOINTS, update)
                    return
                except (k8s_errors.Conflict, k8s_errors.NotFound):
                    continue
            raise CniError(conf.ERR_TRY_AGAIN_LATER, "try again later: PodEndpoint kept changing", ref.key)
        except k8s_errors.ApiError as exc:
            code = conf.ERR_TRY_AGAIN_LATER
            raise CniError(code, "try again later: cannot publish the PodEndpoint", f"{ref.key}: {exc}") from None

    def endpoint_key(self, ref: PodRef) -> str | None:
        try:
            obj = self.client.get_or_none(k8s.POD_ENDPOINTS, ref.name, ref.namespace)
        except k8s_errors.ApiError as exc:
            raise CniError(conf.ERR_TRY_AGAIN_LATER, "try again later: cannot read the PodEndpoint", str(exc)) from None
        return None if obj is None else (obj.get("spec") or {}).get("podPublicKey")

    def withdraw(self, ref: PodRef, container_id: str) -> None:
        obj = self.client.get_or_none(k8s.POD_ENDPOINTS, ref.name, ref.namespace)
        if obj is None:
            return
        meta = obj.get("metadata") or {}
        owner_cid = (meta.get("annotations") or {}).get(cniproto.CONTAINER_ID_ANNOTATION)
        if owner_cid and owner_cid != container_id:
            log.info("DEL %s: PodEndpoint belongs to sandbox %s, not %s: kept", ref.key, owner_cid, container_id)
            return
        self.client.delete(k8s.POD_ENDPOINTS, ref.name, ref.namespace, uid=meta.get("uid"))

    def _ours(self) -> list[dict[str, Any]]:
        selector = f"{NODE_LABEL}={self.node_name}" if self.node_name else None
        return list(self.client.list(k8s.POD_ENDPOINTS, label_selector=selector).items)

    def collect(self, valid_container_ids: set[str]) -> list[str]:
        """CNI GC: delete this node's PodEndpoints whose sandbox is not in the runtime's valid list."""
        failures = []
        try:
            items = self._ours()
        except k8s_errors.ApiError as exc:
            return [f"list PodEndpoints: {exc}"]
        for obj in items:
            meta = obj.get("metadata") or {}
            cid = (meta.get("annotations") or {}).get(cniproto.CONTAINER_ID_ANNOTATION)
            if cid and cid not in valid_container_ids:
                try:
                    self.client.delete(k8s.POD_ENDPOINTS, meta["name"], meta["namespace"], uid=meta.get("uid"))
                    log.info("GC: deleted PodEndpoint %s/%s of sandbox %s", meta["namespace"], meta["name"], cid)
                except k8s_errors.ApiError as exc:
                    failures.append(f"delete {meta['namespace']}/{meta['name']}: {exc}")
        return failures

    def sweep(self) -> int:
        """Delete this node's PodEndpoints whose owning pod is gone (also after our own downtime)."""
        deleted = 0
        for obj in self._ours():
            meta = obj.get("metadata") or {}
            owners = [o for o in meta.get("ownerReferences") or [] if o.get("controller")]
            owner_uid = owners[0].get("uid") if owners else None
            try:
                current = self.client.get_or_none(k8s.PODS, meta["name"], meta["namespace"])
            except k8s_errors.ApiError:
                continue
            if current is None or (owner_uid and (current.get("metadata") or {}).get("uid") != owner_uid):
                try:
                    if self.client.delete(k8s.POD_ENDPOINTS, meta["name"], meta["namespace"], uid=meta.get("uid")):
                        deleted += 1
                        log.info("sweep: deleted PodEndpoint %s/%s of a gone pod", meta["namespace"], meta["name"])
                except k8s_errors.ApiError as exc:
                    log.warning("sweep: %s/%s: %s", meta["namespace"], meta["name"], exc)
        return deleted


def _ready_dict(obj: dict[str, Any]) -> bool:
    try:
        return crds.is_ready(crds.StaticGatewayConfiguration.from_dict(obj))
    except ValidationError:
        return False
