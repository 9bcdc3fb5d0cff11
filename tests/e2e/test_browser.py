"""The frontend, in a real browser: log in, the camera's device page, the media browser, a clip.

Debian's Chromium driven by Playwright (never ``playwright install``). Screenshots
go to ``test-artifacts/ha-<version>/browser/``; those of the current-HA lane illustrate
the README.
"""

from __future__ import annotations

import aiohttp
import pytest

from tests.e2e.conftest import log_in, shot, wait_playable
from tests.e2e.ha_client import HaClient
from tests.e2e.servers import CAMERA, Mqtt
from tests.e2e.stack import Stack

pytestmark = pytest.mark.slow

TIMEOUT = 60_000  # ms: a loaded 2-core machine renders slowly


async def _device_id(stack: Stack) -> str:
    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, stack.ha.url, stack.owner_token)
        await owner.wait_for_a_clip(CAMERA)
        async with owner.websocket() as ws:
            devices = await ws.call(type="config/device_registry/list")
    device_id: str = next(d["id"] for d in devices if d["name"] == "Front door")
    return device_id


async def test_log_in_device_page_media_browser_and_a_clip(stack: Stack, page: object) -> None:
    from playwright.async_api import Page, expect

    assert isinstance(page, Page)
    device_id = await _device_id(stack)

    # Log in with the form, as a person would.
    await log_in(page, stack)

    # Someone rings, then the camera's device page: its name and its four entities.
    mqtt = Mqtt(stack.mqtt_port)
    try:
        mqtt.publish(f"doorstep/{CAMERA}/ring/set", b"")
    finally:
        mqtt.close()
    await page.goto(f"{stack.ha.url}/config/devices/device/{device_id}")
    for text in ("Front door", "Doorbell", "Motion", "Snapshot", "Last clip"):
        await expect(page.get_by_text(text, exact=True).first).to_be_visible()
    await shot(page, "01-device.png")

    # The media browser: Doorstep → Front door → today → a clip.
    await page.goto(f"{stack.ha.url}/media-browser/browser")
    # Current frontends also put each title in a hidden tooltip: click what is shown.
    # The sidebar also says "Doorstep" (the panel): click inside the media browser.
    browser = page.locator("ha-media-player-browse")
    await browser.get_by_text("Doorstep", exact=True).filter(visible=True).first.click()
    await browser.get_by_text("Front door", exact=True).filter(visible=True).first.click()
    day = page.locator("ha-media-player-browse .child .title").filter(visible=True).first
    await expect(day).to_be_visible()
    await day.click()
    clip = page.get_by_text(" · motion · ").filter(visible=True).first
    await expect(clip).to_be_visible()
    await shot(page, "02-media-browser.png")
    await clip.click()
    # The browser player opens the clip in a dialog with a video element.
    video = page.locator("video").first
    await expect(video).to_be_attached()
    await wait_playable(page, video)  # through HA's signed proxy path
    assert await video.evaluate("v => v.videoWidth") == 640
    await shot(page, "03-clip.png")
