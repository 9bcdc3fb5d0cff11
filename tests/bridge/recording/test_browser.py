"""Clips play in a real browser (Chromium), fetched through the clip route with Range."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer
import pytest

from doorstep_bridge.config import parse_config
from doorstep_bridge.events import EventBus
from doorstep_bridge.http.auth import token_middleware
from doorstep_bridge.http.clips import routes
from doorstep_bridge.keys import API_TOKEN, BUS, CLIP_STORE, CONFIG
from doorstep_bridge.packets import EncodedPacket
from doorstep_bridge.recording.masks import MaskSet
from doorstep_bridge.recording.store import ClipStore
from doorstep_bridge.recording.writer import ClipWriter, finalize
from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.slow

TOKEN = "b" * 32
PLAY = """() => new Promise(resolve => {
  const video = document.getElementById('v');
  const report = () => resolve({
    duration: video.duration, width: video.videoWidth, time: video.currentTime,
    error: video.error && video.error.code});
  const play = () => { video.play(); setTimeout(report, 1200); };
  video.onerror = () => resolve({error: video.error.code});
  // The metadata may already be there when this runs: don't wait for an event that came.
  if (video.readyState >= 1) { play(); } else { video.onloadedmetadata = play; }
  setTimeout(() => resolve({error: 'no metadata after 30 s'}), 30000);
})"""
#: Seek near the end of the clip, as a user dragging the slider does.
SEEK = """() => new Promise(resolve => {
  const video = document.getElementById('v');
  video.onseeked = () => setTimeout(() => resolve({
    time: video.currentTime, error: video.error && video.error.code}), 300);
  video.onerror = () => resolve({error: video.error.code});
  video.currentTime = 3.5;
  setTimeout(() => resolve({error: 'not seeked after 30 s'}), 30000);
})"""


def _clip(store: ClipStore, packets: list[EncodedPacket], masks: MaskSet, minute: int) -> str:
    pending = store.new_clip("front_door", datetime(2026, 11, 23, 10, minute, tzinfo=UTC), "ring")
    writer = ClipWriter(pending.partial, packets[0].stream, masks)
    for packet in packets:
        writer.write(packet)
    writer.close()
    done = finalize(pending.partial, pending.final)
    store.complete(pending, duration=done.duration, size=done.size)
    return pending.id


@pytest.fixture
async def server(
    storage: Path, packets: list[EncodedPacket]
) -> AsyncIterator[tuple[str, list[str]]]:
    store = ClipStore(storage)
    store.open()
    ids = [
        _clip(store, packets[:60], MaskSet(()), 0),  # stream copy
        _clip(store, packets[:60], MaskSet([((0, 0), (200, 0), (200, 200))]), 1),  # re-encoded
    ]
    app = web.Application(middlewares=[token_middleware])
    app[CONFIG] = parse_config({"cameras": {"front_door": {"source": "demo://"}}})
    app[API_TOKEN] = TOKEN
    app[CLIP_STORE] = store
    app[BUS] = EventBus()
    app.add_routes(routes)

    async def page(_request: web.Request) -> web.Response:
        return web.Response(text="<video id=v muted></video>", content_type="text/html")

    app.router.add_get("/", page)
    test_server = TestServer(app)
    await test_server.start_server()
    yield str(test_server.make_url("")), ids
    await test_server.close()
    store.close()


async def test_clips_play_in_chromium(server: tuple[str, list[str]]) -> None:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed")
    playwright_api = pytest.importorskip("playwright.async_api")
    base, ids = server
    async with playwright_api.async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=list(CHROMIUM_ARGS)
        )
        try:
            page = await browser.new_page()
            await page.set_extra_http_headers({"Authorization": f"Bearer {TOKEN}"})
            await page.goto(base)
            results: list[Any] = []
            seeks: list[Any] = []
            for clip_id in ids:
                await page.evaluate(
                    "src => { document.getElementById('v').src = src; }",
                    f"{base}/api/clips/{clip_id}/video",
                )
                results.append(await page.evaluate(PLAY))
                seeks.append(await page.evaluate(SEEK))
        finally:
            await browser.close()
    for result in results:
        assert result["error"] is None, result
        assert result["duration"] == pytest.approx(4.0, abs=0.1)  # the whole clip, not a fragment
        assert result["width"] == 640
        assert result["time"] > 0  # it played
    for seek in seeks:
        assert seek["error"] is None, seek
        assert seek["time"] >= 3.5, seek
