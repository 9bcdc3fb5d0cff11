"""One live system for the whole e2e session: Mosquitto, an RTSP camera, the bridge, real HA.

Runs without Home Assistant's pytest plugin (``-p no:homeassistant``): HA here is a
real ``hass`` process, reached over HTTP and websockets like the frontend and the
companion app reach it. Every process is started on a free loopback port and
stopped in a ``finally``; the logs are copied to ``test-artifacts/ha-<version>/e2e-logs``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
import contextlib
from datetime import datetime
from pathlib import Path
import shutil
import signal
import subprocess
import threading
import time
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.e2e.ha_client import OWNER, HaClient
from tests.e2e.servers import (
    ROOT,
    artifacts,
    free_port,
    make_bridge,
    make_home_assistant,
    missing_parts,
    mosquitto,
)
from tests.e2e.stack import Stack, configure_home_assistant, configure_owner_only
from tests.support.chromium import CHROMIUM, CHROMIUM_ARGS
from tests.support.media import write_h264
from tests.support.servers import rtsp_available

#: A privacy mask on the e2e camera (frame pixels, 640x360), away from the walker's path.
PRIVACY_MASK = [[0, 0], [160, 0], [160, 90], [0, 90]]
GUEST_PASSWORD = "guest-e2e-password"
#: Playwright's default wait, ms: a loaded 2-core machine renders slowly.
BROWSER_TIMEOUT = 60_000


def why_not() -> str | None:
    """Why a system with an RTSP camera cannot run here, or None."""
    return missing_parts() or rtsp_available()


@contextlib.contextmanager
def own_stack(
    work: Path, source: str, logs: str, camera: dict[str, Any] | None = None
) -> Iterator[Stack]:
    """A small system of a test module's own: Mosquitto, a bridge reading ``source``, and HA.

    For what the session's system must not go through (a camera that refuses the
    password, a full disk). Home Assistant is set up with the owner only; the logs are
    kept in ``logs`` under the artifacts.
    """
    broker, mqtt_port = mosquitto(work)
    bridge = make_bridge(work, mqtt_port, source, camera)
    ha = make_home_assistant(work / "ha", free_port(), work / "logs/home-assistant.log")
    running = Stack(work, broker, mqtt_port, bridge, ha, password="owner-e2e-password")
    try:
        running.start()
        asyncio.run(configure_owner_only(running))
        yield running
    finally:
        running.stop()
        keep_logs(work, logs)


def keep_logs(work: Path, folder: str) -> None:
    """Copy a system's logs (``work/logs``) to ``test-artifacts/ha-<version>/<folder>``."""
    logs = artifacts() / folder
    shutil.rmtree(logs, ignore_errors=True)
    if (work / "logs").is_dir():
        shutil.copytree(work / "logs", logs, dirs_exist_ok=True)


class RtspCamera:
    """The GStreamer RTSP test server looping a porch scene, restartable."""

    def __init__(self, footage: Path, port: int, log: Path) -> None:
        self.args = [
            "/usr/bin/python3",
            str(ROOT / "tests/support/rtsp_server.py"),
            "--port",
            str(port),
            "--mount",
            f"/main={footage}",
        ]
        self.log = log
        self.url = f"rtsp://127.0.0.1:{port}/main"
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if line.startswith("READY"):
                # Keep draining stdout so the server never blocks on a full pipe.
                threading.Thread(target=self.process.stdout.read, daemon=True).start()
                return
            if not line and self.process.poll() is not None:
                break
        self.stop()
        raise RuntimeError("the RTSP camera did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


def _interrupt(*_args: object) -> None:
    raise KeyboardInterrupt


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """The whole system, configured: owner (approver) and guest, each with a phone."""
    why = why_not()
    if why is not None:
        pytest.skip(why)
    # A killed run (CI timeout, `timeout`) still stops every server: SIGTERM becomes
    # KeyboardInterrupt, and pytest runs the finalizers below.
    signal.signal(signal.SIGTERM, _interrupt)
    work = tmp_path_factory.mktemp("e2e")
    # A 12 s loop: a walker crosses the porch at 4-7 s, so motion starts and stops
    # every 12 s and every motion makes a short clip (1.5 s pre-roll, 1 s post-roll).
    footage = write_h264(
        work / "porch.mp4", width=640, height=360, fps=15, seconds=12, gop=15, motion=(4.0, 7.0)
    )
    camera = RtspCamera(footage.path, free_port(), work / "logs/rtsp.log")
    broker, mqtt_port = mosquitto(work)
    bridge = make_bridge(
        work,
        mqtt_port,
        camera.url,
        {
            "record": {"pre_roll": 1.5, "post_roll": 1.0},
            "motion": {"frames_to_start": 2, "off_delay": 1.0},
            "doorbell": {"debounce": 0.2},
            # The neighbour's window, top left: never stored, never shared.
            "privacy_masks": [PRIVACY_MASK],
        },
    )
    ha = make_home_assistant(work / "ha", free_port(), work / "logs/home-assistant.log")
    running = Stack(work, broker, mqtt_port, bridge, ha, password="owner-e2e-password")
    try:
        camera.start()
        running.start()
        asyncio.run(configure_home_assistant(running, guest_password=GUEST_PASSWORD))
        yield running
    finally:
        running.stop()
        camera.stop()
        keep_logs(work, "e2e-logs")


@pytest.fixture
async def page(stack: Stack) -> AsyncIterator[Any]:
    """A fresh Chromium page (Debian's, driven by Playwright) on the stack's machine."""
    del stack  # the page is only useful with the system running
    if CHROMIUM is None:
        pytest.skip("Debian's chromium is not installed (scripts/setup installs it)")
    playwright_api = pytest.importorskip("playwright.async_api")
    (artifacts() / "browser").mkdir(parents=True, exist_ok=True)
    async with playwright_api.async_playwright() as driver:
        browser = await driver.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=list(CHROMIUM_ARGS)
        )
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 800})
            context.set_default_timeout(BROWSER_TIMEOUT)
            yield await context.new_page()
        finally:
            await browser.close()


async def log_in(page: Any, stack: Stack, username: str = OWNER, password: str = "") -> None:
    """Log in (the owner by default) with HA's login form, as a person would; wait for the
    frontend."""
    await page.goto(f"{stack.ha.url}/")
    await page.wait_for_url("**/auth/authorize**")
    await page.locator('input[name="username"]').fill(username)
    await page.locator('input[name="password"]').fill(password or stack.password)
    await page.locator('input[name="password"]').press("Enter")
    await page.wait_for_url(lambda url: "/auth/" not in url)
    await page.wait_for_selector("home-assistant >> home-assistant-main")


async def wait_playable(page: Any, video: Any) -> None:
    """Wait (up to a minute) until a ``<video>`` has its first frame; fail if it never does."""
    for _ in range(120):
        if await video.evaluate("v => v.readyState") >= 2:
            break
        await page.wait_for_timeout(500)
    assert await video.evaluate("v => v.readyState") >= 2, "the clip did not load"


async def shot(page: Any, name: str) -> Path:
    """A screenshot to ``test-artifacts/ha-<version>/browser/<name>``, once animations settle."""
    path = artifacts() / "browser" / name
    await page.wait_for_timeout(1500)
    await page.screenshot(path=str(path))
    return path


async def set_profile(
    owner: HaClient, time_zone: str, time_format: str, date_format: str = "language"
) -> None:
    """The owner's profile settings for times, as its page saves them."""
    async with owner.websocket() as ws:
        await ws.call(
            type="frontend/set_user_data",
            key="language",
            value={
                "language": "en",
                "number_format": "language",
                "time_format": time_format,
                "date_format": date_format,
                "time_zone": time_zone,
                "first_weekday": "language",
            },
        )


async def forget_profile(owner: HaClient) -> None:
    """No saved profile settings for times and language: the browser's own again.

    Saving the defaults instead would keep ``"language": "en"``, and a later test that
    shows the pages in the browser's language (French) would see them in English.
    """
    async with owner.websocket() as ws:
        await ws.call(type="frontend/set_user_data", key="language", value=None)


def time_pattern(
    moment_iso: str,
    zone: str,
    time_format: str,
    *,
    seconds: bool = False,
    date_format: str | None = None,
) -> str:
    """``moment_iso`` as a page shows it in ``zone`` with 12 or 24 hours: a pattern.

    With ``date_format``, the date before it too, as an English page shows it: "language"
    is English's short date (month/day/two-digit year); "DMY", "MDY" and "YMD" put the
    day, month and full year in that order, as Home Assistant's own pages do.
    """
    moment = datetime.fromisoformat(moment_iso).astimezone(ZoneInfo(zone))
    clock = "%M:%S" if seconds else "%M"
    if time_format == "24":
        time = moment.strftime(f"%H:{clock}")
    else:
        hours = moment.strftime("%I").lstrip("0")
        time = rf"{hours}:{moment.strftime(clock)}\s?{moment.strftime('%p')}"
    if date_format is None:
        return time if time_format == "24" else rf"\b{time}"
    day, month, year = str(moment.day), str(moment.month), str(moment.year)
    date = {
        "language": f"{month}/{day}/{year[2:]}",
        "DMY": f"{day}/{month}/{year}",
        "MDY": f"{month}/{day}/{year}",
        "YMD": f"{year}/{month}/{day}",
    }[date_format]
    return rf"\b{date},\s{time}"  # English joins them with a comma
