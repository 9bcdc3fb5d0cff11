"""The Doorstep panel with two bridges whose cameras have the same name, in Chromium.

Two houses may each have a "Front door": the camera selector and the share cards name the
bridge too, so an approver knows whose footage they release. No Home Assistant is needed:
the panel's own file runs in a blank page, and its ``hass`` answers the websocket commands
with what ``doorstep/shares`` returns for two bridges.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.slow

PANEL = (
    Path(__file__).parents[2] / "custom_components" / "doorstep" / "frontend" / "doorstep-panel.js"
)


def _bridge(bridge_id: str, title: str) -> dict[str, Any]:
    return {
        "bridge_id": bridge_id, "title": title, "can_decide": True, "reachable": True,
        "offer_unredacted": False, "cameras": [{"key": "front_door", "name": "Front door"}],
    }  # fmt: skip


def _share(bridge_id: str, share_id: str) -> dict[str, Any]:
    return {
        "link_url": None, "bridge_id": bridge_id, "share_id": share_id, "state": "pending",
        "requester": "Neighbour Alice", "reason": "Parcel went missing", "cameras": ["Front door"],
        "start": "2026-11-23T09:00:00+00:00", "end": "2026-11-23T09:30:00+00:00",
        "created": "2026-11-23T10:00:00+00:00", "deadline": "2099-01-01T00:00:00+00:00",
        "decided_by": None, "revoked_by": None, "decided_via": None, "redact": None,
        "link": None, "link_expires": None, "error": None, "kind": "ordinary", "legal": None,
        "approved_by": [], "you_approved": False,
    }  # fmt: skip


TWO_BRIDGES = {
    "bridges": [_bridge("3f9c2a7be1d04c55", "Home"), _bridge("0a1b2c3d4e5f6a7b", "Garden")],
    "shares": [_share("3f9c2a7be1d04c55", "s_a"), _share("0a1b2c3d4e5f6a7b", "s_b")],
    "not_connected": [],
}
ONE_BRIDGE = {
    "bridges": [_bridge("3f9c2a7be1d04c55", "Home")],
    "shares": [_share("3f9c2a7be1d04c55", "s_a")],
    "not_connected": [],
}

# A stand-in for Home Assistant's `hass` object: the commands the panel sends, answered.
OPEN_PANEL = """([answer, language]) => {
  const panel = document.createElement("doorstep-panel");
  document.body.appendChild(panel);
  panel.hass = {
    language,
    user: { is_admin: false, name: "Owner" },
    callWS: async (msg) => {
      if (msg.type === "doorstep/shares") return answer;
      if (msg.type === "doorstep/clips") return { clips: [], total: 0 };
      throw new Error(`unexpected command ${msg.type}`);
    },
    callService: async () => ({}),
  };
}"""


@pytest.fixture
async def page() -> AsyncIterator[Any]:
    """A blank Chromium page with the panel's script loaded."""
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (scripts/setup installs it)")
    playwright_api = pytest.importorskip("playwright.async_api")
    async with playwright_api.async_playwright() as driver:
        browser = await driver.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            page = await browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda err: errors.append(str(err)))
            await page.set_content("<!doctype html><html><body></body></html>")
            await page.add_script_tag(content=PANEL.read_text())
            yield page
            assert not errors, errors
        finally:
            await browser.close()


@pytest.mark.parametrize("language", ["en", "fr"])
async def test_same_named_cameras_of_two_bridges(page: Any, language: str) -> None:
    from playwright.async_api import expect

    await page.evaluate(OPEN_PANEL, [TWO_BRIDGES, language])
    options = page.locator("doorstep-panel select.camera option")
    await expect(options).to_have_text(["Home · Front door", "Garden · Front door"])
    cameras = "Cameras" if language == "en" else "Caméras"
    for share_id, title in (("s_a", "Home"), ("s_b", "Garden")):
        card = page.locator(f'doorstep-panel .share[data-share="{share_id}"]')
        await expect(card.locator("dt", has_text=cameras).locator("+ dd")).to_have_text(
            f"{title} · Front door"
        )


async def test_bridges_of_the_same_name_add_their_id(page: Any) -> None:
    """Each bridge calls itself "Doorstep" unless told otherwise: its id tells them apart."""
    from playwright.async_api import expect

    answer = {
        **TWO_BRIDGES,
        "bridges": [{**b, "title": "Doorstep"} for b in TWO_BRIDGES["bridges"]],
    }
    await page.evaluate(OPEN_PANEL, [answer, "en"])
    await expect(page.locator("doorstep-panel select.camera option")).to_have_text(
        ["Doorstep (3f9c2a7be1d04c55) · Front door", "Doorstep (0a1b2c3d4e5f6a7b) · Front door"]
    )
    card = page.locator('doorstep-panel .share[data-share="s_b"]')
    await expect(card.locator("dt", has_text="Cameras").locator("+ dd")).to_have_text(
        "Doorstep (0a1b2c3d4e5f6a7b) · Front door"
    )


async def test_one_bridge_names_cameras_alone(page: Any) -> None:
    from playwright.async_api import expect

    await page.evaluate(OPEN_PANEL, [ONE_BRIDGE, "en"])
    card = page.locator('doorstep-panel .share[data-share="s_a"]')
    await expect(card.locator("dt", has_text="Cameras").locator("+ dd")).to_have_text("Front door")
    # One camera: no selector at all.
    await expect(page.locator("doorstep-panel select.camera")).to_have_count(0)
