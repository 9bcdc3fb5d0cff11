"""event.<cam>_package: parcels left and taken, for cameras with a doorstep zone; and
presses made while the entry begins to listen, reloads, or Home Assistant restarts."""

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

from .conftest import (
    BRIDGE_ID,
    TOPICS,
    FakeBridge,
    get_device,
    get_state,
    publish_retained,
    set_up,
)

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


def _press(ring_id: str, age: float | None) -> dict[str, Any]:
    """A press as the bridge lists it, made ``age`` seconds ago (None: an older bridge)."""
    time = dt_util.utcnow() - timedelta(seconds=age or 0.0)
    ring = {"id": ring_id, "camera": "front_door", "time": time.isoformat()}
    return ring if age is None else {**ring, "age": age}


async def test_a_press_made_while_the_entry_begins_to_listen_rings_once(
    hass: HomeAssistant, mqtt: MagicMock, config_entry: MockConfigEntry, bridge: FakeBridge
) -> None:
    """Right after the entry is set up, its subscriptions reach the broker a moment
    later: a press meanwhile reached no one, though the doorbell entity was already
    there. The bridge lists it: it rings once the bridge is heard. At the entry's very
    first set-up, presses from before it began to listen do not."""
    presses = async_capture_events(hass, EVENT_CAMERA)
    missed = _press("r_missed", 0.0)
    rings = [_press("r_before", 30.0), missed, _press("r_no_age", None)]
    bridge.canned["/api/rings"] = (200, json.dumps({"rings": rings}))
    await set_up(hass, config_entry, bridge)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert [e.data["ring_id"] for e in presses] == ["r_missed"]
    assert get_state(hass, "event.front_door_doorbell").attributes["ring_id"] == "r_missed"
    # The broker delivers it as well, later: it rang already.
    async_fire_mqtt_message(hass, TOPICS.ring("front_door"), json.dumps(missed), qos=1)
    await hass.async_block_till_done()
    assert len(presses) == 1


@pytest.mark.usefixtures("mqtt")
async def test_a_press_made_while_home_assistant_restarted_rings_once_it_is_back(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    config_entry: MockConfigEntry,
    bridge: FakeBridge,
) -> None:
    """Home Assistant restarting (an update) takes a minute or more, and nothing listens
    meanwhile. The entry ran before: the presses made since are asked of the bridge and
    ring once it is heard, up to 10 minutes old; the one the last run rang does not ring
    again, and what rings now is kept for the next start."""
    key = f"{DOMAIN}.{config_entry.entry_id}.rung"
    hass_storage[key] = {
        "version": 1,
        "key": key,
        "data": {"since": "2026-01-01T00:00:00+00:00", "rings": {"front_door": ["r_rung"]}},
    }
    presses = async_capture_events(hass, EVENT_CAMERA)
    rings = [
        _press("r_old", 700.0),  # before the 10 minutes
        _press("r_rung", 95.0),  # rang just before Home Assistant stopped
        _press("r_restart", 40.0),  # while it restarted
        _press("r_no_age", None),  # an older bridge: its clock is not this one's
    ]
    bridge.canned["/api/rings"] = (200, json.dumps({"rings": rings}))
    await set_up(hass, config_entry, bridge)
    await hass.async_block_till_done(wait_background_tasks=True)

    assert [e.data["ring_id"] for e in presses] == ["r_restart"]
    assert hass_storage[key]["data"] == {
        "since": "2026-01-01T00:00:00+00:00",
        "rings": {"front_door": ["r_rung", "r_restart"]},
    }


@pytest.mark.usefixtures("mqtt")
async def test_a_press_made_while_the_entry_reloads_rings_once(
    hass: HomeAssistant,
    hass_storage: dict[str, Any],
    config_entry: MockConfigEntry,
    bridge: FakeBridge,
) -> None:
    """A reload (options saved, an update of the integration): the press the unloaded entry
    rang does not ring again, the one made in between does. Nothing from before the entry
    was first set up rings."""
    presses = async_capture_events(hass, EVENT_CAMERA)
    bridge.canned["/api/rings"] = (200, json.dumps({"rings": [_press("r_earlier", 20.0)]}))
    await set_up(hass, config_entry, bridge)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert presses == []
    # Saved at once: a start after this one knows the entry listened before.
    assert hass_storage[f"{DOMAIN}.{config_entry.entry_id}.rung"]["data"]["rings"] == {}

    rung = _press("r_rung", 0.0)
    async_fire_mqtt_message(hass, TOPICS.ring("front_door"), json.dumps(rung), qos=1)
    await hass.async_block_till_done()
    assert [e.data["ring_id"] for e in presses] == ["r_rung"]

    between = _press("r_between", 0.0)
    rings = [_press("r_earlier", 21.0), {**rung, "age": 1.0}, between]
    bridge.canned["/api/rings"] = (200, json.dumps({"rings": rings}))
    assert await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done()
    publish_retained(hass, bridge)
    await hass.async_block_till_done(wait_background_tasks=True)

    # r_earlier was made before the entry was first set up: it still does not ring.
    assert [e.data["ring_id"] for e in presses] == ["r_rung", "r_between"]
