"""event.<cam>_package: parcels left and taken, for cameras with a doorstep zone; and a
ring made while the entry begins to listen."""

from __future__ import annotations

from datetime import timedelta
import json
from typing import Any
from unittest.mock import MagicMock

from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_mqtt_message,
)

from custom_components.doorstep.const import DOMAIN, EVENT_CAMERA
from custom_components.doorstep.protocol import ProtocolError, parse_package

from .conftest import BRIDGE_ID, TOPICS, FakeBridge, get_device, get_state, set_up

AT = "2026-12-01T09:30:00+00:00"


def _package(kind: str, camera: str = "front_door") -> str:
    return json.dumps({"camera": camera, "type": kind, "time": AT})


@pytest.fixture
async def package_entry(
    hass: HomeAssistant, mqtt: MagicMock, config_entry: MockConfigEntry, bridge: FakeBridge
) -> MockConfigEntry:
    """A bridge with two cameras, one of which has a doorstep zone."""
    bridge.cameras = {
        "front_door": {"name": "Front door", "package": True},  # type: ignore[dict-item]
        "garden": {"name": "Garden"},
    }
    return await set_up(hass, config_entry, bridge)


@pytest.mark.usefixtures("package_entry")
async def test_delivered_then_removed(hass: HomeAssistant) -> None:
    state = get_state(hass, "event.front_door_package")
    assert state.state == STATE_UNKNOWN
    assert state.attributes["event_types"] == ["delivered", "removed"]
    async_fire_mqtt_message(hass, TOPICS.package("front_door"), _package("delivered"))
    await hass.async_block_till_done()
    state = get_state(hass, "event.front_door_package")
    assert state.attributes["event_type"] == "delivered"
    assert state.attributes["time"] == AT
    # The picture of the moment: the camera's snapshot, through HA.
    assert state.attributes["snapshot"] == "/api/image_proxy/image.front_door_snapshot"
    assert state.state != STATE_UNKNOWN
    async_fire_mqtt_message(hass, TOPICS.package("front_door"), _package("removed"))
    await hass.async_block_till_done()
    assert get_state(hass, "event.front_door_package").attributes["event_type"] == "removed"


@pytest.mark.usefixtures("package_entry")
async def test_bad_or_retained_messages_fire_nothing(hass: HomeAssistant) -> None:
    topic = TOPICS.package("front_door")
    async_fire_mqtt_message(hass, topic, _package("stolen"))
    async_fire_mqtt_message(hass, topic, "not json")
    async_fire_mqtt_message(hass, topic, _package("delivered"), retain=True)
    await hass.async_block_till_done()
    assert get_state(hass, "event.front_door_package").state == STATE_UNKNOWN


@pytest.mark.usefixtures("package_entry")
async def test_only_cameras_with_a_doorstep_zone_get_one(hass: HomeAssistant) -> None:
    assert hass.states.get("event.garden_package") is None
    assert get_state(hass, "event.garden_doorbell")
    entry = er.async_get(hass).async_get("event.front_door_package")
    assert entry is not None
    assert entry.unique_id == f"{BRIDGE_ID}_front_door_package"
    assert entry.translation_key == "package"
    assert entry.device_id == get_device(hass, (DOMAIN, f"{BRIDGE_ID}_front_door")).id


def test_parse_package() -> None:
    package = parse_package(_package("removed"))
    assert (package.camera, package.type, package.time.isoformat()) == (
        "front_door",
        "removed",
        AT,
    )
    with pytest.raises(ProtocolError, match="delivered or removed"):
        parse_package(_package("lost"))


@pytest.mark.usefixtures("package_entry")
async def test_the_snapshot_follows_the_image_entity(hass: HomeAssistant) -> None:
    registry = er.async_get(hass)
    registry.async_update_entity("image.front_door_snapshot", new_entity_id="image.step")
    async_fire_mqtt_message(hass, TOPICS.package("front_door"), _package("delivered"))
    await hass.async_block_till_done()
    state = get_state(hass, "event.front_door_package")
    assert state.attributes["snapshot"] == "/api/image_proxy/image.step"
    registry.async_remove("image.step")
    await hass.async_block_till_done()
    async_fire_mqtt_message(hass, TOPICS.package("front_door"), _package("removed"))
    await hass.async_block_till_done()
    state = get_state(hass, "event.front_door_package")
    assert state.attributes["event_type"] == "removed"
    assert "snapshot" not in state.attributes


async def test_a_press_made_while_the_entry_begins_to_listen_rings_once(
    hass: HomeAssistant, mqtt: MagicMock, config_entry: MockConfigEntry, bridge: FakeBridge
) -> None:
    """Right after Home Assistant starts or the entry is set up or reloaded, its
    subscriptions reach the broker a moment later: a press meanwhile reached no one,
    though the doorbell entity was already there. The bridge lists it: it rings once
    the bridge is heard. Presses from before the entry began to listen do not (one made
    just before a reload rang on the entry unloaded)."""
    presses = async_capture_events(hass, EVENT_CAMERA)
    now = dt_util.utcnow()

    def press(ring_id: str, age: float | None) -> dict[str, Any]:
        time = now - timedelta(seconds=age or 0.0)
        ring = {"id": ring_id, "camera": "front_door", "time": time.isoformat()}
        return ring if age is None else {**ring, "age": age}

    missed = press("r_missed", 0.0)
    rings = [press("r_before", 30.0), missed, press("r_no_age", None)]
    bridge.canned["/api/rings"] = (200, json.dumps({"rings": rings}))
    await set_up(hass, config_entry, bridge)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert [e.data["ring_id"] for e in presses] == ["r_missed"]
    assert get_state(hass, "event.front_door_doorbell").attributes["ring_id"] == "r_missed"
    # The broker delivers it as well, later: it rang already.
    async_fire_mqtt_message(hass, TOPICS.ring("front_door"), json.dumps(missed), qos=1)
    await hass.async_block_till_done()
    assert len(presses) == 1
