"""Gateway-side iptables: the rules the seed shows, rendered and diffed as iptables-restore documents.

Two places, two strategies:

* **Inside a gateway namespace** everything is ours, so the whole ``nat`` table is one document applied
  without ``--noflush``; it holds exactly the seed's ``-A POSTROUTING -o host0 -j MASQUERADE``, so
  ``iptables-save`` in the namespace prints what the seed prints.
* **On the node** the ``nat POSTROUTING`` chain is shared (kube-proxy, ip-masq-agent), so we only insert,
  at position 1, the seed's exemption ``-s <secondary>/32 -m comment --comment "no SNAT for traffic from
  netns <netns>" -j RETURN`` and delete exactly our own lines (found by that comment), in one
  ``--noflush`` document: atomic, and nothing else in the chain is touched.

Rules are rendered in iptables-save's canonical spelling, so "nothing changed" is a string comparison
and a converged node gets no iptables write at all. All names are validated before they are rendered
(nothing from an API object reaches a document unchecked). Callers: ``egw.daemon``. Pure.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from egw.model import names

MASQUERADE_RULE = f"-A POSTROUTING -o {names.GATEWAY_VETH_IFNAME} -j MASQUERADE"
_EXEMPTION_MARK = '--comment "no SNAT for traffic from netns '


def netns_nat_rules() -> tuple[str, ...]:
    """The ``nat`` rules of a gateway namespace, as iptables-save prints them."""
    return (MASQUERADE_RULE,)


def netns_nat_document() -> str:
    """Full ``nat`` table for a gateway namespace (restore without --noflush: the table is ours)."""
    lines = [
        "*nat",
        ":PREROUTING ACCEPT [0:0]",
        ":INPUT ACCEPT [0:0]",
        ":OUTPUT ACCEPT [0:0]",
        ":POSTROUTING ACCEPT [0:0]",
    ]
    lines += list(netns_nat_rules())
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def exemption_rule(secondary_ip: ipaddress.IPv4Address, netns: str) -> str:
    """The node rule spec (without ``-A POSTROUTING``) in iptables-save spelling."""
    comment = names.nat_exemption_comment(netns)
    return f'-s {ipaddress.IPv4Address(secondary_ip)}/32 -m comment --comment "{comment}" -j RETURN'


def chain_rules(save_text: str, table: str, chain: str) -> list[str]:
    """The rule specs (``-A <chain>`` stripped) of one chain in ``iptables-save`` output, in order."""
    out: list[str] = []
    current = None
    prefix = f"-A {chain} "
    for line in save_text.splitlines():
        if line.startswith("*"):
            current = line[1:].strip()
        elif current == table and line.startswith(prefix):
            out.append(line[len(prefix) :])
    return out


def table_rules(save_text: str, table: str) -> list[str]:
    """Every ``-A`` line of one table, as printed."""
    out: list[str] = []
    current = None
    for line in save_text.splitlines():
        if line.startswith("*"):
            current = line[1:].strip()
        elif current == table and line.startswith("-A "):
            out.append(line)
    return out


def owned_exemptions(postrouting: Iterable[str], netns: str | None = None) -> list[str]:
    """Our exemption rules among a node's POSTROUTING rule specs (all, or those of one namespace)."""
    want = _EXEMPTION_MARK + (f'{netns}"' if netns else "gw-")
    return [r for r in postrouting if want in r]


def node_exemption_document(postrouting: Iterable[str], netns: str, want: str | None) -> str | None:
    """``--noflush`` document that leaves exactly ``want`` (or nothing, when None) as this namespace's
    exemption in the node's nat POSTROUTING; None when that is already so."""
    names.validate_netns_name(netns)
    mine = owned_exemptions(postrouting, netns)
    ops: list[str] = []
    present = False
    for rule in mine:
        if rule == want and not present:
            present = True
        else:
            ops.append(f"-D POSTROUTING {rule}")
    if want is not None and not present:
        ops.append(f"-I POSTROUTING 1 {want}")
    if not ops:
        return None
    return "*nat\n" + "\n".join(ops) + "\nCOMMIT\n"
