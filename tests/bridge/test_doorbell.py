"""Doorbell inputs against a real broker: every input rings once per press."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta
import json
from pathlib import Path
from unittest.mock import patch

from doorstep_bridge.config import DoorbellSettings
from doorstep_bridge.doorbell import Doorbell, payload_matches
from doorstep_bridge.events import EventBus
from doorstep_bridge.models import utcnow
from tests.bridge.bridge_runner import bridge_config, run_bridge
from tests.bridge.conftest import Broker, Listener

RING = "doorstep/front_door/ring"


def assert_ring(payload: bytes) -> dict[str, str]:
    data = json.loads(payload)
    assert set(data) == {"id", "camera", "time"}
    assert data["camera"] == "front_door"
    assert data["id"].startswith("r_")
    assert datetime.fromisoformat(data["time"]).tzinfo is not None
    return data


def test_payload_matching() -> None:
    single = DoorbellSettings(topic="z", payload=(("action", "single"),))
    assert payload_matches(single, b'{"action": "single", "battery": 90}')
    assert not payload_matches(single, b'{"action": "double"}')
    assert not payload_matches(single, b"not json")
    assert not payload_matches(single, b'["action", "single"]')
    assert not payload_matches(single, b"\xff\xfe")
    # Garbage a sender chooses is never a press and never an error.
    assert not payload_matches(single, b"[" * 50_000 + b"]" * 50_000)
    assert not payload_matches(single, b'{"a":' * 20_000 + b"1" + b"}" * 20_000)
    assert not payload_matches(single, b'{"action": "single", "n": ' + b"9" * 5000 + b"}")
    nested_ok = b'{"action": "single", "update": {"state": {"x": [1]}}, "s": "[[[[{{{{"}'
    assert payload_matches(single, nested_ok)
    text = DoorbellSettings(topic="z", payload="pressed")
    assert payload_matches(text, b" pressed\n")
    assert not payload_matches(text, b"released")
    assert payload_matches(DoorbellSettings(topic="z"), b"anything")


async def test_listed_presses_say_their_age_on_the_steady_clock() -> None:
    """The age of a press is how long ago it was, whatever the wall clock says.

    A client on another host (Home Assistant) compares the age with its own durations: the
    press's ``time`` is on this host's wall clock, which may be hours off from the client's.
    """
    steady = [1000.0]
    doorbell = Doorbell(
        {"front_door": DoorbellSettings(debounce=0)},
        EventBus(),
        None,
        asyncio.get_running_loop(),
        clock=lambda: steady[0],
    )
    hours_behind = utcnow() - timedelta(hours=3)
    with patch("doorstep_bridge.doorbell.utcnow", return_value=hours_behind):
        first = doorbell.press("front_door", "http")
        steady[0] += 40.0
        second = doorbell.press("front_door", "http")
    steady[0] += 2.5
    assert doorbell.recent() == [(first, 42.5), (second, 2.5)]


async def test_ring_from_every_input(
    mqtt_broker: Broker, mqtt_listener: Callable[..., Listener], tmp_path: Path
) -> None:
    listener = mqtt_listener(RING)
    config = bridge_config(
        mqtt_broker,
        tmp_path,
        cameras={
            "front_door": {
                "source": "demo://",
                "doorbell": {
                    "topic": "zigbee2mqtt/front_button",
                    "payload": {"action": "single"},
                    "debounce": 0.2,
                },
            }
        },
    )
    async with run_bridge(config) as bridge:
        await bridge.wait_mqtt()
        await asyncio.sleep(0.2)  # let the subscriptions settle

        await asyncio.to_thread(listener.publish, "doorstep/front_door/ring/set", b"")
        first = assert_ring(await asyncio.to_thread(listener.wait_for, RING))
        await asyncio.sleep(0.3)

        # The outside button: a non-matching message is not a press, a matching one is.
        await asyncio.to_thread(listener.publish, "zigbee2mqtt/front_button", b'{"action": "hold"}')
        await asyncio.to_thread(
            listener.publish, "zigbee2mqtt/front_button", b'{"action": "single"}'
        )
        second = assert_ring(await asyncio.to_thread(listener.wait_for, RING))
        await asyncio.sleep(0.3)

        async with bridge.session.post(
            f"{bridge.url}/api/cameras/front_door/ring", headers=bridge.auth
        ) as response:
            assert response.status == 202
            body = await response.json()
        assert body["accepted"] is True
        third = assert_ring(await asyncio.to_thread(listener.wait_for, RING))
        assert third["id"] == body["ring"]["id"]

        assert len({first["id"], second["id"], third["id"]}) == 3
        leftovers = [m for m in await asyncio.to_thread(listener.drain) if m[0] == RING]
        assert leftovers == [], "the non-matching button message must not ring"


async def test_ring_messages_are_qos1_not_retained(
    mqtt_broker: Broker, mqtt_listener: Callable[..., Listener], tmp_path: Path
) -> None:
    async with run_bridge(bridge_config(mqtt_broker, tmp_path)) as bridge:
        await bridge.wait_mqtt()
        listener = mqtt_listener(RING)
        await asyncio.sleep(0.3)
        await bridge.session.post(f"{bridge.url}/api/cameras/front_door/ring", headers=bridge.auth)
        await asyncio.to_thread(listener.wait_for, RING)
        # A client that subscribes later gets no stale ring (not retained).
        late = mqtt_listener(RING)
        assert [m for m in await asyncio.to_thread(late.drain, 0.5) if m[0] == RING] == []


async def test_debounce_makes_one_press_one_event(
    mqtt_broker: Broker, mqtt_listener: Callable[..., Listener], tmp_path: Path
) -> None:
    listener = mqtt_listener(RING)
    config = bridge_config(
        mqtt_broker,
        tmp_path,
        cameras={"front_door": {"source": "demo://", "doorbell": {"debounce": 1.0}}},
    )
    async with run_bridge(config) as bridge:
        await bridge.wait_mqtt()
        await asyncio.sleep(0.2)
        for _ in range(5):  # a bouncing contact / an impatient visitor
            await asyncio.to_thread(listener.publish, "doorstep/front_door/ring/set", b"1")
        await asyncio.to_thread(listener.wait_for, RING)
        async with bridge.session.post(
            f"{bridge.url}/api/cameras/front_door/ring", headers=bridge.auth
        ) as response:
            assert (await response.json())["accepted"] is False
        assert [m for m in await asyncio.to_thread(listener.drain, 0.5) if m[0] == RING] == []

        await asyncio.sleep(1.1)
        await asyncio.to_thread(listener.publish, "doorstep/front_door/ring/set", b"1")
        await asyncio.to_thread(listener.wait_for, RING)


async def test_http_ring_needs_token_and_known_camera(mqtt_broker: Broker, tmp_path: Path) -> None:
    async with run_bridge(bridge_config(mqtt_broker, tmp_path)) as bridge:
        url = f"{bridge.url}/api/cameras/front_door/ring"
        async with bridge.session.post(url) as response:
            assert response.status == 401
        async with bridge.session.post(url, headers={"Authorization": "Bearer wrong"}) as response:
            assert response.status == 401
        async with bridge.session.post(
            f"{bridge.url}/api/cameras/back_door/ring", headers=bridge.auth
        ) as response:
            assert response.status == 404
            assert "back_door" in (await response.json())["error"]


async def test_presses_are_listed_for_a_client_that_was_away(
    mqtt_broker: Broker, mqtt_listener: Callable[..., Listener], tmp_path: Path
) -> None:
    """A press while the broker is away: the ring message goes out later, to subscribers then.

    A client that reconnects with a new session (Home Assistant does) subscribes after the
    bridge sent it, so it asks ``GET /api/rings`` for the presses it may have missed.
    """
    cameras = {"front_door": {"source": "demo://", "doorbell": {"debounce": 0}}}
    async with run_bridge(bridge_config(mqtt_broker, tmp_path, cameras=cameras)) as bridge:
        await bridge.wait_mqtt()
        url = f"{bridge.url}/api/rings"
        async with bridge.session.get(url) as response:
            assert response.status == 401  # who rang, and when, is the owner's to know
        await asyncio.to_thread(mqtt_broker.stop)
        async with bridge.session.post(
            f"{bridge.url}/api/cameras/front_door/ring", headers=bridge.auth
        ) as response:
            pressed = (await response.json())["ring"]
        await asyncio.to_thread(mqtt_broker.start)
        await bridge.wait_mqtt()
        await asyncio.sleep(0.5)  # the bridge has sent its queued ring by now
        late = mqtt_listener(RING)
        assert [m for m in await asyncio.to_thread(late.drain, 0.5) if m[0] == RING] == []
        async with bridge.session.get(url, headers=bridge.auth) as response:
            assert response.status == 200
            (listed_press,) = (await response.json())["rings"]
        # The ring message plus how many seconds ago it was.
        assert {k: v for k, v in listed_press.items() if k != "age"} == pressed
        assert 0.5 <= listed_press["age"] < 600
        await bridge.session.post(f"{bridge.url}/api/cameras/front_door/ring", headers=bridge.auth)
        async with bridge.session.get(url, headers=bridge.auth) as response:
            listed = (await response.json())["rings"]
        assert [ring["id"] for ring in listed][:1] == [pressed["id"]]  # oldest first
        assert len(listed) == 2
        assert listed[0]["age"] >= listed[1]["age"] >= 0
        assert_ring(json.dumps({k: v for k, v in listed[1].items() if k != "age"}).encode())
