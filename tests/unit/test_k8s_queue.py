"""WorkQueue semantics: dedupe, no concurrent processing of one key, delayed and rate-limited adds."""

from __future__ import annotations

import threading
import time

import pytest

from egw.k8s.queue import WorkQueue

pytestmark = pytest.mark.unit


def test_dedupes_queued_keys() -> None:
    q: WorkQueue[str] = WorkQueue()
    for _ in range(5):
        q.add("a")
    q.add("b")
    assert len(q) == 2
    assert q.get(timeout=1) == "a"
    assert q.get(timeout=1) == "b"
    assert q.get(timeout=0.05) is None
    assert q.merged == 4


def test_key_added_while_processing_is_requeued_after_done_not_handed_out_twice() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add("a")
    assert q.get(timeout=1) == "a"
    q.add("a")
    q.add("a")
    assert q.get(timeout=0.05) is None  # still being processed: not handed out again
    q.done("a")
    assert q.get(timeout=1) == "a"
    q.done("a")
    assert q.get(timeout=0.05) is None


def test_add_after_delays() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("late", 0.2)
    q.add("now")
    assert q.get(timeout=1) == "now"
    assert q.get(timeout=0.01) is None
    assert q.get(timeout=2) == "late"


def test_rate_limited_backoff_grows_and_forget_resets() -> None:
    q: WorkQueue[str] = WorkQueue(base_delay=0.01, max_delay=0.04)
    delays = [q.add_rate_limited("k") for _ in range(5)]
    assert delays == [0.01, 0.02, 0.04, 0.04, 0.04]
    assert q.num_requeues("k") == 5
    q.forget("k")
    assert q.num_requeues("k") == 0
    assert q.add_rate_limited("k") == 0.01


def test_shutdown_wakes_blocked_getters() -> None:
    q: WorkQueue[str] = WorkQueue()
    got: list[str | None] = []
    t = threading.Thread(target=lambda: got.append(q.get()))
    t.start()
    time.sleep(0.05)
    q.shutdown()
    t.join(2)
    assert got == [None]
    q.add("x")  # ignored after shutdown
    assert q.get(timeout=0.01) is None


def test_workers_never_process_one_key_concurrently() -> None:
    q: WorkQueue[int] = WorkQueue()
    active: dict[int, int] = {}
    overlap: list[int] = []
    processed: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        while (key := q.get()) is not None:
            with lock:
                active[key] = active.get(key, 0) + 1
                if active[key] > 1:
                    overlap.append(key)
            time.sleep(0.001)
            with lock:
                active[key] -= 1
                processed.append(key)
            q.done(key)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for i in range(400):
        q.add(i % 7)
    assert q.wait_idle(10)
    q.shutdown()
    for t in threads:
        t.join(5)
    assert overlap == []
    assert set(processed) == set(range(7))


def test_delayed_adds_of_one_key_coalesce_to_the_earliest() -> None:
    q: WorkQueue[str] = WorkQueue()
    q.add_after("k", 0.3)
    for _ in range(50):
        q.add_after("k", 0.05)
    assert q.get(timeout=1) == "k"
    q.done("k")
    assert q.get(timeout=0.5) is None  # one reconcile for the whole burst
