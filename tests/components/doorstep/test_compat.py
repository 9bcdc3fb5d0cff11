"""Names the integration takes from Home Assistant still exist in HA 2026.11.

The suite runs on two lanes, HA 2025.4.4 and the newest HA the test plugin pins;
2026.11 itself is read statically from its wheel: every ``homeassistant`` import
and module attribute the integration uses must be defined there too. Skips
cleanly when the wheel is not cached and cannot be downloaded. The runtime
tests at the end check that each lane takes its side of ``compat.py``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
import os
from pathlib import Path
import re
import subprocess
import sys
import zipfile

from homeassistant import config_entries
from homeassistant.components import event
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.doorstep import compat
from custom_components.doorstep.const import (
    CONF_LINK_TTL_HOURS,
    CONF_NOTIFICATION_DETAIL,
    CONF_OFFER_UNREDACTED,
)

from .conftest import BRIDGE_ID, get_device

HA_VERSION = "2026.11.0"
PEP758 = re.compile(r"^(\s*)except ([^():\n]+,[^():\n]+):", re.MULTILINE)
INTEGRATION = Path(__file__).resolve().parents[3] / "custom_components" / "doorstep"
CACHE = Path(os.environ.get("DOORSTEP_HA_WHEEL_DIR", Path.home() / ".cache" / "doorstep-ha-wheels"))


def _wheel() -> Path | None:
    wheels = sorted(CACHE.glob(f"homeassistant-{HA_VERSION}-*.whl"))
    if wheels:
        return wheels[0]
    CACHE.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--python-version", "3.14.9", "--implementation", "cp", "--abi", "cp314",
        "--platform", "manylinux_2_28_x86_64", f"homeassistant=={HA_VERSION}", "-d", str(CACHE),
    ]  # fmt: skip
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=600)
    except (OSError, subprocess.SubprocessError):
        return None
    wheels = sorted(CACHE.glob(f"homeassistant-{HA_VERSION}-*.whl"))
    return wheels[0] if wheels else None


class Wheel:
    """Module sources of one HA wheel."""

    def __init__(self, path: Path) -> None:
        self._zip = zipfile.ZipFile(path)
        self._names = set(self._zip.namelist())
        self._trees: dict[str, ast.Module] = {}

    def path_of(self, module: str) -> str | None:
        base = module.replace(".", "/")
        for candidate in (f"{base}.py", f"{base}/__init__.py"):
            if candidate in self._names:
                return candidate
        return None

    def source(self, module: str) -> str:
        path = self.path_of(module)
        assert path, f"{module} is gone in HA {HA_VERSION}"
        return self._zip.read(path).decode()

    def tree(self, module: str) -> ast.Module:
        if module not in self._trees:
            source = self.source(module)
            # Python 3.14 allows ``except A, B:`` (PEP 758); this 3.13 parser does not.
            source = PEP758.sub(r"\1except (\2):", source)
            self._trees[module] = ast.parse(source)
        return self._trees[module]

    def defines(self, module: str, name: str) -> bool:
        """``name`` is importable from ``module`` (defined, re-exported or a submodule)."""
        if self.path_of(f"{module}.{name}"):
            return True
        return name in _top_level_names(self.tree(module))


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.Assign):
                names.update(t.id for t in node.targets if isinstance(t, ast.Name))
            elif isinstance(node, ast.AnnAssign | ast.TypeAlias) and isinstance(
                getattr(node, "target", None) or getattr(node, "name", None), ast.Name
            ):
                target = node.target if isinstance(node, ast.AnnAssign) else node.name
                names.add(target.id)  # type: ignore[union-attr]
            elif isinstance(node, ast.Import | ast.ImportFrom):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.If | ast.Try):
                visit(node.body)
                visit(node.orelse)
                for handler in getattr(node, "handlers", []):
                    visit(handler.body)

    visit(tree.body)
    return names


@pytest.fixture(scope="module")
def wheel() -> Wheel:
    path = _wheel()
    if path is None:
        pytest.skip(f"homeassistant {HA_VERSION} wheel not cached in {CACHE} and not downloadable")
    return Wheel(path)


def _integration_sources() -> dict[str, ast.Module]:
    return {p.name: ast.parse(p.read_text()) for p in sorted(INTEGRATION.glob("*.py"))}


def _ha_imports() -> Iterator[tuple[str, str, str, str]]:
    """(file, module, name, local alias) for every ``from homeassistant... import``."""
    for file, tree in _integration_sources().items():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("homeassistant"):
                for alias in node.names:
                    yield file, node.module or "", alias.name, alias.asname or alias.name
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("homeassistant"):
                        yield file, alias.name, "", alias.asname or alias.name


def test_every_import_exists(wheel: Wheel) -> None:
    missing = [
        f"{file}: from {module} import {name}"
        for file, module, name, _ in _ha_imports()
        if not (wheel.defines(module, name) if name else wheel.path_of(module))
    ]
    assert not missing


def test_every_module_attribute_exists(wheel: Wheel) -> None:
    """``mqtt.async_subscribe``, ``dr.async_get``, ``dt_util.utcnow``..."""
    missing: list[str] = []
    for file, tree in _integration_sources().items():
        modules = {
            alias: f"{module}.{name}"
            for f, module, name, alias in _ha_imports()
            if f == file and name and wheel.path_of(f"{module}.{name}")
        }
        missing.extend(
            f"{file}: {modules[node.value.id]}.{node.attr}"
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
            and not wheel.defines(modules[node.value.id], node.attr)
        )
    assert not missing


@pytest.mark.parametrize(
    ("module", "snippet"),
    [
        # The fallbacks' modern branches.
        ("homeassistant.config_entries", "class OptionsFlowWithReload("),
        ("homeassistant.components.event", "DoorbellEventType"),
        # Flow helpers used for reauth/reconfigure/discovery.
        ("homeassistant.config_entries", "def async_update_reload_and_abort("),
        ("homeassistant.config_entries", "def _abort_if_unique_id_mismatch("),
        ("homeassistant.config_entries", "def _get_reauth_entry("),
        ("homeassistant.config_entries", "def _get_reconfigure_entry("),
        ("homeassistant.config_entries", "def async_loaded_entries("),
        ("homeassistant.config_entries", "def async_forward_entry_setups("),
        ("homeassistant.config_entries", "def async_unload_platforms("),
        ("homeassistant.data_entry_flow", "def add_suggested_values_to_schema("),
        # Devices: the via_device_id branch and the calls made.
        ("homeassistant.helpers.device_registry", "via_device_id: str"),
        ("homeassistant.helpers.device_registry", "def async_remove_device("),
        ("homeassistant.helpers.device_registry", "def async_entries_for_config_entry("),
        ("homeassistant.helpers.device_registry", "def async_get_device_by_identifier(\n        self, identifier: tuple[str, str], config_entry_id: str"),
        # MQTT publish/subscribe keep qos, retain and encoding.
        ("homeassistant.components.mqtt.client", "retain: bool"),
        ("homeassistant.components.mqtt.client", "encoding: str | None = DEFAULT_ENCODING"),
        # Runtime helpers the integration calls on HA objects.
        ("homeassistant.config_entries", "def async_create_background_task["),
        ("homeassistant.config_entries", "def async_on_unload("),
        ("homeassistant.auth", "async def async_get_user(self, user_id: str)"),
        ("homeassistant.core", "def async_services_for_domain("),
        ("homeassistant.helpers.update_coordinator", "def async_set_updated_data("),
        ("homeassistant.helpers.update_coordinator", "config_entry: config_entries.ConfigEntry"),
        ("homeassistant.components.event.entity", "def _trigger_event("),
        ("homeassistant.components.logbook.const", "LOGBOOK_ENTRY_MESSAGE ="),
        # Media source and views.
        ("homeassistant.components.media_source.models", "class PlayMedia:\n    \"\"\"Represents a playable media.\"\"\"\n\n    url: str\n    mime_type: str"),
        ("homeassistant.helpers.http", "requires_auth = True"),
        ("homeassistant.components.image.entity", "def __init__(self, hass: HomeAssistant"),
    ],
)  # fmt: skip
def test_apis_used_are_there(wheel: Wheel, module: str, snippet: str) -> None:
    assert snippet in wheel.source(module)


def test_deprecated_device_lookup_only_as_the_fallback() -> None:
    """HA 2026.8 deprecates ``async_get_device``: only compat.py calls it, for HA 2025.4."""
    callers = [
        p.name for p in sorted(INTEGRATION.glob("*.py")) if ".async_get_device(" in p.read_text()
    ]
    assert callers == ["compat.py"]


def test_no_removed_api_is_used() -> None:
    """Names removed or signature-broken between 2025.4 and 2026.11 (docs/ha-compat notes)."""
    text = "\n".join(p.read_text() for p in INTEGRATION.glob("*.py"))
    for gone in (
        "hass.helpers", "hass.components", "async_forward_entry_setup(", "register_static_path(",
        "OptionsFlowWithConfigEntry", "self.config_entry =", "verify_domain_control",
        "async_extract_entity_ids", "async_on_subscribe_done", "show_advanced_options",
        "description_placeholders=", "qos=None", "retain=None", "async_track_state_change(",
        'hass.data["media_source"]', "async_config_entry_first_refresh",
    ):  # fmt: skip
        if gone == "description_placeholders=":
            # Allowed in flows; only service registration must not pass it.
            assert (
                "async_register(" not in text
                or "description_placeholders" not in (INTEGRATION / "services.py").read_text()
            )
            continue
        assert gone not in text, gone


PROBATIO = "0.13.0"


def _probatio_wheel() -> Path | None:
    wheels = sorted(CACHE.glob(f"probatio-{PROBATIO}-*.whl"))
    if not wheels:
        command = [
            sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
            "--python-version", "3.14", f"probatio=={PROBATIO}", "-d", str(CACHE),
        ]  # fmt: skip
        try:
            subprocess.run(command, check=True, capture_output=True, timeout=300)
        except (OSError, subprocess.SubprocessError):
            return None
        wheels = sorted(CACHE.glob(f"probatio-{PROBATIO}-*.whl"))
    return wheels[0] if wheels else None


def test_voluptuous_names_survive_probatio() -> None:
    """HA 2026.9+ aliases ``voluptuous`` to probatio's shim of the public API only."""
    path = _probatio_wheel()
    if path is None:
        pytest.skip(f"probatio {PROBATIO} wheel not cached in {CACHE} and not downloadable")
    with zipfile.ZipFile(path) as wheel:
        surface = ast.parse(wheel.read("probatio/_vol_shim/_surface.py").decode())
        schema_source = wheel.read("probatio/schema.py").decode()
    top = next(
        ast.literal_eval(node.value)
        for node in surface.body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "TOP"
    )
    used = {
        node.attr
        for tree in _integration_sources().values()
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
        and node.value.id == "vol"
    }  # fmt: skip
    assert used, "the integration uses voluptuous"
    assert used - set(top) == set()
    assert "def extend(" in schema_source  # DECISION_SCHEMA.extend(...)


# Runtime: each lane takes the side of compat.py that its HA offers -----------------


async def test_options_reload_the_entry_once(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    """HA >= 2025.8 reloads after the options flow by itself; HA 2025.4 needs a listener.

    An update listener next to a reloading flow is deprecated from HA 2026.6, so
    there must be none where HA reloads by itself.
    """
    reloads_itself = hasattr(config_entries, "OptionsFlowWithReload")
    assert compat.NEEDS_UPDATE_LISTENER is not reloads_itself
    assert bool(setup_entry.update_listeners) is compat.NEEDS_UPDATE_LISTENER
    before = setup_entry.runtime_data
    result = await hass.config_entries.options.async_init(setup_entry.entry_id)
    options = {
        CONF_LINK_TTL_HOURS: 12,
        CONF_NOTIFICATION_DETAIL: "minimal",
        CONF_OFFER_UNREDACTED: False,
    }
    await hass.config_entries.options.async_configure(result["flow_id"], options)
    await hass.async_block_till_done()
    assert setup_entry.state is ConfigEntryState.LOADED
    assert setup_entry.runtime_data is not before
    assert setup_entry.runtime_data.options[CONF_LINK_TTL_HOURS] == 12


@pytest.mark.usefixtures("setup_entry")
async def test_camera_device_hangs_under_the_bridge(hass: HomeAssistant) -> None:
    """``via_device_id`` from HA 2026.8, ``via_device`` before; the same link either way."""
    assert compat.HAS_VIA_DEVICE_ID is hasattr(dr.DeviceEntry, "config_entry_id")
    bridge = get_device(hass, ("doorstep", BRIDGE_ID))
    camera = get_device(hass, ("doorstep", f"{BRIDGE_ID}_front_door"))
    assert camera.via_device_id == bridge.id


def test_doorbell_event_type() -> None:
    """HA's own ``DoorbellEventType.RING`` from HA 2026.5, the same string before."""
    assert compat.RING == "ring"
    standard = getattr(event, "DoorbellEventType", None)
    assert type(compat.RING) is (type(standard.RING) if standard else str)
