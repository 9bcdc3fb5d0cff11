"""Recording that fails (a full disk): binary_sensor.<cam>_recording_problem and a repair."""

from __future__ import annotations

import json

from homeassistant.const import STATE_OFF, STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_fire_mqtt_message

from custom_components.doorstep.const import DOMAIN
from doorstep_bridge.events import RecordingProblem

from .conftest import BRIDGE_ID, TOPICS, FakeBridge, get_state, publish_as_the_bridge

SENSOR = "binary_sensor.front_door_recording_problem"
ISSUE = f"recording_problem_{BRIDGE_ID}_front_door"
FULL = "cannot write c_20261204T190316_front_door_b687.partial.mp4: No space left on device"


def publish(hass: HomeAssistant, problem: str | None, *, retain: bool = False) -> None:
    """Send the camera's recording problem as the bridge does."""
    publish_as_the_bridge(
        hass, RecordingProblem("front_door", problem, dt_util.utcnow()), retain=retain
    )


def issue(issue_registry: ir.IssueRegistry) -> ir.IssueEntry | None:
    return issue_registry.async_get_issue(DOMAIN, ISSUE)


@pytest.mark.usefixtures("setup_entry")
async def test_a_full_disk_turns_the_problem_on_and_raises_a_repair_naming_it(
    hass: HomeAssistant, entity_registry: er.EntityRegistry, issue_registry: ir.IssueRegistry
) -> None:
    entry = entity_registry.async_get(SENSOR)
    assert entry is not None
    assert entry.entity_category == "diagnostic"
    assert entry.translation_key == "recording_problem"
    state = get_state(hass, SENSOR)
    assert state.state == STATE_OFF  # nothing retained: recording works
    assert state.attributes["device_class"] == "problem"
    assert state.attributes["friendly_name"] == "Front door Recording problem"
    assert issue(issue_registry) is None

    publish(hass, FULL)
    await hass.async_block_till_done()
    state = get_state(hass, SENSOR)
    assert state.state == STATE_ON
    assert state.attributes["problem"] == FULL
    found = issue(issue_registry)
    assert found is not None
    assert found.translation_key == "recording_problem"
    assert found.severity is ir.IssueSeverity.ERROR
    assert found.is_fixable is False
    assert found.translation_placeholders == {
        "camera": "Front door",
        "camera_key": "front_door",
        "bridge": "Doorstep",
        "problem": FULL,
    }

    publish(hass, None)  # a clip was kept again
    await hass.async_block_till_done()
    assert get_state(hass, SENSOR).state == STATE_OFF
    assert "problem" not in get_state(hass, SENSOR).attributes
    assert issue(issue_registry) is None


@pytest.mark.usefixtures("setup_entry")
async def test_a_malformed_problem_is_ignored(
    hass: HomeAssistant, issue_registry: ir.IssueRegistry
) -> None:
    for payload in ("{bad", '{"problem": ""}', '{"problem": 3}'):
        async_fire_mqtt_message(hass, TOPICS.recording_problem("front_door"), payload)
        await hass.async_block_till_done()
    assert get_state(hass, SENSOR).state == STATE_OFF
    assert issue(issue_registry) is None


@pytest.mark.usefixtures("setup_entry")
async def test_the_repair_goes_with_the_camera(
    hass: HomeAssistant, bridge: FakeBridge, issue_registry: ir.IssueRegistry
) -> None:
    publish(hass, FULL)
    await hass.async_block_till_done()
    assert issue(issue_registry) is not None
    bridge.cameras = {"back_yard": {"name": "Back yard"}}
    # The bridge restarted without the camera (a live message: not marked retained).
    async_fire_mqtt_message(hass, TOPICS.bridge_info, json.dumps(bridge.info()))
    await hass.async_block_till_done()
    assert issue(issue_registry) is None
