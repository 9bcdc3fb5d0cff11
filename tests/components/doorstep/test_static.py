"""What hassfest and HACS check, checked here without network."""

from __future__ import annotations

import ast
import json
from pathlib import Path
import re
from typing import Any

from homeassistant.helpers import config_validation as cv
from homeassistant.util.yaml import load_yaml_dict
import pytest
import voluptuous as vol

ROOT = Path(__file__).resolve().parents[3]
INTEGRATION = ROOT / "custom_components" / "doorstep"
EN = json.loads((INTEGRATION / "translations" / "en.json").read_text())
FR = json.loads((INTEGRATION / "translations" / "fr.json").read_text())

#: All 54 rules of the Integration Quality Scale (20 bronze, 10 silver, 21 gold, 3 platinum).
RULES = {
    "action-setup", "appropriate-polling", "brands", "common-modules",
    "config-flow-test-coverage", "config-flow", "dependency-transparency", "docs-actions",
    "docs-triggers", "docs-conditions", "docs-high-level-description",
    "docs-installation-instructions", "docs-removal-instructions", "entity-event-setup",
    "entity-unique-id", "has-entity-name", "runtime-data", "test-before-configure",
    "test-before-setup", "unique-config-entry",
    "action-exceptions", "config-entry-unloading", "docs-configuration-parameters",
    "docs-installation-parameters", "entity-unavailable", "integration-owner",
    "log-when-unavailable", "parallel-updates", "reauthentication-flow", "test-coverage",
    "devices", "diagnostics", "discovery-update-info", "discovery", "docs-data-update",
    "docs-examples", "docs-known-limitations", "docs-supported-devices",
    "docs-supported-functions", "docs-troubleshooting", "docs-use-cases", "dynamic-devices",
    "entity-category", "entity-device-class", "entity-disabled-by-default",
    "entity-translations", "exception-translations", "icon-translations",
    "reconfiguration-flow", "repair-issues", "stale-devices",
    "async-dependency", "inject-websession", "strict-typing",
}  # fmt: skip


def _keys(data: Any, prefix: str = "") -> set[str]:
    if not isinstance(data, dict):
        return {prefix}
    return set().union(*(_keys(v, f"{prefix}.{k}" if prefix else k) for k, v in data.items()))


def test_manifest() -> None:
    manifest = json.loads((INTEGRATION / "manifest.json").read_text())
    keys = list(manifest)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:]), "hassfest order: domain, name, then alphabetical"
    for key in ("codeowners", "documentation", "issue_tracker", "version", "iot_class"):
        assert manifest[key], key
    assert manifest["domain"] == INTEGRATION.name
    assert manifest["iot_class"] == "local_push"
    assert manifest["integration_type"] == "hub"
    assert set(manifest["dependencies"]) == {"http", "mqtt"}
    assert manifest["config_flow"] is True
    assert manifest["mqtt"] == ["doorstep/discovery/#"]
    assert "voluptuous" not in json.dumps(manifest.get("requirements", []))


def test_hacs() -> None:
    hacs = json.loads((ROOT / "hacs.json").read_text())
    assert hacs["name"] == "Doorstep"
    assert hacs["homeassistant"] == "2025.4.0"
    assert (INTEGRATION / "brand" / "icon.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # One integration per repository.
    assert [p.name for p in (ROOT / "custom_components").iterdir() if p.is_dir()
            and p.name != "__pycache__"] == ["doorstep"]  # fmt: skip


def test_config_schema_with_async_setup() -> None:
    source = (INTEGRATION / "__init__.py").read_text()
    assert "CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)" in source


def test_french_is_complete() -> None:
    assert _keys(EN) == _keys(FR)
    placeholders = re.compile(r"\{(\w+)\}")
    for key in _keys(EN):
        en, fr = EN, FR
        for part in key.split("."):
            en, fr = en[part], fr[part]
        assert set(placeholders.findall(en)) == set(placeholders.findall(fr)), key


@pytest.mark.parametrize("language", [EN, FR], ids=["en", "fr"])
def test_no_text_looks_like_html(language: dict[str, Any]) -> None:
    """hassfest refuses a translation with anything like a tag in it (``<bridge>``)."""
    looking_like_html = []
    for key in sorted(_keys(language)):
        text: Any = language
        for part in key.split("."):
            text = text[part]
        try:
            cv.string_with_no_html(text)
        except vol.Invalid:
            looking_like_html.append(key)
    assert looking_like_html == []


def test_every_translation_key_used_exists() -> None:
    """Every translation key the code names has English text."""
    source = "\n".join(p.read_text() for p in INTEGRATION.glob("*.py"))
    entity_keys = {key for platform in EN["entity"].values() for key in platform}
    known = set(EN["exceptions"]) | set(EN["issues"]) | set(EN["selector"]) | entity_keys
    used = set(re.findall(r'translation_key="(\w+)"', source))
    used |= set(re.findall(r'_invalid\("(\w+)"', source))
    used |= set(re.findall(r'super\(\).__init__\(coordinator, camera, "(\w+)"\)', source))
    used |= set(re.findall(r'super\(\).__init__\(coordinator, "(\w+)"\)', source))
    used |= {"snapshot", "motion_detection", "recording"}  # passed through variables
    assert used - known == set()
    assert {"doorbell", "motion", "last_clip", "record", "connectivity"} <= used


def test_services_documented_and_translated() -> None:
    services = load_yaml_dict(str(INTEGRATION / "services.yaml"))
    assert set(services) == set(EN["services"])
    for name, service in services.items():
        assert set(service.get("fields", {})) == set(EN["services"][name]["fields"]), name
    icons = json.loads((INTEGRATION / "icons.json").read_text())
    assert set(icons["services"]) == set(services)


def test_icons_match_entities() -> None:
    icons = json.loads((INTEGRATION / "icons.json").read_text())
    for platform, keys in icons["entity"].items():
        assert set(keys) <= set(EN["entity"][platform]), platform
        for value in keys.values():
            assert "range" not in value  # range icons need HA 2025.6


def test_quality_scale_lists_every_rule() -> None:
    scale: dict[str, Any] = load_yaml_dict(str(INTEGRATION / "quality_scale.yaml"))["rules"]
    assert set(scale) == RULES
    assert len(RULES) == 54
    for rule, value in scale.items():
        status = value if isinstance(value, str) else value["status"]
        assert status in {"done", "todo", "exempt"}, rule
        if status == "exempt":
            assert value["comment"], rule


@pytest.mark.parametrize(
    "platform", ["binary_sensor", "button", "event", "image", "sensor", "switch"]
)
def test_platforms_set_parallel_updates(platform: str) -> None:
    path = INTEGRATION / f"{platform}.py"
    names = {t.id for n in ast.parse(path.read_text()).body if isinstance(n, ast.Assign)
             for t in n.targets if isinstance(t, ast.Name)}  # fmt: skip
    assert "PARALLEL_UPDATES" in names
