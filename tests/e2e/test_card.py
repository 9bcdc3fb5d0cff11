"""The doorbell card in a real browser: in the card list with no resource to add, added to a
dashboard in one step, showing the last ring after a press, the live picture, the share
requests waiting (a tap opens the panel) and the last clip, played in the card; on a phone too.

Screenshots go to ``test-artifacts/ha-<version>/browser/06-card*.png``.
"""

from __future__ import annotations

import asyncio
import contextlib
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
from tests.e2e.ha_client import HaClient, HaError, request_share
from tests.e2e.servers import CAMERA, Mqtt
from tests.e2e.stack import Stack

pytestmark = pytest.mark.slow

PHONE = {"width": 390, "height": 844}
DASHBOARD = "doorbell-card"
CARD = "custom:doorstep-doorbell-card"
#: Seconds HA's app script is held back, so the card's module is there first.
APP_DELAY = 1.5
#: The browser's zone: twelve or thirteen hours from Home Assistant's (UTC, servers.py).
BROWSER_ZONE = "Pacific/Auckland"


def _known(state: dict[str, Any]) -> bool:
    return state["state"] not in ("unknown", "unavailable")


async def _late(route: Any) -> None:
    """Let HA's app arrive after the card's module."""
    await asyncio.sleep(APP_DELAY)
    await route.continue_()


async def test_doorbell_card(stack: Stack, page: Any) -> None:
    from playwright.async_api import expect

    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, stack.ha.url, stack.owner_token)
        await owner.wait_for_a_clip(CAMERA)
        before = await owner.state(f"sensor.{CAMERA}_last_ring")
        # A request waits for a decision: the card counts it.
        answer = await request_share(owner, "Neighbour Bob", "Who took my bike?")
        share_id = answer["share_id"]
        try:
            pending = await owner.wait_state(
                "sensor.doorstep_pending_share_requests",
                lambda s: _known(s) and int(s["state"]) >= 1,
                timeout=60,
            )
            # Someone rings.
            mqtt = Mqtt(stack.mqtt_port)
            try:
                mqtt.publish(f"doorstep/{CAMERA}/ring/set", b"")
            finally:
                mqtt.close()
            ring = await owner.wait_state(
                f"sensor.{CAMERA}_last_ring",
                lambda s: _known(s) and (before is None or s["state"] != before["state"]),
                timeout=60,
            )

            # HA's app swaps in its own custom-element registry as it loads; the card's
            # module, loaded beside it, must work when it runs first (as on a fast load).
            await page.route("**/frontend_latest/app.*.js", _late)
            await log_in(page, stack)
            # In the "Add card" list without a resource: the integration loads it on every page,
            # and its stub picks the Doorstep camera.
            await page.wait_for_function(
                "customElements.get('doorstep-doorbell-card') !== undefined"
            )
            listed = await page.evaluate(
                "window.customCards.filter(c => c.type === 'doorstep-doorbell-card').length"
            )
            assert listed == 1
            stub = await page.evaluate(
                "customElements.get('doorstep-doorbell-card')"
                ".getStubConfig(document.querySelector('home-assistant').hass)"
            )
            assert stub == {"camera": f"camera.{CAMERA}"}

            # The user's one step: the card (as the picker made it) saved on a dashboard. A
            # second card names the camera as the bridge does.
            async with owner.websocket() as ws:
                await ws.call(
                    type="lovelace/dashboards/create",
                    url_path=DASHBOARD,
                    title="Doorbell",
                    icon="mdi:doorbell-video",
                    mode="storage",
                    show_in_sidebar=True,
                    require_admin=False,
                )
                await ws.call(
                    type="lovelace/config/save",
                    url_path=DASHBOARD,
                    config={
                        "views": [
                            {
                                "title": "Porch",
                                "path": "porch",
                                "cards": [{"type": CARD, **stub}, {"type": CARD, "camera": CAMERA}],
                            }
                        ]
                    },
                )

            await page.goto(f"{stack.ha.url}/{DASHBOARD}/porch")
            cards = page.locator("doorstep-doorbell-card")
            await expect(cards).to_have_count(2)
            for index in range(2):
                card = cards.nth(index)
                await expect(card.locator(".ring")).to_have_attribute("data-time", ring["state"])
                await expect(card.locator(".pending")).to_have_attribute(
                    "data-count", pending["state"]
                )
            card = cards.first
            await expect(card.locator(".name")).to_have_text("Front door")
            await expect(card.locator(".ring .value")).not_to_have_text("Never")
            # The live picture: a frame of the porch through HA's camera proxy.
            live = card.locator("img.live")
            await expect(live).to_have_attribute(
                "src", re.compile(rf"^/api/camera_proxy/camera\.{CAMERA}\?token=")
            )
            for _ in range(120):
                if await live.evaluate("img => img.complete && img.naturalWidth") > 0:
                    break
                await page.wait_for_timeout(500)
            assert await live.evaluate("img => img.naturalWidth") == 640, "no live picture"
            await shot(page, "06-card.png")

            # The last clip plays in the card.
            clip = card.locator(".clip")
            await expect(clip).to_be_enabled()
            await clip.click()
            video = card.locator(".player video")
            await wait_playable(page, video)
            await shot(page, "06-card-clip.png")

            # A phone: the card fits the screen.
            await page.set_viewport_size(PHONE)
            await page.wait_for_timeout(500)
            box = await card.bounding_box()
            assert box is not None
            assert box["width"] <= PHONE["width"]
            await page.evaluate("window.scrollTo(0, 0)")
            await shot(page, "06-card-phone.png")

            # The picture opens the more-info dialog with the live stream.
            await card.locator(".picture").click()
            await expect(page.locator("ha-more-info-dialog")).to_be_attached()
            await page.keyboard.press("Escape")

            # Waiting requests open the panel.
            await card.locator(".pending").click()
            await page.wait_for_url(f"{stack.ha.url}/doorstep")
            await expect(page.locator("doorstep-panel .share").first).to_be_attached()

            # In French (this browser's choice only: the owner's profile is left as it is).
            await page.evaluate("localStorage.setItem('selectedLanguage', JSON.stringify('fr'))")
            await page.reload()
            audit = page.locator("doorstep-panel .audit-section")
            await expect(audit.locator("h2")).to_have_text("Journal d'audit")
            await expect(audit.locator('.check[data-ok="true"]')).to_contain_text("Vérifié")
            await expect(audit.locator("tr.record").first).to_be_attached()
            await page.goto(f"{stack.ha.url}/{DASHBOARD}/porch")
            card = page.locator("doorstep-doorbell-card").first
            await expect(card.locator(".ring .label")).to_have_text("Dernier coup de sonnette")
            await expect(card.locator(".pending .label")).to_have_text(
                "Demandes de partage en attente"
            )
            await expect(card.locator(".ring")).to_have_attribute("data-time", ring["state"])
        finally:
            # Its clips are held while it waits: let the later tests have them.
            await owner.call_service("doorstep", "deny_share", {"share_id": share_id})


async def test_card_follows_a_language_change(stack: Stack, page: Any) -> None:
    """The user picks French in their profile: the card's labels follow at once (they stayed
    in English beside French dates until a reload); back to English, they follow again."""
    from playwright.async_api import expect

    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, stack.ha.url, stack.owner_token)
        await owner.wait_for_a_clip(CAMERA)
        async with owner.websocket() as ws:
            with contextlib.suppress(HaError):  # made by an earlier test
                await ws.call(
                    type="lovelace/dashboards/create", url_path=DASHBOARD, title="Doorbell",
                    icon="mdi:doorbell-video", mode="storage", show_in_sidebar=True,
                    require_admin=False,
                )  # fmt: skip
            await ws.call(
                type="lovelace/config/save",
                url_path=DASHBOARD,
                config={"views": [{"path": "porch", "cards": [{"type": CARD, "camera": CAMERA}]}]},
            )
    await log_in(page, stack)
    await page.goto(f"{stack.ha.url}/{DASHBOARD}/porch")
    card = page.locator("doorstep-doorbell-card").first
    await expect(card.locator(".ring .label")).to_have_text("Last ring")
    # What the profile's language picker does: hass.language changes, no reload.
    pick = (
        "language => document.querySelector('home-assistant')"
        ".dispatchEvent(new CustomEvent('hass-language-select', { detail: language }))"
    )
    await page.evaluate(pick, "fr")
    try:
        await expect(card.locator(".ring .label")).to_have_text("Dernier coup de sonnette")
        await expect(card.locator(".clip .label")).to_have_text("Dernier clip")
        await expect(card.locator(".pending .label")).to_have_text("Demandes de partage en attente")
        await expect(card.locator(".clip .value")).not_to_have_text("No clip yet")
        await shot(page, "06-card-language.png")
    finally:
        await page.evaluate(pick, "en")  # the owner's profile, as it was
    await expect(card.locator(".ring .label")).to_have_text("Last ring")


async def test_card_times_in_the_time_zone_of_the_users_profile(stack: Stack, page: Any) -> None:
    """The last ring in the zone, hours and date order the user's profile chose ("server":
    Home Assistant's zone), as Home Assistant's own cards show times; it was always the
    browser's zone and the language's date order."""
    from playwright.async_api import expect

    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, stack.ha.url, stack.owner_token)
        assert (await owner.get("/api/config"))["time_zone"] == "UTC"
        before = await owner.state(f"sensor.{CAMERA}_last_ring")
        mqtt = Mqtt(stack.mqtt_port)
        try:
            mqtt.publish(f"doorstep/{CAMERA}/ring/set", b"")
        finally:
            mqtt.close()
        ring = await owner.wait_state(
            f"sensor.{CAMERA}_last_ring",
            lambda s: _known(s) and (before is None or s["state"] != before["state"]),
            timeout=60,
        )
        async with owner.websocket() as ws:
            with contextlib.suppress(HaError):  # made by an earlier test
                await ws.call(
                    type="lovelace/dashboards/create", url_path=DASHBOARD, title="Doorbell",
                    icon="mdi:doorbell-video", mode="storage", show_in_sidebar=True,
                    require_admin=False,
                )  # fmt: skip
            await ws.call(
                type="lovelace/config/save",
                url_path=DASHBOARD,
                config={"views": [{"path": "porch", "cards": [{"type": CARD, "camera": CAMERA}]}]},
            )
        context = await page.context.browser.new_context(
            timezone_id=BROWSER_ZONE, viewport={"width": 1280, "height": 800}
        )
        context.set_default_timeout(BROWSER_TIMEOUT)
        try:
            tablet = await context.new_page()
            await log_in(tablet, stack)
            value = tablet.locator("doorstep-doorbell-card .ring .value").first
            for zone, time_format, date_format, shown_in in (
                ("server", "24", "language", "UTC"),
                ("local", "12", "YMD", BROWSER_ZONE),
                ("server", "24", "DMY", "UTC"),
            ):
                await set_profile(owner, zone, time_format, date_format)
                await tablet.goto(f"{stack.ha.url}/{DASHBOARD}/porch")
                await tablet.wait_for_function(
                    """([zone, order]) => {
                      const locale = document.querySelector('home-assistant')?.hass?.locale;
                      return locale?.time_zone === zone && locale?.date_format === order;
                    }""",
                    arg=[zone, date_format],
                )
                # The sensor's time is the press's: no other press in this test.
                pattern = time_pattern(
                    ring["state"], shown_in, time_format, seconds=True, date_format=date_format
                )
                await expect(value).to_contain_text(re.compile(pattern))
                await shot(tablet, f"06-card-time-{zone}-{date_format}.png")
        finally:
            await context.close()
            await forget_profile(owner)
