"""Camera commands that arrive over MQTT: record now, and the camera switches.

This is an MQTT edge: payloads are parsed here and nowhere else. The handlers
raise :class:`IgnoredMessageError` for input they do not act on; the MQTT client
logs that rate-limited (anyone on the broker can send garbage).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TypeAlias

from doorstep_bridge.events import EventBus, RecordRequested
from doorstep_bridge.exceptions import IgnoredMessageError
from doorstep_bridge.models import parse_record_request
from doorstep_bridge.mqtt.client import MqttClient
from doorstep_bridge.mqtt.topics import OFF, ON, SWITCHES

#: Turns a camera switch on or off: ``(camera, switch, on)``.
SetSwitch: TypeAlias = Callable[[str, str, bool], object]


def _parse_switch(payload: bytes) -> bool | None:
    if len(payload) > 16:  # longer than any spelling of on or off: skip decoding it
        return None
    text = payload.decode("utf-8", "replace").strip().upper()
    if text in {ON, "TRUE", "1"}:
        return True
    if text in {OFF, "FALSE", "0"}:
        return False
    return None


def subscribe_camera_commands(
    mqtt: MqttClient, bus: EventBus, cameras: Collection[str], set_switch: SetSwitch
) -> list[Callable[[], None]]:
    """Subscribe ``<b>/<cam>/record/set`` and the switches; returns the unsubscribes."""
    topics = mqtt.topics

    def camera_of(topic: str, levels_after: int) -> str:
        camera = topic.split("/")[-1 - levels_after]
        if camera not in cameras:
            raise IgnoredMessageError(f"unknown camera {camera!r}", kind="unknown camera")
        return camera

    def on_record(topic: str, payload: bytes) -> None:
        camera = camera_of(topic, 2)
        try:
            duration = parse_record_request(payload)
        except ValueError as err:
            # The messages are fixed texts, one per kind of mistake.
            raise IgnoredMessageError(f"record command: {err}") from None
        bus.publish(RecordRequested(camera=camera, duration=duration))

    def switch_handler(switch: str) -> Callable[[str, bytes], None]:
        def on_switch(topic: str, payload: bytes) -> None:
            camera = camera_of(topic, 2)
            on = _parse_switch(payload)
            if on is None:
                raise IgnoredMessageError("expected ON or OFF")
            if not on:
                # Anyone who can write to the broker (often anonymous on a home LAN)
                # could otherwise stop the doorbell recording. Lowering protection
                # takes the API token; raising it takes nothing.
                raise IgnoredMessageError(
                    f"switching {switch} off over MQTT is refused: turn it off from Home"
                    " Assistant or with the bridge's HTTP API",
                    kind="switching off refused",
                )
            set_switch(camera, switch, on)

        return on_switch

    unsubscribes = [mqtt.subscribe(topics.record_set("+"), on_record)]
    unsubscribes += [
        mqtt.subscribe(topics.switch_set("+", switch), switch_handler(switch))
        for switch in SWITCHES
    ]
    return unsubscribes
