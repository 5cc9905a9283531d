"""The kernel-tier mechanism itself: outcomes come back from the VM, failures are never silent.

These run on the host (``kernel(host=True)``): each starts an outer pytest on a small generated
suite whose kernel tests the plugin (tests/fixtures/kernel.py) runs in one real VM boot, and
checks what the outer run reports.
"""

from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel(host=True)

REPO = Path(__file__).resolve().parents[2]

SUITE = """
import os
import pytest

kernel = pytest.mark.kernel


@kernel
@pytest.mark.timeout(5)  # holds inside; on the host the wait for the whole batch must not be cut by it
def test_runs_inside_the_vm():
    assert os.environ.get("EGW_IN_VM") == "1"
    assert os.uname().release.startswith("6.1.0-")
    assert os.uname().nodename == "egw-vm"


@kernel
def test_fails_with_the_inner_text():
    print("captured inside the VM")
    assert 6 * 7 == 43, "inner failure text"


@kernel
def test_skips_with_the_inner_reason():
    pytest.skip("inner skip reason")


@kernel
@pytest.mark.xfail(reason="known inner bug", strict=True)
def test_xfails():
    assert False


@kernel
@pytest.mark.parametrize("n", [1, 2])
def test_param(n):
    assert n in (1, 2)


@kernel
def test_deselected_by_k():
    raise AssertionError("must not run: deselected with -k")


@pytest.mark.unit
def test_host_only():
    assert os.environ.get("EGW_IN_VM") is None
"""


def _outer(
    tmp_path: Path, *args: str, path: str | None = None
) -> tuple[subprocess.CompletedProcess[str], dict[str, str]]:
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    kernel: in the VM\n    unit: host\n")
    (tmp_path / "test_suite.py").write_text(SUITE)
    env = {k: v for k, v in os.environ.items() if not k.startswith("EGW_")}
    env["PYTHONPATH"] = str(REPO)
    env["TMPDIR"] = str(tmp_path)  # the failing runs' kept VM run directories land here, not in /tmp
    if path is not None:
        env["PATH"] = path
    xml = tmp_path / "junit.xml"
    argv = [sys.executable, "-m", "pytest", "-p", "tests.fixtures.kernel", "-p", "no:cacheprovider", "-rA"]
    argv += ["-p", "no:hypothesispytest"]  # forwarded into the VM too: a lighter inner start
    argv += ["--strict-markers", f"--junitxml={xml}", "-k", "not deselected", *args]
    proc = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900, check=False)
    outcomes: dict[str, str] = {}
    for case in ET.parse(xml).getroot().iter("testcase"):  # noqa: S314 - our own run's report
        kinds = [c.tag for c in case if c.tag in ("failure", "error", "skipped")]
        outcomes[case.get("name", "")] = kinds[0] if kinds else "passed"
    return proc, outcomes


def test_outcomes_come_back_from_one_vm_boot(tmp_path: Path) -> None:
    proc, outcomes = _outer(tmp_path)
    out = proc.stdout
    assert outcomes == {
        "test_runs_inside_the_vm": "passed",
        "test_fails_with_the_inner_text": "failure",
        "test_skips_with_the_inner_reason": "skipped",
        "test_xfails": "skipped",
        "test_param[1]": "passed",
        "test_param[2]": "passed",
        "test_host_only": "passed",
    }, out
    assert proc.returncode == 1, out
    assert "AssertionError: inner failure text" in out and "assert (6 * 7) == 43" in out
    assert "captured inside the VM" in out
    assert "inner skip reason" in out
    assert "XFAIL test_suite.py::test_xfails - known inner bug" in out
    assert "must not run" not in out
    assert "kernel tier: 1 VM boot for 6 test(s)" in out


def test_a_vm_that_does_not_boot_fails_every_kernel_test(tmp_path: Path) -> None:
    proc, outcomes = _outer(tmp_path, "--vm-boot-timeout=0.2")
    out = proc.stdout
    assert proc.returncode == 1, out
    assert outcomes.pop("test_host_only") == "passed"
    assert set(outcomes.values()) == {"error"}, out  # setup failures, one per kernel test
    assert len(outcomes) == 6
    assert out.count("ERROR at setup of") == 6, out
    assert out.count("kernel tier: the VM did not start the command within 0.2s") >= 6, out
    assert "console tail" in out


def test_missing_qemu_skips_with_the_reason(tmp_path: Path) -> None:
    proc, outcomes = _outer(tmp_path, path="/nonexistent")
    out = proc.stdout
    assert proc.returncode == 0, out
    assert outcomes.pop("test_host_only") == "passed"
    assert set(outcomes.values()) == {"skipped"}, out
    assert "kernel tier unavailable: qemu-system-x86_64 not installed" in out
