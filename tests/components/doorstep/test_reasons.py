"""Why a camera is down: its status sensor and its repair issue."""

from __future__ import annotations

from datetime import timedelta
import json
import logging
from unittest.mock import MagicMock

from freezegun.api import FrozenDateTimeFactory
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
    async_fire_time_changed,
)

from custom_components.doorstep.const import CAMERA_ISSUE_DELAY, DOMAIN
from custom_components.doorstep.protocol import STREAM_STATUSES
from doorstep_bridge.models import CameraHealth, StreamStatus

from ..conftest import LogRecords
from .conftest import BRIDGE_ID, TOPICS, FakeBridge, get_state

SENSOR = "sensor.front_door_status"
ISSUE = f"camera_down_{BRIDGE_ID}_front_door"
DETAIL = "rtsp://***@192.0.2.10/stream: user or password refused (401)"


def status(
    hass: HomeAssistant,
    state: StreamStatus,
    detail: str | None = None,
    *,
    retain: bool = False,
    bridge_clock: timedelta = timedelta(0),
    **since: float,
) -> str:
    """Publish the camera's status as the bridge does (its own payload builder).

    ``retain``: handed over by the broker (a status from before), not just published;
    ``bridge_clock``: how far the bridge's clock is ahead of this one.
    """
    moment = dt_util.utcnow() + bridge_clock - timedelta(**since)
    payload = json.dumps(CameraHealth(state, moment, detail).payload())
    async_fire_mqtt_message(hass, TOPICS.camera_status("front_door"), payload, retain=retain)
    return payload


def issue(issue_registry: ir.IssueRegistry) -> ir.IssueEntry | None:
    return issue_registry.async_get_issue(DOMAIN, ISSUE)


@pytest.mark.usefixtures("setup_entry")
async def test_the_status_sensor_names_the_reason(
    hass: HomeAssistant, entity_registry: er.EntityRegistry, doorstep_log: LogRecords
) -> None:
    entry = entity_registry.async_get(SENSOR)
    assert entry is not None
    assert entry.entity_category == "diagnostic"
    assert entry.translation_key == "stream_status"
    state = get_state(hass, SENSOR)
    assert state.state == STATE_UNKNOWN  # nothing heard yet
    assert state.attributes["device_class"] == "enum"
    assert state.attributes["options"] == list(STREAM_STATUSES)
    assert set(STREAM_STATUSES) == {str(s) for s in StreamStatus}

    # The camera goes down: every other entity is unavailable, the status says why.
    async_fire_mqtt_message(hass, TOPICS.camera_available("front_door"), "offline")
    payload = status(hass, StreamStatus.AUTH_FAILED, DETAIL)
    await hass.async_block_till_done()
    # The same status again (a broker restart delivers it again): no news, no log line.
    async_fire_mqtt_message(hass, TOPICS.camera_status("front_door"), payload)
    await hass.async_block_till_done()
    assert get_state(hass, "binary_sensor.front_door_motion").state == STATE_UNAVAILABLE
    state = get_state(hass, SENSOR)
    assert state.state == "auth_failed"
    assert state.attributes["detail"] == DETAIL
    assert state.attributes["since"]
    assert doorstep_log.levels("camera front_door: auth_failed") == [logging.INFO]

    for reason in ("not_found", "refused", "unreachable", "no_video", "error"):
        status(hass, StreamStatus(reason), f"because {reason}")
        await hass.async_block_till_done()
        assert get_state(hass, SENSOR).state == reason

    async_fire_mqtt_message(hass, TOPICS.camera_available("front_door"), "online")
    status(hass, StreamStatus.ONLINE)
    await hass.async_block_till_done()
    state = get_state(hass, SENSOR)
    assert state.state == "online"
    assert state.attributes["detail"] is None

    # Without the bridge there is nothing to say.
    async_fire_mqtt_message(hass, TOPICS.available, "offline")
    await hass.async_block_till_done()
    assert get_state(hass, SENSOR).state == STATE_UNAVAILABLE


@pytest.mark.usefixtures("setup_entry")
async def test_malformed_statuses_are_ignored(
    hass: HomeAssistant, doorstep_log: LogRecords
) -> None:
    status(hass, StreamStatus.REFUSED, "connection refused")
    await hass.async_block_till_done()
    topic = TOPICS.camera_status("front_door")
    for payload in ("{bad", '{"status": "on_fire"}', '{"status": "online", "since": "yesterday"}'):
        async_fire_mqtt_message(hass, topic, payload)
        await hass.async_block_till_done()
    async_fire_mqtt_message(hass, topic, "")  # a cleared retained topic
    await hass.async_block_till_done()
    assert get_state(hass, SENSOR).state == "refused"
    assert len(doorstep_log.levels("Ignoring malformed message on doorstep/front_door/status")) == 3


@pytest.mark.usefixtures("setup_entry")
async def test_a_wrong_password_is_a_repair_at_once_named_after_the_camera(
    hass: HomeAssistant, issue_registry: ir.IssueRegistry
) -> None:
    status(hass, StreamStatus.AUTH_FAILED, DETAIL)
    await hass.async_block_till_done()
    found = issue(issue_registry)
    assert found is not None
    assert found.translation_key == "camera_auth_failed"
    assert found.severity is ir.IssueSeverity.ERROR
    assert found.is_fixable is False
    assert found.translation_placeholders == {
        "camera": "Front door",
        "bridge": "Doorstep",
        "detail": DETAIL,
    }
    # Another reason: the same issue, now telling that one.
    status(hass, StreamStatus.NOT_FOUND, "DESCRIBE failed: 404 Not Found")
    await hass.async_block_till_done()
    found = issue(issue_registry)
    assert found is not None
    assert found.translation_key == "camera_not_found"
    # Connecting (the bridge restarts) says nothing new: the issue stays.
    status(hass, StreamStatus.CONNECTING)
    await hass.async_block_till_done()
    assert issue(issue_registry) is not None
    status(hass, StreamStatus.ONLINE)
    await hass.async_block_till_done()
    assert issue(issue_registry) is None


@pytest.mark.usefixtures("setup_entry")
async def test_a_camera_that_refuses_is_a_repair_once_it_stays_down(
    hass: HomeAssistant, issue_registry: ir.IssueRegistry, freezer: FrozenDateTimeFactory
) -> None:
    # A blip (a camera rebooting) raises nothing.
    status(hass, StreamStatus.REFUSED, "connection refused")
    await hass.async_block_till_done()
    freezer.tick(CAMERA_ISSUE_DELAY / 2)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert issue(issue_registry) is None
    status(hass, StreamStatus.ONLINE)
    await hass.async_block_till_done()
    freezer.tick(CAMERA_ISSUE_DELAY)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert issue(issue_registry) is None

    # Down for good: the issue comes after the delay, and goes when the camera is back.
    status(hass, StreamStatus.UNREACHABLE, "no answer from the camera")
    await hass.async_block_till_done()
    freezer.tick(CAMERA_ISSUE_DELAY / 2)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert issue(issue_registry) is None
    freezer.tick(CAMERA_ISSUE_DELAY / 2 + 1)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    found = issue(issue_registry)
    assert found is not None
    assert found.translation_key == "camera_unreachable"
    status(hass, StreamStatus.ONLINE)
    await hass.async_block_till_done()
    assert issue(issue_registry) is None


@pytest.mark.parametrize("hours", [-3, 3])
@pytest.mark.usefixtures("setup_entry")
async def test_a_bridge_clock_hours_off_waits_the_delay_no_more_no_less(
    hass: HomeAssistant,
    issue_registry: ir.IssueRegistry,
    freezer: FrozenDateTimeFactory,
    hours: int,
) -> None:
    """The bridge's ``since`` is on its clock: behind, a blip looks hours old; ahead, to come."""
    clock = timedelta(hours=hours)
    status(hass, StreamStatus.UNREACHABLE, "no answer from the camera", bridge_clock=clock)
    await hass.async_block_till_done()
    assert issue(issue_registry) is None
    freezer.tick(CAMERA_ISSUE_DELAY / 2)
    async_fire_time_changed(hass)
    # The same status again, with another detail: still counted from when it began.
    status(hass, StreamStatus.UNREACHABLE, "still no answer", bridge_clock=clock,
           seconds=CAMERA_ISSUE_DELAY / 2)  # fmt: skip
    await hass.async_block_till_done()
    assert issue(issue_registry) is None
    freezer.tick(CAMERA_ISSUE_DELAY / 2 + 1)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert issue(issue_registry) is not None


@pytest.mark.usefixtures("setup_entry")
async def test_a_camera_down_for_long_already_is_a_repair_at_once(
    hass: HomeAssistant, issue_registry: ir.IssueRegistry
) -> None:
    # Home Assistant restarted; the bridge's retained status says since when.
    status(
        hass, StreamStatus.NO_VIDEO, "no data for 5 s", retain=True, seconds=CAMERA_ISSUE_DELAY + 60
    )
    await hass.async_block_till_done()
    found = issue(issue_registry)
    assert found is not None
    assert found.translation_key == "camera_no_video"


@pytest.mark.usefixtures("setup_entry")
async def test_the_issue_goes_with_the_camera(
    hass: HomeAssistant, bridge: FakeBridge, issue_registry: ir.IssueRegistry
) -> None:
    status(hass, StreamStatus.ERROR, "the camera closed the connection", retain=True, hours=1)
    await hass.async_block_till_done()
    assert issue(issue_registry) is not None
    bridge.cameras = {"back_yard": {"name": "Back yard"}}
    # The bridge restarted without the camera (a live message: not marked retained).
    async_fire_mqtt_message(hass, TOPICS.bridge_info, json.dumps(bridge.info()))
    await hass.async_block_till_done()
    assert issue(issue_registry) is None


async def test_the_status_at_setup_comes_from_the_api(
    hass: HomeAssistant,
    mqtt: MagicMock,
    bridge: FakeBridge,
    config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    info = bridge.info()
    since = (dt_util.utcnow() - timedelta(hours=1)).isoformat()
    info["cameras"] = {
        "front_door": {
            "name": "Front door",
            "online": False,
            "status": "auth_failed",
            "status_detail": DETAIL,
            "status_since": since,
        }
    }
    bridge.canned["/api/info"] = (200, json.dumps(info))
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    state = get_state(hass, SENSOR)
    assert state.state == "auth_failed"
    assert state.attributes["detail"] == DETAIL
    assert issue(issue_registry) is not None
    # Unloading stops every pending timer with the entry.
    status(hass, StreamStatus.REFUSED, "connection refused")
    await hass.async_block_till_done()
    assert await hass.config_entries.async_unload(config_entry.entry_id)
    await hass.async_block_till_done()
