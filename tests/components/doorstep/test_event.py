"""event.<cam>_package: parcels left and taken, for cameras with a doorstep zone."""

from __future__ import annotations

import json
from unittest.mock import MagicMock

from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_mqtt_message

from custom_components.doorstep.const import DOMAIN
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
