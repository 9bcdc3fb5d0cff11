"""Fixtures shared by the bridge tests: a real Mosquitto broker on a free loopback port."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
import shutil
import socket
import subprocess
import time

import pytest


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_listening(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


@dataclass
class Broker:
    """A Mosquitto process the test can stop and start again on the same port."""

    port: int
    config_path: Path
    process: subprocess.Popen[bytes] | None = None
    host: str = "127.0.0.1"

    def start(self) -> None:
        """Start (or restart) the broker and wait until it accepts connections."""
        assert self.process is None, "broker already running"
        self.process = subprocess.Popen(
            ["mosquitto", "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_listening(self.port)

    def stop(self) -> None:
        """Stop the broker (retained messages are lost: persistence is off)."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def mqtt_broker(tmp_path: Path) -> Iterator[Broker]:
    """A real Mosquitto broker on a free loopback port, stopped after the test."""
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed (scripts/setup installs it)")
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n",
        encoding="utf-8",
    )
    broker = Broker(port=port, config_path=config)
    broker.start()
    yield broker
    broker.stop()


class Listener:
    """A plain paho client recording every message it sees, for assertions."""

    def __init__(self, broker: Broker, topics: list[str]) -> None:
        import queue

        import paho.mqtt.client as paho
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
        self.seen: list[tuple[str, bytes, bool]] = []
        self._client = paho.Client(CallbackAPIVersion.VERSION2)
        self._topics = topics
        self._client.on_connect = self._on_connect
        self._client.on_message = lambda _c, _u, msg: self.messages.put(
            (msg.topic, msg.payload, bool(msg.retain))
        )
        self._client.reconnect_delay_set(min_delay=1, max_delay=2)
        self._client.connect(broker.host, broker.port)
        self._client.loop_start()

    def _on_connect(self, client: object, *_args: object) -> None:
        for topic in self._topics:
            self._client.subscribe(topic, qos=1)

    def publish(self, topic: str, payload: bytes | str, retain: bool = False) -> None:
        """Publish as an outside system would (QoS 1), waiting for the broker's ack."""
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(5)

    def wait_for(self, topic: str, timeout: float = 10.0, payload: bytes | None = None) -> bytes:
        """Next message on `topic` (optionally with `payload`); fails after `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for index, (seen_topic, seen_payload, _retain) in enumerate(self.seen):
                if seen_topic == topic and (payload is None or seen_payload == payload):
                    del self.seen[index]
                    return seen_payload
            try:
                item = self.messages.get(timeout=max(0.0, deadline - time.monotonic()))
            except Exception:
                break
            self.seen.append(item)
        pytest.fail(f"no message on {topic}{f' = {payload!r}' if payload else ''} in {timeout} s")

    def drain(self, settle: float = 0.3) -> list[tuple[str, bytes, bool]]:
        """Everything received so far (waiting `settle` seconds for stragglers)."""
        time.sleep(settle)
        while not self.messages.empty():
            self.seen.append(self.messages.get_nowait())
        items, self.seen = self.seen, []
        return items

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()


@pytest.fixture
def mqtt_listener(mqtt_broker: Broker) -> Iterator[Callable[..., Listener]]:
    """Factory for listeners subscribed to the given topics (default: everything)."""
    listeners: list[Listener] = []

    def make(*topics: str) -> Listener:
        listener = Listener(mqtt_broker, list(topics) or ["#"])
        listeners.append(listener)
        return listener

    yield make
    for listener in listeners:
        listener.close()
