"""The automations in docs/automations.md, run against the real entities."""

from __future__ import annotations

from pathlib import Path
import re
from typing import Any

from homeassistant.components import automation
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_mock_service
import yaml

from .conftest import ring

pytestmark = pytest.mark.usefixtures("setup_entry")

DOC = Path(__file__).resolve().parents[3] / "docs" / "automations.md"


def _automation(alias: str) -> dict[str, Any]:
    """The automation called ``alias`` in the doc's Home Assistant YAML blocks."""
    text = DOC.read_text(encoding="utf-8")
    for block in re.findall(r"^```yaml homeassistant\n(.*?)^```", text, re.MULTILINE | re.DOTALL):
        for found in yaml.safe_load(block).get("automation", []):
            if found["alias"] == alias:
                return dict(found)
    raise AssertionError(f"no automation {alias!r} in {DOC.name}")


async def test_doorbell_to_phone_notifies_once_per_press(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    calls = async_mock_service(hass, "notify", "mobile_app_my_phone")
    config = {"automation": [_automation("Doorbell → phone")]}
    assert await async_setup_component(hass, automation.DOMAIN, config)
    await hass.async_block_till_done()
    ring(hass, n=1)
    await hass.async_block_till_done()
    assert [call.data["message"] for call in calls] == ["Someone is at the front door"]
    ring(hass, n=1)  # the same press delivered again
    await hass.async_block_till_done()
    # The integration reloads (it does so itself when the bridge's cameras change): the
    # doorbell entity goes and comes back with its last ring. Nobody pressed.
    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert len(calls) == 1
    ring(hass, n=2)
    await hass.async_block_till_done()
    assert len(calls) == 2
