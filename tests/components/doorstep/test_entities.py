"""The entities a user sees, fed by what the bridge publishes."""

from __future__ import annotations

from datetime import timedelta
from http import HTTPStatus
import json
import logging
from pathlib import Path
import re
from typing import Any
from unittest.mock import MagicMock

from homeassistant.components import frontend
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import STATE_OFF, STATE_ON, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_mqtt_message,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator, WebSocketGenerator

from custom_components.doorstep.const import DOMAIN, EVENT_CAMERA
from doorstep_bridge.models import ClipInfo

from ..conftest import LogRecords
from .conftest import (
    BRIDGE_ID,
    T0,
    TOKEN,
    TOPICS,
    FakeBridge,
    clip_info,
    find_device,
    get_device,
    get_state,
    last_publish,
    publish_retained,
    ring,
    set_mqtt_connected,
)

pytestmark = pytest.mark.usefixtures("setup_entry")

HA_DOC = (Path(__file__).resolve().parents[3] / "docs" / "home-assistant.md").read_text("utf-8")


async def test_ring_fires_doorbell_event(hass: HomeAssistant) -> None:
    assert get_state(hass, "event.front_door_doorbell").state == STATE_UNKNOWN
    press = ring(hass)
    await hass.async_block_till_done()
    state = get_state(hass, "event.front_door_doorbell")
    assert state.attributes["event_type"] == "ring"
    assert state.attributes["event_types"] == ["ring"]
    assert state.attributes["device_class"] == "doorbell"
    assert state.attributes["ring_id"] == press.id
    assert state.attributes["time"] == press.time.isoformat()
    first = state.state
    ring(hass, n=2)
    await hass.async_block_till_done()
    assert get_state(hass, "event.front_door_doorbell").attributes["ring_id"] == "r_000000000002"
    assert get_state(hass, "event.front_door_doorbell").state >= first


async def test_a_press_delivered_again_rings_once(hass: HomeAssistant) -> None:
    """QoS 1 is at least once: a redelivery after a broker restart carries the same id."""
    events = async_capture_events(hass, EVENT_CAMERA)
    press = ring(hass)
    ring(hass)  # the same press, delivered again
    ring(hass, n=2)
    await hass.async_block_till_done()
    rings = [event.data for event in events if event.data.get("type") == "doorbell_pressed"]
    assert len(rings) == 2, rings
    assert get_state(hass, "event.front_door_doorbell").attributes["ring_id"] != press.id


async def test_malformed_ring_is_ignored(hass: HomeAssistant) -> None:
    async_fire_mqtt_message(hass, TOPICS.ring("front_door"), '{"id": 1}')
    async_fire_mqtt_message(hass, TOPICS.ring("front_door"), "not json")
    await hass.async_block_till_done()
    assert get_state(hass, "event.front_door_doorbell").state == STATE_UNKNOWN


async def test_a_retained_ring_is_not_a_press(hass: HomeAssistant) -> None:
    """The bridge never retains a ring; a retained one (a test with ``mosquitto_pub -r``)
    is what the broker hands every new subscriber: each Home Assistant start or reload
    would ring the doorbell and notify the phone again."""
    events = async_capture_events(hass, EVENT_CAMERA)
    payload = {"id": "r_000000000009", "camera": "front_door", "time": T0.isoformat()}
    async_fire_mqtt_message(hass, TOPICS.ring("front_door"), json.dumps(payload), retain=True)
    await hass.async_block_till_done()
    assert get_state(hass, "event.front_door_doorbell").state == STATE_UNKNOWN
    assert [e for e in events if e.data.get("type") == "doorbell_pressed"] == []


async def test_motion(hass: HomeAssistant) -> None:
    async_fire_mqtt_message(hass, TOPICS.motion("front_door"), "ON")
    await hass.async_block_till_done()
    assert get_state(hass, "binary_sensor.front_door_motion").state == STATE_ON
    async_fire_mqtt_message(hass, TOPICS.motion("front_door"), "garbage")
    await hass.async_block_till_done()
    assert get_state(hass, "binary_sensor.front_door_motion").state == STATE_ON
    async_fire_mqtt_message(hass, TOPICS.motion("front_door"), "OFF")
    await hass.async_block_till_done()
    assert get_state(hass, "binary_sensor.front_door_motion").state == STATE_OFF


async def test_snapshot_image(
    hass: HomeAssistant,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    assert get_state(hass, "image.front_door_snapshot").state == STATE_UNKNOWN
    jpeg = b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9"
    async_fire_mqtt_message(hass, TOPICS.snapshot("front_door"), jpeg, retain=True)
    await hass.async_block_till_done()
    state = get_state(hass, "image.front_door_snapshot")
    assert state.state != STATE_UNKNOWN
    client = await hass_client()
    response = await client.get("/api/image_proxy/image.front_door_snapshot")
    assert response.status == HTTPStatus.OK
    assert await response.read() == jpeg
    assert response.headers["Content-Type"] == "image/jpeg"
    anonymous = await hass_client_no_auth()
    response = await anonymous.get("/api/image_proxy/image.front_door_snapshot")
    assert response.status == HTTPStatus.FORBIDDEN


async def test_last_clip(hass: HomeAssistant, bridge: FakeBridge) -> None:
    clip: ClipInfo = clip_info("front_door", T0, 17.2, bridge.video)
    async_fire_mqtt_message(hass, TOPICS.clip("front_door"), json.dumps(clip.payload()))
    await hass.async_block_till_done()
    state = get_state(hass, "sensor.front_door_last_clip")
    assert state.state == (T0 + timedelta(seconds=17.2)).isoformat(timespec="seconds")
    assert state.attributes["clip_id"] == clip.id
    assert state.attributes["reason"] == "motion"
    assert state.attributes["duration"] == 17.2
    assert state.attributes["device_class"] == "timestamp"


async def test_switches_go_through_the_http_api(
    hass: HomeAssistant, mqtt: MagicMock, bridge: FakeBridge
) -> None:
    assert get_state(hass, "switch.front_door_motion_detection").state == STATE_ON
    async_fire_mqtt_message(hass, TOPICS.switch("front_door", "recording"), "OFF")
    await hass.async_block_till_done()
    assert get_state(hass, "switch.front_door_recording").state == STATE_OFF
    mqtt.async_publish.reset_mock()
    await hass.services.async_call(
        "switch", "turn_off", {"entity_id": "switch.front_door_motion_detection"}, blocking=True
    )
    assert bridge.switched == [("front_door", "motion_detection", False)]
    method, path, headers = bridge.requests[-1]
    assert (method, path) == ("PUT", "/api/cameras/front_door/switches/motion_detection")
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    # Never over MQTT: the bridge refuses "off" there.
    mqtt.async_publish.assert_not_called()
    # The state waits for the bridge to confirm over MQTT.
    assert get_state(hass, "switch.front_door_motion_detection").state == STATE_ON
    async_fire_mqtt_message(hass, TOPICS.switch("front_door", "motion_detection"), "OFF")
    await hass.async_block_till_done()
    assert get_state(hass, "switch.front_door_motion_detection").state == STATE_OFF
    await hass.services.async_call(
        "switch", "turn_on", {"entity_id": "switch.front_door_recording"}, blocking=True
    )
    assert bridge.switched[-1] == ("front_door", "recording", True)
    mqtt.async_publish.assert_not_called()
    assert get_state(hass, "switch.front_door_recording").state == STATE_OFF


async def test_switches_take_changes_while_the_camera_is_down(
    hass: HomeAssistant, bridge: FakeBridge
) -> None:
    # The camera's stream is down: the bridge still takes the setting.
    async_fire_mqtt_message(hass, TOPICS.camera_available("front_door"), "offline")
    await hass.async_block_till_done()
    assert get_state(hass, "binary_sensor.front_door_motion").state == STATE_UNAVAILABLE
    assert get_state(hass, "switch.front_door_recording").state == STATE_ON
    await hass.services.async_call(
        "switch", "turn_off", {"entity_id": "switch.front_door_recording"}, blocking=True
    )
    assert bridge.switched == [("front_door", "recording", False)]
    # The bridge offline: nothing can set them, and their last state may no longer hold.
    async_fire_mqtt_message(hass, TOPICS.available, "offline")
    await hass.async_block_till_done()
    assert get_state(hass, "switch.front_door_recording").state == STATE_UNAVAILABLE
    assert get_state(hass, "switch.front_door_motion_detection").state == STATE_UNAVAILABLE


@pytest.mark.parametrize(
    ("status", "body", "key", "placeholders"),
    [
        # A bridge older than the switch route: the user is told to update it.
        (404, '{"error": "Not Found"}', "switch_unsupported", {}),
        (400, '{"error": "unknown switch"}', "switch_refused", {"error": "unknown switch"}),
        (401, '{"error": "missing or invalid API token"}', "auth", None),
        (500, '{"error": "internal error"}', "switch_refused", {"error": "internal error"}),
        (502, "<html>proxy</html>", "bridge_error", None),
    ],
)
async def test_switch_errors_are_translated(
    *,
    hass: HomeAssistant,
    bridge: FakeBridge,
    status: int,
    body: str,
    key: str,
    placeholders: dict[str, str] | None,
) -> None:
    path = "/api/cameras/front_door/switches/recording"
    bridge.canned[path] = (status, body)
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            "switch", "turn_off", {"entity_id": "switch.front_door_recording"}, blocking=True
        )
    assert err.value.translation_domain == DOMAIN
    assert err.value.translation_key == key
    if placeholders is not None:
        assert err.value.translation_placeholders == {
            "camera": "front_door", "switch": "recording", **placeholders
        }  # fmt: skip
    assert bridge.switched == []
    assert get_state(hass, "switch.front_door_recording").state == STATE_ON


async def test_switch_error_wording(hass: HomeAssistant, bridge: FakeBridge) -> None:
    bridge.canned["/api/cameras/front_door/switches/recording"] = (404, '{"error": "Not Found"}')
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            "switch", "turn_on", {"entity_id": "switch.front_door_recording"}, blocking=True
        )
    assert "Update the bridge" in str(err.value)
    assert "recording" in str(err.value)


async def test_record_button(hass: HomeAssistant, mqtt: MagicMock) -> None:
    await hass.services.async_call(
        "button", "press", {"entity_id": "button.front_door_record_now"}, blocking=True
    )
    assert last_publish(mqtt) == ("doorstep/front_door/record/set", "", 1, False)


async def test_bridge_entities(hass: HomeAssistant, entity_registry: er.EntityRegistry) -> None:
    assert get_state(hass, "binary_sensor.doorstep_connectivity").state == STATE_ON
    assert get_state(hass, "sensor.doorstep_pending_share_requests").state == "0"
    async_fire_mqtt_message(
        hass, TOPICS.bridge_stats,
        json.dumps({"storage_used_bytes": 5_000_000, "clips": 7}),
    )  # fmt: skip
    async_fire_mqtt_message(hass, TOPICS.bridge_stats, "{bad")
    async_fire_mqtt_message(hass, TOPICS.bridge_stats, '{"clips": "many"}')
    await hass.async_block_till_done()
    # The bridge's features report separately: one figure leaves the others alone.
    async_fire_mqtt_message(hass, TOPICS.bridge_stats, '{"pending_shares": 2}')
    await hass.async_block_till_done()
    assert get_state(hass, "sensor.doorstep_pending_share_requests").state == "2"
    storage = get_state(hass, "sensor.doorstep_storage_used")
    assert float(storage.state) == pytest.approx(5.0)
    assert storage.attributes["unit_of_measurement"] == "MB"
    clips = entity_registry.async_get("sensor.doorstep_clips")
    assert clips is not None
    assert clips.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    connectivity = entity_registry.async_get("binary_sensor.doorstep_connectivity")
    assert connectivity is not None
    assert connectivity.entity_category == "diagnostic"


async def test_devices(hass: HomeAssistant) -> None:
    bridge = get_device(hass, (DOMAIN, BRIDGE_ID))
    camera = get_device(hass, (DOMAIN, f"{BRIDGE_ID}_front_door"))
    assert bridge.name == "Doorstep"
    assert bridge.sw_version == "0.1.0"
    assert camera.name == "Front door"
    assert camera.via_device_id == bridge.id


async def test_bridge_offline_and_back(hass: HomeAssistant, doorstep_log: LogRecords) -> None:
    for _ in range(3):  # repeated "offline" logs once
        async_fire_mqtt_message(hass, TOPICS.available, "offline")
        await hass.async_block_till_done()
    assert get_state(hass, "event.front_door_doorbell").state == STATE_UNAVAILABLE
    assert get_state(hass, "binary_sensor.front_door_motion").state == STATE_UNAVAILABLE
    assert get_state(hass, "sensor.doorstep_pending_share_requests").state == STATE_UNAVAILABLE
    assert get_state(hass, "binary_sensor.doorstep_connectivity").state == STATE_OFF
    assert doorstep_log.levels("went offline") == [logging.INFO]
    async_fire_mqtt_message(hass, TOPICS.available, "bogus")
    async_fire_mqtt_message(hass, TOPICS.available, "online")
    async_fire_mqtt_message(hass, TOPICS.available, "online")
    await hass.async_block_till_done()
    assert get_state(hass, "event.front_door_doorbell").state != STATE_UNAVAILABLE
    assert doorstep_log.levels("back online") == [logging.INFO]


async def test_mqtt_connection_lost_and_back(
    hass: HomeAssistant,
    mqtt: MagicMock,
    mqtt_client_mock: MagicMock,
    bridge: FakeBridge,
    doorstep_log: LogRecords,
) -> None:
    """Without HA's own broker connection nothing (not even the last will) arrives."""
    await set_mqtt_connected(hass, mqtt, mqtt_client_mock, connected=False)
    await set_mqtt_connected(hass, mqtt, mqtt_client_mock, connected=False)  # logged once
    assert get_state(hass, "event.front_door_doorbell").state == STATE_UNAVAILABLE
    assert get_state(hass, "binary_sensor.front_door_motion").state == STATE_UNAVAILABLE
    assert get_state(hass, "sensor.doorstep_pending_share_requests").state == STATE_UNAVAILABLE
    assert get_state(hass, "binary_sensor.doorstep_connectivity").state == STATE_OFF
    assert doorstep_log.levels("lost its MQTT connection") == [logging.INFO]
    # Connected again: the bridge is not assumed up until its retained state says so.
    await set_mqtt_connected(hass, mqtt, mqtt_client_mock, connected=True)
    assert get_state(hass, "binary_sensor.front_door_motion").state == STATE_UNAVAILABLE
    assert get_state(hass, "binary_sensor.doorstep_connectivity").state == STATE_OFF
    publish_retained(hass, bridge)
    await hass.async_block_till_done()
    assert get_state(hass, "binary_sensor.front_door_motion").state == STATE_OFF
    assert get_state(hass, "binary_sensor.doorstep_connectivity").state == STATE_ON
    assert doorstep_log.levels("back online") == [logging.INFO]


async def test_mqtt_back_while_the_bridge_is_gone(
    hass: HomeAssistant, mqtt: MagicMock, mqtt_client_mock: MagicMock
) -> None:
    """The bridge died while HA was cut off: its retained last will keeps it offline."""
    await set_mqtt_connected(hass, mqtt, mqtt_client_mock, connected=False)
    await set_mqtt_connected(hass, mqtt, mqtt_client_mock, connected=True)
    assert get_state(hass, "binary_sensor.doorstep_connectivity").state == STATE_OFF
    async_fire_mqtt_message(hass, TOPICS.available, "offline", retain=True)
    await hass.async_block_till_done()
    assert get_state(hass, "event.front_door_doorbell").state == STATE_UNAVAILABLE
    assert get_state(hass, "binary_sensor.doorstep_connectivity").state == STATE_OFF


async def test_camera_down_and_back(hass: HomeAssistant, doorstep_log: LogRecords) -> None:
    for _ in range(2):
        async_fire_mqtt_message(hass, TOPICS.camera_available("front_door"), "offline")
        await hass.async_block_till_done()
    assert get_state(hass, "binary_sensor.front_door_motion").state == STATE_UNAVAILABLE
    assert get_state(hass, "binary_sensor.doorstep_connectivity").state == STATE_ON
    assert doorstep_log.levels("camera front_door is down") == [logging.INFO]
    async_fire_mqtt_message(hass, TOPICS.camera_available("front_door"), "online")
    await hass.async_block_till_done()
    assert get_state(hass, "binary_sensor.front_door_motion").state == STATE_OFF
    assert doorstep_log.levels("camera front_door is back") == [logging.INFO]


async def test_camera_added_and_removed_without_reload(
    hass: HomeAssistant, bridge: FakeBridge
) -> None:
    bridge.cameras["back_yard"] = {"name": "Back yard"}
    async_fire_mqtt_message(hass, TOPICS.bridge_info, json.dumps(bridge.info()))
    await hass.async_block_till_done()
    assert hass.states.get("event.back_yard_doorbell") is not None
    assert find_device(hass, (DOMAIN, f"{BRIDGE_ID}_back_yard"))
    ring(hass, "back_yard")
    await hass.async_block_till_done()
    assert get_state(hass, "event.back_yard_doorbell").attributes["event_type"] == "ring"

    del bridge.cameras["back_yard"]
    async_fire_mqtt_message(hass, TOPICS.bridge_info, json.dumps(bridge.info()))
    await hass.async_block_till_done()
    assert find_device(hass, (DOMAIN, f"{BRIDGE_ID}_back_yard")) is None
    assert hass.states.get("event.back_yard_doorbell") is None
    assert hass.states.get("event.front_door_doorbell") is not None


async def test_foreign_or_bad_info_is_ignored(hass: HomeAssistant, bridge: FakeBridge) -> None:
    other = {**bridge.info(), "id": "someone-else", "cameras": {}}
    async_fire_mqtt_message(hass, TOPICS.bridge_info, json.dumps(other))
    async_fire_mqtt_message(hass, TOPICS.bridge_info, "{}")
    await hass.async_block_till_done()
    assert get_state(hass, "event.front_door_doorbell").state == STATE_UNKNOWN


async def test_unknown_topics_are_ignored(hass: HomeAssistant) -> None:
    async_fire_mqtt_message(hass, "doorstep/bridge/available", "offline")
    async_fire_mqtt_message(hass, "doorstep/share/snapshot", b"x")
    async_fire_mqtt_message(hass, TOPICS.clip("front_door"), "")
    async_fire_mqtt_message(hass, TOPICS.snapshot("front_door"), b"")
    await hass.async_block_till_done()
    assert get_state(hass, "binary_sensor.front_door_motion").state == STATE_OFF
    assert get_state(hass, "image.front_door_snapshot").state == STATE_UNKNOWN


async def test_user_may_delete_only_stale_devices(
    hass: HomeAssistant, setup_entry: MockConfigEntry, device_registry: dr.DeviceRegistry
) -> None:
    from custom_components.doorstep import async_remove_config_entry_device

    stale = device_registry.async_get_or_create(
        config_entry_id=setup_entry.entry_id, identifiers={(DOMAIN, f"{BRIDGE_ID}_gone")}
    )
    camera = get_device(hass, (DOMAIN, f"{BRIDGE_ID}_front_door"))
    bridge = get_device(hass, (DOMAIN, BRIDGE_ID))
    assert await async_remove_config_entry_device(hass, setup_entry, stale)
    assert not await async_remove_config_entry_device(hass, setup_entry, camera)
    assert not await async_remove_config_entry_device(hass, setup_entry, bridge)


async def test_the_docs_list_every_entity(
    hass: HomeAssistant, setup_entry: MockConfigEntry, bridge: FakeBridge
) -> None:
    """docs/home-assistant.md's table names each entity a camera with everything on gets."""
    bridge.cameras["front_door"].update({"person": True, "package": True})  # type: ignore[dict-item]
    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done()
    table = HA_DOC.split("## Devices and entities", 1)[1].split("\n\n", 2)[1]
    listed = set(re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", table, re.MULTILINE))
    created = {
        entry.entity_id
        for entry in er.async_entries_for_config_entry(er.async_get(hass), setup_entry.entry_id)
    }
    assert created - listed == set(), "entities missing from the docs' table"
    assert listed - created == set(), "the docs' table lists entities that do not exist"


async def test_visit_opens_the_doorstep_panel(hass: HomeAssistant) -> None:
    """The bridge device's "Visit" link: the bridge's address answers only its API (a 404)."""
    bridge_device = get_device(hass, (DOMAIN, BRIDGE_ID))
    assert bridge_device.configuration_url == "homeassistant://doorstep"
    assert "doorstep" in hass.data[frontend.DATA_PANELS]


async def test_a_camera_device_can_be_deleted_while_the_bridge_is_down(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    bridge: FakeBridge,
    hass_ws_client: WebSocketGenerator,
) -> None:
    assert await async_setup_component(hass, "config", {})
    camera = get_device(hass, (DOMAIN, f"{BRIDGE_ID}_front_door"))
    bridge_device = get_device(hass, (DOMAIN, BRIDGE_ID))
    bridge.broken = True  # Home Assistant restarts while the bridge is down
    await hass.config_entries.async_reload(setup_entry.entry_id)
    assert setup_entry.state is ConfigEntryState.SETUP_RETRY
    client = await hass_ws_client(hass)
    for device, removed in ((bridge_device, False), (camera, True)):
        await client.send_json_auto_id(
            {
                "type": "config/device_registry/remove_config_entry",
                "config_entry_id": setup_entry.entry_id,
                "device_id": device.id,
            }
        )
        answer = await client.receive_json()
        assert answer["success"] is removed, answer
        assert (find_device(hass, next(iter(device.identifiers))) is None) is removed


async def test_devices_follow_the_bridge_s_names_and_version(
    hass: HomeAssistant,
    bridge: FakeBridge,
    device_registry: dr.DeviceRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    camera = get_device(hass, (DOMAIN, f"{BRIDGE_ID}_front_door"))
    device_registry.async_update_device(
        get_device(hass, (DOMAIN, BRIDGE_ID)).id, name_by_user="Hall"
    )
    info = bridge.info()
    info["version"] = "0.2.0"
    info["cameras"]["front_door"]["name"] = "Porch"
    async_fire_mqtt_message(hass, TOPICS.bridge_info, json.dumps(info))  # it restarted
    await hass.async_block_till_done()
    assert get_device(hass, (DOMAIN, f"{BRIDGE_ID}_front_door")).name == "Porch"
    bridge_device = get_device(hass, (DOMAIN, BRIDGE_ID))
    assert bridge_device.sw_version == "0.2.0"
    assert bridge_device.name_by_user == "Hall"  # the owner's own name stays
    assert camera.id == get_device(hass, (DOMAIN, f"{BRIDGE_ID}_front_door")).id
    assert "deprecated" not in caplog.text  # HA 2026.8 deprecates async_get_device


async def test_removing_the_bridge_removes_its_saved_prompts_and_presses(
    hass: HomeAssistant, setup_entry: MockConfigEntry, hass_storage: dict[str, Any]
) -> None:
    key = f"doorstep.{setup_entry.entry_id}.approvals"
    hass_storage[key] = {"version": 1, "minor_version": 1, "key": key, "data": {"prompts": {}}}
    rung = f"doorstep.{setup_entry.entry_id}.rung"
    assert rung in hass_storage  # the presses it rang: saved at its first set-up
    assert await hass.config_entries.async_remove(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert key not in hass_storage
    assert rung not in hass_storage


async def test_presses_made_while_away_from_the_broker_ring_once_back(
    hass: HomeAssistant, mqtt: MagicMock, mqtt_client_mock: MagicMock, bridge: FakeBridge
) -> None:
    """Home Assistant reconnects with a new session: the rings sent meanwhile never arrive.

    The bridge sent its queued ring as soon as the broker was back, before Home
    Assistant subscribed again; the integration asks the bridge for what it missed.
    """
    presses = async_capture_events(hass, EVENT_CAMERA)
    await set_mqtt_connected(hass, mqtt, mqtt_client_mock, connected=False)
    now = dt_util.utcnow()
    earlier = {
        "id": "r_old",
        "camera": "front_door",
        "time": (now - timedelta(hours=1)).isoformat(),
    }
    missed = {"id": "r_missed", "camera": "front_door", "time": now.isoformat()}
    bridge.canned["/api/rings"] = (200, json.dumps({"rings": [earlier, missed]}))
    await set_mqtt_connected(hass, mqtt, mqtt_client_mock, connected=True)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert presses == []  # not before the bridge is heard: its entities are unavailable
    publish_retained(hass, bridge)  # the broker hands over the retained state: online
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [(e.data["type"], e.data["ring_id"]) for e in presses] == [
        ("doorbell_pressed", "r_missed")
    ]
    assert get_state(hass, "event.front_door_doorbell").attributes["ring_id"] == "r_missed"
    # The broker delivers it too, later: it rang already.
    async_fire_mqtt_message(hass, TOPICS.ring("front_door"), json.dumps(missed), qos=1)
    await hass.async_block_till_done()
    assert len(presses) == 1


@pytest.mark.parametrize("hours", [-3, 3])
async def test_missed_presses_are_told_by_their_age_on_a_bridge_clock_hours_off(
    hass: HomeAssistant,
    mqtt: MagicMock,
    mqtt_client_mock: MagicMock,
    bridge: FakeBridge,
    hours: int,
) -> None:
    """The bridge's clock is hours off from this one: each press's age says when it was.

    Behind, a press made while Home Assistant was away looks hours old; ahead, a press
    from an hour before looks like one made while it was away.
    """
    presses = async_capture_events(hass, EVENT_CAMERA)
    await set_mqtt_connected(hass, mqtt, mqtt_client_mock, connected=False)
    bridge_now = dt_util.utcnow() + timedelta(hours=hours)

    def press(ring_id: str, age: float) -> dict[str, Any]:
        time = bridge_now - timedelta(seconds=age)
        return {"id": ring_id, "camera": "front_door", "time": time.isoformat(), "age": age}

    rings = [press("r_old", 3600), press("r_missed", 0.5)]
    bridge.canned["/api/rings"] = (200, json.dumps({"rings": rings}))
    await set_mqtt_connected(hass, mqtt, mqtt_client_mock, connected=True)
    publish_retained(hass, bridge)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert [e.data["ring_id"] for e in presses] == ["r_missed"]


async def test_a_bridge_that_cannot_list_its_rings(
    hass: HomeAssistant,
    mqtt: MagicMock,
    mqtt_client_mock: MagicMock,
    bridge: FakeBridge,
    doorstep_log: LogRecords,
) -> None:
    presses = async_capture_events(hass, EVENT_CAMERA)
    await set_mqtt_connected(hass, mqtt, mqtt_client_mock, connected=False)
    await set_mqtt_connected(hass, mqtt, mqtt_client_mock, connected=True)
    publish_retained(hass, bridge)
    await hass.async_block_till_done(wait_background_tasks=True)  # a 404: an older bridge
    assert get_state(hass, "binary_sensor.doorstep_connectivity").state == STATE_ON
    assert doorstep_log.levels("doorbell presses made while") == []
    bridge.canned["/api/rings"] = (500, json.dumps({"error": "boom"}))
    await set_mqtt_connected(hass, mqtt, mqtt_client_mock, connected=False)
    await set_mqtt_connected(hass, mqtt, mqtt_client_mock, connected=True)
    publish_retained(hass, bridge)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert presses == []
    assert doorstep_log.levels("doorbell presses made while") == [logging.WARNING]
