"""Layering rules import-linter cannot see: the compiled module ``egw._native`` is not in its graph."""

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PKG = Path(__file__).resolve().parents[2] / "egw"


def imported_modules(path: Path) -> set[str]:
    mods: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            mods.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            mods.add(node.module)
            mods.update(f"{node.module}.{a.name}" for a in node.names)
    return mods


def test_only_dataplane_native_imports_the_extension() -> None:
    importers = sorted(
        str(p.relative_to(PKG.parent)) for p in PKG.rglob("*.py") if "egw._native" in imported_modules(p)
    )
    assert importers == ["egw/dataplane/_native.py"]


def test_the_checker_sees_imports() -> None:
    # Guard against a checker that silently finds nothing.
    assert "egw._native" in imported_modules(PKG / "dataplane" / "_native.py")
