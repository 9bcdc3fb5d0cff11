"""Setup, unload, reload and the entities a user sees."""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry

from .conftest import FakeBridge, get_state


async def test_setup_creates_entities(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    assert setup_entry.state is ConfigEntryState.LOADED
    for entity_id in (
        "event.front_door_doorbell",
        "binary_sensor.front_door_motion",
        "image.front_door_snapshot",
        "sensor.front_door_last_clip",
    ):
        assert hass.states.get(entity_id) is not None, entity_id
    assert get_state(hass, "binary_sensor.front_door_motion").state == "off"


async def test_unload(
    hass: HomeAssistant, setup_entry: MockConfigEntry, bridge: FakeBridge
) -> None:
    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert setup_entry.state is ConfigEntryState.NOT_LOADED
    assert get_state(hass, "event.front_door_doorbell").state == "unavailable"
