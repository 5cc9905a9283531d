"""The node's CNI configuration: ``01-egressgateway.conflist`` derived from the main one (spec §5.2).

Called by cni-manager's conflist loop. :func:`render` is pure: the node's main configuration (the first
other ``.conflist``/``.conf``/``.json`` file in lexical order) with our plugin inserted right after the
primary plugin, unknown keys preserved, keys sorted, 2-space indent. :func:`sync` is level-triggered:
every tick it recomputes the wanted bytes and rewrites the file (temp + rename, 0644) only when they
differ, so a deleted file or an edited main configuration is repaired on the next tick — unlike the
seed, which ignored deletions of its own file (spec §9.16). Without a main configuration our file is
removed: a chain whose primary plugin is gone would fail every pod.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from egw.model import cniproto

log = logging.getLogger("egw.cni.conflist")

EXTENSIONS = (".conflist", ".conf", ".json")


class ConfError(ValueError):
    """The main configuration cannot be chained (the message names the file and the problem)."""


@dataclass(frozen=True)
class Source:
    name: str
    text: str


def main_config(conf_dir: Path, own_name: str = cniproto.CONFLIST_NAME) -> Source | None:
    """The first other CNI config file in lexical order, as the container runtime would pick it."""
    try:
        names = sorted(
            e.name
            for e in os.scandir(conf_dir)
            if e.is_file()
            and e.name.lower() != own_name.lower()
            and not e.name.startswith(".")
            and e.name.endswith(EXTENSIONS)
        )
    except FileNotFoundError:
        return None
    for name in names:
        try:
            return Source(name, (conf_dir / name).read_text())
        except FileNotFoundError:  # raced with a delete: take the next one
            continue
    return None


def our_entry(excluded: list[str]) -> dict[str, Any]:
    return {"type": cniproto.PLUGIN_TYPE, "excludedCIDRs": excluded, "socketPath": cniproto.DEFAULT_SOCKET}


def render(source: Source, excluded: list[str], socket_path: str = cniproto.DEFAULT_SOCKET) -> str:
    """Our conflist text for ``source``; raises ConfError when the main config is not usable."""
    try:
        doc = json.loads(source.text)
    except json.JSONDecodeError as exc:
        raise ConfError(f"{source.name}: not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfError(f"{source.name}: must be a JSON object")
    entry = our_entry(excluded)
    entry["socketPath"] = socket_path
    if source.name.endswith(".conflist"):
        plugins = doc.get("plugins")
        if not isinstance(plugins, list) or not plugins:
            raise ConfError(f"{source.name}: plugins must be a non-empty list")
        for i, p in enumerate(plugins):
            if not isinstance(p, dict) or not isinstance(p.get("type"), str) or not p["type"]:
                raise ConfError(f"{source.name}: plugins[{i}] must be an object with a type")
        rest = [p for p in plugins if p["type"].lower() != cniproto.PLUGIN_TYPE.lower()]
        if not rest:
            raise ConfError(f"{source.name}: has no plugin other than {cniproto.PLUGIN_TYPE}")
        out = dict(doc)
        out["plugins"] = [rest[0], entry, *rest[1:]]
    else:
        name = doc.get("name")
        if not isinstance(name, str) or not name:
            raise ConfError(f"{source.name}: name is required")
        primary = {k: v for k, v in doc.items() if k not in ("name", "cniVersion")}
        if not isinstance(primary.get("type"), str):
            raise ConfError(f"{source.name}: type is required")
        out = {"name": name, "plugins": [primary, entry]}
        if isinstance(doc.get("cniVersion"), str):
            out["cniVersion"] = doc["cniVersion"]
    return json.dumps(out, indent=2, sort_keys=True) + "\n"


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, text.encode())
        os.fchmod(fd, mode)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def sync(conf_dir: Path, excluded: list[str], socket_path: str, own_name: str = cniproto.CONFLIST_NAME) -> str:
    """One level-triggered pass; returns what happened ("unchanged", "written", "removed", "waiting", "error")."""
    target = conf_dir / own_name
    source = main_config(conf_dir, own_name)
    if source is None:
        if target.exists():
            target.unlink()
            log.warning("main CNI config is missing: removed %s so the node is not left with a broken chain", target)
            return "removed"
        return "waiting"
    try:
        wanted = render(source, excluded, socket_path)
    except ConfError as exc:
        log.error("cannot chain into the main CNI config: %s", exc)
        return "error"
    try:
        current = target.read_text()
    except FileNotFoundError:
        current = None
    if current == wanted:
        return "unchanged"
    write_atomic(target, wanted)
    log.info("wrote %s from %s", target, source.name)
    return "written"


def remove(conf_dir: Path, own_name: str = cniproto.CONFLIST_NAME) -> None:
    with contextlib.suppress(FileNotFoundError):
        (conf_dir / own_name).unlink()
