"""Load the integration's wire modules without Home Assistant.

``custom_components/doorstep/__init__.py`` imports Home Assistant; ``protocol.py``
and ``api.py`` must not. They are loaded here as a package of their own, so the
contract is checked exactly as the integration parses it, with no HA code involved.
"""

from __future__ import annotations

import importlib
from pathlib import Path
import sys
import types
from typing import Any

import pytest

INTEGRATION_DIR = Path(__file__).resolve().parents[2] / "custom_components" / "doorstep"
PACKAGE = "doorstep_integration_wire"


def load(module: str) -> Any:
    """``protocol`` or ``api`` of the integration, HA-free."""
    if PACKAGE not in sys.modules:
        package = types.ModuleType(PACKAGE)
        package.__path__ = [str(INTEGRATION_DIR)]
        sys.modules[PACKAGE] = package
    return importlib.import_module(f"{PACKAGE}.{module}")


@pytest.fixture(scope="session")
def protocol() -> Any:
    """The integration's ``protocol`` module."""
    return load("protocol")


@pytest.fixture(scope="session")
def api() -> Any:
    """The integration's ``api`` module."""
    return load("api")
