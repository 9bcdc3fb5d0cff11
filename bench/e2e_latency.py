"""Doorbell press → Home Assistant: the whole path, on one machine, with real parts.

A press published on ``doorstep/front_door/ring/set`` (as a button would) goes
through Mosquitto to the bridge, back through Mosquitto as ``.../ring``, into
Home Assistant's MQTT client and the integration, and out as a ``state_changed``
of ``event.front_door_doorbell`` on HA's websocket. Printed beside it, measured
in the same run with the same broker: the broker's own round trip (publish →
receive on one topic) and the press → bridge ``ring`` message. Target: p99 < 20 ms.
Home Assistant's MQTT client sets neither TCP_NODELAY nor TCP_QUICKACK, so with the broker
as installed expect an occasional ~40 ms press → HA tail from the broker; the whole run is
repeated with ``set_tcp_nodelay true`` in the broker's config (docs/mqtt.md, "Latency").

    .venv/bin/python bench/e2e_latency.py [--presses 50]
    scripts/ha-current --host .venv/bin/python bench/e2e_latency.py   (the current HA)
"""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path
import queue
import statistics
import sys
import tempfile
import time

import aiohttp
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _support import percentile
from tests.e2e.ha_client import HaClient
from tests.e2e.servers import (
    CAMERA,
    free_port,
    make_bridge,
    make_home_assistant,
    mosquitto,
    start_mosquitto,
)
from tests.e2e.stack import Stack, configure_home_assistant

PRESS = f"doorstep/{CAMERA}/ring/set"
RING = f"doorstep/{CAMERA}/ring"
ECHO = "bench/echo"
DOORBELL = f"event.{CAMERA}_doorbell"
GAP = 0.15  # seconds between presses (the bench bridge does not debounce)


def report(name: str, samples: list[float]) -> None:
    print(
        f"{name:<34} p50 {statistics.median(samples):6.2f} ms"
        f"   p99 {percentile(samples, 99):6.2f} ms"
        f"   max {max(samples):6.2f} ms   (n={len(samples)})"
    )


def client(port: int, topic: str | None, arrivals: queue.Queue[float] | None) -> paho.Client:
    mqtt = paho.Client(CallbackAPIVersion.VERSION2)
    subscribed: queue.Queue[bool] = queue.Queue()
    if topic is not None and arrivals is not None:
        mqtt.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        mqtt.on_subscribe = lambda *_: subscribed.put(True)  # noqa: FBT003
        mqtt.on_message = lambda *_: arrivals.put(time.perf_counter())
    mqtt.connect("127.0.0.1", port)
    mqtt.loop_start()
    if topic is not None:
        subscribed.get(timeout=10)
    return mqtt


def broker_round_trip(port: int, samples: int, publish: str, receive: str) -> list[float]:
    """Publish on ``publish``, time the arrival on ``receive`` (two paho clients)."""
    arrivals: queue.Queue[float] = queue.Queue()
    receiver = client(port, receive, arrivals)
    sender = client(port, None, None)
    out = []
    try:
        for _ in range(samples):
            start = time.perf_counter()
            sender.publish(publish, b"", qos=1)
            out.append((arrivals.get(timeout=10) - start) * 1000)
            time.sleep(GAP)
    finally:
        sender.loop_stop()
        receiver.loop_stop()
    return out


async def press_to_ha(stack: Stack, presses: int) -> list[float]:
    """Publish a press, time the websocket ``state_changed`` of the doorbell entity."""
    sender = client(stack.mqtt_port, None, None)
    out = []
    try:
        async with aiohttp.ClientSession() as session:
            owner = HaClient(session, stack.ha.url, stack.owner_token)
            async with owner.websocket() as ws:
                sub = await ws.subscribe(type="subscribe_events", event_type="state_changed")
                for index in range(presses + 5):
                    start = time.perf_counter()
                    sender.publish(PRESS, json.dumps({"n": index}), qos=1)
                    await ws.next_event(sub, lambda e: e["data"]["entity_id"] == DOORBELL, 30)
                    if index >= 5:  # the first presses warm up caches and connections
                        out.append((time.perf_counter() - start) * 1000)
                    await asyncio.sleep(GAP)
    finally:
        sender.loop_stop()
    return out


def run(presses: int, broker_config: str) -> dict[str, list[float]]:
    """The three measurements on a fresh broker, bridge and Home Assistant."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        broker, port = mosquitto(work, broker_config)
        # A long demo period: the scene's own visitor never rings during the run.
        bridge = make_bridge(work, port, "demo://?period=3600&fps=5", {"doorbell": {"debounce": 0}})
        ha = make_home_assistant(work / "ha", free_port(), work / "logs/home-assistant.log")
        stack = Stack(work, broker, port, bridge, ha, password="bench-password-1")
        try:
            start_mosquitto(broker, port)
            bridge.start()
            ha.start()
            asyncio.run(configure_home_assistant(stack))
            time.sleep(1.0)
            return {
                "broker round trip (baseline)": broker_round_trip(port, presses, ECHO, ECHO),
                "press → bridge ring message": broker_round_trip(port, presses, PRESS, RING),
                "press → HA state_changed": asyncio.run(press_to_ha(stack, presses)),
            }
        finally:
            stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--presses", type=int, default=50)
    args = parser.parse_args()
    brokers = {
        "broker as installed": "",
        "broker with set_tcp_nodelay true": "set_tcp_nodelay true\n",
    }
    results = {name: run(args.presses, config) for name, config in brokers.items()}
    for name, samples in results.items():
        print(f"\n{name}")
        for what, values in samples.items():
            report(what, values)
        to_ha, echo = samples["press → HA state_changed"], samples["broker round trip (baseline)"]
        p99 = percentile(to_ha, 99)
        ratio = statistics.median(to_ha) / statistics.median(echo)
        print(f"press → HA p50 is {ratio:.1f} times the broker round trip; target p99 < 20 ms: "
              f"{'met' if p99 < 20 else 'MISSED'} ({p99:.1f} ms)")  # fmt: skip


if __name__ == "__main__":
    main()
