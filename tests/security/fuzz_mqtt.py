"""A reusable MQTT fuzz: garbage on every topic a bridge subscribes to.

`command_topics(...)` lists the topic filters a bridge listens on (built with the
bridge's own `Topics`); `fuzz_messages(filters, count, seed, cameras)` yields
`count` messages for them: random bytes, invalid UTF-8 and lone surrogates,
payloads over the size limit, deeply nested JSON, JSON of the wrong types and
values, and topics naming unknown or hostile camera names. `flood(host, port,
messages)` publishes them from one client and waits until the broker has taken
every QoS 1 one. The test runs 10,000; a soak can run more with other seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
import json
import random
import threading
import time

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from doorstep_bridge.mqtt.client import MAX_INCOMING_PAYLOAD
from doorstep_bridge.mqtt.topics import SWITCHES, Topics


@dataclass(frozen=True, slots=True)
class Message:
    """One message to publish."""

    topic: str
    payload: bytes
    qos: int
    retain: bool = False


#: Bytes that break decoding: invalid UTF-8, a UTF-8-encoded lone surrogate, controls.
NASTY_BYTES: tuple[bytes, ...] = (
    b"\xff",
    b"\xfe\xff",
    b"\xed\xa0\x80",
    b"\xc3\x28",
    b"\xe2\x82",
    b"\x00",
    b"\x1b[2J",
    b"\r\n2031-01-01 00:00:00 ERROR forged: line",
    "🚪".encode(),
)

#: JSON documents of the wrong type or with wrong values for every command.
WRONG_JSON: tuple[bytes, ...] = (
    b"1",
    b"-1",
    b"1e999",
    b"NaN",
    b"-Infinity",
    b"9" * 5000,  # more digits than Python converts
    b"null",
    b"true",
    b'"single"',
    b"[]",
    b"{}",
    b'{"action": 1}',
    b'{"action": ["single"]}',
    b'{"action": {"action": "single"}}',
    b'{"action": "\\ud800"}',
    b'{"duration": "long"}',
    b'{"duration": -1}',
    b'{"duration": 1e308}',
    b'{"duration": true}',
    b'{"duration": 30, "extra": 1}',
    b'{"requester": 5, "cameras": "front_door"}',
    b'{"requester": "\\udfff", "cameras": ["front_door"], "start": 1, "end": null}',
    b'{"cameras": ["../../etc"], "start": "yesterday"}',
    b"MAYBE",
    b"on\x00",
    b"OFF" * 10,
)

#: Camera names a hostile sender might put where the bridge expects one.
HOSTILE_CAMERAS: tuple[str, ...] = (
    "ghost",
    "front_door ",
    "FRONT_DOOR",
    "..",
    "%s%s%n",
    "é🚪",
    "with space",  # (Mosquitto drops a client that puts control characters in a topic)
    "\u202eroot",
    "\ud7ff",
    "x" * 1000,
)


def command_topics(base: str, button_topics: Iterable[str] = ()) -> list[str]:
    """The topic filters a bridge with base topic `base` subscribes to."""
    topics = Topics(base)
    filters = [topics.ring_set("+"), topics.record_set("+"), topics.share_request]
    filters += [topics.switch_set("+", switch) for switch in SWITCHES]
    filters += list(button_topics)
    return filters


def _nested(rng: random.Random) -> bytes:
    depth = rng.choice((100, 1_000, 5_000, 20_000, 30_000))
    match rng.randrange(4):
        case 0:
            return b"[" * depth + b"]" * depth
        case 1:
            return b'{"a":' * depth + b"1" + b"}" * depth
        case 2:
            return b'{"action": ' + b"[" * depth  # never closed
        case _:  # brackets in a string nest nothing: this one is harmless JSON
            return json.dumps({"action": "[" * depth}).encode()


def _payload(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.25:
        return rng.randbytes(rng.randrange(1, 512))
    if kind < 0.45:
        parts = [rng.choice(NASTY_BYTES) for _ in range(rng.randrange(1, 8))]
        return b"".join(parts)
    if kind < 0.65:
        return _nested(rng)
    if kind < 0.99:
        return rng.choice(WRONG_JSON)
    if kind < 0.995:
        return b""
    # Over the limit; rare, so that the flood stays a few megabytes.
    return rng.randbytes(8) * ((MAX_INCOMING_PAYLOAD + rng.randrange(1, 65_536)) // 8)


def _topic(rng: random.Random, topic_filter: str, cameras: Sequence[str]) -> str:
    if "+" not in topic_filter:
        return topic_filter
    camera = rng.choice(cameras) if rng.random() < 0.5 else rng.choice(HOSTILE_CAMERAS)
    return topic_filter.replace("+", camera, 1)


def fuzz_messages(
    filters: Sequence[str], count: int, seed: int, cameras: Sequence[str] = ("front_door",)
) -> Iterator[Message]:
    """`count` hostile messages spread over `filters`, the same for the same `seed`.

    A ``+`` in a filter becomes a configured camera half of the time, a hostile
    name otherwise. Some messages are retained (the broker keeps the last one
    per topic) and about half are QoS 1.
    """
    rng = random.Random(seed)
    for _ in range(count):
        yield Message(
            topic=_topic(rng, rng.choice(filters), cameras),
            payload=_payload(rng),
            qos=rng.choice((0, 1)),
            retain=rng.random() < 0.02,
        )


def flood(
    host: str,
    port: int,
    messages: Iterable[Message],
    on_sent: Callable[[int], None] | None = None,
    timeout: float = 120.0,
) -> int:
    """Publish `messages` from one fresh client; returns how many were published.

    Waits until the broker acknowledged every QoS 1 message, so what follows on
    the same connection cannot overtake the flood.
    """
    connected = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"fuzz-{port}")
    client.on_connect = lambda *_: connected.set()
    client.max_queued_messages_set(0)
    client.connect(host, port)
    client.loop_start()
    try:
        if not connected.wait(10):
            raise RuntimeError("the fuzz client could not connect")
        infos: list[paho.MQTTMessageInfo] = []
        sent = 0
        for message in messages:
            info = client.publish(message.topic, message.payload, message.qos, message.retain)
            if message.qos:
                infos.append(info)
            sent += 1
            if on_sent is not None:
                on_sent(sent)
        deadline = time.monotonic() + timeout
        for info in infos:
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            if not info.is_published():
                raise RuntimeError(f"the broker did not take the flood within {timeout} s")
        return sent
    finally:
        client.disconnect()
        client.loop_stop()
