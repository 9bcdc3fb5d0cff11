"""The doorbell card with a keyboard and a screen reader, in Chromium against the real bridge and
Home Assistant: the live picture is named by what it shows (the camera's name), the last clip
plays with Enter with the focus on the video, and Close gives the focus back to its row."""

from __future__ import annotations

import contextlib
import re
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import log_in, wait_playable
from tests.e2e.ha_client import HaClient, HaError
from tests.e2e.servers import CAMERA
from tests.e2e.stack import Stack

pytestmark = pytest.mark.slow

DASHBOARD = "doorbell-keyboard"  # its own: test_card.py creates "doorbell-card"

#: What has the keyboard focus, through the shadow roots: in the card, or None.
FOCUSED = """() => {
  let el = document.activeElement;
  while (el && el.shadowRoot && el.shadowRoot.activeElement) el = el.shadowRoot.activeElement;
  const host = el && el.getRootNode().host;
  if (!host || host.localName !== "doorstep-doorbell-card") return null;
  return { tag: el.localName, action: el.dataset.action || null };
}"""


async def focus_on(page: Any, **wanted: Any) -> bool:
    now = await page.evaluate(FOCUSED)
    return bool(now) and all(now.get(key) == value for key, value in wanted.items())


async def test_card_with_the_keyboard(stack: Stack, page: Any) -> None:
    from playwright.async_api import expect

    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, stack.ha.url, stack.owner_token)
        await owner.wait_for_a_clip(CAMERA)
        async with owner.websocket() as ws:
            with contextlib.suppress(HaError):  # made by an earlier run of this test
                await ws.call(
                    type="lovelace/dashboards/create", url_path=DASHBOARD, title="Doorbell",
                    icon="mdi:doorbell-video", mode="storage", show_in_sidebar=True,
                    require_admin=False,
                )  # fmt: skip
            await ws.call(
                type="lovelace/config/save",
                url_path=DASHBOARD,
                config={
                    "views": [
                        {
                            "path": "porch",
                            "cards": [{"type": "custom:doorstep-doorbell-card", "camera": CAMERA}],
                        }
                    ]
                },
            )
    await log_in(page, stack)
    await page.goto(f"{stack.ha.url}/{DASHBOARD}/porch")
    card = page.locator("doorstep-doorbell-card")
    # The picture's name holds the words it shows (it was "Live view" alone, without them).
    await expect(
        card.get_by_role("button", name=re.compile(r"^Live view\b"))
    ).to_have_accessible_name(re.compile(r"Front door"))
    clip = card.locator(".clip")
    await expect(clip).to_be_enabled()

    for _ in range(80):
        await page.keyboard.press("Tab")
        if await focus_on(page, action="clip"):
            break
    else:
        raise AssertionError("Tab never reached the last clip")
    await page.keyboard.press("Enter")
    await wait_playable(page, card.locator(".player video"))
    assert await focus_on(page, tag="video"), await page.evaluate(FOCUSED)
    for _ in range(10):  # through the video's own controls
        await page.keyboard.press("Tab")
        if await focus_on(page, action="close"):
            break
    assert await focus_on(page, action="close"), await page.evaluate(FOCUSED)
    await page.keyboard.press("Enter")
    await expect(card.locator(".player")).to_be_hidden()
    assert await focus_on(page, action="clip"), await page.evaluate(FOCUSED)
