"""Helpers for kernel-tier tests: throwaway network namespaces inside the VM.

The VM's kernel is fresh for every batch, but names still carry our PID so a test run directly on
a shared kernel (``EGW_IN_VM=1`` by hand) cannot collide with anyone else's namespaces.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator

import pytest
from pyroute2 import netns

from tests.kernel.nsutil import nsexec

_seq = itertools.count()


@pytest.fixture
def make_netns() -> Iterator[Callable[[str], str]]:
    """Factory: ``make_netns("a")`` creates ``egwk-<pid>-<n>-a`` and removes it after the test."""
    made: list[str] = []

    def make(tag: str) -> str:
        name = f"egwk-{os.getpid()}-{next(_seq)}-{tag}"
        netns.create(name)
        made.append(name)
        nsexec(name, "ip", "link", "set", "lo", "up")
        return name

    yield make
    for name in reversed(made):
        netns.remove(name)
