"""The netns-tier fixtures themselves: cleanup really removes namespaces and processes, the crash sweep
spares live owners, and two wireguard-go ``wg0`` devices in two namespaces do not collide."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.fixtures.netns import (
    NETNS_DIR,
    OWNER_ENV,
    PREFIX,
    Netns,
    NetnsFactory,
    delete_netns,
    run,
    sweep_leftovers,
    veth,
)
from tests.fixtures.wggo import WG_DIR, Peer, WgFactory, genkey

pytestmark = pytest.mark.netns


def _gone(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def test_names_carry_prefix_pid_and_label(netns_factory: NetnsFactory) -> None:
    ns = netns_factory("node-a")
    assert ns.name.startswith(f"{PREFIX}-{os.getpid()}-") and ns.name.endswith("-node-a")
    assert (NETNS_DIR / ns.name).exists()
    assert ns.links()["lo"]["operstate"] == "UNKNOWN"  # lo is up
    with pytest.raises(ValueError, match="label"):
        netns_factory("Bad Label; rm")


def test_cleanup_removes_namespaces_and_veths(netns: Netns) -> None:
    factory = NetnsFactory()
    try:
        a, b = factory("a"), factory("b")
        veth(a, "v-a", b, "v-b")
        a.ip("addr", "add", "192.0.2.1/24", "dev", "v-a")
        b.ip("addr", "add", "192.0.2.2/24", "dev", "v-b")
        a.exec("ping", "-c1", "-W5", "192.0.2.2")
        assert "v-a" not in netns.links()  # created inside the test namespaces only
    finally:
        factory.cleanup()
    assert not a.exists() and not b.exists()
    assert factory.created == []


def test_delete_refuses_foreign_names() -> None:
    with pytest.raises(ValueError, match="refusing to delete"):
        delete_netns("gw-17f83d68-4cab-422d-a3af-ed320a761cee-10_243_0_6")


def test_wireguard_processes_are_killed_and_reaped(netns_factory: NetnsFactory) -> None:
    ns = netns_factory("wg")
    factory = WgFactory()
    dev = factory(ns)
    assert dev.alive() and Path(dev.uapi_path).exists()
    environ = Path(f"/proc/{dev.pid}/environ").read_bytes().split(b"\0")
    assert f"{OWNER_ENV}={os.getpid()}".encode() in environ
    factory.cleanup()
    assert dev.proc.returncode is not None and _gone(dev.pid)
    assert dev.sock_name not in ns.links()  # the TUN went with its process


def test_sweep_removes_dead_owners_and_spares_live_ones() -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    live = subprocess.Popen(["sleep", "600"])  # a stand-in for another test run that is still going
    names = {"dead": f"{PREFIX}-{dead.pid}-0-sweep", "live": f"{PREFIX}-{live.pid}-0-sweep"}
    dead_env = {**os.environ, OWNER_ENV: str(dead.pid)}
    live_env = {**os.environ, OWNER_ENV: str(live.pid)}
    orphan = subprocess.Popen(["sleep", "600"], env=dead_env)
    spared = subprocess.Popen(["sleep", "600"], env=live_env)
    try:
        for name in names.values():
            run(["ip", "netns", "add", name])
        swept = sweep_leftovers()
        assert names["dead"] in swept.namespaces and not (NETNS_DIR / names["dead"]).exists()
        assert names["live"] not in swept.namespaces and (NETNS_DIR / names["live"]).exists()
        assert orphan.pid in swept.processes and _gone(orphan.pid)  # killed and reaped by the sweep
        assert spared.pid not in swept.processes and spared.poll() is None
    finally:
        for proc in (orphan, spared, live):
            proc.kill()
            proc.wait()
        for name in names.values():
            if (NETNS_DIR / name).exists():
                run(["ip", "netns", "del", name])


def test_two_wg0_devices_in_two_namespaces_do_not_collide(netns_factory: NetnsFactory, wg_factory: WgFactory) -> None:
    ns1, ns2 = netns_factory("wga"), netns_factory("wgb")
    dev1, dev2 = wg_factory(ns1, "wg0"), wg_factory(ns2, "wg0")
    (priv1, pub1), (priv2, pub2) = genkey(), genkey()
    dev1.configure(private_key=priv1, listen_port=6000)
    dev2.configure(private_key=priv2, listen_port=6001)
    assert dev1.wg("show", "wg0", "public-key").strip() == pub1
    assert dev2.wg("show", "wg0", "public-key").strip() == pub2
    assert (dev1.show().listen_port, dev2.show().listen_port) == (6000, 6001)
    assert dev1.uapi_path != dev2.uapi_path
    assert "listen_port=6001\n" in dev2.uapi("get=1\n\n")
    # Nothing of ours appeared in the host's shared socket directory.
    assert not Path(WG_DIR, "wg0.sock").exists()
    assert priv1 not in dev1.wg("show", "wg0")  # wg hides the private key


def test_moved_device_keeps_its_socket_in_the_birth_namespace(
    netns_factory: NetnsFactory, wg_factory: WgFactory
) -> None:
    node, pod = netns_factory("node"), netns_factory("pod")
    dev = wg_factory(node)
    priv, _pub = genkey()
    peer_pub = genkey()[1]
    dev.configure(private_key=priv, listen_port=51820, peers=[Peer(peer_pub, "192.0.2.9:6000", ["0.0.0.0/0"])])
    dev.move(pod, "wg0")
    assert "wg0" in pod.links() and dev.sock_name not in node.links()
    assert pod.links()["wg0"]["operstate"] in {"UNKNOWN", "UP"}
    # The UDP socket did not follow the TUN.
    assert ":51820" in node.exec("ss", "-Hlun")
    assert ":51820" not in pod.exec("ss", "-Hlun")
    # `wg` finds the device under its new name through the alias; the UAPI path keeps the birth name.
    state = dev.show()
    assert state.listen_port == 51820 and peer_pub in state.peers
    assert state.peers[peer_pub].allowed_ips == ["0.0.0.0/0"]
    assert dev.uapi_path.endswith(f"/{dev.sock_name}.sock")


def test_spawned_processes_live_in_their_namespace_and_stop_at_cleanup() -> None:
    factory = NetnsFactory()
    try:
        ns = factory("spawn")
        proc = factory.spawn(ns, "sleep", "600")
        deadline = time.monotonic() + 10
        # `ip netns exec` switches namespaces and then execs sleep under the same PID.
        while Path(f"/proc/{proc.pid}/comm").read_text().strip() != "sleep" and time.monotonic() < deadline:
            time.sleep(0.01)
        assert os.stat(f"/proc/{proc.pid}/ns/net").st_ino == os.stat(ns.path).st_ino
        environ = Path(f"/proc/{proc.pid}/environ").read_bytes().split(b"\0")
        assert f"{OWNER_ENV}={os.getpid()}".encode() in environ
    finally:
        factory.cleanup()
    assert proc.returncode is not None and _gone(proc.pid)
    assert not ns.exists()


def test_a_failing_test_still_leaves_nothing_behind(tmp_path: Path) -> None:
    """Run a failing test in a child pytest and check that its namespaces and wireguard-go are gone."""
    record = tmp_path / "record"
    (tmp_path / "test_inner.py").write_text(
        "import pathlib\n"
        "def test_fails(netns_factory, wg_factory):\n"
        "    ns = netns_factory('inner')\n"
        "    dev = wg_factory(ns)\n"
        f"    pathlib.Path({str(record)!r}).write_text(f'{{ns.name}} {{dev.pid}}')\n"
        "    assert False, 'deliberate failure'\n"
    )
    repo = Path(__file__).resolve().parents[2]
    plugins = ["-p", "tests.fixtures.netns", "-p", "tests.fixtures.wggo"]
    config = ["-c", str(repo / "pyproject.toml"), "--rootdir", str(tmp_path)]
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *plugins, *config, str(tmp_path / "test_inner.py")],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 1 and "deliberate failure" in proc.stdout, proc.stdout + proc.stderr
    name, pid = record.read_text().split()
    assert not (NETNS_DIR / name).exists()
    assert _gone(int(pid))
