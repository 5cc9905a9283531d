"""Level-triggered work queue keyed by object (client-go workqueue semantics, threads instead of goroutines).

Invariants:

* A key is queued at most once (adds while queued are merged: dedupe).
* A key is never handed to two workers at once: adds while a worker holds it mark it dirty and it is
  queued again when the worker calls :meth:`done`.
* ``add_after`` delays an add; delayed adds of one key coalesce to the earliest due time (so a burst of
  events becomes one reconcile after a short window); ``add_rate_limited`` delays by a per-key exponential backoff
  (``base * 2**failures``, capped at ``max_delay``) until :meth:`forget` resets it after a success.
* :meth:`get` returns ``None`` once :meth:`shutdown` was called and the queue drained (or immediately
  with ``drain=False``).

Callers pattern::

    key = q.get()
    try: reconcile(key); q.forget(key)
    except Temporary: q.add_rate_limited(key)
    finally: q.done(key)
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class WorkQueue(Generic[K]):
    def __init__(self, *, base_delay: float = 0.005, max_delay: float = 1000.0, name: str = "queue") -> None:
        self.name = name
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._cond = threading.Condition()
        self._queue: deque[K] = deque()
        self._queued: set[K] = set()
        self._processing: set[K] = set()
        self._dirty: set[K] = set()
        self._waiting: list[tuple[float, int, K]] = []  # heap of (due, seq, key)
        self._due: dict[K, float] = {}  # earliest due time of each delayed key (coalescing)
        self._seq = itertools.count()
        self._failures: dict[K, int] = {}
        self._shutdown = False
        # counters for metrics/tests
        self.adds = 0
        self.merged = 0

    # ------------------------------------------------------------------------------------- adding

    def add(self, key: K) -> None:
        with self._cond:
            self._add_locked(key)

    def _add_locked(self, key: K) -> None:
        if self._shutdown:
            return
        self.adds += 1
        if key in self._processing:
            if key in self._dirty:
                self.merged += 1
            self._dirty.add(key)
            return
        if key in self._queued:
            self.merged += 1
            return
        self._queued.add(key)
        self._queue.append(key)
        self._cond.notify()

    def add_after(self, key: K, delay: float) -> None:
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            if self._shutdown:
                return
            due = time.monotonic() + delay
            if key in self._queued or self._due.get(key, float("inf")) <= due:
                self.merged += 1  # already coming at least as soon: coalesce
                return
            self._due[key] = due
            heapq.heappush(self._waiting, (due, next(self._seq), key))
            self._cond.notify()

    def add_rate_limited(self, key: K) -> float:
        """Requeue after this key's backoff; returns the delay used."""
        with self._cond:
            n = self._failures.get(key, 0)
            self._failures[key] = n + 1
        delay = float(min(self.max_delay, self.base_delay * (2**n)))
        self.add_after(key, delay)
        return delay

    def forget(self, key: K) -> None:
        with self._cond:
            self._failures.pop(key, None)

    def num_requeues(self, key: K) -> int:
        with self._cond:
            return self._failures.get(key, 0)

    # ------------------------------------------------------------------------------------ taking

    def get(self, timeout: float | None = None) -> K | None:
        """Next key to process, or None on shutdown (or when ``timeout`` passes with nothing ready)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                self._promote_due_locked()
                if self._queue:
                    key = self._queue.popleft()
                    self._queued.discard(key)
                    self._processing.add(key)
                    return key
                if self._shutdown:
                    return None
                wait = None
                if self._waiting:
                    wait = max(0.0, self._waiting[0][0] - time.monotonic())
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return None
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)

    def done(self, key: K) -> None:
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty:
                self._dirty.discard(key)
                self._add_locked(key)
            if not self._processing and not self._queue:
                self._cond.notify_all()

    def _promote_due_locked(self) -> None:
        now = time.monotonic()
        while self._waiting and self._waiting[0][0] <= now:
            due, _, key = heapq.heappop(self._waiting)
            if self._due.get(key) != due:
                continue  # superseded by an earlier add_after of the same key
            del self._due[key]
            self._add_locked(key)

    # ---------------------------------------------------------------------------------- lifecycle

    def shutdown(self) -> None:
        with self._cond:
            self._shutdown = True
            self._waiting.clear()
            self._due.clear()
            self._cond.notify_all()

    @property
    def is_shutdown(self) -> bool:
        return self._shutdown

    def __len__(self) -> int:
        with self._cond:
            return len(self._queue)

    def pending(self) -> int:
        """Queued + delayed + in progress (0 means idle)."""
        with self._cond:
            return len(self._queue) + len(self._waiting) + len(self._processing) + len(self._dirty)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is queued or being processed (delayed adds not counted)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._queue or self._processing or self._dirty:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left if left is not None else 1.0)
            return True
