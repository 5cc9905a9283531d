"""Generic keyed diff: desired vs observed → what to add, change and remove.

Used by every ``sync`` in egw.dataplane (WireGuard peers, routes, rules, iptables chains): read back,
diff, write only the difference. Pure; order of the results follows sorted keys when keys sort, so
the writes (and their golden tests) are deterministic.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


@dataclass(frozen=True)
class Delta(Generic[K, V]):
    add: dict[K, V] = field(default_factory=dict)
    change: dict[K, tuple[V, V]] = field(default_factory=dict)  # key -> (observed, desired)
    remove: dict[K, V] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.add or self.change or self.remove)


def _sorted(keys: Iterable[K]) -> list[K]:
    items = list(keys)
    try:
        return sorted(items)  # type: ignore[type-var]
    except TypeError:
        return items


def diff(
    desired: Mapping[K, V],
    observed: Mapping[K, V],
    equal: Callable[[V, V], bool] | None = None,
) -> Delta[K, V]:
    """``equal(observed, desired)`` decides "unchanged" (default ``==``)."""
    same = equal or (lambda a, b: a == b)
    delta: Delta[K, V] = Delta()
    for k in _sorted(desired.keys()):
        want = desired[k]
        if k not in observed:
            delta.add[k] = want
        elif not same(observed[k], want):
            delta.change[k] = (observed[k], want)
    for k in _sorted(observed.keys()):
        if k not in desired:
            delta.remove[k] = observed[k]
    return delta


def by_key(items: Iterable[V], key: Callable[[V], K]) -> dict[K, V]:
    return {key(i): i for i in items}
