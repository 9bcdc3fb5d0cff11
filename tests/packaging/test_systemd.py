"""The systemd unit file: what the docs promise is in it, and systemd-analyze accepts it."""

from __future__ import annotations

import configparser
from pathlib import Path
import shutil
import subprocess
import sys

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "packaging" / "doorstep-bridge.service"
DOCUMENTED_PATH = "/opt/doorstep/bin/doorstep-bridge"


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=True, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT, encoding="utf-8")
    return parser


def test_unit_holds_the_hardening_the_docs_describe() -> None:
    service = _unit()["Service"]
    assert service["User"] == "doorstep"
    assert service["ExecStart"] == f"{DOCUMENTED_PATH} run --config /etc/doorstep/doorstep.yaml"
    assert service["LimitNOFILE"] == "8192"
    assert service["UMask"] == "0077"
    assert service["LimitCORE"] == "0"
    assert service["TimeoutStopSec"] == "30"
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp"):
        assert service[key] == "true"
    assert service["ProtectSystem"] == "strict"
    # Two malloc arenas: far less resident memory kept by a bridge with many threads.
    assert service["Environment"] == "MALLOC_ARENA_MAX=2"
    assert service["ReadWritePaths"] == "/var/lib/doorstep"
    assert _unit()["Install"]["WantedBy"] == "multi-user.target"


def test_unit_starts_once_the_clock_is_set_where_the_system_waits_for_it() -> None:
    # Ordered after, never pulling it in (systemd.special): with nothing waiting for NTP the
    # target is reached at once, and the bridge starts as before.
    unit = _unit()["Unit"]
    assert "time-sync.target" in unit["After"].split()
    assert "time-sync.target" not in unit.get("Wants", "").split()
    installation = (ROOT / "docs" / "installation.md").read_text(encoding="utf-8")
    assert "systemd-time-wait-sync.service" in installation


def test_unit_keeps_the_bridge_on_the_home_network() -> None:
    service = _unit()["Service"]
    assert service["IPAddressDeny"] == "any"
    allowed = service["IPAddressAllow"].split()
    assert allowed[:3] == ["localhost", "link-local", "multicast"]
    assert set(allowed[3:]) == {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"}
    privacy = (ROOT / "docs" / "privacy.md").read_text(encoding="utf-8")
    assert "IPAddressAllow=" in privacy
    assert "IPAddressDeny=any" in privacy
    # The docs show the unit's own list, not one that drifted from it.
    assert f"\nIPAddressAllow={service['IPAddressAllow']}\n" in privacy


def test_docs_refer_to_the_file_instead_of_a_copy() -> None:
    installation = (ROOT / "docs" / "installation.md").read_text(encoding="utf-8")
    assert "packaging/doorstep-bridge.service" in installation
    assert "[Service]" not in installation, "the unit lives in packaging/, not in the docs"


def test_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: the unit file was not verified")
    # verify checks that ExecStart exists: point it at this environment's bridge.
    bridge = Path(sys.executable).parent / "doorstep-bridge"
    assert bridge.is_file()
    unit = tmp_path / UNIT.name
    unit.write_text(UNIT.read_text(encoding="utf-8").replace(DOCUMENTED_PATH, str(bridge)))
    result = subprocess.run(
        [analyze, "verify", str(unit)], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stderr.strip() == "", result.stderr
