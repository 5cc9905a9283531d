"""iptables documents: pure rendering (unit) and restore/read-back in throwaway namespaces (netns tier)."""

from __future__ import annotations

import shutil

import pytest

from egw.dataplane import iptables
from egw.dataplane.iptables import Chain, Document, Jump
from egw.model.errors import ValidationError

GW = Document(
    chains=(
        Chain("nat", "EGW-POST", (("-o", "host0", "-j", "MASQUERADE"),)),
        Chain("mangle", "EGW-PRE", (("-i", "wg0", "-j", "CONNMARK", "--set-mark", "0x2222"),)),
    ),
    jumps=(
        Jump("nat", "POSTROUTING", ("-j", "EGW-POST")),
        Jump("mangle", "PREROUTING", ("-j", "EGW-PRE"), first=True),
    ),
)


@pytest.mark.unit
def test_render_from_empty_is_one_document_with_markers() -> None:
    doc = iptables.render(GW, {})
    lines = doc.splitlines()
    assert lines[0] == "*mangle"
    assert lines[1] == ":EGW-PRE - [0:0]"
    m = iptables.rule_mark("mangle", "EGW-PRE", GW.chains[1].rules[0], 0)
    assert lines[2] == f"-A EGW-PRE -i wg0 -j CONNMARK --set-mark 0x2222 -m comment --comment {m}"
    assert lines[3] == f"-I PREROUTING 1 -j EGW-PRE -m comment --comment {iptables.jump_mark(GW.jumps[1])}"
    assert lines[4] == "COMMIT"
    assert "*nat" in lines and doc.endswith("COMMIT\n")


@pytest.mark.unit
def test_render_against_matching_state_is_empty() -> None:
    saved = iptables.render(GW, {}).replace(":EGW", ":EGW").replace("-I PREROUTING 1", "-A PREROUTING")
    assert iptables.render(GW, iptables.parse_save(saved)) == ""


@pytest.mark.unit
def test_render_removes_stale_owned_objects_only() -> None:
    saved = "\n".join(
        [
            "*nat",
            ":POSTROUTING ACCEPT [0:0]",
            ":EGW-OLD - [0:0]",
            '-A POSTROUTING -m comment --comment "egw-jump:0123456789abcdef" -j EGW-OLD',
            "-A POSTROUTING -s 10.0.0.0/8 -j MASQUERADE",
            "-A EGW-OLD -j RETURN",
            "COMMIT",
        ]
    )
    doc = iptables.render(Document(), iptables.parse_save(saved))
    assert doc.splitlines() == [
        "*nat",
        '-D POSTROUTING -m comment --comment "egw-jump:0123456789abcdef" -j EGW-OLD',
        "-F EGW-OLD",
        "-X EGW-OLD",
        "COMMIT",
    ]


@pytest.mark.unit
@pytest.mark.parametrize(
    "make",
    [
        lambda: Chain("nat", "EGW-X", (("-j", "ACCEPT\n*filter"),)),
        lambda: Chain("nat", "EGW-X", (("-j", "A B"),)),
        lambda: Chain("nat", "EGW-X", (("-m", "comment", "--comment", "x"),)),
        lambda: Chain("nat", "MINE", ()),
        lambda: Chain("bogus", "EGW-X", ()),
        lambda: Chain("nat", "EGW-X", ("-j ACCEPT",)),
        lambda: Jump("nat", "EGW-Y", ("-j", "EGW-X")),
        lambda: Jump("nat", "POSTROUTING", ("-j", '"x"')),
    ],
)
def test_bad_input_is_refused_before_rendering(make) -> None:
    with pytest.raises(ValidationError):
        make()


@pytest.mark.netns
@pytest.mark.parametrize("backend", ["nft", "legacy"])
def test_sync_in_namespace(netns, backend: str) -> None:
    if shutil.which(f"iptables-{backend}-restore") is None:
        pytest.skip(f"iptables-{backend} missing")
    netns.exec(f"iptables-{backend}", "-t", "nat", "-A", "POSTROUTING", "-s", "192.0.2.0/24", "-j", "RETURN")
    ipt = iptables.Iptables(netns.name, backend=backend)
    assert ipt.sync(GW) != ""
    saved = netns.exec(f"iptables-{backend}-save")
    assert "-A EGW-POST -o host0" in saved and "-j MASQUERADE" in saved
    assert "-A POSTROUTING -s 192.0.2.0/24 -j RETURN" in saved
    restores = ipt.stats.restores
    assert ipt.sync(GW) == ""
    assert ipt.stats.restores == restores
    # change one chain body: only that chain is rewritten
    changed = Document(
        chains=(GW.chains[0], Chain("mangle", "EGW-PRE", (("-i", "wg0", "-j", "ACCEPT"),))), jumps=GW.jumps
    )
    doc = ipt.sync(changed)
    assert "EGW-POST" not in doc and ":EGW-PRE - [0:0]" in doc
    assert ipt.sync(changed) == ""
    ipt.sync(Document())
    saved = netns.exec(f"iptables-{backend}-save")
    assert "EGW-" not in saved and "egw" not in saved
    assert "-A POSTROUTING -s 192.0.2.0/24 -j RETURN" in saved
