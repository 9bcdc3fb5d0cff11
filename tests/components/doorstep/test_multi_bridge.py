"""Two bridges on one broker and one Home Assistant, each with its own base topic."""

from __future__ import annotations

from collections.abc import AsyncIterator
import json
from pathlib import Path
from unittest.mock import MagicMock

from homeassistant.components import media_source
from homeassistant.const import CONF_API_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_fire_mqtt_message,
)

from custom_components.doorstep.const import CONF_BASE_TOPIC, DOMAIN
from custom_components.doorstep.protocol import Topics

from .conftest import (
    BRIDGE_ID,
    TOKEN,
    FakeBridge,
    children,
    get_state,
    publish_retained,
    ring,
    share_state,
)

OTHER_ID = "0a1b2c3d4e5f6a7b"


@pytest.fixture
async def second(socket_enabled: None, video_file: Path) -> AsyncIterator[FakeBridge]:
    """A second bridge: base topic ``garden``, one camera ``back_yard``."""
    fake = FakeBridge(
        video=video_file, bridge_id=OTHER_ID, base_topic="garden",
        cameras={"back_yard": {"name": "Back yard"}},
    )  # fmt: skip
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def both(
    hass: HomeAssistant, setup_entry: MockConfigEntry, second: FakeBridge, mqtt: MagicMock
) -> MockConfigEntry:
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id=OTHER_ID, title="Garden",
        data={CONF_BASE_TOPIC: "garden", CONF_URL: second.url, CONF_API_TOKEN: TOKEN},
    )  # fmt: skip
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    topics = Topics("garden")
    async_fire_mqtt_message(hass, topics.available, "online", retain=True)
    async_fire_mqtt_message(hass, topics.bridge_info, json.dumps(second.info()), retain=True)
    await hass.async_block_till_done()
    return entry


@pytest.mark.usefixtures("both")
async def test_each_bridge_has_its_cameras(hass: HomeAssistant, bridge: FakeBridge) -> None:
    publish_retained(hass, bridge)
    ring(hass, "front_door")
    await hass.async_block_till_done()
    assert get_state(hass, "event.front_door_doorbell").attributes["event_type"] == "ring"
    assert get_state(hass, "event.back_yard_doorbell").state == "unknown"
    async_fire_mqtt_message(hass, Topics("garden").motion("back_yard"), "ON")
    await hass.async_block_till_done()
    assert get_state(hass, "binary_sensor.back_yard_motion").state == "on"
    assert get_state(hass, "binary_sensor.front_door_motion").state == "off"


@pytest.mark.usefixtures("both")
async def test_media_root_lists_bridges(hass: HomeAssistant) -> None:
    assert await async_setup_component(hass, "media_source", {})
    await hass.async_block_till_done()
    root = await media_source.async_browse_media(hass, "media-source://doorstep")
    assert sorted(c.title for c in children(root)) == ["Doorstep", "Garden"]


@pytest.mark.usefixtures("both")
async def test_one_request_one_bridge(hass: HomeAssistant) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(
            DOMAIN, "request_share",
            {"entity_id": ["event.front_door_doorbell", "event.back_yard_doorbell"],
             "last_minutes": 5, "reason": "r"},
            blocking=True,
        )  # fmt: skip
    assert err.value.translation_key == "several_bridges"


@pytest.mark.usefixtures("both")
async def test_decisions_go_to_the_bridge_that_has_the_share(
    hass: HomeAssistant, bridge: FakeBridge, second: FakeBridge
) -> None:
    second.shares["s_9"] = share_state("s_9", cameras=["back_yard"])
    async_fire_mqtt_message(hass, "garden/share/s_9", json.dumps(second.shares["s_9"]))
    await hass.async_block_till_done()
    await hass.services.async_call(DOMAIN, "deny_share", {"share_id": "s_9"}, blocking=True)
    assert second.shares["s_9"]["state"] == "denied"
    assert bridge.bodies == []
    with pytest.raises(ServiceValidationError) as err:
        await hass.services.async_call(DOMAIN, "deny_share", {"share_id": "s_1"}, blocking=True)
    assert err.value.translation_key == "unknown_share"


# Two bridges under one base topic --------------------------------------------------

TOPIC_ISSUE = f"base_topic_shared_{BRIDGE_ID}"


@pytest.fixture
async def same_topic(socket_enabled: None, video_file: Path) -> AsyncIterator[FakeBridge]:
    """Another bridge publishing under the first one's base topic ``doorstep``."""
    fake = FakeBridge(
        video=video_file, bridge_id=OTHER_ID, base_topic="doorstep",
        cameras={"front_door": {"name": "Front door"}},
    )  # fmt: skip
    await fake.start()
    yield fake
    await fake.stop()


def _announce(hass: HomeAssistant, fake: FakeBridge) -> None:
    """A bridge's retained announcement, as the bridge publishes it at start."""
    info = json.dumps(fake.info())
    async_fire_mqtt_message(hass, f"doorstep/discovery/{fake.bridge_id}", info, retain=True)


def _issue(hass: HomeAssistant, issue_id: str) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, issue_id)


async def test_another_bridge_on_the_base_topic_raises_a_repair(
    hass: HomeAssistant, setup_entry: MockConfigEntry, same_topic: FakeBridge
) -> None:
    """A bridge Home Assistant does not know publishes its info under this one's topic."""
    assert _issue(hass, TOPIC_ISSUE) is None
    async_fire_mqtt_message(hass, "doorstep/bridge/info", json.dumps(same_topic.info()))
    await hass.async_block_till_done(wait_background_tasks=True)
    issue = _issue(hass, TOPIC_ISSUE)
    assert issue is not None
    assert issue.translation_key == "base_topic_shared"
    assert issue.severity is ir.IssueSeverity.ERROR
    assert issue.translation_placeholders == {
        "name": "Doorstep", "bridge_id": BRIDGE_ID,
        "others": f"Doorstep ({OTHER_ID})", "topic": "doorstep",
    }  # fmt: skip
    # The other bridge moves to a base topic of its own: its announcement says so.
    same_topic.base_topic = "garden"
    _announce(hass, same_topic)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert _issue(hass, TOPIC_ISSUE) is None


async def test_another_bridges_announcement_raises_the_repair(
    hass: HomeAssistant, setup_entry: MockConfigEntry, same_topic: FakeBridge
) -> None:
    """Its retained announcement says so even while the retained info is this bridge's."""
    _announce(hass, same_topic)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert _issue(hass, TOPIC_ISSUE) is not None
    # Removing the entry removes its repairs.
    assert await hass.config_entries.async_remove(setup_entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert _issue(hass, TOPIC_ISSUE) is None


async def test_two_entries_on_one_base_topic(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    bridge: FakeBridge,
    same_topic: FakeBridge,
    mqtt: MagicMock,
) -> None:
    """Two entries set up before the flow refused it: each share prompts once, at its bridge."""
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id=OTHER_ID, title="Garden",
        data={CONF_BASE_TOPIC: "doorstep", CONF_URL: same_topic.url, CONF_API_TOKEN: TOKEN},
    )  # fmt: skip
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done(wait_background_tasks=True)
    # What the broker holds: each bridge's announcement, and the last bridge's info.
    _announce(hass, bridge)
    _announce(hass, same_topic)
    async_fire_mqtt_message(hass, "doorstep/bridge/info", json.dumps(same_topic.info()))
    await hass.async_block_till_done(wait_background_tasks=True)
    first, second = _issue(hass, TOPIC_ISSUE), _issue(hass, f"base_topic_shared_{OTHER_ID}")
    assert first is not None
    assert second is not None
    # Named by their entries' titles.
    assert first.translation_placeholders["others"] == f"Garden ({OTHER_ID})"
    assert second.translation_placeholders["others"] == f"Doorstep ({BRIDGE_ID})"

    requested = async_capture_events(hass, "doorstep_share_requested")
    same_topic.shares["s_b"] = share_state("s_b")
    async_fire_mqtt_message(hass, "doorstep/share/s_b", json.dumps(same_topic.shares["s_b"]))
    bridge.shares["s_a"] = share_state("s_a")
    async_fire_mqtt_message(hass, "doorstep/share/s_a", json.dumps(bridge.shares["s_a"]))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert sorted((e.data["bridge_id"], e.data["share_id"]) for e in requested) == [
        (OTHER_ID, "s_b"), (BRIDGE_ID, "s_a"),
    ]  # fmt: skip
    # Later states of a share known to be this bridge's are taken at once.
    bridge.shares["s_a"]["state"] = "denied"
    async_fire_mqtt_message(hass, "doorstep/share/s_a", json.dumps(bridge.shares["s_a"]))
    await hass.async_block_till_done(wait_background_tasks=True)
    assert setup_entry.runtime_data.coordinator.data.shares["s_a"].state == "denied"
    assert "s_b" not in setup_entry.runtime_data.coordinator.data.shares
    # A decision goes to the bridge that has the share.
    await hass.services.async_call(DOMAIN, "deny_share", {"share_id": "s_b"}, blocking=True)
    assert same_topic.shares["s_b"]["state"] == "denied"
    assert bridge.bodies == []


async def test_shares_taken_before_the_other_bridge_was_heard(
    hass: HomeAssistant, setup_entry: MockConfigEntry, bridge: FakeBridge, same_topic: FakeBridge
) -> None:
    """A share state is taken from this bridge's API, even before the other bridge is heard."""
    same_topic.shares["s_b"] = share_state("s_b", state="approved")
    async_fire_mqtt_message(hass, "doorstep/share/s_b", json.dumps(same_topic.shares["s_b"]))
    await hass.async_block_till_done(wait_background_tasks=True)
    coordinator = setup_entry.runtime_data.coordinator
    assert "s_b" not in coordinator.data.shares  # this bridge does not have it
    _announce(hass, same_topic)
    await hass.async_block_till_done(wait_background_tasks=True)
    assert "s_b" not in coordinator.data.shares
