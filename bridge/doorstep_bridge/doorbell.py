"""Doorbell inputs: every way a press reaches the bridge, debounced into one ring event.

Inputs: ``<b>/<cam>/ring/set`` (any payload), an outside MQTT button per camera
(``cameras.<cam>.doorbell.topic``, optionally matching a payload), the HTTP API
and the demo camera. Each accepted press becomes a :class:`RingEvent` on the bus;
the MQTT publisher sends it as ``<b>/<cam>/ring`` with QoS 1.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Mapping
import json
import logging
import secrets
import threading
import time
from typing import Any, Final

from doorstep_bridge.config import DoorbellSettings
from doorstep_bridge.events import EventBus
from doorstep_bridge.exceptions import IgnoredMessageError
from doorstep_bridge.models import RingEvent, utcnow
from doorstep_bridge.mqtt.client import MqttClient
from doorstep_bridge.mqtt.payloads import loads_bounded

_LOGGER = logging.getLogger(__name__)

RECENT_RINGS: Final = 50
"""Presses kept for ``GET /api/rings`` (a client that lost the broker asks what it missed)."""


def new_ring_id() -> str:
    """A unique, roughly time-ordered ring id."""
    return f"r_{time.time_ns() // 1_000_000:x}{secrets.token_hex(4)}"


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def payload_matches(expected: DoorbellSettings, payload: bytes) -> bool:
    """Does an outside button's message count as a press?

    A string must equal the whole payload (surrounding whitespace ignored); a
    mapping's items must all be present in the JSON object payload. Garbage of
    any kind (not UTF-8, not JSON, nested too deep) is simply not a press.
    """
    if expected.payload is None:
        return True
    try:
        text = payload.decode("utf-8").strip()
    except UnicodeDecodeError:
        return False
    if isinstance(expected.payload, str):
        return text == expected.payload
    try:
        data: Any = loads_bounded(payload)
    except ValueError:
        return False
    if not isinstance(data, dict):
        return False
    return all(key in data and data[key] == value for key, value in expected.payload)


class Doorbell:
    """Debounces presses per camera, publishes each accepted one and announces it.

    Presses may arrive on the event loop (HTTP, demo camera) or in the MQTT
    network thread (buttons, ``ring/set``), so the debounce state is locked. The
    ``<b>/<cam>/ring`` message is published right away from the pressing thread;
    the :class:`RingEvent` reaches the bus (recorder, snapshots) on the loop.
    """

    def __init__(
        self,
        cameras: Mapping[str, DoorbellSettings],
        bus: EventBus,
        mqtt: MqttClient | None,
        loop: asyncio.AbstractEventLoop,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cameras = cameras
        self._bus = bus
        self._mqtt = mqtt
        self._loop = loop
        self._clock = clock
        self._lock = threading.Lock()
        self._last_press: dict[str, float] = {}
        # Each with its moment on the steady clock, for its age (see ``recent``).
        self._recent: deque[tuple[RingEvent, float]] = deque(maxlen=RECENT_RINGS)

    def press(self, camera: str, source: str) -> RingEvent | None:
        """Register one press; returns the ring event, or None when debounced.

        Raises:
            KeyError: `camera` is not configured.
        """
        settings = self._cameras[camera]
        with self._lock:
            now = self._clock()
            last = self._last_press.get(camera)
            if last is not None and now - last < settings.debounce:
                _LOGGER.debug("Press on %s from %s debounced", camera, source)
                return None
            self._last_press[camera] = now
        event = RingEvent(id=new_ring_id(), camera=camera, time=utcnow(), source=source)
        with self._lock:
            self._recent.append((event, now))
        if self._mqtt is not None:
            payload = json.dumps(event.payload(), separators=(",", ":"))
            self._mqtt.publish(self._mqtt.topics.ring(camera), payload, qos=1)
        _LOGGER.info("Doorbell %s rang (%s)", camera, source)
        if _on_loop(self._loop):
            self._bus.publish(event)
        else:
            self._loop.call_soon_threadsafe(self._bus.publish, event)
        return event

    def recent(self) -> list[tuple[RingEvent, float]]:
        """The latest presses since the bridge started, oldest first (at most RECENT_RINGS).

        Each with its age in seconds, on the steady clock: a client whose clock differs
        from this host's (or this host's clock stepped since) can still tell how long ago
        it was, which the press's ``time`` cannot say. A ring message reaches only
        clients subscribed when it is sent: Home Assistant, which reconnects to a
        restarted broker with a new session, asks for these then.
        """
        with self._lock:
            now = self._clock()
            return [(event, max(0.0, now - at)) for event, at in self._recent]

    def on_ring_set(self, topic: str, _payload: bytes) -> None:
        """``<b>/<cam>/ring/set``: any payload is one press.

        Raises:
            IgnoredMessageError: `topic` names no configured camera.
        """
        camera = topic.rsplit("/", 3)[-3]
        if camera not in self._cameras:
            raise IgnoredMessageError(f"unknown camera {camera!r}", kind="unknown camera")
        self.press(camera, "mqtt")

    def button_handler(self, camera: str) -> Callable[[str, bytes], None]:
        """Handler for a camera's outside button topic."""
        settings = self._cameras[camera]

        def handle(topic: str, payload: bytes) -> None:
            if payload_matches(settings, payload):
                self.press(camera, "button")
            else:
                _LOGGER.debug("Message on %s does not match the doorbell payload", topic)

        return handle

    def subscribe(self) -> list[Callable[[], None]]:
        """Subscribe ``<b>/<cam>/ring/set`` and every outside button; returns the unsubscribes.

        Both run in paho's network thread: a press publishes ``<b>/<cam>/ring`` at
        once, without waiting for the event loop.
        """
        mqtt = self._mqtt
        if mqtt is None:
            return []
        unsubscribes = [
            mqtt.subscribe(mqtt.topics.ring_set("+"), self.on_ring_set, network_thread=True)
        ]
        for camera, settings in self._cameras.items():
            if settings.topic:
                handler = self.button_handler(camera)
                unsubscribes.append(mqtt.subscribe(settings.topic, handler, network_thread=True))
        return unsubscribes
