"""What a restart or reload of Home Assistant, the broker or the bridge must not change.

The broker hands its retained messages over again after each of them; an entity that
started from nothing would change to the same old values and run automations for them.
"""

from __future__ import annotations

from datetime import timedelta
import json
from typing import Any
from unittest.mock import MagicMock

from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant, ServiceCall, State
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
    async_mock_service,
    mock_restore_cache_with_extra_data,
)

from custom_components.doorstep.protocol import CLIP_ATTRIBUTES, parse_clip

from .conftest import (
    T0,
    TOPICS,
    FakeBridge,
    clip_info,
    get_state,
    publish_retained,
    set_up,
)

LAST_CLIP = "sensor.front_door_last_clip"


async def _clip_finished_automation(hass: HomeAssistant) -> list[ServiceCall]:
    """The trigger docs/automations.md gives for "a clip finished"."""
    calls = async_mock_service(hass, "test", "clip_finished")
    assert await async_setup_component(
        hass,
        "automation",
        {
            "automation": {
                "triggers": {
                    "trigger": "state",
                    "entity_id": LAST_CLIP,
                    "not_from": STATE_UNAVAILABLE,
                    "not_to": STATE_UNAVAILABLE,
                },
                "actions": {
                    "action": "test.clip_finished",
                    "data": {"clip_id": "{{ trigger.to_state.attributes.clip_id }}"},
                },
            }
        },
    )
    return calls


def _publish_clip(hass: HomeAssistant, clip: Any) -> None:
    """The bridge's last clip, as the broker hands it to a new subscriber."""
    async_fire_mqtt_message(
        hass, TOPICS.clip("front_door"), json.dumps(clip.payload()), retain=True
    )


def _restore_last_clip(hass: HomeAssistant, clip: Any) -> None:
    """What Home Assistant saved of the sensor when it stopped."""
    parsed = parse_clip(clip.payload())
    mock_restore_cache_with_extra_data(
        hass,
        [
            (
                State(LAST_CLIP, parsed.end.isoformat(timespec="seconds"), parsed.attributes()),
                {"native_value": {"__type": "<class 'datetime.datetime'>",
                                  "isoformat": parsed.end.isoformat()},
                 "native_unit_of_measurement": None},
            )
        ],
    )  # fmt: skip


async def test_a_reload_does_not_finish_the_last_clip_again(
    hass: HomeAssistant, bridge: FakeBridge, setup_entry: MockConfigEntry
) -> None:
    clip = clip_info("front_door", T0, 12.0, bridge.video)
    _publish_clip(hass, clip)
    await hass.async_block_till_done()
    before = get_state(hass, LAST_CLIP)
    calls = await _clip_finished_automation(hass)

    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done()
    reloaded = get_state(hass, LAST_CLIP)
    publish_retained(hass, bridge)
    _publish_clip(hass, clip)
    await hass.async_block_till_done()

    assert calls == []
    # The entry came back with the clip it had, before the broker repeated it.
    assert reloaded.state == before.state
    after = get_state(hass, LAST_CLIP)
    assert (after.state, after.attributes) == (before.state, before.attributes)


@pytest.mark.parametrize("finished_meanwhile", [False, True])
async def test_a_restart_keeps_the_last_clip(
    *,
    hass: HomeAssistant,
    mqtt: MagicMock,
    bridge: FakeBridge,
    config_entry: MockConfigEntry,
    finished_meanwhile: bool,
) -> None:
    old = clip_info("front_door", T0, 12.0, bridge.video)
    _restore_last_clip(hass, old)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    restored = get_state(hass, LAST_CLIP)
    calls = await _clip_finished_automation(hass)

    # The broker hands over the bridge's last clip: the same one is nothing new; one
    # that finished while Home Assistant was down is shown, and runs the automation once.
    new = clip_info("front_door", T0 + timedelta(minutes=5), 8.0, bridge.video, 1)
    retained = new if finished_meanwhile else old
    publish_retained(hass, bridge)
    _publish_clip(hass, retained)
    await hass.async_block_till_done()
    assert [call.data["clip_id"] for call in calls] == ([new.id] if finished_meanwhile else [])
    assert get_state(hass, LAST_CLIP).attributes["clip_id"] == retained.id
    # Before the broker's copy came, the sensor showed the clip it had, as it had it.
    assert restored.state == (T0 + timedelta(seconds=12)).isoformat(timespec="seconds")
    assert {key: restored.attributes[key] for key in CLIP_ATTRIBUTES} == parse_clip(
        old.payload()
    ).attributes()


async def test_a_restart_with_no_clip_left_says_so(
    hass: HomeAssistant, mqtt: MagicMock, bridge: FakeBridge, config_entry: MockConfigEntry
) -> None:
    # Restored, then the bridge clears its clip topic (the last clip was forgotten).
    _restore_last_clip(hass, clip_info("front_door", T0, 12.0, bridge.video))
    await set_up(hass, config_entry, bridge)
    assert get_state(hass, LAST_CLIP).state != STATE_UNKNOWN
    async_fire_mqtt_message(hass, TOPICS.clip("front_door"), "", retain=True)
    await hass.async_block_till_done()
    state = get_state(hass, LAST_CLIP)
    assert state.state == STATE_UNKNOWN
    assert "clip_id" not in state.attributes
