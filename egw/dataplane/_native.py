"""The only importer of the compiled ``egw._native`` extension (see csrc/egw_nl.h for the contract).

C calls return 0/positive or -errno; :func:`ensure` is the single error gate that turns a negative
result into an ``OSError`` subclass. Everything above this module deals in Python types.
"""

from __future__ import annotations

import errno
import os

from egw._native import ffi, lib


class NativeError(OSError):
    """A C call failed; ``errno`` holds the code and ``detail`` the kernel's extended ACK text, if any."""

    def __init__(self, code: int, call: str, detail: str = "") -> None:
        msg = f"{call}: {os.strerror(code)}"
        if detail:
            msg += f": {detail}"
        super().__init__(code, msg)
        self.call = call
        self.detail = detail


def ensure(result: int, call: str, detail: str = "") -> int:
    if result < 0:
        raise NativeError(-result, call, detail)
    return result


def ns_name_valid(name: str) -> bool:
    return bool(lib.egw_ns_name_valid(name.encode()))


def ns_open(name: str) -> int:
    """Open /run/netns/<name>; the caller owns (and closes) the returned fd."""
    if not ns_name_valid(name):
        raise NativeError(errno.EINVAL, f"egw_ns_open({name!r})", "not a valid network namespace name")
    return ensure(lib.egw_ns_open(name.encode()), f"egw_ns_open({name!r})")


def ns_open_current() -> int:
    return ensure(lib.egw_ns_open_current(), "egw_ns_open_current")


def ns_same(fd_a: int, fd_b: int) -> bool:
    return bool(ensure(lib.egw_ns_same(fd_a, fd_b), "egw_ns_same"))


__all__ = ["NativeError", "ensure", "ffi", "ns_name_valid", "ns_open", "ns_open_current", "ns_same"]
