"""sensor.doorstep_blocked_connections and the repair issue that names what tried to go where."""

from __future__ import annotations

import json

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_mqtt_message

from custom_components.doorstep.const import DOMAIN

from ..conftest import LogRecords
from .conftest import BRIDGE_ID, TOPICS, get_state

SENSOR = "sensor.doorstep_blocked_connections"
ISSUE = f"egress_blocked_{BRIDGE_ID}"
LAST = {
    "action": "connect",
    "destination": "192.0.2.1:443",
    "caller": "some_plugin:phone_home",
    "thread": "phone-home",
    "at": "2026-11-23T10:15:02.417+00:00",
}


async def _report(hass: HomeAssistant, payload: object) -> None:
    async_fire_mqtt_message(hass, TOPICS.bridge_egress, json.dumps(payload))
    await hass.async_block_till_done()


@pytest.mark.usefixtures("setup_entry")
async def test_refusals_are_counted_and_raise_a_repair(hass: HomeAssistant) -> None:
    issues = ir.async_get(hass)
    await _report(hass, {"blocked": 0, "last": None})
    assert get_state(hass, SENSOR).state == "0"
    assert issues.async_get_issue(DOMAIN, ISSUE) is None

    await _report(hass, {"blocked": 2, "last": LAST})

    state = get_state(hass, SENSOR)
    assert state.state == "2"
    assert state.attributes["last_destination"] == "192.0.2.1:443"
    assert state.attributes["last_caller"] == "some_plugin:phone_home"
    assert state.attributes["last_action"] == "connect"
    issue = issues.async_get_issue(DOMAIN, ISSUE)
    assert issue is not None
    assert issue.translation_key == "egress_blocked"
    assert issue.severity is ir.IssueSeverity.WARNING
    assert issue.translation_placeholders == {
        "name": "Doorstep",
        "count": "2",
        "caller": "some_plugin:phone_home",
        "destination": "192.0.2.1:443",
    }
    # The bridge restarted with nothing refused: the count and the issue start over.
    await _report(hass, {"blocked": 0, "last": None})
    assert get_state(hass, SENSOR).state == "0"
    assert issues.async_get_issue(DOMAIN, ISSUE) is None


@pytest.mark.usefixtures("setup_entry")
@pytest.mark.parametrize(
    "payload",
    ["not json", {"last": None}, {"blocked": True}, {"blocked": -1}, {"blocked": 1, "last": [1]}],
)
async def test_malformed_reports_are_ignored(
    hass: HomeAssistant, doorstep_log: LogRecords, payload: object
) -> None:
    await _report(hass, {"blocked": 1, "last": LAST})
    if isinstance(payload, str):
        async_fire_mqtt_message(hass, TOPICS.bridge_egress, payload)
        await hass.async_block_till_done()
    else:
        await _report(hass, payload)
    assert get_state(hass, SENSOR).state == "1"
    assert "Ignoring malformed message on doorstep/bridge/egress" in doorstep_log.text


async def test_the_repair_comes_with_the_sensor_disabled(
    hass: HomeAssistant, setup_entry: MockConfigEntry
) -> None:
    er.async_get(hass).async_update_entity(SENSOR, disabled_by=er.RegistryEntryDisabler.USER)
    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert hass.states.get(SENSOR) is None

    await _report(hass, {"blocked": 1, "last": LAST})

    issue = ir.async_get(hass).async_get_issue(DOMAIN, ISSUE)
    assert issue is not None
    assert issue.translation_placeholders is not None
    assert issue.translation_placeholders["destination"] == "192.0.2.1:443"
