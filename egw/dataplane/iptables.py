"""iptables through one ``iptables-restore --noflush --wait`` document per sync, never one process per rule.

Callers: the gateway daemon (gateway netns nat/mangle chains) and the CNI plugin (pod netns mangle
rules), and bench/peer_churn (W8). Design after wg-quick and Calico felix's restore buffer:
- egw owns whole chains named ``EGW-*``; every rule egw writes carries a marker comment
  ``egw:<hash>`` (its chain body) or ``egw-jump:<hash>`` (the few jumps from built-in chains), the hash
  being over table, chain and rule text. Read-back (``iptables-save`` in the target namespace) keeps
  only those, so rules of other owners are never looked at or touched.
- ``sync(desired)`` diffs marker hashes: an owned chain whose hashes (in order) already match is left
  alone; a differing one is re-declared (``:CHAIN - [0:0]`` flushes it under ``--noflush``) and
  refilled; jumps are added or deleted one by one; owned chains no longer desired are flushed and
  deleted after their jumps are gone. When nothing differs no process runs (``stats.restores``).
- Input is validated before rendering: table, chain names and every token (no whitespace, quotes,
  ``#`` or control characters), so nothing can be injected into the document.
- The namespace is entered by ``nsenter --net=<path>`` in the child; this process never moves.
- Backends: ``nft`` (iptables-nft) or ``legacy`` (iptables-legacy), IPv4 or IPv6.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field

from egw.errors import PermanentError, TemporaryError
from egw.model.errors import ValidationError

TABLES = ("raw", "mangle", "nat", "filter")
BUILTIN = {"PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"}
CHAIN_PREFIX = "EGW-"
_CHAIN_RE = re.compile(r"^EGW-[A-Za-z0-9_-]{1,24}$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_.:/,!=+@%\[\]-]{1,256}$")
_MARK_RE = re.compile(r'--comment "?(egw(?:-jump)?:[0-9a-f]{16})"?')
NETNS_DIR = "/run/netns"


def _check_tokens(args: Sequence[str], path: str) -> tuple[str, ...]:
    if isinstance(args, str):
        raise ValidationError.single(path, args, "must be a sequence of tokens, not one string")
    for i, t in enumerate(args):
        if not isinstance(t, str) or not _TOKEN_RE.fullmatch(t):
            raise ValidationError.single(
                f"{path}[{i}]", t, "tokens may not contain whitespace, quotes, '#' or controls"
            )
        if t in ("-m", "--match") and i + 1 < len(args) and args[i + 1] == "comment":
            raise ValidationError.single(f"{path}[{i + 1}]", "comment", "egw adds the comment marker itself")
    return tuple(args)


def _check_table(table: str) -> str:
    if table not in TABLES:
        raise ValidationError.single("table", table, f"must be one of {', '.join(TABLES)}")
    return table


@dataclass(frozen=True)
class Chain:
    """An owned chain and its complete rule list (each rule a token tuple, e.g. ("-o", "host0", "-j", "ACCEPT"))."""

    table: str
    name: str
    rules: tuple[tuple[str, ...], ...] = ()

    def __post_init__(self) -> None:
        _check_table(self.table)
        if not isinstance(self.name, str) or not _CHAIN_RE.fullmatch(self.name):
            raise ValidationError.single("chain", self.name, "must be EGW- followed by 1..24 of [A-Za-z0-9_-]")
        object.__setattr__(
            self, "rules", tuple(_check_tokens(r, f"{self.name}.rules[{i}]") for i, r in enumerate(self.rules))
        )


@dataclass(frozen=True)
class Jump:
    """A marked rule in a built-in chain, usually ``-j EGW-...``; ``first`` inserts at the top."""

    table: str
    chain: str
    rule: tuple[str, ...]
    first: bool = False

    def __post_init__(self) -> None:
        _check_table(self.table)
        if self.chain not in BUILTIN:
            raise ValidationError.single("jump.chain", self.chain, "must be a built-in chain")
        object.__setattr__(self, "rule", _check_tokens(self.rule, f"jump[{self.chain}]"))


@dataclass(frozen=True)
class Document:
    chains: tuple[Chain, ...] = ()
    jumps: tuple[Jump, ...] = ()


def _hash(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:16]


def rule_mark(table: str, chain: str, rule: Sequence[str], index: int) -> str:
    return "egw:" + _hash(table, chain, index, *rule)


def jump_mark(j: Jump) -> str:
    return "egw-jump:" + _hash(j.table, j.chain, j.first, *j.rule)


@dataclass
class Observed:
    """Owned state of one table as read back: chain -> marker list, and jump marker -> saved rule line."""

    chains: dict[str, list[str]] = field(default_factory=dict)
    jumps: dict[str, str] = field(default_factory=dict)


def parse_save(text: str) -> dict[str, Observed]:
    """Pure: the owned chains, their rule markers, and marked rules in built-in chains, per table."""
    out: dict[str, Observed] = {}
    table = None
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
            out.setdefault(table, Observed())
        elif table is None or not line or line.startswith("#") or line == "COMMIT":
            continue
        elif line.startswith(":"):
            name = line[1:].split(" ", 1)[0]
            if name.startswith(CHAIN_PREFIX):
                out[table].chains.setdefault(name, [])
        elif line.startswith("-A "):
            chain = line[3:].split(" ", 1)[0]
            m = _MARK_RE.search(line)
            if chain.startswith(CHAIN_PREFIX):
                out[table].chains.setdefault(chain, []).append(m.group(1) if m else "")
            elif m and m.group(1).startswith("egw-jump:"):
                out[table].jumps[m.group(1)] = line
    return out


def render(desired: Document, observed: dict[str, Observed]) -> str:
    """Pure: the restore document turning ``observed`` into ``desired``; empty when nothing differs."""
    want_chains: dict[str, dict[str, Chain]] = {t: {} for t in TABLES}
    for c in desired.chains:
        if c.name in want_chains[c.table]:
            raise ValidationError.single("chains", c.name, f"declared twice in table {c.table}")
        want_chains[c.table][c.name] = c
    want_jumps: dict[str, dict[str, Jump]] = {t: {} for t in TABLES}
    for j in desired.jumps:
        want_jumps[j.table][jump_mark(j)] = j
    doc: list[str] = []
    for table in TABLES:
        obs = observed.get(table, Observed())
        lines: list[str] = []
        # declarations first, so jumps may target chains created in the same document
        for name, c in want_chains[table].items():
            marks = [rule_mark(table, name, r, i) for i, r in enumerate(c.rules)]
            if obs.chains.get(name) == marks:
                continue
            lines.append(f":{name} - [0:0]")
            lines += [f"-A {name} {' '.join(r)} -m comment --comment {m}" for r, m in zip(c.rules, marks, strict=True)]
        for mark, saved in obs.jumps.items():
            if mark not in want_jumps[table]:
                lines.append("-D " + saved[3:])
        for mark, j in want_jumps[table].items():
            if mark not in obs.jumps:
                verb = f"-I {j.chain} 1" if j.first else f"-A {j.chain}"
                lines.append(f"{verb} {' '.join(j.rule)} -m comment --comment {mark}")
        for name in obs.chains:
            if name not in want_chains[table]:
                lines += [f"-F {name}", f"-X {name}"]
        if lines:
            doc += [f"*{table}", *lines, "COMMIT"]
    return "\n".join(doc) + "\n" if doc else ""


@dataclass
class Stats:
    restores: int = 0  # iptables-restore processes run (writes)
    saves: int = 0


class Iptables:
    """Owned iptables state of one namespace (``netns`` = a name under /run/netns, or None for this one)."""

    def __init__(self, netns: str | None = None, *, backend: str = "nft", ipv6: bool = False) -> None:
        if backend not in ("nft", "legacy"):
            raise ValidationError.single("backend", backend, "must be nft or legacy")
        if (netns is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,255}", netns)) or netns in (".", ".."):
            raise ValidationError.single("netns", netns, "not a valid network namespace name")
        self.netns = netns
        base = "ip6tables" if ipv6 else "iptables"
        self.restore_cmd = f"{base}-{backend}-restore"
        self.save_cmd = f"{base}-{backend}-save"
        for tool in (self.restore_cmd, self.save_cmd):
            if shutil.which(tool) is None:
                raise PermanentError(f"{tool} is not installed")
        self.stats = Stats()

    def _argv(self, *argv: str) -> list[str]:
        if self.netns is None:
            return list(argv)
        return ["nsenter", f"--net={NETNS_DIR}/{self.netns}", "--", *argv]

    def _run(self, argv: list[str], stdin: str | None = None) -> str:
        proc = subprocess.run(self._argv(*argv), input=stdin, capture_output=True, text=True, timeout=120, check=False)
        if proc.returncode != 0:
            msg = f"{argv[0]} in netns {self.netns or '<own>'} exited {proc.returncode}: {proc.stderr.strip()[:2000]}"
            # exit 4 = resource problem (xtables lock held past --wait): worth retrying
            if proc.returncode == 4:
                raise TemporaryError(msg)
            raise PermanentError(msg)
        return proc.stdout

    def read(self) -> dict[str, Observed]:
        """One ``iptables-save`` of every table, reduced to what egw owns."""
        self.stats.saves += 1
        return parse_save(self._run([self.save_cmd]))

    def restore(self, document: str) -> None:
        self.stats.restores += 1
        self._run([self.restore_cmd, "--noflush", "--wait"], stdin=document)

    def sync(self, desired: Document) -> str:
        """Make the owned state equal ``desired``; returns the document applied ("" when nothing changed)."""
        doc = render(desired, self.read())
        if doc:
            self.restore(doc)
        return doc
