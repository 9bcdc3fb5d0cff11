"""End to end: real Mosquitto, the real bridge process, Home Assistant with real MQTT.

Discovery, the doorbell, the switches and a share request travel the whole way:
bridge → broker → HA's MQTT client → the integration, and back over the bridge's
HTTP API. Waits are bounded polls on the outcome, never speed assertions.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
import json
import os
from pathlib import Path
import shutil
import socket
import subprocess
import sys

import aiohttp
from homeassistant.components import media_source, mqtt
from homeassistant.config_entries import ConfigEntryState, ConfigFlowResult
from homeassistant.const import CONF_API_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.setup import async_setup_component
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.doorstep.const import CONF_BASE_TOPIC, DOMAIN

from .conftest import children, get_state

TOKEN = "end-to-end-token-0123456789abcdef"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto is not installed"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def _until(check: Callable[[], object], what: str, timeout: float = 20.0) -> None:
    """Poll ``check`` until it is truthy (bounded: fails with ``what``).

    What is awaited happens in other processes (broker, bridge): there is no event
    to wait on, so poll.
    """
    try:
        async with asyncio.timeout(timeout):
            while not check():  # noqa: ASYNC110 - see above
                await asyncio.sleep(0.05)
    except TimeoutError:
        pytest.fail(f"timed out waiting for: {what}")


@dataclass
class Stack:
    broker_port: int
    bridge_url: str


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """Mosquitto and ``doorstep-bridge run`` with one demo camera."""
    broker_port, http_port = _free_port(), _free_port()
    (tmp_path / "mosquitto.conf").write_text(
        f"listener {broker_port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
    )
    (tmp_path / "bridge.yaml").write_text(
        f"mqtt: {{host: 127.0.0.1, port: {broker_port}, base_topic: doorstep}}\n"
        f"http: {{host: 127.0.0.1, port: {http_port}, token: {TOKEN}}}\n"
        f"storage: {{path: {tmp_path / 'data'}}}\n"
        "cameras:\n"
        "  front_door:\n"
        "    source: demo://?period=600&fps=2&width=160&height=120\n"
        "    doorbell: {debounce: 0.2}\n"
        "    record: {pre_roll: 1, post_roll: 1}\n"
    )
    processes = [
        subprocess.Popen(
            ["mosquitto", "-c", str(tmp_path / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    log = (tmp_path / "bridge.log").open("w")
    processes.append(
        subprocess.Popen(
            # As a module: the current-HA lane imports the bridge from the checkout.
            [
                sys.executable,
                "-m",
                "doorstep_bridge",
                "run",
                "--config",
                str(tmp_path / "bridge.yaml"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=log,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    )
    try:
        yield Stack(broker_port, f"http://127.0.0.1:{http_port}")
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        log.close()


@pytest.fixture
async def ha_mqtt(
    hass: HomeAssistant, socket_enabled: None, mock_hass_config: None, stack: Stack
) -> AsyncIterator[MockConfigEntry]:
    """HA's MQTT integration connected to the real broker."""
    entry = MockConfigEntry(domain="mqtt", data={"broker": "127.0.0.1", "port": stack.broker_port})
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await _until(lambda: mqtt.is_connected(hass), "HA connected to the broker")
    async with aiohttp.ClientSession() as session:
        for _ in range(200):  # the bridge process starts in parallel
            try:
                async with session.get(f"{stack.bridge_url}/api/health") as health:
                    if health.status == 200:
                        break
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    yield entry
    for doorstep in hass.config_entries.async_entries(DOMAIN):
        await hass.config_entries.async_unload(doorstep.entry_id)
    await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_discovery_ring_switch_and_share(
    hass: HomeAssistant, ha_mqtt: MockConfigEntry, stack: Stack
) -> None:
    # 1. The bridge's retained discovery message starts a config flow.
    def discovered() -> list[ConfigFlowResult]:
        return [f for f in hass.config_entries.flow.async_progress() if f["handler"] == DOMAIN]

    await _until(discovered, "a Doorstep discovery flow")
    flow = discovered()[0]
    assert flow["step_id"] == "confirm"
    result = await hass.config_entries.flow.async_configure(
        flow["flow_id"], {CONF_URL: stack.bridge_url, CONF_API_TOKEN: TOKEN}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    entry = result["result"]
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    await _until(lambda: hass.states.get("event.front_door_doorbell"), "doorbell entity")
    await _until(
        lambda: get_state(hass, "switch.front_door_motion_detection").state == "on",
        "switch state from the bridge",
    )

    # 2. A press on the bridge's HTTP API reaches the event entity. HA batches its
    # MQTT subscriptions, so the first press may come before it listens: retry.
    def rung() -> bool:
        state = get_state(hass, "event.front_door_doorbell")
        return state.attributes.get("ring_id") in ring_ids

    ring_ids: list[str] = []
    async with aiohttp.ClientSession() as session:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for _ in range(20):
            response = await session.post(
                f"{stack.bridge_url}/api/cameras/front_door/ring", headers=auth
            )
            assert response.status == 202
            body = await response.json()
            if body["accepted"]:
                ring_ids.append(body["ring"]["id"])
            await asyncio.sleep(0.5)
            if rung():
                break
    assert rung()
    assert get_state(hass, "event.front_door_doorbell").attributes["event_type"] == "ring"

    # 3. A switch round-trips through the bridge.
    await hass.services.async_call(
        "switch", "turn_off", {"entity_id": "switch.front_door_motion_detection"}, blocking=True
    )
    await _until(
        lambda: get_state(hass, "switch.front_door_motion_detection").state == "off",
        "motion detection off, confirmed by the bridge",
    )

    # 4. A share request made in HA becomes pending on the bridge, then is denied.
    requested = async_capture_events(hass, "doorstep_share_requested")
    updated = async_capture_events(hass, "doorstep_share_updated")
    answer = await hass.services.async_call(
        DOMAIN, "request_share",
        {"entity_id": "event.front_door_doorbell", "last_minutes": 5, "reason": "End to end"},
        blocking=True, return_response=True,
    )  # fmt: skip
    assert answer is not None
    assert answer["state"] == "pending"
    share_id = answer["share_id"]
    await hass.services.async_call(DOMAIN, "deny_share", {"share_id": share_id}, blocking=True)
    await _until(lambda: [e for e in updated if e.data["state"] == "denied"], "denied over MQTT")
    assert [e.data["share_id"] for e in requested] == [share_id]
    await _until(
        lambda: get_state(hass, "sensor.doorstep_pending_share_requests").state == "0",
        "pending shares back to 0",
    )


async def test_clip_in_media_browser_and_share_link(
    hass: HomeAssistant,
    ha_mqtt: MockConfigEntry,
    stack: Stack,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    await hass.config.async_set_time_zone("Europe/Paris")  # a "+01:00" offset in queries
    async with aiohttp.ClientSession() as session:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        info = await (await session.get(f"{stack.bridge_url}/api/info", headers=auth)).json()
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id=info["id"], title="Doorstep",
        data={CONF_BASE_TOPIC: "doorstep", CONF_URL: stack.bridge_url, CONF_API_TOKEN: TOKEN},
    )  # fmt: skip
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert await async_setup_component(hass, "media_source", {})
    await hass.async_block_till_done()

    # A ring records a clip (1 s pre/post-roll here) that becomes the last clip.
    def clip_done() -> bool:
        return get_state(hass, "sensor.front_door_last_clip").state not in (
            "unknown",
            "unavailable",
        )

    await _until(lambda: hass.states.get("sensor.front_door_last_clip"), "last clip sensor")
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{stack.bridge_url}/api/cameras/front_door/ring", headers=auth) as response,
    ):
        assert response.status == 202
    # The clip topic is retained: HA gets it even if it subscribed late.
    await _until(clip_done, "the clip published")
    clip_id = get_state(hass, "sensor.front_door_last_clip").attributes["clip_id"]

    # Media browser: Doorstep → camera → day → the clip, played through HA with Range.
    root = await media_source.async_browse_media(hass, "media-source://doorstep")
    camera = await media_source.async_browse_media(hass, children(root)[0].media_content_id)
    day = await media_source.async_browse_media(hass, children(camera)[0].media_content_id)
    item = next(c for c in children(day) if str(c.identifier).endswith(clip_id))
    play = await media_source.async_resolve_media(hass, item.media_content_id, None)
    client = await hass_client()
    response = await client.get(play.url, headers={"Range": "bytes=0-15"})
    assert response.status == 206
    assert (await response.read())[4:8] == b"ftyp"
    thumbnail = await client.get(item.thumbnail)
    assert thumbnail.status == 200
    assert (await thumbnail.read())[:2] == b"\xff\xd8"
    anonymous = await hass_client_no_auth()
    assert (await anonymous.get(play.url)).status == 401

    # Share the clip's window; approve; the link works through HA without a login.
    updated = async_capture_events(hass, "doorstep_share_updated")
    attributes = get_state(hass, "sensor.front_door_last_clip").attributes
    answer = await hass.services.async_call(
        DOMAIN, "request_share",
        {"entity_id": "event.front_door_doorbell", "start": attributes["start"],
         "end": attributes["end"], "reason": "End to end"},
        blocking=True, return_response=True,
    )  # fmt: skip
    assert answer is not None
    await hass.services.async_call(
        DOMAIN, "approve_share", {"share_id": answer["share_id"]}, blocking=True
    )
    await _until(
        lambda: [e for e in updated if e.data["state"] in ("ready", "failed", "empty")],
        "the share rendered",
        timeout=60,
    )
    ready = next(e for e in updated if e.data["state"] in ("ready", "failed", "empty"))
    assert ready.data["state"] == "ready", ready.data
    link = ready.data["link"]
    assert link.startswith("/api/doorstep/share/")
    download = await anonymous.get(link)
    assert download.status == 200
    assert (await download.read())[4:8] == b"ftyp"
    # A browser outside the home gets the recipient's page through Home Assistant too, and
    # its links (the video, the signature to check it by) work under Home Assistant's link.
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    page = await anonymous.get(link, headers=browser)
    assert page.status == 200
    assert page.content_type == "text/html"
    assert page.headers["Content-Security-Policy"].startswith("default-src 'none'")
    html = await page.text()
    assert "End to end" in html
    assert 'src="?raw=1"' in html
    token = link.rsplit("/", 1)[1]
    assert f'href="{token}/signature"' in html
    video = await anonymous.get(f"{link}?raw=1", headers=browser)
    assert (await video.read())[4:8] == b"ftyp"
    signature = await anonymous.get(f"{link}/signature", headers=browser)
    assert signature.status == 200
    signed = json.loads(await signature.read())
    assert signed["manifest"]["share_id"] == answer["share_id"]
    assert (await anonymous.head(link)).status == 200
    await hass.services.async_call(
        DOMAIN, "revoke_share", {"share_id": answer["share_id"]}, blocking=True
    )
    assert (await anonymous.get(link)).status == 410
    gone = await anonymous.get(link, headers=browser)
    assert gone.status == 410
    assert "This link no longer works" in await gone.text()
