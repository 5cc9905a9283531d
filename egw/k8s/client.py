"""Thin Kubernetes API client: the only module that imports the ``kubernetes`` package.

Callers (controller, daemon, cni-manager, via ``egw.k8s.informer`` for watches) work with plain JSON
dicts and :class:`ResourceType` descriptors; the generated OpenAPI models are never used, so custom
resources and core objects go through the same eight verbs: get, list, watch, create, replace
(optimistic concurrency: the object's ``metadata.resourceVersion`` is sent and a stale one gives
:class:`~egw.k8s.errors.Conflict`), replace_status, patch (merge / JSON / server-side apply), delete.

Every failure leaves this module as an :class:`~egw.k8s.errors.ApiError` subclass; connection-level
failures become :class:`~egw.k8s.errors.Unavailable`. Request bodies are never put into errors or
logs, because Secrets and keys travel through here.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from egw.k8s import errors
from egw.model import crds

log = logging.getLogger(__name__)

JSON = dict[str, Any]

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"


@dataclass(frozen=True)
class ResourceType:
    """Where a kind lives in the REST API."""

    group: str  # "" for the core group
    version: str
    plural: str
    kind: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(self, namespace: str | None = None, name: str | None = None, subresource: str | None = None) -> str:
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [base]
        if self.namespaced and namespace:
            parts.append("namespaces/" + _segment(namespace))
        parts.append(self.plural)
        if name is not None:
            parts.append(_segment(name))
            if subresource:
                parts.append(subresource)
        return "/".join(parts)


def _segment(text: str) -> str:
    """One URL path segment; object names are validated by the server, but never let one add a segment."""
    if not text or text in (".", "..") or "/" in text:
        raise errors.Invalid(0, "InvalidName", f"not a valid object name: {text!r}")
    return quote(text, safe="")


def crd_type(kind: crds.Kind) -> ResourceType:
    return ResourceType(crds.GROUP, crds.VERSION, kind.plural, kind.kind, namespaced=True)


SECRETS = ResourceType("", "v1", "secrets", "Secret")
NODES = ResourceType("", "v1", "nodes", "Node", namespaced=False)
PODS = ResourceType("", "v1", "pods", "Pod")
NAMESPACES = ResourceType("", "v1", "namespaces", "Namespace", namespaced=False)
EVENTS = ResourceType("", "v1", "events", "Event")
CONFIGMAPS = ResourceType("", "v1", "configmaps", "ConfigMap")
STATIC_GATEWAY_CONFIGURATIONS = crd_type(crds.STATIC_GATEWAY_CONFIGURATION)
GATEWAY_LB_CONFIGURATIONS = crd_type(crds.GATEWAY_LB_CONFIGURATION)
GATEWAY_VM_CONFIGURATIONS = crd_type(crds.GATEWAY_VM_CONFIGURATION)
GATEWAY_STATUSES = crd_type(crds.GATEWAY_STATUS)
POD_ENDPOINTS = crd_type(crds.POD_ENDPOINT)


@dataclass(frozen=True)
class ListResult:
    items: list[JSON]
    resource_version: str


class Client:
    """A connection to one API server. Thread-safe (urllib3 pools connections)."""

    def __init__(self, api_client: Any, *, timeout: float = 30.0, user_agent: str = "egw") -> None:
        self._api = api_client
        self._api.user_agent = user_agent
        self.timeout = timeout

    # ------------------------------------------------------------------------------ construction

    @classmethod
    def from_kubeconfig(
        cls, path: str | os.PathLike[str] | None = None, context: str | None = None, **kw: Any
    ) -> Client:
        conf = k8s_client.Configuration()
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=str(path) if path else None, context=context, client_configuration=conf, persist_config=False
        )
        return cls(k8s_client.ApiClient(conf), **kw)

    @classmethod
    def in_cluster(cls, **kw: Any) -> Client:
        conf = k8s_client.Configuration()
        k8s_config.load_incluster_config(client_configuration=conf)  # type: ignore[no-untyped-call]
        return cls(k8s_client.ApiClient(conf), **kw)

    @classmethod
    def auto(cls, kubeconfig: str | None = None, **kw: Any) -> Client:
        """``kubeconfig`` if given, else in-cluster when running in a pod, else ``$KUBECONFIG``/~/.kube/config."""
        if kubeconfig:
            return cls.from_kubeconfig(kubeconfig, **kw)
        if os.environ.get("KUBERNETES_SERVICE_HOST"):
            return cls.in_cluster(**kw)
        return cls.from_kubeconfig(None, **kw)

    def close(self) -> None:
        self._api.close()

    @property
    def host(self) -> str:
        return str(self._api.configuration.host)

    # ----------------------------------------------------------------------------------- transport

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, Any]] = (),
        body: Any = None,
        content_type: str | None = None,
        timeout: float | tuple[float, float] | None = None,
        stream: bool = False,
    ) -> Any:
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        method, url, headers, _, _ = self._api.param_serialize(
            method, path, query_params=list(query), header_params=headers, auth_settings=["BearerToken"]
        )
        try:
            # dict/list bodies are JSON-encoded by the REST layer; str bodies (apply patches) go as they are
            resp = self._api.rest_client.request(
                method, url, headers=headers, body=body, _request_timeout=timeout or self.timeout
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise errors.Unavailable(0, type(exc).__name__, _short(exc)) from None
        except k8s_client.ApiException as exc:  # TLS setup failures are reported this way
            raise errors.Unavailable(0, "ApiException", str(exc.reason)[:300]) from None
        raw = resp.response
        if raw.status >= 400:
            try:
                data = raw.read()
            except (urllib3.exceptions.HTTPError, OSError):
                data = b""
            finally:
                raw.release_conn()
            raise errors.from_response(raw.status, data, raw.headers)
        if stream:
            return raw
        try:
            data = raw.read()
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise errors.Unavailable(0, type(exc).__name__, _short(exc)) from None
        finally:
            raw.release_conn()
        if not data:
            return {}
        return json.loads(data)

    # --------------------------------------------------------------------------------------- verbs

    def get(self, rt: ResourceType, name: str, namespace: str | None = None) -> JSON:
        return dict(self._request("GET", rt.path(namespace, name)))

    def get_or_none(self, rt: ResourceType, name: str, namespace: str | None = None) -> JSON | None:
        try:
            return self.get(rt, name, namespace)
        except errors.NotFound:
            return None

    def list(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        page_size: int = 500,
    ) -> ListResult:
        """All objects (paged with ``limit``/``continue``), and the list's resourceVersion to watch from."""
        items: list[JSON] = []
        cont: str | None = None
        rv = ""
        while True:
            query: list[tuple[str, Any]] = [("limit", page_size)]
            if label_selector:
                query.append(("labelSelector", label_selector))
            if field_selector:
                query.append(("fieldSelector", field_selector))
            if cont:
                query.append(("continue", cont))
            doc = self._request("GET", rt.path(namespace), query=query)
            for item in doc.get("items") or ():
                # list items lack kind/apiVersion; add them so every cached object is self-describing
                item.setdefault("kind", rt.kind)
                item.setdefault("apiVersion", rt.api_version)
                items.append(item)
            meta = doc.get("metadata") or {}
            rv = str(meta.get("resourceVersion") or rv)
            cont = meta.get("continue") or None
            if not cont:
                return ListResult(items, rv)

    def watch(
        self,
        rt: ResourceType,
        namespace: str | None = None,
        *,
        resource_version: str,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int = 300,
        read_timeout: float = 90.0,
        bookmarks: bool = True,
    ) -> Iterator[tuple[str, JSON]]:
        """Yield ``(type, object)`` from a watch; ERROR events are raised as their ApiError class.

        The stream ends normally when the server closes it (``timeout_seconds``). ``read_timeout`` is the
        longest silence accepted: with bookmarks the server speaks about once a minute, so a silent socket
        is dead and raises :class:`~egw.k8s.errors.Unavailable`.
        """
        query: list[tuple[str, Any]] = [
            ("watch", "true"),
            ("resourceVersion", resource_version),
            ("timeoutSeconds", timeout_seconds),
        ]
        if bookmarks:
            query.append(("allowWatchBookmarks", "true"))
        if label_selector:
            query.append(("labelSelector", label_selector))
        if field_selector:
            query.append(("fieldSelector", field_selector))
        resp = self._request("GET", rt.path(namespace), query=query, timeout=(10.0, read_timeout), stream=True)
        try:
            for line in _lines(resp):
                try:
                    event = json.loads(line)
                except ValueError:
                    raise errors.Unavailable(0, "BadWatchEvent", line[:200].decode("utf-8", "replace")) from None
                etype = str(event.get("type", ""))
                obj = event.get("object") or {}
                if etype == "ERROR":
                    raise errors.status_error(
                        int(obj.get("code") or 0), str(obj.get("reason") or ""), str(obj.get("message") or "")
                    )
                yield etype, obj
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise errors.Unavailable(0, type(exc).__name__, _short(exc)) from None
        finally:
            resp.release_conn()
            resp.close()

    def create(self, rt: ResourceType, obj: Mapping[str, Any], namespace: str | None = None) -> JSON:
        ns = namespace or (obj.get("metadata") or {}).get("namespace")
        body = {"apiVersion": rt.api_version, "kind": rt.kind, **obj}
        return dict(self._request("POST", rt.path(ns), body=body))

    def replace(self, rt: ResourceType, obj: Mapping[str, Any]) -> JSON:
        """PUT the whole object; its ``metadata.resourceVersion`` makes this a compare-and-swap."""
        meta = obj.get("metadata") or {}
        self._require_rv(meta)
        return dict(self._request("PUT", rt.path(meta.get("namespace"), meta["name"]), body=dict(obj)))

    def replace_status(self, rt: ResourceType, obj: Mapping[str, Any]) -> JSON:
        meta = obj.get("metadata") or {}
        self._require_rv(meta)
        return dict(self._request("PUT", rt.path(meta.get("namespace"), meta["name"], "status"), body=dict(obj)))

    def patch(
        self,
        rt: ResourceType,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        content_type: str = MERGE_PATCH,
        subresource: str | None = None,
        field_manager: str | None = None,
        force: bool = False,
    ) -> JSON:
        query: list[tuple[str, Any]] = []
        if field_manager:
            query.append(("fieldManager", field_manager))
        if force:
            query.append(("force", "true"))
        body = json.dumps(patch) if content_type == APPLY_PATCH else patch
        return dict(
            self._request(
                "PATCH", rt.path(namespace, name, subresource), query=query, body=body, content_type=content_type
            )
        )

    def patch_status(self, rt: ResourceType, name: str, patch: Any, namespace: str | None = None) -> JSON:
        return self.patch(rt, name, patch, namespace, subresource="status")

    def delete(
        self,
        rt: ResourceType,
        name: str,
        namespace: str | None = None,
        *,
        uid: str | None = None,
        rv: str | None = None,
    ) -> bool:
        """Delete; True if this call deleted it, False if it was already gone. ``uid``/``rv`` are preconditions."""
        body: JSON | None = None
        pre: JSON = {}
        if uid:
            pre["uid"] = uid
        if rv:
            pre["resourceVersion"] = rv
        if pre:
            body = {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": pre}
        try:
            self._request("DELETE", rt.path(namespace, name), body=body)
        except errors.NotFound:
            return False
        return True

    def server_version(self) -> JSON:
        return dict(self._request("GET", "/version"))

    @staticmethod
    def _require_rv(meta: Mapping[str, Any]) -> None:
        if not meta.get("resourceVersion"):
            raise errors.Invalid(
                0, "MissingResourceVersion", "replace needs metadata.resourceVersion (compare-and-swap)"
            )


def _lines(resp: Any) -> Iterator[bytes]:
    """Split a chunked watch stream into JSON lines (events may span or share chunks)."""
    buf = b""
    for chunk in resp.stream(65536, decode_content=True):
        buf += chunk
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                break
            line, buf = buf[:nl], buf[nl + 1 :]
            if line.strip():
                yield line
    if buf.strip():
        yield buf


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) <= 300 else text[:297] + "..."


def object_key(obj: Mapping[str, Any]) -> str:
    """``<namespace>/<name>`` (or ``<name>`` for cluster-scoped objects), the cache and queue key."""
    meta = obj.get("metadata") or {}
    ns = meta.get("namespace")
    return f"{ns}/{meta.get('name')}" if ns else str(meta.get("name"))


def split_key(key: str) -> tuple[str | None, str]:
    ns, sep, name = key.partition("/")
    return (ns, name) if sep else (None, ns)


__all__ = [
    "APPLY_PATCH",
    "CONFIGMAPS",
    "EVENTS",
    "GATEWAY_LB_CONFIGURATIONS",
    "GATEWAY_STATUSES",
    "GATEWAY_VM_CONFIGURATIONS",
    "JSON_PATCH",
    "MERGE_PATCH",
    "NAMESPACES",
    "NODES",
    "PODS",
    "POD_ENDPOINTS",
    "SECRETS",
    "STATIC_GATEWAY_CONFIGURATIONS",
    "Client",
    "ListResult",
    "ResourceType",
    "crd_type",
    "object_key",
    "split_key",
]
