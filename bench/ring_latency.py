"""Doorbell press latency: outside button topic → broker → bridge → `<b>/<cam>/ring`.

For two brokers in one run (Mosquitto as installed, and with ``set_tcp_nodelay
true``), prints p50/p99/max over N presses through the bridge and, beside it,
the broker's own round trip (publish → receive on one topic, same clients) so
the bridge's share reads as a difference and a ratio. Target: p99 < 10 ms with
either broker.

Presses are 10 ms apart, so each one arrives while TCP may still be holding
back an acknowledgement from the one before, and the demo camera publishes a
~14 kB snapshot now and then: the two patterns where Nagle's algorithm and
delayed ACKs used to add ~40 ms (docs/mqtt.md, "Latency").

    .venv/bin/python bench/ring_latency.py [--presses 200]
"""

from __future__ import annotations

import argparse
import queue
import statistics
import time

from _support import bridge, free_port, mosquitto, percentile
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

BUTTON = "bench/button"
RING = "doorstep/front_door/ring"
ECHO = "bench/echo"


def measure(port: int, presses: int, publish_topic: str, receive_topic: str) -> list[float]:
    arrivals: queue.Queue[float] = queue.Queue()
    subscribed: queue.Queue[bool] = queue.Queue()
    receiver = paho.Client(CallbackAPIVersion.VERSION2)
    receiver.on_connect = lambda c, *_: c.subscribe(receive_topic, qos=1)
    receiver.on_subscribe = lambda *_: subscribed.put(True)  # noqa: FBT003
    receiver.on_message = lambda *_: arrivals.put(time.perf_counter())
    receiver.connect("127.0.0.1", port)
    receiver.loop_start()
    subscribed.get(timeout=10)
    sender = paho.Client(CallbackAPIVersion.VERSION2)
    sender.connect("127.0.0.1", port)
    sender.loop_start()
    samples = []
    try:
        for _ in range(presses):
            start = time.perf_counter()
            sender.publish(publish_topic, b'{"action": "single"}', qos=1)
            samples.append((arrivals.get(timeout=10) - start) * 1000)
            time.sleep(0.01)
    finally:
        sender.loop_stop()
        receiver.loop_stop()
    return samples


def report(name: str, samples: list[float]) -> None:
    p50, p99 = statistics.median(samples), percentile(samples, 99)
    print(
        f"{name:<28} p50 {p50:6.2f} ms   p99 {p99:6.2f} ms"
        f"   max {max(samples):6.2f} ms   (n={len(samples)})"
    )


BROKERS = {
    "Mosquitto as installed": "",
    "Mosquitto, set_tcp_nodelay true": "set_tcp_nodelay true\n",
}
TARGET_MS = 10.0


def run(extra_config: str, presses: int) -> tuple[list[float], list[float]]:
    """Presses through a fresh broker and bridge, then the broker round trip alone."""
    with mosquitto(extra_config) as port:
        config = {
            "mqtt": {"port": port},
            "http": {"port": free_port()},
            "cameras": {
                "front_door": {
                    "source": "demo://",
                    "doorbell": {"topic": BUTTON, "payload": {"action": "single"}, "debounce": 0},
                }
            },
        }
        with bridge(config):
            time.sleep(1.0)
            measure(port, 5, BUTTON, RING)  # warm-up
            ring = measure(port, presses, BUTTON, RING)
            echo = measure(port, presses, ECHO, ECHO)
    return ring, echo


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presses", type=int, default=200)
    args = parser.parse_args()
    results = {name: run(extra, args.presses) for name, extra in BROKERS.items()}
    for name, (ring, echo) in results.items():
        print(f"{name}:")
        report("  button → ring (bridge)", ring)
        report("  broker round trip alone", echo)
    for name, (ring, echo) in results.items():
        p99 = percentile(ring, 99)
        print(
            f"{name}: bridge p99 {p99:.2f} ms "
            f"{'meets' if p99 < TARGET_MS else 'MISSES'} the {TARGET_MS:g} ms target; "
            f"p50 {statistics.median(ring) / statistics.median(echo):.1f}x the broker alone"
        )


if __name__ == "__main__":
    main()
