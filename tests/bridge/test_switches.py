"""Camera switches: off only with the API token, on from anywhere, a repeat costs nothing.

The real bridge (in-process, demo camera) against a real Mosquitto; switches are
set over its HTTP API and over MQTT as an outside client would.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import logging
from pathlib import Path
from typing import Any

import pytest

from doorstep_bridge.camera.switches import FILE_NAME
from doorstep_bridge.mqtt.topics import SWITCHES
from tests.bridge.bridge_runner import RunningBridge, bridge_config, run_bridge
from tests.bridge.conftest import Broker, Listener

CAMERA = "doorstep/front_door"
REFUSED = "off over MQTT is refused"


def _switch_url(bridge: RunningBridge, switch: str, camera: str = "front_door") -> str:
    return f"{bridge.url}/api/cameras/{camera}/switches/{switch}"


async def _put(
    bridge: RunningBridge, url: str, body: Any, *, auth: bool = True
) -> tuple[int, dict[str, Any]]:
    headers = bridge.auth if auth else {}
    kwargs: dict[str, Any] = {"data": body} if isinstance(body, str | bytes) else {"json": body}
    async with bridge.session.put(url, headers=headers, **kwargs) as response:
        return response.status, await response.json()


async def _camera_info(bridge: RunningBridge) -> dict[str, Any]:
    async with bridge.session.get(f"{bridge.url}/api/info", headers=bridge.auth) as response:
        assert response.status == 200
        camera: dict[str, Any] = (await response.json())["cameras"]["front_door"]
        return camera


async def _wait_for_log(caplog: pytest.LogCaptureFixture, text: str) -> None:
    """Until `text` is logged: the bridge handles MQTT messages in order, so a later one
    being logged means every earlier one was handled. Bounded."""
    for _ in range(200):
        if text in caplog.text:
            return
        await asyncio.sleep(0.05)
    pytest.fail(f"never logged: {text}")


async def test_the_http_api_switches_with_the_token_only(
    mqtt_broker: Broker, mqtt_listener: Callable[..., Listener], tmp_path: Path
) -> None:
    listener = mqtt_listener(f"{CAMERA}/+")
    wait = listener.wait_for
    async with run_bridge(bridge_config(mqtt_broker, tmp_path)) as bridge:
        await bridge.wait_mqtt()
        assert await asyncio.to_thread(wait, f"{CAMERA}/recording", 10, b"ON")
        url = _switch_url(bridge, "recording")

        assert await _put(bridge, url, {"on": False}, auth=False) == (
            401,
            {"error": "missing or invalid API token"},
        )
        status, body = await _put(bridge, _switch_url(bridge, "recording", "ghost"), {"on": False})
        assert (status, body["error"]) == (404, "unknown camera 'ghost'")
        status, body = await _put(bridge, _switch_url(bridge, "privacy"), {"on": False})
        assert status == 400
        assert body["error"].startswith("unknown switch 'privacy'")
        for bad in ("not json", "[" * 60_000, {"on": "off"}, {"on": 0}, {"state": False},
                    {"on": False, "camera": "front_door"}, [False]):  # fmt: skip
            status, body = await _put(bridge, url, bad)
            assert (status, body) == (400, {"error": 'expected a JSON body {"on": true} or '
                                                     '{"on": false}'}), bad  # fmt: skip
        assert (await _camera_info(bridge))["recording"] is True

        for switch in SWITCHES:
            assert await _put(bridge, _switch_url(bridge, switch), {"on": False}) == (
                200,
                {"camera": "front_door", "switch": switch, "on": False},
            )
            # Published as before, retained: Home Assistant's switch follows from it.
            assert await asyncio.to_thread(wait, f"{CAMERA}/{switch}", 10, b"OFF")
        camera = await _camera_info(bridge)
        assert (camera["recording"], camera["motion_detection"]) == (False, False)

        assert await _put(bridge, url, {"on": True}) == (
            200,
            {"camera": "front_door", "switch": "recording", "on": True},
        )
        assert await asyncio.to_thread(wait, f"{CAMERA}/recording", 10, b"ON")
        assert (await _camera_info(bridge))["recording"] is True


async def test_mqtt_cannot_switch_off_and_says_so_once(
    mqtt_broker: Broker,
    mqtt_listener: Callable[..., Listener],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    listener = mqtt_listener(f"{CAMERA}/+")
    async with run_bridge(bridge_config(mqtt_broker, tmp_path)) as bridge:
        await bridge.wait_mqtt()
        await asyncio.to_thread(listener.wait_for, f"{CAMERA}/recording", 10, b"ON")
        await asyncio.to_thread(listener.drain)
        for _ in range(100):
            for switch in SWITCHES:
                for payload in ("OFF", "off", "false", "0"):
                    await asyncio.to_thread(listener.publish, f"{CAMERA}/{switch}/set", payload)
        # A press after the flood: the bridge handles messages in the order they come,
        # so once it rings, every OFF before it was handled.
        await asyncio.to_thread(listener.publish, f"{CAMERA}/ring/set", "1")
        await asyncio.to_thread(listener.wait_for, f"{CAMERA}/ring", 30)
        camera = await _camera_info(bridge)
        assert (camera["recording"], camera["motion_detection"]) == (True, True)
        # Nothing changed, so nothing was published, on either switch.
        states = [(t, p) for t, p, _ in await asyncio.to_thread(listener.drain, 0.5)]
        assert not [item for item in states if item[0].endswith(SWITCHES)], states
    assert not (tmp_path / FILE_NAME).exists()
    # One warning per switch saying why and what to do; the rest are counted, in a
    # summary line a minute later or, as here, at stop.
    refused = sorted(r.getMessage() for r in caplog.records if REFUSED in r.getMessage())
    assert len(refused) == 4, refused
    first = [line for line in refused if line.startswith("Ignoring message")]
    assert len(first) == 2, refused
    assert [line.split(" in the last")[0] for line in refused if line not in first] == [
        "Ignored 399 more messages on doorstep/+/motion_detection/set",
        "Ignored 399 more messages on doorstep/+/recording/set",
    ]
    assert all(r.levelno == logging.WARNING for r in caplog.records if REFUSED in r.getMessage())
    assert "turn it off from Home Assistant or with the bridge's HTTP API" in first[0]
    assert "switched" not in caplog.text


async def test_mqtt_can_switch_on(
    mqtt_broker: Broker, mqtt_listener: Callable[..., Listener], tmp_path: Path
) -> None:
    listener = mqtt_listener(f"{CAMERA}/+")
    wait = listener.wait_for
    async with run_bridge(bridge_config(mqtt_broker, tmp_path)) as bridge:
        await bridge.wait_mqtt()
        # The states published at start first: a later wait for ON must not take them.
        for switch in SWITCHES:
            assert await asyncio.to_thread(wait, f"{CAMERA}/{switch}", 10, b"ON")
        for switch in SWITCHES:
            assert (await _put(bridge, _switch_url(bridge, switch), {"on": False}))[0] == 200
            assert await asyncio.to_thread(wait, f"{CAMERA}/{switch}", 10, b"OFF")
            # Raising protection needs no credential: users' automations do it.
            await asyncio.to_thread(listener.publish, f"{CAMERA}/{switch}/set", "ON")
            assert await asyncio.to_thread(wait, f"{CAMERA}/{switch}", 10, b"ON")
        camera = await _camera_info(bridge)
        assert (camera["recording"], camera["motion_detection"]) == (True, True)


async def test_a_command_repeating_the_state_does_nothing(
    mqtt_broker: Broker,
    mqtt_listener: Callable[..., Listener],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    listener = mqtt_listener(f"{CAMERA}/+")
    async with run_bridge(bridge_config(mqtt_broker, tmp_path)) as bridge:
        await bridge.wait_mqtt()
        await asyncio.to_thread(listener.wait_for, f"{CAMERA}/recording", 10, b"ON")
        await asyncio.to_thread(listener.drain)
        for _ in range(200):
            await asyncio.to_thread(listener.publish, f"{CAMERA}/recording/set", "ON")
        # Same subscription, after the flood: once its refusal is logged, every ON was handled.
        await asyncio.to_thread(listener.publish, f"{CAMERA}/recording/set", "OFF")
        await _wait_for_log(caplog, REFUSED)
        for _ in range(3):
            assert (await _put(bridge, _switch_url(bridge, "recording"), {"on": True})) == (
                200,
                {"camera": "front_door", "switch": "recording", "on": True},
            )
        published = [t for t, _, _ in await asyncio.to_thread(listener.drain, 0.5)]
        assert f"{CAMERA}/recording" not in published
    assert "switched" not in caplog.text
    assert not (tmp_path / FILE_NAME).exists()
