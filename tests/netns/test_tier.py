"""How the netns tier is selected and skipped: fixture users are marked, and a non-root run is told why."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.netns import Netns

REPO = Path(__file__).resolve().parents[2]


def test_tests_using_kernel_fixtures_are_in_the_netns_tier(netns: Netns, request: pytest.FixtureRequest) -> None:
    # No explicit marker in this module: the plugin adds it, so `-m "not netns"` deselects this test.
    assert request.node.get_closest_marker("netns") is not None
    assert netns.exists()


@pytest.mark.netns
def test_a_non_root_run_is_skipped_with_the_reason() -> None:
    code = "from tests.fixtures.netns import netns_missing; print(netns_missing())"
    out = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "the netns tier needs root (running as uid 65534)"
