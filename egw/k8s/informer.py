"""List + watch one resource type into a local cache, and tell a handler which keys changed.

Used by the daemon, the controller and the cni-manager. Invariants:

* The cache only ever holds what the server said (objects are JSON dicts; callers must not mutate them).
* Watches resume from the last resourceVersion seen (events and bookmarks). ``410 Gone`` (too old)
  triggers a re-list; the re-list's difference to the cache is delivered as ADDED/MODIFIED/DELETED, so a
  delete missed while disconnected is still seen.
* Any other failure (apiserver down, reset, silent socket beyond ``read_timeout``) is retried with
  exponential backoff and jitter; the cache is kept as it is meanwhile (never emptied on errors).
* ``resync_period``: every period the handler gets a SYNC call for every cached key without any API
  call; level-triggered consumers use it to repair drift.
* ``has_synced`` turns true after the first successful list; ``last_list_ok`` tells when a full list last
  succeeded, for consumers that only garbage-collect on fresh, complete information.

The handler runs on the informer's thread and must be quick (typically: put the key in a WorkQueue).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from egw.k8s import errors
from egw.k8s.client import JSON, Client, ResourceType, object_key

log = logging.getLogger(__name__)

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"
SYNC = "SYNC"

# (event type, key, old object or None, new object or None)
Handler = Callable[[str, str, JSON | None, JSON | None], None]


class Backoff:
    """Exponential backoff with full jitter; ``reset()`` after a success."""

    def __init__(self, initial: float = 0.2, maximum: float = 30.0, factor: float = 2.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self._next = initial

    def next(self) -> float:
        delay = self._next
        self._next = min(self.maximum, self._next * self.factor)
        return delay / 2 + random.uniform(0, delay / 2)  # noqa: S311 - jitter, not crypto

    def reset(self) -> None:
        self._next = self.initial


class Informer:
    """One resource type (optionally one namespace / selector), cached and watched on a thread."""

    def __init__(
        self,
        client: Client,
        rt: ResourceType,
        handler: Handler | None = None,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resync_period: float | None = None,
        watch_timeout: int = 300,
        read_timeout: float = 90.0,
        backoff: Backoff | None = None,
        name: str | None = None,
        transform: Callable[[JSON], JSON] | None = None,
    ) -> None:
        self.client = client
        self.rt = rt
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.resync_period = resync_period
        self.watch_timeout = watch_timeout
        self.read_timeout = read_timeout
        self.backoff = backoff or Backoff()
        self.name = name or rt.plural
        self.transform = transform  # applied before caching (e.g. keep two fields of a Pod)
        self._handlers: list[Handler] = [handler] if handler else []
        self._store: dict[str, JSON] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._synced = threading.Event()
        self._thread: threading.Thread | None = None
        self.resource_version = ""
        self.last_list_ok: float | None = None
        self.connected = False
        # counters, for tests and metrics
        self.lists = 0
        self.watches = 0
        self.errors = 0
        self.gone = 0

    # ----------------------------------------------------------------------------------- reading

    def add_handler(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def get(self, key: str) -> JSON | None:
        with self._lock:
            return self._store.get(key)

    def items(self) -> list[JSON]:
        with self._lock:
            return list(self._store.values())

    def keys(self) -> list[str]:
        with self._lock:
            return list(self._store)

    def __len__(self) -> int:
        with self._lock:
            return len(self._store)

    @property
    def has_synced(self) -> bool:
        return self._synced.is_set()

    def wait_synced(self, timeout: float | None = None) -> bool:
        return self._synced.wait(timeout)

    # --------------------------------------------------------------------------------- lifecycle

    def start(self) -> Informer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"informer-{self.name}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # -------------------------------------------------------------------------------------- loop

    def _run(self) -> None:
        next_resync = time.monotonic() + self.resync_period if self.resync_period else None
        need_list = True
        while not self._stop.is_set():
            try:
                if need_list:
                    self._relist()
                    need_list = False
                    self.backoff.reset()
                    if self._stop.is_set():
                        break
                next_resync = self._watch_once(next_resync)
                self.backoff.reset()
            except errors.Gone:
                self.gone += 1
                log.info("watch %s: resourceVersion %s too old, re-listing", self.name, self.resource_version)
                need_list = True
            except errors.ApiError as exc:
                self.errors += 1
                self.connected = False
                delay = exc.retry_after if exc.retry_after else self.backoff.next()
                log.warning("watch %s failed (%s); retrying in %.1fs", self.name, exc, delay)
                self._stop.wait(delay)
            except Exception:  # a handler bug must not kill the informer thread
                self.errors += 1
                self.connected = False
                log.exception("informer %s: unexpected error", self.name)
                self._stop.wait(self.backoff.next())
            if next_resync is not None and time.monotonic() >= next_resync:
                next_resync = time.monotonic() + (self.resync_period or 0)
                self._resync()

    def _relist(self) -> None:
        result = self.client.list(
            self.rt, self.namespace, label_selector=self.label_selector, field_selector=self.field_selector
        )
        self.lists += 1
        items = [self.transform(o) for o in result.items] if self.transform else result.items
        fresh = {object_key(o): o for o in items}
        with self._lock:
            old = self._store
            self._store = fresh
            self.resource_version = result.resource_version
        self.last_list_ok = time.monotonic()
        self.connected = True
        for key, obj in fresh.items():
            prev = old.get(key)
            if prev is None:
                self._emit(ADDED, key, None, obj)
            elif _rv(prev) != _rv(obj):
                self._emit(MODIFIED, key, prev, obj)
        for key, prev in old.items():
            if key not in fresh:
                self._emit(DELETED, key, prev, None)
        self._synced.set()

    def _watch_once(self, next_resync: float | None) -> float | None:
        self.watches += 1
        stream = self.client.watch(
            self.rt,
            self.namespace,
            resource_version=self.resource_version,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            timeout_seconds=self.watch_timeout,
            read_timeout=self.read_timeout,
        )
        self.connected = True
        try:
            for etype, obj in stream:
                if self._stop.is_set():
                    break
                rv = _rv(obj)
                if etype == "BOOKMARK":
                    if rv:
                        self.resource_version = rv
                    continue
                if self.transform is not None and etype != DELETED:
                    obj = self.transform(obj)
                key = object_key(obj)
                with self._lock:
                    prev = self._store.get(key)
                    if etype == DELETED:
                        self._store.pop(key, None)
                    else:
                        self._store[key] = obj
                    if rv:
                        self.resource_version = rv
                if etype == DELETED:
                    self._emit(DELETED, key, prev, None)
                else:
                    self._emit(ADDED if prev is None else MODIFIED, key, prev, obj)
                if next_resync is not None and time.monotonic() >= next_resync:
                    next_resync = time.monotonic() + (self.resync_period or 0)
                    self._resync()
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        return next_resync

    def _resync(self) -> None:
        with self._lock:
            snapshot = list(self._store.items())
        for key, obj in snapshot:
            self._emit(SYNC, key, obj, obj)

    def _emit(self, etype: str, key: str, old: JSON | None, new: JSON | None) -> None:
        for handler in self._handlers:
            try:
                handler(etype, key, old, new)
            except Exception:
                log.exception("informer %s: handler failed for %s %s", self.name, etype, key)


def _rv(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")
