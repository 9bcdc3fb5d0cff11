"""Setup failures, repairs, reload and diagnostics."""

from __future__ import annotations

import asyncio
import json
from typing import Any
from unittest.mock import MagicMock, patch

from freezegun.api import FrozenDateTimeFactory
from homeassistant.config_entries import SOURCE_REAUTH, ConfigEntryDisabler, ConfigEntryState
from homeassistant.const import CONF_API_TOKEN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_fire_mqtt_message,
    async_fire_time_changed,
)
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.doorstep.const import DOMAIN, UNREACHABLE_ISSUE_DELAY

from ..conftest import LogRecords
from .conftest import (
    BRIDGE_ID,
    EXPORT_SIGNING_KEY,
    T0,
    TOKEN,
    TOPICS,
    FakeBridge,
    clip_info,
    find_device,
    get_state,
    publish_retained,
    set_mqtt_connected,
    share_state,
)


async def test_rejected_token_starts_reauth(
    hass: HomeAssistant, mqtt: MagicMock, config_entry: MockConfigEntry, bridge: FakeBridge
) -> None:
    bridge.token = "rotated"
    config_entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress()
    assert [f["context"]["source"] for f in flows] == [SOURCE_REAUTH]


async def test_unreachable_bridge_retries(
    hass: HomeAssistant, mqtt: MagicMock, config_entry: MockConfigEntry, bridge: FakeBridge
) -> None:
    bridge.broken = True
    config_entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.SETUP_RETRY


async def test_no_mqtt_retries(hass: HomeAssistant, config_entry: MockConfigEntry) -> None:
    config_entry.add_to_hass(hass)
    with patch("custom_components.doorstep.mqtt.async_wait_for_mqtt_client", return_value=False):
        assert not await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.SETUP_RETRY


async def test_reload_keeps_working(
    hass: HomeAssistant, setup_entry: MockConfigEntry, bridge: FakeBridge
) -> None:
    assert await hass.config_entries.async_reload(setup_entry.entry_id)
    await hass.async_block_till_done()
    assert setup_entry.state is ConfigEntryState.LOADED
    async_fire_mqtt_message(hass, TOPICS.motion("front_door"), "ON")
    await hass.async_block_till_done()
    assert get_state(hass, "binary_sensor.front_door_motion").state == "on"


async def test_unload_unsubscribes(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    await hass.async_block_till_done()
    async_fire_mqtt_message(hass, TOPICS.motion("front_door"), "ON")
    await hass.async_block_till_done()
    assert get_state(hass, "binary_sensor.front_door_motion").state == "unavailable"


async def test_unreachable_repair_issue(
    hass: HomeAssistant,
    bridge: FakeBridge,
    setup_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    issue_id = f"bridge_unreachable_{BRIDGE_ID}"
    async_fire_mqtt_message(hass, TOPICS.available, "offline")
    await hass.async_block_till_done()
    freezer.tick(120)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None  # a short blip
    freezer.tick(240)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert issue.translation_key == "bridge_unreachable"
    assert issue.translation_placeholders == {
        "name": "Doorstep",
        "health": f"{bridge.url}/api/health",
    }
    async_fire_mqtt_message(hass, TOPICS.available, "online")
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None


@pytest.mark.parametrize("change", ["remove", "disable"])
async def test_a_bridge_no_longer_set_up_leaves_no_repair_behind(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
    freezer: FrozenDateTimeFactory,
    change: str,
) -> None:
    # Nothing watches a deleted or disabled bridge: its repairs stayed in Settings > Repairs.
    unreachable = f"bridge_unreachable_{BRIDGE_ID}"
    async_fire_mqtt_message(hass, TOPICS.available, "offline")
    await hass.async_block_till_done()
    freezer.tick(UNREACHABLE_ISSUE_DELAY + 1)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, unreachable) is not None
    # A camera's issue (its id goes on after the bridge's), and another bridge's.
    camera_down, other = f"camera_down_{BRIDGE_ID}_front_door", "bridge_unreachable_other"
    for issue_id in (camera_down, other):
        ir.async_create_issue(
            hass, DOMAIN, issue_id, is_fixable=False, severity=ir.IssueSeverity.ERROR,
            translation_key="bridge_unreachable", translation_placeholders={"name": "x"},
        )  # fmt: skip
    if change == "remove":
        await hass.config_entries.async_remove(setup_entry.entry_id)
    else:
        await hass.config_entries.async_set_disabled_by(
            setup_entry.entry_id, ConfigEntryDisabler.USER
        )
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, unreachable) is None
    assert issue_registry.async_get_issue(DOMAIN, camera_down) is None
    assert issue_registry.async_get_issue(DOMAIN, other) is not None


async def test_mqtt_connection_lost_raises_the_repair_after_a_while(
    *,
    hass: HomeAssistant,
    mqtt: MagicMock,
    mqtt_client_mock: MagicMock,
    setup_entry: MockConfigEntry,
    bridge: FakeBridge,
    issue_registry: ir.IssueRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    issue_id = f"bridge_unreachable_{BRIDGE_ID}"
    await set_mqtt_connected(hass, mqtt, mqtt_client_mock, connected=False)
    freezer.tick(120)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None  # a short blip
    freezer.tick(240)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is not None
    await set_mqtt_connected(hass, mqtt, mqtt_client_mock, connected=True)
    publish_retained(hass, bridge)
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None


async def test_mqtt_not_connected_at_setup(
    *,
    hass: HomeAssistant,
    mqtt: MagicMock,
    mqtt_client_mock: MagicMock,
    config_entry: MockConfigEntry,
    bridge: FakeBridge,
    doorstep_log: LogRecords,
) -> None:
    """HA still connecting: the bridge's HTTP answer says nothing of what MQTT will bring."""
    await set_mqtt_connected(hass, mqtt, mqtt_client_mock, connected=False)
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert get_state(hass, "binary_sensor.front_door_motion").state == "unavailable"
    assert get_state(hass, "binary_sensor.doorstep_connectivity").state == "off"
    await set_mqtt_connected(hass, mqtt, mqtt_client_mock, connected=True)
    publish_retained(hass, bridge)
    await hass.async_block_till_done()
    assert get_state(hass, "binary_sensor.front_door_motion").state == "off"
    assert get_state(hass, "binary_sensor.doorstep_connectivity").state == "on"
    assert "offline" not in doorstep_log.text  # usual at start-up: no log line either way
    assert "back online" not in doorstep_log.text


async def _set_up_unheard(hass: HomeAssistant, config_entry: MockConfigEntry) -> None:
    """Set up against a bridge whose MQTT messages never reach Home Assistant's broker."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()


def _issues(issue_registry: ir.IssueRegistry) -> list[str]:
    return sorted(issue_id for domain, issue_id in issue_registry.issues if domain == DOMAIN)


async def _wait(hass: HomeAssistant, freezer: FrozenDateTimeFactory, seconds: float) -> None:
    freezer.tick(seconds)
    async_fire_time_changed(hass)
    await hass.async_block_till_done()


async def test_a_bridge_never_heard_on_mqtt_is_not_connected(
    *,
    hass: HomeAssistant,
    mqtt: MagicMock,
    config_entry: MockConfigEntry,
    bridge: FakeBridge,
    issue_registry: ir.IssueRegistry,
    freezer: FrozenDateTimeFactory,
    doorstep_log: LogRecords,
) -> None:
    """It answers over HTTP but publishes elsewhere: healthy-looking at first, not for long."""
    await _set_up_unheard(hass, config_entry)
    await _wait(hass, freezer, 240)
    assert get_state(hass, "binary_sensor.doorstep_connectivity").state == "on"  # still waiting
    assert _issues(issue_registry) == []
    await _wait(hass, freezer, 70)
    assert get_state(hass, "binary_sensor.doorstep_connectivity").state == "off"
    assert get_state(hass, "binary_sensor.front_door_motion").state == "unavailable"
    assert _issues(issue_registry) == [f"bridge_not_heard_{BRIDGE_ID}"]
    issue = issue_registry.async_get_issue(DOMAIN, f"bridge_not_heard_{BRIDGE_ID}")
    assert issue is not None
    assert issue.translation_key == "bridge_not_heard"
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_placeholders == {
        "name": "Doorstep",
        "topic": "doorstep/available",
        "health": f"{bridge.url}/api/health",  # to open in a browser
    }
    assert f"Doorstep bridge {BRIDGE_ID} has said nothing on MQTT" in doorstep_log.text
    await _wait(hass, freezer, 3600)
    assert _issues(issue_registry) == [f"bridge_not_heard_{BRIDGE_ID}"]  # not also "offline"
    publish_retained(hass, bridge)  # the bridge now uses Home Assistant's broker
    await hass.async_block_till_done()
    assert get_state(hass, "binary_sensor.doorstep_connectivity").state == "on"
    assert get_state(hass, "binary_sensor.front_door_motion").state == "off"
    assert _issues(issue_registry) == []


async def test_a_bridge_heard_at_once_stays_connected(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    await _wait(hass, freezer, 3600)
    assert get_state(hass, "binary_sensor.doorstep_connectivity").state == "on"
    assert get_state(hass, "binary_sensor.front_door_motion").state == "off"
    assert _issues(issue_registry) == []


async def test_heard_at_last_saying_offline(
    *,
    hass: HomeAssistant,
    mqtt: MagicMock,
    config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """The bridge joined the broker, only to go: the repair says offline instead."""
    await _set_up_unheard(hass, config_entry)
    await _wait(hass, freezer, 310)
    async_fire_mqtt_message(hass, TOPICS.available, "offline", retain=True)
    await hass.async_block_till_done()
    assert get_state(hass, "binary_sensor.doorstep_connectivity").state == "off"
    assert _issues(issue_registry) == [f"bridge_unreachable_{BRIDGE_ID}"]
    async_fire_mqtt_message(hass, TOPICS.available, "online")
    await hass.async_block_till_done()
    assert get_state(hass, "binary_sensor.doorstep_connectivity").state == "on"
    assert _issues(issue_registry) == []


async def test_not_heard_once_home_assistant_is_connected(
    *,
    hass: HomeAssistant,
    mqtt: MagicMock,
    mqtt_client_mock: MagicMock,
    config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Home Assistant still connecting at setup: once it is, the bridge must be heard."""
    await set_mqtt_connected(hass, mqtt, mqtt_client_mock, connected=False)
    await _set_up_unheard(hass, config_entry)
    await _wait(hass, freezer, 60)
    await set_mqtt_connected(hass, mqtt, mqtt_client_mock, connected=True)
    await _wait(hass, freezer, 250)
    assert get_state(hass, "binary_sensor.doorstep_connectivity").state == "off"
    assert _issues(issue_registry) == [f"bridge_not_heard_{BRIDGE_ID}"]


async def test_not_heard_while_home_assistant_is_not_connected(
    *,
    hass: HomeAssistant,
    mqtt: MagicMock,
    mqtt_client_mock: MagicMock,
    config_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    """Nothing can be heard without Home Assistant's own connection: that is the repair."""
    await set_mqtt_connected(hass, mqtt, mqtt_client_mock, connected=False)
    await _set_up_unheard(hass, config_entry)
    await _wait(hass, freezer, 310)
    assert _issues(issue_registry) == [f"bridge_unreachable_{BRIDGE_ID}"]


async def test_not_heard_before_a_reload_is_not_connected_after_it(
    *,
    hass: HomeAssistant,
    mqtt: MagicMock,
    config_entry: MockConfigEntry,
    bridge: FakeBridge,
    issue_registry: ir.IssueRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    await _set_up_unheard(hass, config_entry)
    await _wait(hass, freezer, 310)
    assert await hass.config_entries.async_reload(config_entry.entry_id)
    await hass.async_block_till_done()
    assert get_state(hass, "binary_sensor.doorstep_connectivity").state == "off"
    assert _issues(issue_registry) == [f"bridge_not_heard_{BRIDGE_ID}"]
    await _wait(hass, freezer, 310)
    assert _issues(issue_registry) == [f"bridge_not_heard_{BRIDGE_ID}"]
    publish_retained(hass, bridge)
    await hass.async_block_till_done()
    assert get_state(hass, "binary_sensor.doorstep_connectivity").state == "on"
    assert _issues(issue_registry) == []


async def test_unload_stops_following_the_mqtt_connection(
    hass: HomeAssistant,
    mqtt: MagicMock,
    mqtt_client_mock: MagicMock,
    setup_entry: MockConfigEntry,
    doorstep_log: LogRecords,
) -> None:
    assert await hass.config_entries.async_unload(setup_entry.entry_id)
    await hass.async_block_till_done()
    await set_mqtt_connected(hass, mqtt, mqtt_client_mock, connected=False)
    assert "MQTT" not in doorstep_log.text  # and no repair timer is left running


async def test_incompatible_protocol_repair(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    bridge: FakeBridge,
    issue_registry: ir.IssueRegistry,
) -> None:
    issue_id = f"incompatible_protocol_{BRIDGE_ID}"
    bridge.protocol = 2
    async_fire_mqtt_message(hass, TOPICS.bridge_info, json.dumps(bridge.info()))
    await hass.async_block_till_done()
    issue = issue_registry.async_get_issue(DOMAIN, issue_id)
    assert issue is not None
    assert (issue.translation_placeholders or {})["bridge_protocol"] == "2"
    assert get_state(hass, "event.front_door_doorbell").state == "unavailable"
    assert get_state(hass, "binary_sensor.doorstep_connectivity").state == "off"
    bridge.protocol = 1
    async_fire_mqtt_message(hass, TOPICS.bridge_info, json.dumps(bridge.info()))
    await hass.async_block_till_done()
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    assert get_state(hass, "event.front_door_doorbell").state != "unavailable"


async def test_diagnostics_say_when_the_signing_key_is_unknown(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    bridge: FakeBridge,
    hass_client: ClientSessionGenerator,
) -> None:
    bridge.token = "rotated"  # the bridge now refuses the integration's token
    diag: dict[str, Any] = await get_diagnostics_for_config_entry(hass, hass_client, setup_entry)
    assert diag["bridge"]["export_signing_key"].startswith("unknown: ")
    assert diag["transparency_report"].startswith("unknown: ")


async def test_diagnostics_redact_secrets(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    bridge: FakeBridge,
    hass_client: ClientSessionGenerator,
) -> None:
    state = share_state("s_1", "ready", link="/share/very-secret-link-token")
    bridge.shares["s_1"] = state
    async_fire_mqtt_message(hass, TOPICS.share("s_1"), json.dumps(state))
    async_fire_mqtt_message(hass, TOPICS.snapshot("front_door"), b"\xff\xd8jpeg")
    clip = clip_info("front_door", T0, 12.5, bridge.video)
    async_fire_mqtt_message(hass, TOPICS.clip("front_door"), json.dumps(clip.payload()))
    await hass.async_block_till_done()
    diag: dict[str, Any] = await get_diagnostics_for_config_entry(hass, hass_client, setup_entry)
    text = json.dumps(diag)
    assert TOKEN not in text
    assert "very-secret-link-token" not in text
    assert "Neighbour Alice" not in text
    # A share's reason is someone's free text; a clip's reason is motion/ring/manual.
    assert "Parcel went missing" not in text
    assert diag["shares"]["s_1"]["reason"] == "**REDACTED**"
    assert diag["cameras"]["front_door"]["last_clip"]["reason"] == "motion"
    assert diag["entry"]["data"][CONF_API_TOKEN] == "**REDACTED**"
    assert diag["bridge"]["info"]["id"] == BRIDGE_ID
    assert diag["bridge"]["export_signing_key"] == EXPORT_SIGNING_KEY
    report = diag["transparency_report"]
    assert report["outcomes"] == {"released": 1}
    assert report["requesters"] == [
        {"requester": "**REDACTED**", "kind": "ordinary", "asked": 1, "released": 1}
    ]
    assert diag["bridge"]["online"] is True
    assert diag["bridge"]["heard_on_mqtt"] is True
    assert diag["cameras"]["front_door"]["snapshot_bytes"] == 6
    assert diag["shares"]["s_1"]["state"] == "ready"
    assert diag["approvals"] == {
        "live_prompts": 0, "spent_nonces": 0, "announced_requests": 0, "waiting_audit_records": 0
    }  # fmt: skip


async def test_bridge_down_at_startup_raises_repair_after_a_while(
    *,
    hass: HomeAssistant,
    mqtt: MagicMock,
    config_entry: MockConfigEntry,
    bridge: FakeBridge,
    issue_registry: ir.IssueRegistry,
    freezer: FrozenDateTimeFactory,
) -> None:
    issue_id = f"bridge_unreachable_{BRIDGE_ID}"
    bridge.broken = True
    config_entry.add_to_hass(hass)
    await hass.config_entries.async_setup(config_entry.entry_id)
    assert config_entry.state is ConfigEntryState.SETUP_RETRY
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None
    for _ in range(8):  # HA retries with a growing delay
        freezer.tick(80)
        async_fire_time_changed(hass)
        await hass.async_block_till_done()
    assert config_entry.state is ConfigEntryState.SETUP_RETRY
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is not None
    bridge.broken = False
    freezer.tick(100)
    async_fire_time_changed(hass)
    for _ in range(20):  # the retry does real HTTP: let it finish
        await hass.async_block_till_done(wait_background_tasks=True)
        if _loaded(config_entry):
            break
        await asyncio.sleep(0)
    assert _loaded(config_entry)
    assert issue_registry.async_get_issue(DOMAIN, issue_id) is None


def _loaded(entry: MockConfigEntry) -> bool:
    # A function, so the type checker does not narrow the state across awaits.
    return entry.state is ConfigEntryState.LOADED


async def test_stale_camera_devices_removed_at_setup(
    hass: HomeAssistant,
    mqtt: MagicMock,
    config_entry: MockConfigEntry,
    device_registry: dr.DeviceRegistry,
) -> None:
    config_entry.add_to_hass(hass)
    gone = device_registry.async_get_or_create(
        config_entry_id=config_entry.entry_id, identifiers={(DOMAIN, f"{BRIDGE_ID}_old_cam")}
    )
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    assert device_registry.async_get(gone.id) is None
    assert find_device(hass, (DOMAIN, f"{BRIDGE_ID}_front_door"))
