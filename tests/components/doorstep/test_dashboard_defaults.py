"""What HA's default dashboard shows: the last ring, and a picture even without a snapshot."""

from __future__ import annotations

from http import HTTPStatus

from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant, State
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
    mock_restore_cache_with_extra_data,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.doorstep.image import PLACEHOLDER

from .conftest import T0, TOPICS, get_state, ring

SNAPSHOT = "image.front_door_snapshot"
JPEG = b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9"


@pytest.mark.usefixtures("setup_entry")
async def test_last_ring_sensor(hass: HomeAssistant) -> None:
    state = get_state(hass, "sensor.front_door_last_ring")
    assert state.state == STATE_UNKNOWN
    assert state.attributes["device_class"] == "timestamp"
    assert state.attributes["friendly_name"] == "Front door Last ring"
    press = ring(hass)
    await hass.async_block_till_done()
    state = get_state(hass, "sensor.front_door_last_ring")
    assert state.state == T0.isoformat(timespec="seconds")
    assert state.attributes["ring_id"] == press.id


async def test_last_ring_survives_a_restart(
    hass: HomeAssistant, setup_entry_later: MockConfigEntry
) -> None:
    # A press is not retained on the broker: only HA's restore state remembers it.
    mock_restore_cache_with_extra_data(
        hass,
        [
            (
                State("sensor.front_door_last_ring", T0.isoformat(), {"ring_id": "r_000000000007"}),
                {"native_value": {"__type": "<class 'datetime.datetime'>",
                                  "isoformat": T0.isoformat()},
                 "native_unit_of_measurement": None},
            )
        ],
    )  # fmt: skip
    setup_entry_later.add_to_hass(hass)
    assert await hass.config_entries.async_setup(setup_entry_later.entry_id)
    await hass.async_block_till_done()
    state = get_state(hass, "sensor.front_door_last_ring")
    assert state.state == T0.isoformat(timespec="seconds")
    # With the press's id: the same press before and after the restart.
    assert state.attributes["ring_id"] == "r_000000000007"


@pytest.fixture
def setup_entry_later(mqtt: object, config_entry: MockConfigEntry) -> MockConfigEntry:
    """The entry, with MQTT ready, for a test that sets it up itself."""
    return config_entry


async def _picture(hass_client: ClientSessionGenerator) -> bytes:
    client = await hass_client()
    response = await client.get(f"/api/image_proxy/{SNAPSHOT}")
    assert response.status == HTTPStatus.OK
    assert response.headers["Content-Type"] == "image/jpeg"
    return await response.read()


@pytest.mark.usefixtures("setup_entry")
async def test_placeholder_until_a_snapshot_and_while_the_camera_is_down(
    hass: HomeAssistant, hass_client: ClientSessionGenerator
) -> None:
    placeholder = PLACEHOLDER.read_bytes()
    assert placeholder[:3] == b"\xff\xd8\xff"  # a JPEG, like the snapshots
    assert get_state(hass, SNAPSHOT).state == STATE_UNKNOWN
    assert await _picture(hass_client) == placeholder

    async_fire_mqtt_message(hass, TOPICS.snapshot("front_door"), JPEG, retain=True)
    await hass.async_block_till_done()
    with_snapshot = get_state(hass, SNAPSHOT).state
    assert await _picture(hass_client) == JPEG

    async_fire_mqtt_message(hass, TOPICS.camera_available("front_door"), "offline")
    await hass.async_block_till_done()
    down = get_state(hass, SNAPSHOT).state
    # Still available, with a new time so the dashboard fetches the placeholder.
    assert down not in (STATE_UNAVAILABLE, with_snapshot)
    assert await _picture(hass_client) == placeholder

    async_fire_mqtt_message(hass, TOPICS.camera_available("front_door"), "online")
    await hass.async_block_till_done()
    assert get_state(hass, SNAPSHOT).state == with_snapshot
    assert await _picture(hass_client) == JPEG


@pytest.mark.usefixtures("setup_entry")
async def test_snapshot_unavailable_with_the_bridge(hass: HomeAssistant) -> None:
    async_fire_mqtt_message(hass, TOPICS.available, "offline")
    await hass.async_block_till_done()
    assert get_state(hass, SNAPSHOT).state == STATE_UNAVAILABLE
