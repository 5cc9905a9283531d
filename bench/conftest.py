"""Benches run under pytest with the test fixtures (control plane, namespaces, wireguard-go, daemon world)."""

from tests.conftest import pytest_plugins as _plugins

pytest_plugins = [*_plugins, "tests.daemon.conftest"]
