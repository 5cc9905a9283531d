"""Loads every fixture plugin under tests/fixtures/ (one module per piece of infrastructure).

Each plugin owns its marker's skip logic: a tier may be skipped only when the machine truly lacks
the capability, and the skip reason names what is missing.
"""

from pathlib import Path

pytest_plugins = sorted(
    f"tests.fixtures.{p.stem}" for p in (Path(__file__).parent / "fixtures").glob("*.py") if p.stem != "__init__"
)
