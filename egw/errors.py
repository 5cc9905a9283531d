"""Error classes every layer acts on: temporary (retry later) versus permanent (report, do not hot-loop).

Adapters classify once at their boundary (egw.dataplane._native.ensure for -errno from C) and
reconcilers act on the class. Messages never carry secrets.
"""

from __future__ import annotations


class EgwError(Exception):
    """Root of egw's own errors."""


class TemporaryError(EgwError):
    """Retry later; ``delay`` is a hint in seconds."""

    def __init__(self, message: str, delay: float = 1.0) -> None:
        super().__init__(message)
        self.delay = delay


class PermanentError(EgwError):
    """Retrying the same input will fail the same way."""
