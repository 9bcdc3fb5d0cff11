"""The MQTT contract as the integration reads it: the bridge's topics, and what is refused.

Names and final states come from the bridge's own modules. Malformed messages go
through HA's MQTT like any other, and must leave the state as it was.
"""

from __future__ import annotations

import json
from typing import Any

from homeassistant.const import STATE_UNKNOWN
from homeassistant.core import HomeAssistant
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_mqtt_message
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.doorstep import protocol
from doorstep_bridge.mqtt import topics as bridge_topics
from doorstep_bridge.sharing.state import FINAL

from ..conftest import LogRecords
from .conftest import BRIDGE_ID, T0, TOPICS, FakeBridge, clip_info, get_state, share_state


@pytest.mark.parametrize("base", ["doorstep", "home/doorstep"])
def test_topics_are_the_bridges(base: str) -> None:
    ours, theirs = protocol.Topics(base), bridge_topics.Topics(base)
    assert (ours.available, ours.bridge_info, ours.bridge_stats) == (
        theirs.available,
        theirs.bridge_info,
        theirs.bridge_stats,
    )
    assert ours.bridge_egress == theirs.bridge_egress
    for name in ("camera_available", "motion", "ring", "clip", "snapshot", "record_set"):
        assert getattr(ours, name)("front_door") == getattr(theirs, name)("front_door"), name
    for switch in protocol.SWITCHES:
        assert ours.switch("front_door", switch) == theirs.switch("front_door", switch)
        assert ours.switch_set("front_door", switch) == theirs.switch_set("front_door", switch)
    assert ours.share("s_1") == theirs.share("s_1")
    assert protocol.discovery_topic(BRIDGE_ID) == theirs.discovery(BRIDGE_ID)


def test_camera_topics_of_other_bridges_are_not_ours() -> None:
    topics = protocol.Topics("doorstep")
    assert topics.split_camera_topic("doorstep/front_door/motion") == ("front_door", "motion")
    assert topics.split_camera_topic("door2/front_door/motion") is None
    assert topics.split_camera_topic("doorstep/share/motion") is None
    assert topics.split_camera_topic("doorstep/front_door/motion/set") is None


@pytest.mark.parametrize("state", protocol.SHARE_STATES)
def test_final_states_are_the_bridges(state: str) -> None:
    parsed = protocol.parse_share(share_state("s_1", state))
    assert parsed.final is (state in {str(s) for s in FINAL})


@pytest.mark.parametrize(
    "changes",
    [
        {"cameras": "front_door"},  # not a list
        {"cameras": ["front_door", 7]},
        {"decision": "approved"},  # not an object
        {"requester": 42},
        {"start": "2026-11-23T09:00:00"},  # no timezone
        {"start": "yesterday"},
        {"start": 1_700_000_000},
        {"state": "lost"},
    ],
)
async def test_malformed_share_states_are_ignored(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    doorstep_log: LogRecords,
    changes: dict[str, Any],
) -> None:
    async_fire_mqtt_message(hass, TOPICS.share("s_1"), json.dumps(share_state("s_1", **changes)))
    await hass.async_block_till_done()
    assert "s_1" not in setup_entry.runtime_data.coordinator.data.shares
    assert "Ignoring malformed share state on doorstep/share/s_1" in doorstep_log.text


@pytest.mark.parametrize(
    "changes",
    [
        {"duration": "12.5"},
        {"duration": True},
        {"has_snapshot": "yes"},
        {"held": None},
        {"size": 1.5},
        {"end": "2026-11-23"},  # a date, no time zone
    ],
)
@pytest.mark.usefixtures("setup_entry")
async def test_malformed_clips_are_ignored(
    hass: HomeAssistant, bridge: FakeBridge, doorstep_log: LogRecords, changes: dict[str, Any]
) -> None:
    clip = {**clip_info("front_door", T0, 12.5, bridge.video).payload(), **changes}
    async_fire_mqtt_message(hass, TOPICS.clip("front_door"), json.dumps(clip))
    await hass.async_block_till_done()
    assert get_state(hass, "sensor.front_door_last_clip").state == STATE_UNKNOWN
    assert "Ignoring malformed message on doorstep/front_door/clip" in doorstep_log.text


@pytest.mark.usefixtures("setup_entry")
async def test_a_removed_cameras_cleared_topics_are_not_malformed(
    hass: HomeAssistant, doorstep_log: LogRecords
) -> None:
    # The bridge clears what a camera taken out of its config left retained: an empty
    # retained message per topic, which read as one malformed message each.
    for leaf in ("status", "available", "motion", "motion_detection", "recording", "clip"):
        async_fire_mqtt_message(hass, f"doorstep/back_yard/{leaf}", "", retain=True)
    await hass.async_block_till_done()
    assert "malformed" not in doorstep_log.text
    # A camera the bridge has still says so when a message makes no sense.
    async_fire_mqtt_message(hass, TOPICS.motion("front_door"), "")
    await hass.async_block_till_done()
    assert "Ignoring malformed message on doorstep/front_door/motion" in doorstep_log.text


@pytest.mark.parametrize("camera", ["share", "bridge"])
@pytest.mark.usefixtures("setup_entry")
async def test_bridge_info_with_a_reserved_camera_name_is_ignored(
    hass: HomeAssistant, bridge: FakeBridge, doorstep_log: LogRecords, camera: str
) -> None:
    info = bridge.info()
    info["cameras"] = {**info["cameras"], camera: {"name": "Odd"}}
    async_fire_mqtt_message(hass, TOPICS.bridge_info, json.dumps(info))
    await hass.async_block_till_done()
    assert hass.states.get(f"event.{camera}_doorbell") is None
    assert f"cameras.{camera}: invalid camera" in doorstep_log.text


def test_camera_status_without_cameras() -> None:
    """An info answer without per-camera state leaves the cameras' state unknown."""
    assert protocol.parse_camera_status({"cameras": None}) == {}
    status = protocol.parse_camera_status({"cameras": {"front_door": {"online": "yes"}}})
    assert status["front_door"] == protocol.CameraStatus(None, None, None, None)


async def test_retention_periods_reach_the_diagnostics(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    bridge: FakeBridge,
    hass_client: ClientSessionGenerator,
) -> None:
    info = {**bridge.info(), "retention": {"ring": 30, "motion": 7.5, "manual": 30, "x": "y"}}
    async_fire_mqtt_message(hass, TOPICS.bridge_info, json.dumps(info))
    await hass.async_block_till_done()
    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, setup_entry)
    assert diagnostics["bridge"]["info"]["retention"] == {"ring": 30, "motion": 7.5, "manual": 30}
    # An older bridge says nothing about retention.
    assert protocol.parse_bridge_info({**bridge.info(), "retention": [30]}).retention == {}


def test_a_listed_ring_says_its_age_or_not() -> None:
    ring = {"id": "r_1", "camera": "front_door", "time": "2026-11-23T10:00:00+00:00"}
    assert protocol.parse_ring(ring).age is None  # a ring message, or an older bridge
    assert protocol.parse_ring({**ring, "age": 12.5}).age == 12.5
    for age in (-1, "12", True):
        with pytest.raises(protocol.ProtocolError, match="age"):
            protocol.parse_ring({**ring, "age": age})
