"""Device triggers of a camera, through HA's device automation API and real automations."""

from __future__ import annotations

from datetime import timedelta
import json
from typing import Any

from homeassistant.components import automation
from homeassistant.components.device_automation import (
    DeviceAutomationType,
    async_get_device_automations,
)
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
    async_mock_service,
)

from custom_components.doorstep.const import DOMAIN
from custom_components.doorstep.device_trigger import TRIGGER_TYPES, async_get_triggers

from .conftest import (
    BRIDGE_ID,
    TOPICS,
    FakeBridge,
    clip_info,
    get_device,
    get_state,
    ring,
    share_state,
)

pytestmark = pytest.mark.usefixtures("setup_entry")

CAMERA_DEVICE = (DOMAIN, f"{BRIDGE_ID}_front_door")


async def test_camera_device_lists_doorstep_triggers_first(hass: HomeAssistant) -> None:
    device = get_device(hass, CAMERA_DEVICE)
    triggers = (
        await async_get_device_automations(hass, DeviceAutomationType.TRIGGER, [device.id])
    )[device.id]
    # The automation editor keeps this order: the doorbell comes before the entities' triggers.
    first = [(t["domain"], t["type"]) for t in triggers[: len(TRIGGER_TYPES)]]
    assert first == [(DOMAIN, trigger_type) for trigger_type in TRIGGER_TYPES]
    assert all("entity_id" not in t for t in triggers[: len(TRIGGER_TYPES)])
    assert len(triggers) > len(TRIGGER_TYPES)  # the entities' own triggers follow


async def test_bridge_and_unknown_devices_have_none(hass: HomeAssistant) -> None:
    bridge_device = get_device(hass, (DOMAIN, BRIDGE_ID))
    assert await async_get_triggers(hass, bridge_device.id) == []
    assert await async_get_triggers(hass, "no-such-device") == []


async def _automations(hass: HomeAssistant, device_id: str) -> list[ServiceCall]:
    """One automation per trigger type; each calls ``test.fired`` with what it saw."""
    calls = async_mock_service(hass, "test", "fired")
    assert await async_setup_component(
        hass,
        automation.DOMAIN,
        {
            automation.DOMAIN: [
                {
                    "alias": trigger_type,
                    "triggers": [  # HA 2024.10+ spelling, understood by 2025.4 and current
                        {
                            "platform": "device",
                            "domain": DOMAIN,
                            "device_id": device_id,
                            "type": trigger_type,
                        }
                    ],
                    "actions": [
                        {
                            "action": "test.fired",
                            "data": {
                                "type": "{{ trigger.event.data.type }}",
                                "camera": "{{ trigger.event.data.camera }}",
                                "detail": "{{ trigger.event.data | tojson }}",
                                "description": "{{ trigger.description }}",
                            },
                        }
                    ],
                }
                for trigger_type in TRIGGER_TYPES
            ]
        },
    )
    await hass.async_block_till_done()
    return calls


def _fired(calls: list[ServiceCall]) -> list[tuple[str, dict[str, Any]]]:
    fired = [(str(c.data["type"]), json.loads(str(c.data["detail"]))) for c in calls]
    calls.clear()
    return fired


async def test_doorbell_motion_and_clip_run_automations(
    hass: HomeAssistant, bridge: FakeBridge
) -> None:
    device = get_device(hass, CAMERA_DEVICE)
    calls = await _automations(hass, device.id)

    press = ring(hass)
    await hass.async_block_till_done()
    [(kind, data)] = _fired(calls)
    assert kind == "doorbell_pressed"
    assert data["device_id"] == device.id
    assert data["camera"] == "front_door"
    assert data["ring_id"] == press.id

    async_fire_mqtt_message(hass, TOPICS.motion("front_door"), "ON")
    await hass.async_block_till_done()
    async_fire_mqtt_message(hass, TOPICS.motion("front_door"), "ON")  # a repeat is no start
    async_fire_mqtt_message(hass, TOPICS.motion("front_door"), "OFF")
    await hass.async_block_till_done()
    assert [kind for kind, _ in _fired(calls)] == ["motion_started", "motion_stopped"]

    clip = clip_info("front_door", dt_util.utcnow(), 12.0, bridge.video)
    async_fire_mqtt_message(hass, TOPICS.clip("front_door"), json.dumps(clip.payload()))
    await hass.async_block_till_done()
    async_fire_mqtt_message(hass, TOPICS.clip("front_door"), json.dumps(clip.payload()))
    await hass.async_block_till_done()
    [(kind, data)] = _fired(calls)
    assert (kind, data["clip_id"], data["reason"]) == ("clip_saved", clip.id, "motion")
    assert calls == []
    # The clip is forgotten: the bridge clears the topic, then shows the newest clip left,
    # which is older: neither is a clip saved.
    older = clip_info("front_door", dt_util.utcnow() - timedelta(seconds=30), 5.0, bridge.video)
    async_fire_mqtt_message(hass, TOPICS.clip("front_door"), "", retain=True)
    await hass.async_block_till_done()
    assert get_state(hass, "sensor.front_door_last_clip").state == "unknown"
    async_fire_mqtt_message(hass, TOPICS.clip("front_door"), json.dumps(older.payload()))
    await hass.async_block_till_done()
    assert get_state(hass, "sensor.front_door_last_clip").attributes["clip_id"] == older.id
    assert calls == []


async def test_a_retained_old_clip_is_not_a_saved_clip(
    hass: HomeAssistant, bridge: FakeBridge
) -> None:
    device = get_device(hass, CAMERA_DEVICE)
    calls = await _automations(hass, device.id)
    old = clip_info("front_door", dt_util.utcnow() - timedelta(hours=2), 12.0, bridge.video)
    async_fire_mqtt_message(hass, TOPICS.clip("front_door"), json.dumps(old.payload()), retain=True)
    await hass.async_block_till_done()
    assert calls == []


async def test_share_request_runs_automation_of_each_camera(
    hass: HomeAssistant, bridge: FakeBridge
) -> None:
    device = get_device(hass, CAMERA_DEVICE)
    calls = await _automations(hass, device.id)
    # Another bridge's request is not this camera's.
    hass.bus.async_fire(
        "doorstep_share_requested", {"bridge_id": "elsewhere", "cameras": ["front_door"]}
    )
    share = share_state("s_1", cameras=["front_door", "back_yard"])
    bridge.shares["s_1"] = share
    async_fire_mqtt_message(hass, TOPICS.share("s_1"), json.dumps(share), qos=1)
    await hass.async_block_till_done()
    [(kind, data)] = _fired(calls)  # back_yard has no device here
    assert kind == "share_requested"
    assert (data["share_id"], data["requester"]) == ("s_1", "Neighbour Alice")
    assert data["reason"] == "Parcel went missing"


async def test_triggers_survive_a_reload(
    hass: HomeAssistant, setup_entry: MockConfigEntry, device_registry: dr.DeviceRegistry
) -> None:
    device = get_device(hass, CAMERA_DEVICE)
    calls = await _automations(hass, device.id)
    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert device_registry.async_get(device.id) is not None
    ring(hass)
    await hass.async_block_till_done()
    assert [kind for kind, _ in _fired(calls)] == ["doorbell_pressed"]
