"""Kubernetes Events (core/v1) about our objects, with repeat aggregation like client-go's recorder.

The same (object uid, type, reason, message) within ``aggregate_window`` seconds bumps ``count`` and
``lastTimestamp`` of the existing Event instead of creating a new one, so a reconcile that keeps
finding the same invalid PodEndpoint does not flood etcd. Event failures are logged and swallowed:
an Event is never worth failing a reconcile for. Callers must not put secrets in messages.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from egw.k8s import errors
from egw.k8s.client import EVENTS, JSON, Client

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"
MAX_MESSAGE = 1024


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventRecorder:
    def __init__(
        self,
        client: Client,
        component: str,
        host: str | None = None,
        *,
        aggregate_window: float = 600.0,
        cache_size: int = 4096,
    ) -> None:
        self.client = client
        self.component = component
        self.host = host
        self.aggregate_window = aggregate_window
        self.cache_size = cache_size
        self._lock = threading.Lock()
        self._seen: OrderedDict[tuple[str, str, str, str], tuple[str, str, int, float]] = OrderedDict()
        self.sent = 0
        self.failed = 0

    def event(self, obj: Mapping[str, Any], etype: str, reason: str, message: str) -> JSON | None:
        """Record an event about ``obj`` (a full object dict or an involvedObject-style reference)."""
        meta = obj.get("metadata") or {}
        ref = {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": meta.get("name", obj.get("name")),
            "namespace": meta.get("namespace", obj.get("namespace")),
            "uid": meta.get("uid", obj.get("uid")),
        }
        if meta.get("resourceVersion"):
            ref["resourceVersion"] = meta["resourceVersion"]
        ref = {k: v for k, v in ref.items() if v}
        namespace = ref.get("namespace") or "default"
        if len(message) > MAX_MESSAGE:
            message = message[: MAX_MESSAGE - 3] + "..."
        cache_key = (str(ref.get("uid") or f"{namespace}/{ref.get('name')}"), etype, reason, message)
        now = time.monotonic()
        with self._lock:
            prior = self._seen.get(cache_key)
        try:
            if prior is not None and now - prior[3] < self.aggregate_window:
                name, ns, count, _ = prior
                out = self.client.patch(EVENTS, name, {"count": count + 1, "lastTimestamp": _now()}, ns)
                self._remember(cache_key, (name, ns, count + 1, now))
            else:
                stamp = _now()
                body = {
                    "metadata": {"name": f"{ref.get('name')}.{secrets.token_hex(8)}", "namespace": namespace},
                    "involvedObject": ref,
                    "reason": reason,
                    "message": message,
                    "type": etype,
                    "source": {"component": self.component, **({"host": self.host} if self.host else {})},
                    "reportingComponent": self.component,
                    "reportingInstance": self.host or self.component,
                    "firstTimestamp": stamp,
                    "lastTimestamp": stamp,
                    "count": 1,
                }
                out = self.client.create(EVENTS, body, namespace)
                self._remember(cache_key, (out["metadata"]["name"], namespace, 1, now))
        except errors.ApiError as exc:
            self.failed += 1
            if prior is not None and isinstance(exc, errors.NotFound):  # aggregated event expired: start anew
                with self._lock:
                    self._seen.pop(cache_key, None)
                return self.event(obj, etype, reason, message)
            log.warning("event %s %s on %s/%s not recorded: %s", etype, reason, namespace, ref.get("name"), exc)
            return None
        self.sent += 1
        return out

    def _remember(self, key: tuple[str, str, str, str], value: tuple[str, str, int, float]) -> None:
        with self._lock:
            self._seen[key] = value
            self._seen.move_to_end(key)
            while len(self._seen) > self.cache_size:
                self._seen.popitem(last=False)
