"""After a restart the bridge tells the truth: switches kept, stale retained states replaced.

The real bridge (in-process) against a real Mosquitto, with the demo camera.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import json
from pathlib import Path

from doorstep_bridge.keys import CAMERAS
from tests.bridge.bridge_runner import RunningBridge, bridge_config, run_bridge
from tests.bridge.conftest import Broker, Listener

CAMERA = "doorstep/front_door"


async def _info(bridge: RunningBridge) -> dict[str, object]:
    async with bridge.session.get(f"{bridge.url}/api/info", headers=bridge.auth) as response:
        assert response.status == 200
        camera: dict[str, object] = (await response.json())["cameras"]["front_door"]
        return camera


async def test_a_switch_turned_off_stays_off_after_a_restart(
    mqtt_broker: Broker, mqtt_listener: Callable[..., Listener], tmp_path: Path
) -> None:
    listener = mqtt_listener("doorstep/#")
    wait = listener.wait_for
    config = bridge_config(mqtt_broker, tmp_path / "data")
    async with run_bridge(config) as bridge:
        await bridge.wait_mqtt()
        assert await asyncio.to_thread(wait, f"{CAMERA}/available", 15, b"online")
        # Off takes the API token (MQTT can only switch on).
        async with bridge.session.put(
            f"{bridge.url}/api/cameras/front_door/switches/recording",
            headers=bridge.auth,
            json={"on": False},
        ) as response:
            assert response.status == 200
        await asyncio.to_thread(wait, f"{CAMERA}/recording", 10, b"OFF")
        assert (await _info(bridge))["recording"] is False
    # A clean stop takes the camera offline.
    await asyncio.to_thread(wait, f"{CAMERA}/available", 10, b"offline")
    # What a crash during motion leaves retained on the broker.
    listener.publish(f"{CAMERA}/motion", "ON", retain=True)
    listener.drain()

    async with run_bridge(config) as bridge:
        await bridge.wait_mqtt()
        # Start-up publishes the real states, not only changes.
        assert await asyncio.to_thread(wait, f"{CAMERA}/recording", 10, b"OFF")
        assert await asyncio.to_thread(wait, f"{CAMERA}/motion_detection", 10, b"ON")
        assert await asyncio.to_thread(wait, f"{CAMERA}/motion", 10, b"OFF")
        camera = await _info(bridge)
        assert camera["recording"] is False
        assert camera["motion"] is False
        # Home Assistant (re)subscribing now sees the same as /api/info.
        fresh = mqtt_listener(f"{CAMERA}/motion", f"{CAMERA}/recording")
        retained = {t: p for t, p, r in await asyncio.to_thread(fresh.drain, 1.0) if r}
        assert retained == {f"{CAMERA}/motion": b"OFF", f"{CAMERA}/recording": b"OFF"}
        # Recording really is off: "record now" records nothing.
        cameras = bridge.app[CAMERAS]
        cameras.record("front_door", 1.0)
        assert not cameras.status("front_door").recording_clip
    switches = json.loads((tmp_path / "data" / "camera_switches.json").read_text())
    assert switches == {
        "front_door": {"motion_detection": True, "recording": False, "config_recording": True}
    }
