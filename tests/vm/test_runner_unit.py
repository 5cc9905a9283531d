"""Pure parts of the VM runner: the guest command script and the initramfs module order."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.vm import runner

pytestmark = pytest.mark.unit


def test_command_script_passes_argv_env_and_cwd_verbatim(tmp_path: Path) -> None:
    cwd = tmp_path / "a dir; $(touch pwned)"
    cwd.mkdir()
    argv = [
        sys.executable,
        "-c",
        "import json, os, sys; print(json.dumps([sys.argv[1:], os.environ['V'], os.getcwd()]))",
    ]
    argv += ["a b", "'; rm -rf /", "$(id)", "`id`", "\\n"]
    value = "x'\"$HOME`id`\n2"
    script = runner._cmd_script(argv, str(cwd), {"V": value, "PATH": "/usr/bin:/bin"})
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path).stdout
    assert json.loads(out) == [argv[3:], value, str(cwd)]
    assert not (tmp_path / "pwned").exists() and not (cwd / "pwned").exists()


@pytest.mark.parametrize("name", ["A;B", "A B", "1A", "A=B", "$(x)", ""])
def test_command_script_refuses_bad_variable_names(name: str) -> None:
    with pytest.raises(ValueError, match="environment variable names"):
        runner._cmd_script(["true"], "/", {name: "1"})


def test_missing_cwd_exits_125(tmp_path: Path) -> None:
    script = runner._cmd_script(["true"], str(tmp_path / "nope"), {})
    assert subprocess.run(["sh", "-c", script], capture_output=True, check=False).returncode == 125


def test_module_order_puts_dependencies_first(tmp_path: Path) -> None:
    (tmp_path / "modules.dep").write_text(
        "kernel/fs/9p/9p.ko: kernel/net/9p/9pnet.ko kernel/fs/fscache/fscache.ko kernel/fs/netfs/netfs.ko\n"
        "kernel/net/9p/9pnet.ko:\n"
        "kernel/fs/fscache/fscache.ko: kernel/fs/netfs/netfs.ko\n"
        "kernel/fs/netfs/netfs.ko:\n"
        "kernel/net/9p/9pnet_virtio.ko: kernel/net/9p/9pnet.ko\n"
    )
    order = [Path(p).stem for p in runner._module_order(tmp_path, ["9pnet_virtio", "9p"])]
    assert order == ["9pnet", "9pnet_virtio", "netfs", "fscache", "9p"]
    with pytest.raises(runner.VMError, match="'overlay' not found"):
        runner._module_order(tmp_path, ["overlay"])
