"""The pinned cnitool (built by `make testbin`) drives a real CNI plugin chain in a test namespace.

Callers: the CNI plugin tests chain Debian's plugins with ours through cnitool; this proves the binary
and the recipe (NETCONFPATH, CNI_PATH) work before they depend on it. Only the
loopback plugin runs, so nothing outside the test namespace changes except libcni's result cache, which
cnitool always keeps under /var/lib/cni (the entry is removed again by `cnitool del`).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.fixtures.apiserver import find_testbin_dir
from tests.fixtures.netns import Netns

pytestmark = pytest.mark.netns

CNI_PATH = Path("/usr/lib/cni")


def cnitool(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "NETCONFPATH": str(tmp_path / "net.d"),
        "CNI_PATH": str(CNI_PATH),
    }
    return subprocess.run(
        [str(find_testbin_dir() / "cnitool"), *args], capture_output=True, text=True, env=env, check=True, timeout=60
    )


def test_cnitool_runs_the_loopback_plugin_in_a_namespace(netns: Netns, tmp_path: Path) -> None:
    if not os.access(find_testbin_dir() / "cnitool", os.X_OK):
        pytest.skip(f"cnitool missing in {find_testbin_dir()} (`make testbin` builds it)")
    if not (CNI_PATH / "loopback").exists():
        pytest.skip("Debian containernetworking-plugins missing (/usr/lib/cni/loopback); `make deps` installs it")
    (tmp_path / "net.d").mkdir()
    conf = {"cniVersion": "1.0.0", "name": "egwt-lo", "plugins": [{"type": "loopback"}]}
    (tmp_path / "net.d" / "10-lo.conflist").write_text(json.dumps(conf))
    netns.ip("link", "set", "lo", "down")
    assert "UP" not in netns.links()["lo"]["flags"]

    result = json.loads(cnitool(tmp_path, "add", "egwt-lo", netns.path).stdout)
    try:
        assert result["cniVersion"] == "1.0.0"
        assert {"address": "127.0.0.1/8", "interface": 0} in result["ips"]
        assert "UP" in netns.links()["lo"]["flags"]
        cnitool(tmp_path, "check", "egwt-lo", netns.path)
    finally:
        cnitool(tmp_path, "del", "egwt-lo", netns.path)
    assert "UP" not in netns.links()["lo"]["flags"]
