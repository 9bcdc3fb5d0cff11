"""Stopping the recording without a credential: an anonymous MQTT flood of OFF commands.

A real bridge process and a real Mosquitto (loopback only), two demo cameras whose
visitor walks past every few seconds. Anyone who can write to the broker (often
anyone on a home LAN) sends every spelling of OFF to every camera's switches; the
switches stay on, the next visitor is still detected and recorded, and the log stays short.
"""

from __future__ import annotations

from datetime import UTC, datetime
import json
from pathlib import Path
import time
from urllib.parse import urlencode

import pytest

from doorstep_bridge.mqtt.topics import SWITCHES, Topics
from tests.bridge.conftest import Listener
from tests.security.bridge_process import BridgeProcess, bridge_process, broker_at, get
from tests.security.fuzz_mqtt import Message, flood

pytestmark = pytest.mark.slow

TOPICS = Topics("doorstep")
#: A visitor walks past each camera every 10 s (the demo source's shortest useful period).
DEMO = "demo://?period=10&fps=5&width=192&height=108"
CAMERAS = ("front_door", "back_yard")
OFF_SPELLINGS = (b"OFF", b"off", b" Off ", b"false", b"FALSE", b"0")
ROUNDS = 200
#: Log lines the whole flood may add: a first warning and a summary per switch, at most.
MAX_REFUSED_LINES = 2 * len(SWITCHES) * 2


def _off_flood() -> list[Message]:
    """Every spelling of OFF, on every switch of every camera, QoS 0 and 1."""
    return [
        Message(TOPICS.switch_set(camera, switch), payload, qos=index % 2)
        for index in range(ROUNDS)
        for camera in CAMERAS
        for switch in SWITCHES
        for payload in OFF_SPELLINGS
    ]


def _switches(bridge: BridgeProcess) -> dict[str, tuple[bool, bool]]:
    status, body = get(f"{bridge.url}/api/info", headers=bridge.auth)
    assert status == 200
    cameras = json.loads(body)["cameras"]
    return {
        name: (cameras[name]["motion_detection"], cameras[name]["recording"]) for name in CAMERAS
    }


def _clips_since(bridge: BridgeProcess, camera: str, since: datetime) -> list[str]:
    query = urlencode({"camera": camera, "since": since.isoformat()})
    status, body = get(f"{bridge.url}/api/clips?{query}", headers=bridge.auth)
    assert status == 200
    return [clip["id"] for clip in json.loads(body)["clips"]]


def test_an_anonymous_off_flood_cannot_stop_recording(tmp_path: Path) -> None:
    cameras = {
        name: {"source": DEMO, "record": {"pre_roll": 1, "post_roll": 1}} for name in CAMERAS
    }
    with broker_at(tmp_path) as broker, bridge_process(tmp_path, broker, cameras=cameras) as bridge:
        listener = Listener(broker, [TOPICS.ring("front_door")])
        try:
            listener.drain(1.0)
            flood_started = datetime.now(UTC)
            messages = _off_flood()
            assert flood(broker.host, broker.port, messages) == len(messages)
            # The bridge handles messages in the order they come: once a press sent
            # after the flood rings, every OFF before it was handled.
            listener.drain(0)
            listener.publish(f"{TOPICS.ring('front_door')}/set", b"1")
            listener.wait_for(TOPICS.ring("front_door"), 60)
        finally:
            listener.close()

        assert _switches(bridge) == dict.fromkeys(CAMERAS, (True, True))
        # What Home Assistant sees on the broker (retained) says the same.
        watcher = Listener(broker, [TOPICS.switch(c, s) for c in CAMERAS for s in SWITCHES])
        try:
            retained = {t: p for t, p, r in watcher.drain(1.0) if r}
        finally:
            watcher.close()
        assert retained == {TOPICS.switch(c, s): b"ON" for c in CAMERAS for s in SWITCHES}

        # And the cameras really still detect and record: the next visitor is seen
        # (motion ON) and recorded. (The demo visitor also rings, which makes the
        # clip a ring clip; the motion message shows detection started it.)
        motion = Listener(broker, [TOPICS.motion(c) for c in CAMERAS])
        try:
            for camera in CAMERAS:
                motion.wait_for(TOPICS.motion(camera), 30, b"ON")
        finally:
            motion.close()
        deadline = time.monotonic() + 60
        while not all(_clips_since(bridge, c, flood_started) for c in CAMERAS):
            assert time.monotonic() < deadline, "no clip after the flood"
            time.sleep(0.5)
        log = bridge.log()

    assert "Traceback" not in log
    refused = [line for line in log.splitlines() if "off over MQTT is refused" in line]
    assert 1 <= len(refused) <= MAX_REFUSED_LINES, "\n".join(refused)
    assert "switched off" not in log
    assert not (bridge.storage / "camera_switches.json").exists()
