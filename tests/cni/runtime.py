"""A small container-runtime stand-in that drives a CNI chain the way libcni does (reliability.md §1.7).

Used by the chained-CNI and end-to-end tests: picks the first config file in the conf dir (as the kubelet's
runtime would, so ``01-egressgateway.conflist`` wins), runs ADD through the plugins in order feeding each
the previous result, caches the final result per (network, container ID, ifname), runs CHECK with the
cached result and DEL in reverse order with it (then forgets it), and GC/STATUS with the network config.
Plugins are exec'd inside the node netns (``nsenter --net``), so the main plugin's host-side veth lands
there and our WireGuard UDP socket is born there — never in the host namespace.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class CniFailure(Exception):
    def __init__(self, plugin: str, rc: int, error: dict[str, Any] | None, stderr: str) -> None:
        super().__init__(f"{plugin} exited {rc}: {error or stderr[-500:]}")
        self.plugin = plugin
        self.rc = rc
        self.error = error or {}
        self.code = self.error.get("code")


@dataclass
class Sandbox:
    container_id: str
    netns: str  # path
    namespace: str
    name: str
    uid: str = ""
    ifname: str = "eth0"

    def cni_args(self) -> str:
        args = f"IgnoreUnknown=1;K8S_POD_NAMESPACE={self.namespace};K8S_POD_NAME={self.name}"
        args += f";K8S_POD_INFRA_CONTAINER_ID={self.container_id}"
        return args + (f";K8S_POD_UID={self.uid}" if self.uid else "")


@dataclass
class Runtime:
    conf_dir: Path
    bin_dir: Path
    node_netns: str  # path of the node netns
    env: dict[str, str] = field(default_factory=dict)
    cache: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)

    def network(self) -> dict[str, Any]:
        names = sorted(p.name for p in self.conf_dir.iterdir() if p.suffix in (".conflist", ".conf", ".json"))
        if not names:
            raise FileNotFoundError(f"no CNI configuration in {self.conf_dir}")
        doc: dict[str, Any] = json.loads((self.conf_dir / names[0]).read_text())
        return doc

    def _exec(self, ptype: str, command: str, sb: Sandbox | None, conf: dict[str, Any], extra: dict[str, str]) -> Any:
        exe = self.bin_dir / ptype
        if not exe.exists():
            raise CniFailure(ptype, -1, {"code": 99, "msg": f"failed to find plugin {ptype} in {self.bin_dir}"}, "")
        env = {"PATH": os.environ.get("PATH", ""), "CNI_COMMAND": command, "CNI_PATH": str(self.bin_dir)}
        if sb is not None:
            env.update(CNI_CONTAINERID=sb.container_id, CNI_IFNAME=sb.ifname, CNI_ARGS=sb.cni_args())
            if sb.netns:
                env["CNI_NETNS"] = sb.netns
        env.update(self.env)
        env.update(extra)
        proc = subprocess.run(
            ["nsenter", f"--net={self.node_netns}", "--", str(exe)],
            input=json.dumps(conf).encode(),
            env=env,
            capture_output=True,
            timeout=120,
            check=False,
        )
        out = json.loads(proc.stdout) if proc.stdout.strip() else None
        if proc.returncode != 0:
            raise CniFailure(ptype, proc.returncode, out, proc.stderr.decode(errors="replace"))
        return out

    def _conf(self, net: dict[str, Any], plugin: dict[str, Any], prev: Any) -> dict[str, Any]:
        conf = dict(plugin)
        conf["name"] = net["name"]
        conf["cniVersion"] = net["cniVersion"]
        if prev is not None:
            conf["prevResult"] = prev
        return conf

    def add(self, sb: Sandbox, **extra: str) -> dict[str, Any]:
        net = self.network()
        prev = None
        for plugin in net["plugins"]:
            prev = self._exec(plugin["type"], "ADD", sb, self._conf(net, plugin, prev), extra)
        assert prev is not None
        self.cache[(net["name"], sb.container_id, sb.ifname)] = {"net": net, "result": prev}
        return prev

    def rerun(self, sb: Sandbox, ptype: str, command: str = "ADD", **extra: str) -> Any:
        """Run one plugin of the chain again with the cached result as prevResult (a retried call)."""
        cached = self.cache[(self.network()["name"], sb.container_id, sb.ifname)]
        net = cached["net"]
        plugin = next(p for p in net["plugins"] if p["type"] == ptype)
        return self._exec(ptype, command, sb, self._conf(net, plugin, cached["result"]), extra)

    def check(self, sb: Sandbox, only: str | None = None, **extra: str) -> None:
        """CHECK through the chain (or only the plugin of type ``only``) with the cached result."""
        cached = self.cache[(self.network()["name"], sb.container_id, sb.ifname)]
        net = cached["net"]
        for plugin in net["plugins"]:
            if only is None or plugin["type"] == only:
                self._exec(plugin["type"], "CHECK", sb, self._conf(net, plugin, cached["result"]), extra)

    def delete(self, sb: Sandbox, **extra: str) -> list[CniFailure]:
        """DEL through the chain in reverse; returns the failures (libcni stops at the first, we record all)."""
        key = (self.network()["name"], sb.container_id, sb.ifname)
        cached = self.cache.get(key)
        net = cached["net"] if cached else self.network()
        prev = cached["result"] if cached else None
        failures = []
        for plugin in reversed(net["plugins"]):
            try:
                self._exec(plugin["type"], "DEL", sb, self._conf(net, plugin, prev), extra)
            except CniFailure as exc:
                failures.append(exc)
        self.cache.pop(key, None)
        return failures

    def gc(self, valid: list[Sandbox], version: str = "1.1.0") -> None:
        net = self.network()
        for plugin in net["plugins"]:
            conf = self._conf(net, plugin, None)
            conf["cniVersion"] = version
            conf["cni.dev/valid-attachments"] = [{"containerID": s.container_id, "ifname": s.ifname} for s in valid]
            self._exec(plugin["type"], "GC", None, conf, {})
