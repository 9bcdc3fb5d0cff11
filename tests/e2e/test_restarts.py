"""Restarts: Home Assistant restarts under a running bridge, the bridge under a running HA,
and the broker under both.

After each restart the entities come back, and every press made while both run
reaches Home Assistant as exactly one ring event (matched by ring id). A press
sent while the bridge is down waits on the broker (the bridge's persistent
session) and rings once the bridge is back; one made while Home Assistant is down
rings once Home Assistant is back.
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
import json
from typing import Any

import aiohttp
import pytest

from tests.e2e.ha_client import HaClient, HaWebSocket, wait_entry_loaded
from tests.e2e.servers import CAMERA, Mqtt, start_mosquitto
from tests.e2e.stack import Stack

pytestmark = pytest.mark.slow

DOORBELL = f"event.{CAMERA}_doorbell"
ENTITIES = (DOORBELL, f"binary_sensor.{CAMERA}_motion", f"image.{CAMERA}_snapshot")
PRESSES = 5


async def _presses_all_arrive(stack: Stack, owner: HaClient) -> None:
    """Press PRESSES times; HA shows one ring event per press, with the bridge's ring ids."""
    mqtt = Mqtt(stack.mqtt_port, (f"doorstep/{CAMERA}/ring",))
    try:
        async with owner.websocket() as ws:
            sub = await ws.subscribe(type="subscribe_events", event_type="state_changed")
            await _first_ring_through(mqtt, ws, sub)
            await asyncio.sleep(0.4)  # beyond the 0.2 s debounce
            published = []
            for _ in range(PRESSES):
                mqtt.publish(f"doorstep/{CAMERA}/ring/set", b"")
                ring = json.loads(await asyncio.to_thread(mqtt.next, f"doorstep/{CAMERA}/ring"))
                published.append(ring["id"])
                await asyncio.sleep(0.4)  # beyond the 0.2 s debounce: each press counts
            received = await _ring_ids(ws, sub, len(published))
    finally:
        mqtt.close()
    assert received == published


def _is_ring(ring_id: str) -> Any:
    def match(event: dict[str, Any]) -> bool:
        new = event["data"]["new_state"] or {}
        return bool(
            event["data"]["entity_id"] == DOORBELL
            and new.get("attributes", {}).get("ring_id") == ring_id
        )

    return match


async def _first_ring_through(mqtt: Mqtt, ws: HaWebSocket, sub: int) -> None:
    """Press until HA shows a ring: HA's MQTT subscriptions go out shortly after the
    entry has loaded, and a press in that window (a fraction of a second) is missed."""
    for _ in range(30):
        mqtt.publish(f"doorstep/{CAMERA}/ring/set", b"")
        ring = json.loads(await asyncio.to_thread(mqtt.next, f"doorstep/{CAMERA}/ring"))
        with contextlib.suppress(TimeoutError):
            await ws.next_event(sub, _is_ring(ring["id"]), timeout=3)
            return
    raise AssertionError("no press reached Home Assistant")


async def _ring_ids(ws: HaWebSocket, sub: int, count: int) -> list[str]:
    ids: list[str] = []
    while len(ids) < count:
        event = await ws.next_event(
            sub, lambda e: e["data"]["entity_id"] == DOORBELL and e["data"]["new_state"], timeout=60
        )
        new: dict[str, Any] = event["data"]["new_state"]
        if new["attributes"].get("event_type") == "ring":
            ids.append(new["attributes"]["ring_id"])
    return ids


async def _all_available(owner: HaClient) -> None:
    for entity_id in ENTITIES:
        await owner.wait_state(entity_id, lambda s: s["state"] != "unavailable", timeout=120)


async def test_home_assistant_restart_under_a_running_bridge(stack: Stack) -> None:
    stack.ha.stop()
    stack.ha.start()
    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, stack.ha.url, stack.owner_token)
        await wait_entry_loaded(owner, stack.entry_id, timeout=120)
        await _all_available(owner)
        # The last clip is retained on the broker: the sensor has it again at once.
        clip = await owner.state(f"sensor.{CAMERA}_last_clip")
        assert clip is not None
        await _presses_all_arrive(stack, owner)


async def test_a_press_while_home_assistant_restarts_rings_once_it_is_back(stack: Stack) -> None:
    """Home Assistant down (an update): a press reaches no one, and is not retained. Once
    it is back, the integration asks the bridge and rings that press, once, with the time
    it was made; the press rung before the restart does not ring again."""
    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, stack.ha.url, stack.owner_token)
        await _all_available(owner)
        mqtt = Mqtt(stack.mqtt_port, (f"doorstep/{CAMERA}/ring",))
        try:
            async with owner.websocket() as ws:
                sub = await ws.subscribe(type="subscribe_events", event_type="state_changed")
                await _first_ring_through(mqtt, ws, sub)
            before = await owner.state(DOORBELL)
            assert before is not None
            stack.ha.stop()
            await asyncio.sleep(0.4)  # beyond the 0.2 s debounce
            mqtt.publish(f"doorstep/{CAMERA}/ring/set", b"")
            ring = json.loads(await asyncio.to_thread(mqtt.next, f"doorstep/{CAMERA}/ring"))
            stack.ha.start()
        finally:
            mqtt.close()
        await wait_entry_loaded(owner, stack.entry_id, timeout=120)
        rang = await owner.wait_state(
            DOORBELL, lambda s: s["attributes"].get("ring_id") == ring["id"], timeout=60
        )
        made = datetime.fromisoformat(ring["time"])
        assert datetime.fromisoformat(rang["attributes"]["time"]) == made
        # Once: the event's state (when it fired) stays; the press before did not ring again.
        async with owner.websocket() as ws:
            sub = await ws.subscribe(type="subscribe_events", event_type="state_changed")
            with contextlib.suppress(TimeoutError):
                event = await ws.next_event(
                    sub, lambda e: e["data"]["entity_id"] == DOORBELL, timeout=5
                )
                raise AssertionError(f"the doorbell fired again: {event}")
        after = await owner.state(DOORBELL)
        assert after is not None
        assert after["state"] == rang["state"]
        assert after["attributes"]["ring_id"] == ring["id"] != before["attributes"]["ring_id"]


async def test_bridge_restart_under_a_running_home_assistant(stack: Stack) -> None:
    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, stack.ha.url, stack.owner_token)
        await _all_available(owner)
        stack.bridge.stop()
        # A clean stop says "offline": HA marks the camera's entities unavailable.
        await owner.wait_state(DOORBELL, lambda s: s["state"] == "unavailable", timeout=60)
        stack.bridge.start()
        await _all_available(owner)
        await _presses_all_arrive(stack, owner)


async def test_a_press_while_the_bridge_restarts_rings_once_it_is_back(stack: Stack) -> None:
    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, stack.ha.url, stack.owner_token)
        await _all_available(owner)
        mqtt = Mqtt(stack.mqtt_port, (f"doorstep/{CAMERA}/ring",))
        try:
            stack.bridge.stop()
            mqtt.publish(f"doorstep/{CAMERA}/ring/set", b"")  # QoS 1, as a button would
            stack.bridge.start()
            await _all_available(owner)
            ring = json.loads(await asyncio.to_thread(mqtt.next, f"doorstep/{CAMERA}/ring", 60))
        finally:
            mqtt.close()
        assert ring["camera"] == CAMERA
        # Home Assistant shows that very press.
        await owner.wait_state(DOORBELL, lambda s: s["attributes"].get("ring_id") == ring["id"])


async def test_a_broker_outage_shows_in_home_assistant_until_the_bridge_is_back(
    stack: Stack,
) -> None:
    # With the broker gone nothing the bridge publishes arrives, not even its last will:
    # Home Assistant must not go on showing the doorbell as working.
    connectivity = "binary_sensor.doorstep_connectivity"
    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, stack.ha.url, stack.owner_token)
        await _all_available(owner)
        assert (await owner.state(connectivity) or {}).get("state") == "on"
        stack.broker.stop()
        try:
            await owner.wait_state(DOORBELL, lambda s: s["state"] == "unavailable", timeout=60)
            await owner.wait_state(connectivity, lambda s: s["state"] == "off", timeout=10)
            # A visitor rings meanwhile: the bridge sends the ring as soon as the broker is
            # back, before Home Assistant (a new session, and a 10 s retry) subscribes again.
            async with session.post(
                f"{stack.bridge.url}/api/cameras/{CAMERA}/ring",
                headers={"Authorization": f"Bearer {stack.bridge.token}"},
            ) as response:
                missed = (await response.json())["ring"]["id"]
        finally:
            start_mosquitto(stack.broker, stack.mqtt_port)
        # Both reconnect; the bridge says it is online again, the press made meanwhile
        # rings, and presses ring.
        await owner.wait_state(DOORBELL, lambda s: s["attributes"].get("ring_id") == missed, 120)
        await _all_available(owner)
        await owner.wait_state(connectivity, lambda s: s["state"] == "on", timeout=120)
        await _presses_all_arrive(stack, owner)
