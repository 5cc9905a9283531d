"""The compiled extension loads and its namespace helpers validate names before touching files."""

import errno
import os

import pytest

from egw.dataplane import _native

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("name", ["gw-17f83d68-4cab-422d-a3af-ed320a761cee-10_243_0_6", "a", "x.y_z-1"])
def test_valid_names(name: str) -> None:
    assert _native.ns_name_valid(name)


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../etc", "a b", "a;rm", "x" * 256, "ä"])
def test_invalid_names_are_refused_before_any_io(name: str) -> None:
    assert not _native.ns_name_valid(name)
    with pytest.raises(_native.NativeError) as info:
        _native.ns_open(name)
    assert info.value.errno == errno.EINVAL


def test_missing_namespace_is_enoent() -> None:
    with pytest.raises(_native.NativeError) as info:
        _native.ns_open("egw-test-does-not-exist")
    assert info.value.errno == errno.ENOENT
    assert "egw_ns_open('egw-test-does-not-exist')" in str(info.value)


def test_same_namespace_is_recognised() -> None:
    a = _native.ns_open_current()
    b = os.open("/proc/self/ns/net", os.O_RDONLY)
    c = os.open("/proc/self/ns/mnt", os.O_RDONLY)
    try:
        assert _native.ns_same(a, b)
        assert not _native.ns_same(a, c)
    finally:
        for fd in (a, b, c):
            os.close(fd)


def test_bad_fd_is_ebadf() -> None:
    with pytest.raises(_native.NativeError) as info:
        _native.ns_same(-1, -1)
    assert info.value.errno == errno.EBADF
