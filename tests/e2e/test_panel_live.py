"""The Doorstep panel left open, in Chromium against the real bridge and Home Assistant: clips
recorded since it opened come at the top by themselves (the clip played and the place
scrolled to stay), a clip deleted below the newest goes, and times follow the time zone,
hours and date order of the user's profile.

Screenshots go to ``test-artifacts/ha-<version>/browser/07-panel-*.png``.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import (
    BROWSER_TIMEOUT,
    forget_profile,
    log_in,
    set_profile,
    shot,
    time_pattern,
    wait_playable,
)
from tests.e2e.ha_client import HaClient
from tests.e2e.servers import CAMERA, Mqtt
from tests.e2e.stack import Stack, bridge_clips

pytestmark = pytest.mark.slow

#: The browser's zone: twelve or thirteen hours from Home Assistant's (UTC, servers.py).
BROWSER_ZONE = "Pacific/Auckland"
IDS_OF = "items => items.map((li) => li.dataset.clip)"


async def _clips(owner: HaClient, least: int) -> list[dict[str, Any]]:
    """The camera's newest clips once the bridge has at least ``least``."""
    async with owner.websocket() as ws:
        bridge_id = (await ws.call(type="doorstep/shares"))["bridges"][0]["bridge_id"]
        for _ in range(180):
            answer = await ws.call(type="doorstep/clips", bridge_id=bridge_id, camera=CAMERA)
            if len(answer["clips"]) >= least:
                return list(answer["clips"])
            await asyncio.sleep(1)
    raise AssertionError(f"fewer than {least} clips after three minutes")


async def test_a_clip_recorded_while_the_panel_is_open_comes_at_the_top(
    stack: Stack, page: Any
) -> None:
    from playwright.async_api import expect

    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, stack.ha.url, stack.owner_token)
        await _clips(owner, 4)
    # A small screen (a wall tablet on its side): the list goes below the fold.
    await page.set_viewport_size({"width": 1024, "height": 500})
    await log_in(page, stack)
    await page.goto(f"{stack.ha.url}/doorstep")
    clips = page.locator("doorstep-panel li.clip")
    await expect(clips.nth(3)).to_be_attached()
    shown = await clips.evaluate_all(IDS_OF)

    # A clip playing, and the list scrolled down to its third clip.
    await clips.first.get_by_role("button", name="Play").click()
    video = page.locator("doorstep-panel .player video")
    await wait_playable(page, video)
    source = await video.evaluate("v => v.src")
    third = clips.nth(2)
    await third.evaluate("li => li.scrollIntoView({block: 'start'})")
    third_id = await third.get_attribute("data-clip")
    third_top = await third.evaluate("li => li.getBoundingClientRect().top")
    assert await clips.first.evaluate("li => li.getBoundingClientRect().top") < third_top

    # Someone rings (and the porch's walker keeps moving): new clips, no reload.
    mqtt = Mqtt(stack.mqtt_port)
    try:
        mqtt.publish(f"doorstep/{CAMERA}/ring/set", b"")
    finally:
        mqtt.close()
    for _ in range(180):
        if await clips.first.get_attribute("data-clip") not in shown:
            break
        await page.wait_for_timeout(1000)
    ids = await clips.evaluate_all(IDS_OF)
    assert ids[0] not in shown, "no new clip at the top after three minutes"
    assert len(ids) == len(set(ids)), ids  # none listed twice
    assert ids[len(ids) - len(shown) :] == shown  # the new ones on top, the others as they were
    # The owner still sees the clip they scrolled to, where it was; the player is untouched.
    again = page.locator(f'doorstep-panel li.clip[data-clip="{third_id}"]')
    assert abs(await again.evaluate("li => li.getBoundingClientRect().top") - third_top) <= 2
    assert await video.evaluate("v => v.src") == source
    await expect(page.locator("doorstep-panel .player")).to_be_visible()

    # At the top of the page (the tablet nobody scrolls), the next clip is seen coming in.
    await page.evaluate("window.scrollTo(0, 0)")
    for _ in range(180):
        if await clips.first.get_attribute("data-clip") != ids[0]:
            break
        await page.wait_for_timeout(1000)
    assert await clips.first.get_attribute("data-clip") != ids[0], "no newer clip at the top"
    await expect(clips.first).to_be_in_viewport()
    await shot(page, "07-panel-live.png")


async def test_a_clip_deleted_below_the_newest_goes_from_the_open_list(
    stack: Stack, page: Any
) -> None:
    # Retention deletes the oldest clips, and a clip forgotten on another page or through
    # the bridge's API need not be the newest: the camera's newest clip stays the same.
    from playwright.async_api import expect

    recording = f"switch.{CAMERA}_recording"
    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, stack.ha.url, stack.owner_token)
        await _clips(owner, 4)
        # No new clip meanwhile (the porch's walker keeps moving): a new newest clip would
        # make the list follow anyway.
        await owner.call_service("switch", "turn_off", {"entity_id": recording})
        try:
            await owner.wait_state(recording, lambda s: s["state"] == "off", timeout=30)
            await _settled(session, stack)
            await log_in(page, stack)
            await page.goto(f"{stack.ha.url}/doorstep")
            clips = page.locator("doorstep-panel li.clip")
            await expect(clips.nth(3)).to_be_attached()
            shown = await clips.evaluate_all(IDS_OF)
            assert shown[0] == (await bridge_clips(session, stack))[0]["id"]
            gone = await _delete_one_of(session, stack, shown[2:])

            # No reload: the list follows within seconds, the others stay in order.
            row = page.locator(f'doorstep-panel li.clip[data-clip="{gone}"]')
            await expect(row).to_have_count(0, timeout=30_000)
            assert await clips.evaluate_all(IDS_OF) == [c for c in shown if c != gone]
        finally:
            await owner.call_service("switch", "turn_on", {"entity_id": recording})
            await owner.wait_state(recording, lambda s: s["state"] == "on", timeout=30)


async def _settled(session: aiohttp.ClientSession, stack: Stack) -> None:
    """Wait until the bridge's clip list stays the same for five seconds (a clip that was
    being recorded when recording was turned off is finished first)."""
    before = None
    for _ in range(60):
        ids = [clip["id"] for clip in await bridge_clips(session, stack)]
        if ids == before:
            return
        before = ids
        await asyncio.sleep(5)
    raise AssertionError("the clip list kept changing with recording off")


async def _delete_one_of(
    session: aiohttp.ClientSession, stack: Stack, candidates: list[str]
) -> str:
    """Forget the first of these clips no share holds, through the bridge's own API."""
    headers = {"Authorization": f"Bearer {stack.bridge.token}"}
    for clip_id in candidates:
        url = f"{stack.bridge.url}/api/clips/{clip_id}"
        async with session.delete(url, headers=headers) as response:
            if response.status == 200:
                return clip_id
            assert response.status == 409, await response.text()  # held by a share
    raise AssertionError("every clip below the newest is held by a share")


async def test_times_in_the_time_zone_of_the_users_profile(stack: Stack, page: Any) -> None:
    from playwright.async_api import expect

    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, stack.ha.url, stack.owner_token)
        (clip, *_) = await _clips(owner, 1)
        assert (await owner.get("/api/config"))["time_zone"] == "UTC"
        browser = page.context.browser
        context = await browser.new_context(
            timezone_id=BROWSER_ZONE, viewport={"width": 1280, "height": 800}
        )
        context.set_default_timeout(BROWSER_TIMEOUT)
        try:
            tablet = await context.new_page()
            row = tablet.locator(f'doorstep-panel li.clip[data-clip="{clip["clip_id"]}"]')
            for step, (zone, time_format, date_format, shown_in) in enumerate(
                (
                    ("server", "24", "language", "UTC"),
                    ("local", "12", "YMD", BROWSER_ZONE),
                    ("server", "24", "DMY", "UTC"),
                )
            ):
                await set_profile(owner, zone, time_format, date_format)
                if step == 0:
                    await log_in(tablet, stack)
                await tablet.goto(f"{stack.ha.url}/doorstep")
                # Home Assistant's frontend has the profile's choice...
                await tablet.wait_for_function(
                    """([zone, order]) => {
                      const locale = document.querySelector('home-assistant')?.hass?.locale;
                      return locale?.time_zone === zone && locale?.date_format === order;
                    }""",
                    arg=[zone, date_format],
                )
                # ... and the panel shows the clip's start in that zone, with those hours
                # and that date order.
                pattern = time_pattern(
                    clip["start"], shown_in, time_format, date_format=date_format
                )
                await expect(row).to_contain_text(re.compile(pattern), timeout=BROWSER_TIMEOUT)
                await shot(tablet, f"07-panel-time-{zone}-{date_format}.png")
        finally:
            await context.close()
            await forget_profile(owner)
