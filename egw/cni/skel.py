"""CNI skeleton: environment + stdin in, exit status + stdout bytes out (containernetworking ``pkg/skel``).

``run(env, stdin, plugin)`` is transport-agnostic: cni-manager calls it for every request the compiled
front end forwards, and ``egw cni`` calls it with the real process environment. It validates the
``CNI_*`` variables the way libcni's skel does, negotiates the version, dispatches ADD, DEL, CHECK,
VERSION, GC and STATUS to the plugin object, and renders results and errors as the spec's JSON on
stdout (errors too: libcni reads the error object from stdout).

Error policy: malformed input (bad env, undecodable stdin, unsupported version) is reported for every
verb, because nothing can be done with it. Environmental failures during DEL (netns gone, API server
down, PodEndpoint gone) never fail DEL — the plugin's ``delete`` swallows them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from egw.cni import conf
from egw.cni.conf import CniError

log = logging.getLogger("egw.cni")

VERBS = ("ADD", "DEL", "CHECK", "VERSION", "GC", "STATUS")


@dataclass(frozen=True)
class CmdArgs:
    command: str
    container_id: str
    netns: str
    ifname: str
    args: Mapping[str, str]
    path: str
    conf: conf.NetConf
    env: Mapping[str, str]


class Plugin(Protocol):
    def add(self, cmd: CmdArgs) -> dict[str, Any]: ...
    def delete(self, cmd: CmdArgs) -> None: ...
    def check(self, cmd: CmdArgs) -> None: ...
    def gc(self, cmd: CmdArgs) -> None: ...
    def status(self, cmd: CmdArgs) -> None: ...


# Which variables each verb needs (libcni skel's table, CNI_PATH relaxed: we never exec delegates).
_REQUIRED = {
    "ADD": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"),
    "CHECK": ("CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"),
    "DEL": ("CNI_CONTAINERID", "CNI_IFNAME"),
    "GC": (),
    "STATUS": (),
    "VERSION": (),
}
_MIN_VERSION = {"CHECK": (0, 4, 0), "GC": (1, 1, 0), "STATUS": (1, 1, 0)}


def _dump(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, indent=None, separators=(",", ":")).encode() + b"\n"


def version_info(stdin: bytes) -> dict[str, Any]:
    version = conf.LATEST_VERSION
    try:
        raw = json.loads(stdin) if stdin.strip() else {}
        if isinstance(raw, dict) and isinstance(raw.get("cniVersion"), str):
            version = raw["cniVersion"]
    except (UnicodeDecodeError, json.JSONDecodeError):
        pass
    return {"cniVersion": version, "supportedVersions": list(conf.SUPPORTED_VERSIONS)}


def _error(exc: CniError, version: str) -> tuple[int, bytes]:
    return 1, _dump(exc.to_json(version))


def parse(env: Mapping[str, str], stdin: bytes) -> CmdArgs:
    """All validation that happens before any side effect; raises CniError."""
    command = env.get("CNI_COMMAND", "")
    if not command:
        raise CniError(conf.ERR_INVALID_ENV, "required env variable CNI_COMMAND is missing")
    if command not in VERBS:
        raise CniError(conf.ERR_INVALID_ENV, "unknown CNI_COMMAND", json.dumps(command[:64]))
    missing = [k for k in _REQUIRED[command] if not env.get(k)]
    if missing:
        raise CniError(conf.ERR_INVALID_ENV, "required env variables are missing", ", ".join(missing))
    container_id = env.get("CNI_CONTAINERID", "")
    ifname = env.get("CNI_IFNAME", "")
    if "CNI_CONTAINERID" in _REQUIRED[command]:
        conf.validate_container_id(container_id)
    if "CNI_IFNAME" in _REQUIRED[command]:
        conf.validate_ifname(ifname)
    netconf = conf.parse_netconf(conf.decode_json(stdin))
    need = _MIN_VERSION.get(command)
    if need and conf.version_tuple(netconf.cni_version) < need:
        raise CniError(
            conf.ERR_INCOMPATIBLE_VERSION,
            f"config version does not allow {command}",
            f'config is "{netconf.cni_version}", {command} needs {".".join(map(str, need))} or later',
        )
    return CmdArgs(
        command=command,
        container_id=container_id,
        netns=env.get("CNI_NETNS", ""),
        ifname=ifname,
        args=conf.parse_cni_args(env.get("CNI_ARGS", "")),
        path=env.get("CNI_PATH", ""),
        conf=netconf,
        env=env,
    )


def _request_version(stdin: bytes) -> str:
    # The version to write an early error in: the config's if it is one we speak.
    try:
        raw = json.loads(stdin)
        v = raw.get("cniVersion") if isinstance(raw, dict) else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        v = None
    return v if v in conf.SUPPORTED_VERSIONS else conf.LATEST_VERSION


def run(env: Mapping[str, str], stdin: bytes, plugin: Plugin) -> tuple[int, bytes]:
    """Run one CNI invocation; returns (exit status, stdout bytes). Never raises for CNI-level problems."""
    if env.get("CNI_COMMAND") == "VERSION":
        return 0, _dump(version_info(stdin))
    try:
        cmd = parse(env, stdin)
    except CniError as exc:
        log.warning("CNI %s rejected: %s", env.get("CNI_COMMAND", "?"), exc)
        return _error(exc, _request_version(stdin))
    version = cmd.conf.cni_version
    try:
        if cmd.command == "ADD":
            return 0, _dump(plugin.add(cmd))
        if cmd.command == "DEL":
            plugin.delete(cmd)
        elif cmd.command == "CHECK":
            plugin.check(cmd)
        elif cmd.command == "GC":
            plugin.gc(cmd)
        elif cmd.command == "STATUS":
            plugin.status(cmd)
        return 0, b""
    except CniError as exc:
        log.warning("CNI %s %s failed: %s", cmd.command, cmd.container_id, exc)
        return _error(exc, version)
    except Exception as exc:
        # Internal bug: report it as a plugin error (never a traceback on stdout), keep the details in the log.
        log.exception("CNI %s %s crashed", cmd.command, cmd.container_id)
        if cmd.command == "DEL":
            return 0, b""
        return _error(CniError(conf.ERR_POD_NETWORK, "internal error", type(exc).__name__), version)
