"""binary_sensor.<cam>_person: only for cameras that look for people, fed by <b>/<cam>/person."""

from __future__ import annotations

import json
from unittest.mock import MagicMock

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_mqtt_message

from custom_components.doorstep.const import DOMAIN
from custom_components.doorstep.protocol import parse_bridge_info

from .conftest import (
    BRIDGE_ID,
    TOPICS,
    FakeBridge,
    get_device,
    get_state,
    publish_retained,
    set_mqtt_connected,
    set_up,
)


@pytest.fixture
async def person_entry(
    hass: HomeAssistant, mqtt: MagicMock, config_entry: MockConfigEntry, bridge: FakeBridge
) -> MockConfigEntry:
    """A bridge with two cameras, one of which looks for people."""
    bridge.cameras = {
        "front_door": {"name": "Front door", "person": True},  # type: ignore[dict-item]
        "garden": {"name": "Garden"},
    }
    return await set_up(hass, config_entry, bridge)


@pytest.mark.usefixtures("person_entry")
async def test_person_follows_the_bridge(hass: HomeAssistant) -> None:
    state = get_state(hass, "binary_sensor.front_door_person")
    assert state.state == STATE_UNKNOWN
    assert state.attributes["device_class"] == "occupancy"
    assert state.attributes["friendly_name"] == "Front door Person"
    async_fire_mqtt_message(hass, TOPICS.person("front_door"), "ON")
    await hass.async_block_till_done()
    assert get_state(hass, "binary_sensor.front_door_person").state == STATE_ON
    async_fire_mqtt_message(hass, TOPICS.person("front_door"), "OFF")
    await hass.async_block_till_done()
    assert get_state(hass, "binary_sensor.front_door_person").state == STATE_OFF
    async_fire_mqtt_message(hass, TOPICS.person("front_door"), "maybe")
    await hass.async_block_till_done()
    assert get_state(hass, "binary_sensor.front_door_person").state == STATE_OFF
    async_fire_mqtt_message(hass, TOPICS.camera_available("front_door"), "offline")
    await hass.async_block_till_done()
    assert get_state(hass, "binary_sensor.front_door_person").state == STATE_UNAVAILABLE


@pytest.mark.usefixtures("person_entry")
async def test_a_cleared_person_topic_is_unknown_not_a_malformed_message(
    hass: HomeAssistant, caplog: pytest.LogCaptureFixture
) -> None:
    # The bridge clears the topic of a camera whose person detection was turned off.
    async_fire_mqtt_message(hass, TOPICS.person("front_door"), "ON")
    async_fire_mqtt_message(hass, TOPICS.person("front_door"), "")
    async_fire_mqtt_message(hass, TOPICS.person("garden"), "")
    await hass.async_block_till_done()
    assert get_state(hass, "binary_sensor.front_door_person").state == STATE_UNKNOWN
    assert "malformed" not in caplog.text


@pytest.mark.usefixtures("person_entry")
async def test_only_cameras_that_look_for_people_get_one(hass: HomeAssistant) -> None:
    assert hass.states.get("binary_sensor.garden_person") is None
    assert get_state(hass, "binary_sensor.garden_motion")
    entry = er.async_get(hass).async_get("binary_sensor.front_door_person")
    assert entry is not None
    assert entry.unique_id == f"{BRIDGE_ID}_front_door_person"
    assert entry.translation_key == "person"
    assert entry.device_id == get_device(hass, (DOMAIN, f"{BRIDGE_ID}_front_door")).id


def test_only_true_means_person_detection() -> None:
    info = {
        "id": BRIDGE_ID,
        "name": "Doorstep",
        "version": "1",
        "protocol": 1,
        "base_topic": "doorstep",
        "api_url": "http://127.0.0.1:5080",
        "cameras": {"a": {"person": True}, "b": {"person": "yes"}, "c": {}},
    }
    cameras = {c.key: c.person for c in parse_bridge_info(info).cameras}
    assert cameras == {"a": True, "b": False, "c": False}
    assert TOPICS.person("a") == "doorstep/a/person"


def _info_requests(bridge: FakeBridge) -> int:
    """How often the integration asked for the bridge's info: once per setup or reload."""
    return len([r for r in bridge.requests if r[1] == "/api/info"])


async def test_turned_on_later_the_sensor_comes(
    hass: HomeAssistant, mqtt: MagicMock, bridge: FakeBridge, person_entry: MockConfigEntry
) -> None:
    assert hass.states.get("binary_sensor.garden_person") is None
    # The bridge restarts with person detection on the garden camera too.
    bridge.cameras["garden"] = {"name": "Garden", "person": True}  # type: ignore[dict-item]
    async_fire_mqtt_message(hass, TOPICS.bridge_info, json.dumps(bridge.info()))
    await hass.async_block_till_done()
    assert person_entry.state is ConfigEntryState.LOADED
    assert get_state(hass, "binary_sensor.garden_person")
    assert get_state(hass, "binary_sensor.front_door_person")
    # The same info again, new or retained (the reload subscribed anew), changes nothing:
    # the entities were made with these features.
    reloads = _info_requests(bridge)
    async_fire_mqtt_message(hass, TOPICS.bridge_info, json.dumps(bridge.info()), retain=True)
    async_fire_mqtt_message(hass, TOPICS.bridge_info, json.dumps(bridge.info()))
    await hass.async_block_till_done()
    assert _info_requests(bridge) == reloads


@pytest.mark.parametrize("info_first", [False, True])
async def test_bridge_and_broker_restarted_together(
    *,
    hass: HomeAssistant,
    mqtt: MagicMock,
    mqtt_client_mock: MagicMock,
    bridge: FakeBridge,
    person_entry: MockConfigEntry,
    info_first: bool,
) -> None:
    # Home Assistant loses its broker; the bridge comes back with person detection on the
    # garden camera and publishes its info, retained, before Home Assistant reconnects.
    await set_mqtt_connected(hass, mqtt, mqtt_client_mock, connected=False)
    bridge.cameras["garden"] = {"name": "Garden", "person": True}  # type: ignore[dict-item]
    reloads = _info_requests(bridge)
    await set_mqtt_connected(hass, mqtt, mqtt_client_mock, connected=True)
    # The broker hands the retained topics over in no set order.
    if info_first:
        async_fire_mqtt_message(hass, TOPICS.bridge_info, json.dumps(bridge.info()), retain=True)
    publish_retained(hass, bridge)
    await hass.async_block_till_done()
    assert person_entry.state is ConfigEntryState.LOADED
    assert get_state(hass, "binary_sensor.garden_person")
    # Reloaded once: the reload's subscriptions got the same info retained again.
    assert _info_requests(bridge) == reloads + 1


async def test_the_info_of_a_bridge_not_connected_does_not_reload(
    *,
    hass: HomeAssistant,
    mqtt: MagicMock,
    mqtt_client_mock: MagicMock,
    bridge: FakeBridge,
    person_entry: MockConfigEntry,
) -> None:
    # The bridge restarted without person detection but cannot reach the broker: the
    # broker still holds its old info, and its last will. The entities were made from its
    # API's answer at setup; the old info must not reload them at each reconnection.
    old_info = bridge.info()
    await hass.config_entries.async_unload(person_entry.entry_id)
    bridge.cameras["front_door"] = {"name": "Front door"}
    assert await hass.config_entries.async_setup(person_entry.entry_id)
    await hass.async_block_till_done()
    reloads = _info_requests(bridge)
    for _ in range(2):
        async_fire_mqtt_message(hass, TOPICS.available, "offline", retain=True)
        async_fire_mqtt_message(hass, TOPICS.bridge_info, json.dumps(old_info), retain=True)
        await hass.async_block_till_done()
        await set_mqtt_connected(hass, mqtt, mqtt_client_mock, connected=False)
        await set_mqtt_connected(hass, mqtt, mqtt_client_mock, connected=True)
    assert _info_requests(bridge) == reloads
    assert hass.states.get("binary_sensor.front_door_person") is None
    # Connected again, it publishes its own info, which decides.
    bridge.cameras["front_door"] = {"name": "Front door", "person": True}  # type: ignore[dict-item]
    async_fire_mqtt_message(hass, TOPICS.available, "online", retain=True)
    async_fire_mqtt_message(hass, TOPICS.bridge_info, json.dumps(bridge.info()), retain=True)
    await hass.async_block_till_done()
    assert _info_requests(bridge) == reloads + 1
    assert get_state(hass, "binary_sensor.front_door_person")


async def test_turned_off_later_the_entities_go(
    hass: HomeAssistant, mqtt: MagicMock, bridge: FakeBridge, person_entry: MockConfigEntry
) -> None:
    bridge.cameras["front_door"]["package"] = True  # type: ignore[index]
    async_fire_mqtt_message(hass, TOPICS.bridge_info, json.dumps(bridge.info()))
    await hass.async_block_till_done()
    publish_retained(hass, bridge)  # what the broker hands the reload's subscriptions
    await hass.async_block_till_done()
    registry = er.async_get(hass)
    assert registry.async_get("binary_sensor.front_door_person")
    assert registry.async_get("event.front_door_package")
    # The bridge restarts without person detection or a doorstep zone: the entities are
    # removed, not left behind as "no longer provided".
    bridge.cameras["front_door"] = {"name": "Front door"}
    async_fire_mqtt_message(hass, TOPICS.bridge_info, json.dumps(bridge.info()))
    await hass.async_block_till_done()
    assert person_entry.state is ConfigEntryState.LOADED
    assert registry.async_get("binary_sensor.front_door_person") is None
    assert registry.async_get("event.front_door_package") is None
    assert hass.states.get("binary_sensor.front_door_person") is None
    assert get_state(hass, "binary_sensor.front_door_motion")
