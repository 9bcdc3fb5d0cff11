"""What a Home Assistant user sees of one camera: rings, motion, clips, snapshots."""

from __future__ import annotations

from collections.abc import AsyncIterator
import json
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import PRIVACY_MASK
from tests.e2e.ha_client import HaClient
from tests.e2e.servers import CAMERA, Mqtt, h264_frames, masked_area_is_black
from tests.e2e.stack import Stack

pytestmark = pytest.mark.slow

DOORBELL = f"event.{CAMERA}_doorbell"
MOTION = f"binary_sensor.{CAMERA}_motion"
LAST_CLIP = f"sensor.{CAMERA}_last_clip"
SNAPSHOT = f"image.{CAMERA}_snapshot"


@pytest.fixture
async def owner(stack: Stack) -> AsyncIterator[HaClient]:
    async with aiohttp.ClientSession() as session:
        yield HaClient(session, stack.ha.url, stack.owner_token)


def _changed(entity_id: str, predicate: Any = lambda _new: True) -> Any:
    def match(event: dict[str, Any]) -> bool:
        data = event["data"]
        new = data.get("new_state")
        return bool(data["entity_id"] == entity_id and new is not None and predicate(new))

    return match


async def test_a_press_on_the_ring_topic_fires_the_doorbell_event(
    stack: Stack, owner: HaClient
) -> None:
    mqtt = Mqtt(stack.mqtt_port, (f"doorstep/{CAMERA}/ring",))
    try:
        async with owner.websocket() as ws:
            sub = await ws.subscribe(type="subscribe_events", event_type="state_changed")
            mqtt.publish(f"doorstep/{CAMERA}/ring/set", b"")
            ring = json.loads(mqtt.next(f"doorstep/{CAMERA}/ring"))
            event = await ws.next_event(sub, _changed(DOORBELL))
    finally:
        mqtt.close()
    new = event["data"]["new_state"]
    assert new["attributes"]["event_type"] == "ring"
    assert new["attributes"]["event_types"] == ["ring"]
    assert new["attributes"]["device_class"] == "doorbell"
    assert new["attributes"]["ring_id"] == ring["id"]
    assert ring["camera"] == CAMERA


async def test_motion_turns_the_motion_sensor_on_then_off(owner: HaClient) -> None:
    async with owner.websocket() as ws:
        sub = await ws.subscribe(type="subscribe_events", event_type="state_changed")
        on = await ws.next_event(sub, _changed(MOTION, lambda s: s["state"] == "on"), 90)
        off = await ws.next_event(sub, _changed(MOTION, lambda s: s["state"] == "off"), 90)
    assert on["data"]["new_state"]["attributes"]["device_class"] == "motion"
    assert off["time_fired"] > on["time_fired"]


async def _browse(owner: HaClient, content_id: str) -> dict[str, Any]:
    async with owner.websocket() as ws:
        result: dict[str, Any] = await ws.call(
            type="media_source/browse_media", media_content_id=content_id
        )
    return result


async def test_a_new_clip_is_in_the_media_browser_and_plays_through_ha(
    stack: Stack, owner: HaClient
) -> None:
    before = await owner.state(LAST_CLIP)
    image_before = await owner.state(SNAPSHOT)
    assert before is not None
    assert image_before is not None
    # The walker crosses every 12 s: wait for the next finished motion clip (a ring
    # clip of an earlier test may finish first).
    sensor = await owner.wait_state(
        LAST_CLIP,
        lambda s: (
            s["state"] not in ("unknown", "unavailable", before["state"])
            and s["attributes"].get("reason") == "motion"
        ),
        timeout=120,
    )
    clip_id = sensor["attributes"]["clip_id"]
    image = await owner.wait_state(
        SNAPSHOT, lambda s: s["state"] not in ("unknown", "unavailable", image_before["state"])
    )

    # Browse: Doorstep → camera → day → clip, as the media panel does.
    root = await _browse(owner, "media-source://doorstep")
    assert root["title"] == "Doorstep"
    camera = next(c for c in root["children"] if c["title"] == "Front door")
    days = await _browse(owner, camera["media_content_id"])
    assert days["children"], "no day folder"
    day = await _browse(owner, days["children"][0]["media_content_id"])
    item = next(c for c in day["children"] if c["media_content_id"].endswith(f"/{clip_id}"))
    assert item["can_play"]
    assert item["media_class"] == "video"

    async with owner.websocket() as ws:
        resolved = await ws.call(
            type="media_source/resolve_media", media_content_id=item["media_content_id"]
        )
    assert resolved["mime_type"] == "video/mp4"
    # The player fetches the signed path without any other credential.
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.get(f"{stack.ha.url}{resolved['url']}") as response:
            assert response.status == 200
            assert response.headers["Content-Type"] == "video/mp4"
            video = await response.read()
        # The unsigned path is refused: footage needs a login.
        unsigned = resolved["url"].split("?")[0]
        async with anonymous.get(f"{stack.ha.url}{unsigned}") as response:
            assert response.status == 401

    assert h264_frames(video) >= 15  # at least a second of video
    # Masked pixels are never stored: black in every frame of the clip.
    assert masked_area_is_black(video, PRIVACY_MASK)

    # The snapshot image entity serves the JPEG through HA's image proxy.
    async with owner.session.get(
        f"{stack.ha.url}{image['attributes']['entity_picture']}"
    ) as response:
        assert response.status == 200
        assert (await response.read())[:3] == b"\xff\xd8\xff"
