"""Privacy masks that no longer fit the camera's picture: a repair naming what to redraw."""

from __future__ import annotations

import json

from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import async_fire_mqtt_message

from custom_components.doorstep.const import DOMAIN
from doorstep_bridge.events import MaskProblem

from .conftest import BRIDGE_ID, TOPICS, FakeBridge, publish_as_the_bridge

ISSUE = f"privacy_masks_misplaced_{BRIDGE_ID}_front_door"
MOVED = (
    "the privacy masks were drawn while the camera sent 1920x1080 frames; it now sends 3840x2160"
)


def publish(hass: HomeAssistant, problem: str | None, *, retain: bool = False) -> str:
    """Send the camera's mask problem as the bridge does; its payload."""
    event = MaskProblem("front_door", problem, dt_util.utcnow())
    return publish_as_the_bridge(hass, event, retain=retain)


def said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "custom_components.doorstep" and r.levelname == "WARNING"
    ]


def issue(issue_registry: ir.IssueRegistry) -> ir.IssueEntry | None:
    return issue_registry.async_get_issue(DOMAIN, ISSUE)


@pytest.mark.usefixtures("setup_entry")
async def test_masks_drawn_for_another_resolution_raise_a_repair(
    hass: HomeAssistant, issue_registry: ir.IssueRegistry, caplog: pytest.LogCaptureFixture
) -> None:
    assert issue(issue_registry) is None
    payload = publish(hass, MOVED, retain=True)
    await hass.async_block_till_done()
    found = issue(issue_registry)
    assert found is not None
    assert found.translation_key == "privacy_masks_misplaced"
    assert found.severity is ir.IssueSeverity.ERROR
    assert found.is_fixable is False
    assert found.translation_placeholders == {
        "camera": "Front door",
        "camera_key": "front_door",
        "bridge": "Doorstep",
        "problem": MOVED,
    }
    assert said(caplog) == [f"Doorstep camera front_door: mask problem: {MOVED}"]
    # A retained repeat (the integration subscribes again): said once.
    async_fire_mqtt_message(hass, TOPICS.mask_problem("front_door"), payload, retain=True)
    await hass.async_block_till_done()
    assert said(caplog) == [f"Doorstep camera front_door: mask problem: {MOVED}"]

    publish(hass, None)  # redrawn: the bridge runs with masks that fit
    await hass.async_block_till_done()
    assert issue(issue_registry) is None


@pytest.mark.usefixtures("setup_entry")
async def test_a_malformed_mask_problem_is_ignored(
    hass: HomeAssistant, issue_registry: ir.IssueRegistry
) -> None:
    for payload in ("{bad", '{"problem": ""}', '{"problem": 3}'):
        async_fire_mqtt_message(hass, TOPICS.mask_problem("front_door"), payload)
        await hass.async_block_till_done()
    assert issue(issue_registry) is None


@pytest.mark.usefixtures("setup_entry")
async def test_the_mask_repair_goes_with_the_camera(
    hass: HomeAssistant, bridge: FakeBridge, issue_registry: ir.IssueRegistry
) -> None:
    publish(hass, MOVED)
    await hass.async_block_till_done()
    assert issue(issue_registry) is not None
    bridge.cameras = {"back_yard": {"name": "Back yard"}}
    async_fire_mqtt_message(hass, TOPICS.bridge_info, json.dumps(bridge.info()))
    await hass.async_block_till_done()
    assert issue(issue_registry) is None
