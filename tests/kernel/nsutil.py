"""Run commands inside a network namespace for kernel-tier tests."""

from __future__ import annotations

import subprocess

import pytest


def nsexec(ns: str, *argv: str, input: str | None = None) -> str:
    """Run ``argv`` in namespace ``ns``; return stdout, failing the test with stderr on error."""
    p = subprocess.run(["ip", "netns", "exec", ns, *argv], input=input, capture_output=True, text=True, check=False)
    if p.returncode != 0:
        pytest.fail(f"`{' '.join(argv)}` in netns {ns} exited {p.returncode}: {p.stderr.strip()}")
    return p.stdout
