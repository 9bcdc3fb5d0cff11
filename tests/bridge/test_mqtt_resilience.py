"""The MQTT contract under stress: availability, broker outages, bad input, secrets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
import contextlib
import json
import logging
import os
from pathlib import Path
import pwd
import signal
import socket
import stat
import subprocess
import sys
from typing import Any

import psutil
import pytest
import yaml

from doorstep_bridge.config import MqttSettings
from doorstep_bridge.identity import MQTT_CLIENT_KEY_FILE
from doorstep_bridge.keys import BRIDGE_ID, MQTT
from doorstep_bridge.mqtt.client import MqttClient
from doorstep_bridge.mqtt.ignored import IgnoredInputLog
from tests.bridge.bridge_runner import RunningBridge, bridge_config, run_bridge
from tests.bridge.certs import self_signed
from tests.bridge.conftest import Broker, Listener, free_port

AVAILABLE = "doorstep/available"
RING = "doorstep/front_door/ring"


@pytest.fixture
def persistent_broker(mqtt_broker: Broker, tmp_path: Path) -> Broker:
    """The broker restarted with persistence on, so a listener's session survives restarts."""
    mqtt_broker.stop()
    mqtt_broker.config_path.write_text(
        f"listener {mqtt_broker.port} 127.0.0.1\nallow_anonymous true\n"
        # Run as root, Mosquitto drops to its own user, which cannot write the test's
        # folder; `user root` keeps it (and means nothing to a non-root run).
        f"persistence true\npersistence_location {tmp_path}/\nuser root\n",
        encoding="utf-8",
    )
    mqtt_broker.start()
    return mqtt_broker


@contextlib.contextmanager
def durable_listener(broker: Broker, topic: str) -> Iterator[list[bytes]]:
    """Every payload on `topic`, in order, heard through outages like Home Assistant's client.

    A persistent session (QoS 1), so what the broker takes while the listener is away
    is delivered when it is back. It subscribes once: subscribing again would be
    answered with the retained value again, and each value is to be heard once.
    """
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    durable = paho.Client(CallbackAPIVersion.VERSION2, client_id="ha-like", clean_session=False)
    received: list[bytes] = []
    durable.on_connect = lambda c, _u, flags, *_: (
        None if flags.session_present else c.subscribe(topic, qos=1)
    )
    durable.on_message = lambda _c, _u, msg: received.append(msg.payload)
    durable.reconnect_delay_set(1, 1)
    durable.connect(broker.host, broker.port)
    durable.loop_start()
    try:
        yield received
    finally:
        durable.disconnect()
        durable.loop_stop()


async def test_availability_online_then_offline_on_clean_stop(
    mqtt_broker: Broker, mqtt_listener: Callable[..., Listener], tmp_path: Path
) -> None:
    listener = mqtt_listener(AVAILABLE, "doorstep/bridge/info", "doorstep/discovery/+")
    async with run_bridge(bridge_config(mqtt_broker, tmp_path)) as bridge:
        await asyncio.to_thread(listener.wait_for, AVAILABLE, 10, b"online")
        info = json.loads(await asyncio.to_thread(listener.wait_for, "doorstep/bridge/info"))
        assert info["cameras"] == {"front_door": {"name": "Front door"}}
        assert info["protocol"] == 1
        assert "token" not in json.dumps(info)
        discovery = f"doorstep/discovery/{info['id']}"
        assert json.loads(await asyncio.to_thread(listener.wait_for, discovery)) == info
        await bridge.wait_mqtt()
    await asyncio.to_thread(listener.wait_for, AVAILABLE, 10, b"offline")


def test_last_will_says_offline_when_the_bridge_is_killed(
    mqtt_broker: Broker, mqtt_listener: Callable[..., Listener], tmp_path: Path
) -> None:
    config = tmp_path / "doorstep.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "mqtt": {"port": mqtt_broker.port},
                "http": {"port": free_port()},
                "storage": {"path": str(tmp_path / "data")},
                "cameras": {"front_door": {"source": "demo://"}},
            }
        )
    )
    listener = mqtt_listener(AVAILABLE)
    process = subprocess.Popen(
        [sys.executable, "-m", "doorstep_bridge", "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        listener.wait_for(AVAILABLE, 20, b"online")
        os.kill(process.pid, signal.SIGKILL)
        listener.wait_for(AVAILABLE, 10, b"offline")
    finally:
        process.kill()
        process.wait()


async def test_presses_during_a_broker_outage_all_arrive(
    persistent_broker: Broker, tmp_path: Path
) -> None:
    with durable_listener(persistent_broker, RING) as received:
        config = bridge_config(
            persistent_broker,
            tmp_path,
            cameras={"front_door": {"source": "demo://", "doorbell": {"debounce": 0}}},
        )
        async with run_bridge(config) as bridge:
            await bridge.wait_mqtt()
            await asyncio.sleep(0.3)
            await asyncio.to_thread(persistent_broker.stop)
            ids = []
            for _ in range(3):
                async with bridge.session.post(
                    f"{bridge.url}/api/cameras/front_door/ring", headers=bridge.auth
                ) as response:
                    body = await response.json()
                    assert body["accepted"] is True
                    ids.append(body["ring"]["id"])
            await asyncio.sleep(0.5)
            await asyncio.to_thread(persistent_broker.start)
            for _ in range(150):
                if len(received) >= 3:
                    break
                await asyncio.sleep(0.1)
            assert [json.loads(p)["id"] for p in received] == ids


async def test_motion_that_ended_during_a_broker_outage_does_not_start_again(
    persistent_broker: Broker, tmp_path: Path
) -> None:
    """Home Assistant, subscribed throughout, hears the motion state now, not its history.

    Motion that started and ended while the broker was away must not reach Home
    Assistant as a fresh ``ON`` when it is back: automations (a porch light at night)
    would run for a visitor long gone. Rings, unlike states, are all delivered (above).
    """
    from doorstep_bridge.events import MotionChanged
    from doorstep_bridge.keys import BUS
    from doorstep_bridge.models import utcnow

    motion = "doorstep/front_door/motion"
    # A camera that never connects: no motion of its own.
    config = bridge_config(
        persistent_broker, tmp_path, cameras={"front_door": {"source": "rtsp://127.0.0.1:9/none"}}
    )
    with durable_listener(persistent_broker, motion) as received:
        async with run_bridge(config) as bridge:
            await bridge.wait_mqtt()
            for _ in range(100):  # the bridge's OFF at start
                if received:
                    break
                await asyncio.sleep(0.1)
            assert received[-1:] == [b"OFF"]
            await asyncio.to_thread(persistent_broker.stop)
            bus = bridge.app[BUS]
            for active in (True, False, True, False):
                bus.publish(MotionChanged("front_door", active, utcnow()))
            await asyncio.sleep(0.5)
            await asyncio.to_thread(persistent_broker.start)
            await bridge.wait_mqtt(30)
            for _ in range(150):  # the listener is back too, and has what was sent
                if len(received) > 1:
                    break
                await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)
        assert b"ON" not in received
        assert received[-1] == b"OFF"


EGRESS = "doorstep/bridge/egress"


@contextlib.asynccontextmanager
async def client_in_an_outage(broker: Broker) -> AsyncIterator[tuple[MqttClient, list[bytes]]]:
    """The bridge's MQTT client, its first value on EGRESS delivered, then the broker stopped.

    Yields the client and every payload a persistent-session listener hears on EGRESS.
    """
    client = MqttClient(MqttSettings(host=broker.host, port=broker.port), "doorstep")
    with durable_listener(broker, EGRESS) as received:
        await client.start()
        try:
            assert await client.wait_connected(20)
            client.publish(EGRESS, b"0", qos=1, retain=True)
            for _ in range(100):
                if received:
                    break
                await asyncio.sleep(0.1)
            await asyncio.to_thread(broker.stop)
            yield client, received
        finally:
            await client.stop()


async def heard(received: list[bytes], count: int) -> list[bytes]:
    """What was heard once `count` payloads came, and anything sent a second after them."""
    for _ in range(200):
        if len(received) >= count:
            break
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    return list(received)


async def test_values_sent_during_an_outage_arrive_in_order_the_newest_last(
    persistent_broker: Broker,
) -> None:
    """A retained count changed while the broker was away is never seen going back.

    An automation on ``<b>/bridge/egress`` ("tell me when something phones home")
    would run again for a count that only went back to an older value.
    """
    async with client_in_an_outage(persistent_broker) as (client, received):
        client.publish(EGRESS, b"1", qos=1, retain=True)
        client.publish(EGRESS, b"2", qos=1, retain=True)
        await asyncio.to_thread(persistent_broker.start)
        assert await heard(received, 3) == [b"0", b"1", b"2"]


async def test_a_value_published_as_the_link_comes_back_does_not_overtake_older_ones(
    persistent_broker: Broker,
) -> None:
    """A new value published just as the broker is back is sent after those queued before.

    paho sends what it queued during the outage only after its connect callback has
    returned; a value published in between (from the event loop) would go first and
    leave the older one standing on the broker.
    """
    async with client_in_an_outage(persistent_broker) as (client, received):
        client.publish(EGRESS, b"1", qos=1, retain=True)
        paho_client = client._client  # the moment between two paho steps
        on_connect = paho_client.on_connect
        assert on_connect is not None
        published: list[bool] = []

        def connect_then_publish(*args: Any) -> None:
            on_connect(*args)
            if not published:  # the event loop's publish, at the worst moment
                published.append(True)
                client.publish(EGRESS, b"2", qos=1, retain=True)

        paho_client.on_connect = connect_then_publish
        await asyncio.to_thread(persistent_broker.start)
        assert await heard(received, 3) == [b"0", b"1", b"2"]
        assert published


async def test_values_held_past_a_short_connection_wait_for_the_next_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A connection that drops before its held values went: the next one sends them.

    The callbacks are paho's, called in the order paho calls them, without a broker: the
    moment (a release still waiting on the event loop when the link is already back)
    cannot be made to happen on purpose with a real one.
    """
    import paho.mqtt.client as paho
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.reasoncodes import ReasonCode

    client = MqttClient(MqttSettings(host="127.0.0.1", port=1), "doorstep")
    client._loop = asyncio.get_running_loop()
    sent: list[tuple[str, bytes]] = []
    paho_client = client._client

    def publish(topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> Any:
        sent.append((topic, payload))
        info = paho.MQTTMessageInfo(len(sent))
        info.rc = paho.MQTT_ERR_SUCCESS
        return info

    monkeypatch.setattr(paho_client, "publish", publish)
    monkeypatch.setattr(paho_client, "subscribe", lambda *_args: (0, None))
    ok = ReasonCode(PacketTypes.CONNACK, "Success")
    flags = paho.ConnectFlags(session_present=True)
    gone = ReasonCode(PacketTypes.DISCONNECT, "Unspecified error")

    client.publish(EGRESS, b"1", qos=1, retain=True)  # the link is down: paho queues it
    client._on_connect(paho_client, None, flags, ok, None)
    client.publish(EGRESS, b"2", qos=1, retain=True)  # before paho has sent its queue
    client._on_disconnect(paho_client, None, paho.DisconnectFlags(False), gone, None)
    client._on_connect(paho_client, None, flags, ok, None)  # before the loop got round
    await asyncio.sleep(0)  # the first connection's release: too late, dropped
    assert (EGRESS, b"2") not in sent[1:]
    client._on_publish(paho_client, None, 1, ok, None)  # the second connection's PUBACK
    await asyncio.sleep(0)
    assert [payload for topic, payload in sent if topic == EGRESS] == [b"1", b"2"]


async def test_a_state_the_broker_never_acknowledged_is_not_left_standing(
    mqtt_broker: Broker,
    mqtt_listener: Callable[..., Listener],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Motion ON sent into a link that was already dead, then OFF while it is down.

    paho sends the unacknowledged ON again after the reconnect, after the replay of
    the newest state: the OFF must follow it, or motion would stay ON in Home Assistant.
    """
    from doorstep_bridge.events import MotionChanged
    from doorstep_bridge.keys import BUS
    from doorstep_bridge.models import utcnow

    motion = "doorstep/front_door/motion"
    config = bridge_config(
        mqtt_broker, tmp_path, cameras={"front_door": {"source": "rtsp://127.0.0.1:9/none"}}
    )
    async with run_bridge(config) as bridge:
        await bridge.wait_mqtt()
        bus = bridge.app[BUS]
        process = mqtt_broker.process
        assert process is not None
        process.send_signal(signal.SIGSTOP)  # the broker hangs: nothing is acknowledged
        bus.publish(MotionChanged("front_door", True, utcnow()))
        await asyncio.sleep(0.3)
        process.kill()  # the link drops; the ON was never acknowledged
        await asyncio.to_thread(process.wait)
        mqtt_broker.process = None
        while bridge_connected(bridge):  # noqa: ASYNC110 - polled
            await asyncio.sleep(0.05)
        for active in (False, True, False):  # queued behind the ON, in order
            bus.publish(MotionChanged("front_door", active, utcnow()))
        await asyncio.to_thread(mqtt_broker.start)
        await bridge.wait_mqtt(30)
        await asyncio.sleep(1.0)  # the resent ON and whatever follows it
        listener = mqtt_listener(motion)
        assert await asyncio.to_thread(listener.wait_for, motion, 10) == b"OFF"
    assert "Handler for MotionChanged failed" not in caplog.text


def bridge_connected(bridge: RunningBridge) -> bool:
    """Whether the bridge's MQTT client is connected to the broker."""
    from doorstep_bridge.keys import MQTT

    return bridge.app[MQTT].connected


async def test_retained_state_is_republished_after_broker_restart(
    mqtt_broker: Broker, mqtt_listener: Callable[..., Listener], tmp_path: Path
) -> None:
    async with run_bridge(bridge_config(mqtt_broker, tmp_path)) as bridge:
        await bridge.wait_mqtt()
        await asyncio.to_thread(mqtt_broker.stop)  # persistence off: retained state is gone
        await asyncio.to_thread(mqtt_broker.start)
        await asyncio.sleep(0.2)
        await bridge.wait_mqtt(15)
        listener = mqtt_listener(AVAILABLE, "doorstep/bridge/info")
        await asyncio.to_thread(listener.wait_for, AVAILABLE, 10, b"online")
        await asyncio.to_thread(listener.wait_for, "doorstep/bridge/info", 10)


async def test_bad_input_is_logged_and_ignored(
    mqtt_broker: Broker,
    mqtt_listener: Callable[..., Listener],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    config = bridge_config(
        mqtt_broker,
        tmp_path,
        cameras={
            "front_door": {
                "source": "demo://",
                "doorbell": {"topic": "buttons/front", "payload": {"action": "single"}},
            }
        },
    )
    listener = mqtt_listener(RING)
    async with run_bridge(config) as bridge:
        await bridge.wait_mqtt()
        await asyncio.sleep(0.2)
        bad = [
            ("doorstep/back_door/ring/set", b"1"),  # unknown camera
            ("buttons/front", b"{not json"),
            ("buttons/front", b'{"action": 1}'),  # wrong type
            ("buttons/front", b"\x00" * (1024 * 1024)),  # 1 MB
            ("doorstep/front_door/ring/set", b"x" * (1024 * 1024)),  # 1 MB on a command topic
            ("doorstep/front_door/record/set", b"[1, 2]"),
            ("doorstep/front_door/record/set", b'{"duration": "long"}'),
            ("doorstep/front_door/motion_detection/set", b"MAYBE"),
            ("doorstep/ghost/recording/set", b"ON"),
        ]
        for topic, payload in bad:
            await asyncio.to_thread(listener.publish, topic, payload)
        for _ in range(100):
            if "unknown camera 'ghost'" in caplog.text:  # the last bad message was handled
                break
            await asyncio.sleep(0.1)
        assert [m for m in await asyncio.to_thread(listener.drain) if m[0] == RING] == []
        assert "unknown camera 'back_door'" in caplog.text
        assert caplog.text.count("1048576-byte message") == 2
        assert "expected a JSON object" in caplog.text
        assert "duration: expected seconds in (0, 3600]" in caplog.text
        assert "expected ON or OFF" in caplog.text

        # Still serving.
        async with bridge.session.get(f"{bridge.url}/api/health") as response:
            assert response.status == 200
        await asyncio.to_thread(listener.publish, "buttons/front", b'{"action": "single"}')
        await asyncio.to_thread(listener.wait_for, RING)


async def test_secrets_never_reach_the_logs(
    mqtt_broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    config = bridge_config(
        mqtt_broker,
        tmp_path,
        mqtt={"username": "doorstep", "password": "broker-secret-pw"},
        http={"token": "api-secret-token-0123456789"},
        cameras={"front_door": {"source": "rtsp://admin:camera-secret@127.0.0.1:9/none"}},
    )
    async with run_bridge(config) as bridge:
        await bridge.session.post(f"{bridge.url}/api/cameras/front_door/ring", headers=bridge.auth)
        await asyncio.sleep(1.5)  # the camera fails to connect and logs about it
    for secret in ("broker-secret-pw", "api-secret-token-0123456789", "camera-secret"):
        assert secret not in caplog.text


async def test_retained_commands_are_not_replayed_as_new_presses(
    mqtt_broker: Broker, mqtt_listener: Callable[..., Listener], tmp_path: Path
) -> None:
    """A button configured with retain (common with zigbee2mqtt) must not ring at start-up."""
    listener = mqtt_listener(RING)
    listener.publish("doorstep/front_door/ring/set", b"1", retain=True)
    listener.publish("buttons/front", b"pressed", retain=True)
    config = bridge_config(
        mqtt_broker,
        tmp_path,
        cameras={"front_door": {"source": "demo://", "doorbell": {"topic": "buttons/front"}}},
    )
    async with run_bridge(config) as bridge:
        await bridge.wait_mqtt()
        await asyncio.sleep(0.5)
        assert [m for m in await asyncio.to_thread(listener.drain) if m[0] == RING] == []
        # A live press on the same topic still rings.
        await asyncio.to_thread(listener.publish, "buttons/front", b"pressed")
        await asyncio.to_thread(listener.wait_for, RING)


async def test_state_published_before_the_broker_is_up_reaches_it(
    mqtt_broker: Broker, mqtt_listener: Callable[..., Listener], tmp_path: Path
) -> None:
    await asyncio.to_thread(mqtt_broker.stop)
    async with run_bridge(bridge_config(mqtt_broker, tmp_path)) as bridge:
        await asyncio.sleep(1.0)  # the bridge starts and publishes while the broker is down
        await asyncio.to_thread(mqtt_broker.start)
        await bridge.wait_mqtt(20)
        listener = mqtt_listener("doorstep/bridge/info", "doorstep/bridge/stats", AVAILABLE)
        await asyncio.to_thread(listener.wait_for, AVAILABLE, 10, b"online")
        await asyncio.to_thread(listener.wait_for, "doorstep/bridge/info", 10)
        await asyncio.to_thread(listener.wait_for, "doorstep/bridge/stats", 10)


async def test_the_newest_retained_value_wins_after_an_outage(
    mqtt_broker: Broker, mqtt_listener: Callable[..., Listener]
) -> None:
    await asyncio.to_thread(mqtt_broker.stop)
    client = MqttClient(MqttSettings(host=mqtt_broker.host, port=mqtt_broker.port), "doorstep")
    await client.start()
    try:
        topic = "doorstep/front_door/snapshot"
        # While the broker is away, a forgotten clip's picture is cleared (QoS 1), then
        # a press brings a new picture (QoS 0, like every snapshot).
        client.publish(topic, b"", qos=1, retain=True)
        client.publish(topic, b"\xff\xd8 the press", qos=0, retain=True)
        await asyncio.to_thread(mqtt_broker.start)
        assert await client.wait_connected(20)
        await asyncio.sleep(0.5)
        listener = mqtt_listener(topic)
        assert await asyncio.to_thread(listener.wait_for, topic, 5) == b"\xff\xd8 the press"
    finally:
        await client.stop()


async def test_a_press_while_the_bridge_restarts_rings_when_it_is_back(
    mqtt_broker: Broker, mqtt_listener: Callable[..., Listener], tmp_path: Path
) -> None:
    listener = mqtt_listener(RING)
    config = bridge_config(mqtt_broker, tmp_path)
    async with run_bridge(config) as bridge:
        await bridge.wait_mqtt()
    # The bridge is down; a button (QoS 1) is pressed.
    await asyncio.to_thread(listener.publish, "doorstep/front_door/ring/set", b"1")
    async with run_bridge(config) as bridge:
        await bridge.wait_mqtt()
        payload = await asyncio.to_thread(listener.wait_for, RING, 10)
        assert json.loads(payload)["camera"] == "front_door"


def test_ignored_input_is_logged_once_then_summarised_per_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    now = [0.0]
    ignored = IgnoredInputLog(logging.getLogger("test.ignored"), interval=60, clock=lambda: now[0])
    caplog.set_level(logging.WARNING, "test.ignored")
    for index in range(1000):
        now[0] = index * 0.01
        ignored.report("doorstep/+/ring/set", "unknown camera", f"doorstep/c{index}/ring/set", "x")
    ignored.report("buttons/front", "too big", "buttons/front", "\ud800 line\nbreak " * 50)
    assert len(caplog.records) == 2  # the first of each kind, nothing else yet
    assert "\n" not in caplog.records[1].getMessage()
    assert "\\ud800" in caplog.records[1].getMessage()  # escaped, so any handler can write it

    now[0] = 61.0
    ignored.flush()
    summaries = [r.getMessage() for r in caplog.records[2:]]
    assert len(summaries) == 1
    assert "Ignored 999 more messages on doorstep/+/ring/set" in summaries[0]
    assert "doorstep/c999/ring/set" in summaries[0]

    now[0] = 130.0  # a quiet interval ends the window: the next one is news again
    ignored.flush()
    ignored.report("doorstep/+/ring/set", "unknown camera", "doorstep/z/ring/set", "again")
    assert caplog.records[-1].getMessage().startswith("Ignoring message on doorstep/z/ring/set")


async def test_the_broker_connection_sends_small_messages_at_once(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    """Nagle's algorithm off: a ring must not wait for the ACK of a snapshot sent before it."""
    async with run_bridge(bridge_config(mqtt_broker, tmp_path)) as bridge:
        await bridge.wait_mqtt()
        await asyncio.to_thread(mqtt_broker.stop)  # the bridge reconnects: a new socket
        await asyncio.to_thread(mqtt_broker.start)
        await asyncio.sleep(0.2)
        await bridge.wait_mqtt(20)
        connections = [
            c
            for c in psutil.Process().net_connections(kind="tcp")
            if c.raddr and c.raddr.port == mqtt_broker.port and c.status == psutil.CONN_ESTABLISHED
        ]
        assert len(connections) == 1  # the bridge's own
        with socket.socket(fileno=os.dup(connections[0].fd)) as sock:
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0


def client_log(caplog: pytest.LogCaptureFixture, level: int, text: str) -> list[str]:
    """The MQTT client's log lines at ``level`` that contain ``text``."""
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "doorstep_bridge.mqtt.client" and r.levelno == level and text in r.getMessage()
    ]


async def test_a_broker_that_is_down_is_logged_once_and_health_says_so(
    mqtt_broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Nothing listens on the broker's port at first; then a broker starts there."""
    caplog.set_level(logging.DEBUG, logger="doorstep_bridge.mqtt.client")
    mqtt_broker.stop()
    address = f"127.0.0.1:{mqtt_broker.port}"
    cannot = "Cannot connect to the MQTT broker"
    again = f"Connected to the MQTT broker at {address} again"

    def lines(level: int, text: str) -> list[str]:
        return client_log(caplog, level, text)

    async def logged(level: int, text: str, count: int) -> None:
        # The log is the thing under test: poll it (no timing asserted, pytest-timeout guards).
        while len(lines(level, text)) < count:  # noqa: ASYNC110
            await asyncio.sleep(0.05)

    async def health(bridge: RunningBridge) -> dict[str, str]:
        async with bridge.session.get(f"{bridge.url}/api/health") as response:
            assert response.status == 200
            body: dict[str, str] = await response.json()
            return body

    async with run_bridge(bridge_config(mqtt_broker, tmp_path)) as bridge:
        # A second failed attempt (at DEBUG): the first one warned, the second one must not.
        await logged(logging.DEBUG, cannot, 1)
        assert lines(logging.WARNING, cannot) == [
            (
                f"{cannot} at {address}: connection refused; retrying with backoff "
                "(rings and clips are queued meanwhile)"
            )
        ]
        body = await health(bridge)
        assert body["status"] == "ok"
        assert body["mqtt"] == "disconnected"
        assert str(mqtt_broker.port) not in json.dumps(body)

        await asyncio.to_thread(mqtt_broker.start)
        await bridge.wait_mqtt(timeout=60)
        await logged(logging.INFO, again, 1)
        assert (await health(bridge))["mqtt"] == "connected"
        assert len(lines(logging.WARNING, cannot)) == 1

        # The next outage is a new one: said once (as a lost broker), then back.
        await asyncio.to_thread(mqtt_broker.stop)
        await logged(logging.WARNING, f"Lost the MQTT broker at {address}", 1)
        await logged(logging.DEBUG, cannot, 2)
        assert len(lines(logging.WARNING, cannot)) == 1
        assert (await health(bridge))["mqtt"] == "disconnected"
        await asyncio.to_thread(mqtt_broker.start)
        await bridge.wait_mqtt(timeout=60)
        await logged(logging.INFO, again, 2)
        assert len(lines(logging.WARNING, "MQTT broker")) == 2


async def test_a_broker_that_refuses_the_bridge_is_an_error_once(
    mqtt_broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The broker answers, but wants a user the bridge does not give (a setting to fix)."""
    caplog.set_level(logging.DEBUG, logger="doorstep_bridge.mqtt.client")
    mqtt_broker.stop()
    mqtt_broker.config_path.write_text(
        f"listener {mqtt_broker.port} 127.0.0.1\nallow_anonymous false\npersistence false\n",
        encoding="utf-8",
    )
    mqtt_broker.start()

    def lines(level: int) -> list[str]:
        return client_log(caplog, level, "Cannot connect to the MQTT broker")

    async with run_bridge(bridge_config(mqtt_broker, tmp_path)) as bridge:
        while not lines(logging.DEBUG):  # noqa: ASYNC110 - a second attempt, polled
            await asyncio.sleep(0.05)
        assert lines(logging.ERROR) == [
            (
                f"Cannot connect to the MQTT broker at 127.0.0.1:{mqtt_broker.port}: the broker "
                "refused the connection (Not authorized); retrying with backoff (rings and clips "
                "are queued meanwhile)"
            )
        ]
        assert lines(logging.WARNING) == []
        async with bridge.session.get(f"{bridge.url}/api/health") as response:
            assert (await response.json())["mqtt"] == "disconnected"


async def test_a_broker_that_comes_back_refusing_the_bridge_says_why(
    mqtt_broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Connected, then the broker restarts wanting a user (its config or the password
    changed): after "Lost the MQTT broker", the owner must read why it does not come back."""
    caplog.set_level(logging.DEBUG, logger="doorstep_bridge.mqtt.client")
    async with run_bridge(bridge_config(mqtt_broker, tmp_path)) as bridge:
        await bridge.wait_mqtt()
        await asyncio.to_thread(mqtt_broker.stop)
        mqtt_broker.config_path.write_text(
            f"listener {mqtt_broker.port} 127.0.0.1\nallow_anonymous false\npersistence false\n",
            encoding="utf-8",
        )
        await asyncio.to_thread(mqtt_broker.start)
        refused = "the broker refused the connection (Not authorized)"
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(20):
                while len(client_log(caplog, logging.DEBUG, refused)) < 1:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
    address = f"127.0.0.1:{mqtt_broker.port}"
    assert client_log(caplog, logging.ERROR, "Cannot connect") == [
        (
            f"Cannot connect to the MQTT broker at {address}: {refused}; retrying with backoff"
            " (rings and clips are queued meanwhile)"
        )
    ]
    assert len(client_log(caplog, logging.DEBUG, refused)) >= 1  # said once, then quietly


async def test_another_client_with_the_bridge_s_client_id_is_named_once(
    mqtt_broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A second bridge started with a copy of the storage folder (the same client id): the
    broker closes one connection whenever the other connects. The owner reads why, once,
    not a "Lost"/"Connected again" pair every second."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    caplog.set_level(logging.DEBUG, logger="doorstep_bridge.mqtt.client")
    config = bridge_config(mqtt_broker, tmp_path, mqtt={"client_id": "doorstep-copied"})
    twin = paho.Client(CallbackAPIVersion.VERSION2, client_id="doorstep-copied")
    twin.reconnect_delay_set(1, 1)
    try:
        async with run_bridge(config) as bridge:
            await bridge.wait_mqtt()
            twin.connect(mqtt_broker.host, mqtt_broker.port)
            twin.loop_start()
            await asyncio.sleep(12)
    finally:
        twin.loop_stop()
        twin.disconnect()
    errors = client_log(caplog, logging.ERROR, "most likely another client uses the same client")
    assert len(errors) == 1, errors
    assert "'doorstep-copied'" in errors[0]
    assert "retrying every 30 s" in errors[0]
    # Before it is recognised, each loss is one warning; then they stop.
    assert len(client_log(caplog, logging.WARNING, "Lost the MQTT broker")) <= 3


def _serve_tls(broker: Broker, folder: Path) -> Path:
    """Restart ``broker`` with TLS on its port (a certificate for 127.0.0.1); the certificate."""
    certs = folder / "certs"
    certs.mkdir(parents=True)
    cert, key = self_signed(certs)
    broker.stop()
    # Mosquitto started as root would read the key as the mosquitto user, who cannot
    # enter the test's folder: it stays the user it was started as.
    user = pwd.getpwuid(os.geteuid()).pw_name
    broker.config_path.write_text(
        f"listener {broker.port} 127.0.0.1\ncertfile {cert}\nkeyfile {key}\n"
        f"user {user}\nallow_anonymous true\npersistence false\n",
        encoding="utf-8",
    )
    broker.start()
    return cert


async def test_a_refusal_whose_answer_is_lost_is_not_taken_for_a_hang_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A broker that refuses the bridge, whose first refusal does not reach it.

    paho writes the messages it queued right behind the CONNECT; a broker that refuses
    closes with them unread, and the reset that follows can end the connection before
    paho reads the refusal. The owner must read the refusal, not "is it a TLS port?".
    """
    caplog.set_level(logging.DEBUG, logger="doorstep_bridge.mqtt.client")
    attempts = 0

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal attempts
        attempts += 1
        await reader.read(1024)  # the CONNECT
        if attempts > 1:
            writer.write(bytes([0x20, 2, 0, 5]))  # CONNACK: not authorised
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    broker = Broker(port=port, config_path=tmp_path / "unused.conf")

    def lines(level: int) -> list[str]:
        return client_log(caplog, level, "Cannot connect to the MQTT broker")

    async with server, run_bridge(bridge_config(broker, tmp_path / "bridge")):
        async with asyncio.timeout(30):
            while not lines(logging.DEBUG):  # noqa: ASYNC110 - a third attempt, polled
                await asyncio.sleep(0.05)
    assert lines(logging.ERROR) == [
        (
            f"Cannot connect to the MQTT broker at 127.0.0.1:{port}: the broker refused the"
            " connection (Not authorized); retrying with backoff (rings and clips are queued"
            " meanwhile)"
        )
    ]
    assert lines(logging.WARNING) == []


async def test_a_tls_port_spoken_to_in_plain_text_is_logged(
    mqtt_broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The broker's port wants TLS and the bridge has no mqtt.tls: it hangs up at once.

    paho reports neither a failed connection nor a CONNACK then; the owner must still
    read why the bridge never connects, once, and it keeps retrying.
    """
    caplog.set_level(logging.DEBUG, logger="doorstep_bridge.mqtt.client")
    _serve_tls(mqtt_broker, tmp_path)

    def lines(level: int) -> list[str]:
        return client_log(caplog, level, "Cannot connect to the MQTT broker")

    async with run_bridge(bridge_config(mqtt_broker, tmp_path / "bridge")):
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(20):  # before the fix: silence, forever
                while len(lines(logging.DEBUG)) < 2:  # noqa: ASYNC110 - retries, polled
                    await asyncio.sleep(0.05)
        assert lines(logging.WARNING) == [
            (
                f"Cannot connect to the MQTT broker at 127.0.0.1:{mqtt_broker.port}: the broker "
                "closed the connection without answering (is it a TLS port? then set "
                "mqtt.tls); retrying with backoff (rings and clips are queued meanwhile)"
            )
        ]
        assert len(lines(logging.DEBUG)) >= 2  # it keeps trying, quietly


async def test_tls_towards_a_plain_port_is_logged_with_the_likely_cause(
    mqtt_broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The mirror case: mqtt.tls is set, and the broker's port speaks plain MQTT."""
    caplog.set_level(logging.WARNING, logger="doorstep_bridge.mqtt.client")
    config = bridge_config(mqtt_broker, tmp_path, mqtt={"tls": True})
    cannot = "Cannot connect to the MQTT broker"
    async with run_bridge(config):
        while not client_log(caplog, logging.WARNING, cannot):  # noqa: ASYNC110 - polled
            await asyncio.sleep(0.05)
    assert client_log(caplog, logging.WARNING, cannot) == [
        (
            f"{cannot} at 127.0.0.1:{mqtt_broker.port}: connection reset by peer (mqtt.tls is"
            " set: is it a TLS port?); retrying with backoff (rings and clips are queued"
            " meanwhile)"
        )
    ]


@pytest.mark.parametrize(
    "case",
    [
        ("127.0.0.1", False, "self-signed certificate"),
        ("localhost", True, "Hostname mismatch, certificate is not valid for 'localhost'"),
    ],
    ids=["unknown-issuer", "other-host-name"],
)
async def test_a_certificate_the_bridge_refuses_is_named(
    mqtt_broker: Broker,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    case: tuple[str, bool, str],
) -> None:
    """Each of these has its own fix (mqtt.tls.ca_certs, mqtt.host): the log tells them apart."""
    host, trusted, why = case
    caplog.set_level(logging.WARNING, logger="doorstep_bridge.mqtt.client")
    cert = _serve_tls(mqtt_broker, tmp_path)
    tls: dict[str, str] | bool = {"ca_certs": str(cert)} if trusted else True
    config = bridge_config(mqtt_broker, tmp_path / "bridge", mqtt={"host": host, "tls": tls})
    cannot = "Cannot connect to the MQTT broker"
    async with run_bridge(config):
        while not client_log(caplog, logging.ERROR, cannot):  # noqa: ASYNC110 - polled
            await asyncio.sleep(0.05)
    assert client_log(caplog, logging.ERROR, cannot) == [
        (
            f"{cannot} at {host}:{mqtt_broker.port}: TLS failed (the broker's certificate is not"
            f" accepted: {why}); retrying with backoff (rings and clips are queued meanwhile)"
        )
    ]


async def test_a_broker_certificate_changed_while_connected_is_named(
    mqtt_broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The broker restarts with a certificate the bridge does not trust (renewed by another
    CA, say): after "Lost the MQTT broker" the owner must read why it does not come back."""
    caplog.set_level(logging.DEBUG, logger="doorstep_bridge.mqtt.client")
    first = _serve_tls(mqtt_broker, tmp_path / "first")
    config = bridge_config(mqtt_broker, tmp_path / "bridge", mqtt={"tls": {"ca_certs": str(first)}})
    refused = "the broker's certificate is not accepted: self-signed certificate"
    async with run_bridge(config) as bridge:
        await bridge.wait_mqtt()
        _serve_tls(mqtt_broker, tmp_path / "second")  # another certificate
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(20):
                while not client_log(caplog, logging.DEBUG, refused):  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
    assert client_log(caplog, logging.ERROR, "Cannot connect") == [
        (
            f"Cannot connect to the MQTT broker at 127.0.0.1:{mqtt_broker.port}: TLS failed"
            f" ({refused}); retrying with backoff (rings and clips are queued meanwhile)"
        )
    ]


def test_connect_errors_in_words() -> None:
    import ssl

    from doorstep_bridge.mqtt.client import connect_error_reason

    assert connect_error_reason(ConnectionRefusedError(111, "Connection refused")) == (
        "connection refused"
    )
    assert connect_error_reason(socket.gaierror(-2, "Name or service not known")) == (
        "the host name does not resolve"
    )
    assert connect_error_reason(TimeoutError()) == "no answer (timeout)"
    assert connect_error_reason(OSError(113, "No route to host")) == "no route to host"
    assert "TLS failed" in connect_error_reason(ssl.SSLError(1, "CERTIFICATE_VERIFY_FAILED"))
    assert connect_error_reason(OSError()) == "OSError"
    assert connect_error_reason(None) == "unknown error"


async def test_a_malformed_subscription_does_not_end_the_connection(
    mqtt_broker: Broker, mqtt_listener: Callable[..., Listener], caplog: pytest.LogCaptureFixture
) -> None:
    """paho raises for such a filter in its network thread; only that one is lost."""
    caplog.set_level(logging.ERROR, logger="doorstep_bridge.mqtt.client")
    client = MqttClient(MqttSettings(host=mqtt_broker.host, port=mqtt_broker.port), "test-bridge")
    received: list[tuple[str, bytes]] = []
    # The config check refuses this filter; here it reaches the client regardless.
    client.subscribe("buttons/#/front", lambda _topic, _payload: None)
    client.subscribe("buttons/+", lambda topic, payload: received.append((topic, payload)))
    await client.start()
    try:
        assert await client.wait_subscribed(10)
        assert client.connected
        await asyncio.to_thread(mqtt_listener("unused").publish, "buttons/front", "press")
        async with asyncio.timeout(10):
            while not received:  # noqa: ASYNC110 - the handler runs on this loop
                await asyncio.sleep(0.02)
        assert received == [("buttons/front", b"press")]
        [line] = client_log(caplog, logging.ERROR, "Cannot subscribe")
        assert line.startswith("Cannot subscribe to 'buttons/#/front': ")
    finally:
        await client.stop()


def _connect_as(broker: Broker, client_id: str, *, clean_session: bool) -> Any:
    """A plain client connected under ``client_id``; its CONNACK flags as ``.flags``."""
    import threading

    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=clean_session
    )
    connected = threading.Event()

    def on_connect(_c: object, _u: object, flags: Any, *_rest: object) -> None:
        client.flags = flags  # type: ignore[attr-defined]
        connected.set()

    client.on_connect = on_connect
    client.connect(broker.host, broker.port)
    client.loop_start()
    assert connected.wait(5), f"cannot connect as {client_id}"
    return client


def _close(client: Any) -> None:
    client.disconnect()
    client.loop_stop()


async def _connecting_as_takes_the_bridge_s_place(
    bridge: RunningBridge, broker: Broker, client_id: str
) -> bool:
    """Whether a client connecting under ``client_id`` closes the bridge's connection."""
    mqtt = bridge.app[MQTT]
    assert mqtt.connected
    other = await asyncio.to_thread(_connect_as, broker, client_id, clean_session=True)
    try:
        for _ in range(40):  # 2 s; the bridge reconnects after 1 s
            if not mqtt.connected:
                return True
            await asyncio.sleep(0.05)
        return False
    finally:
        await asyncio.to_thread(_close, other)
        await bridge.wait_mqtt()


async def test_the_client_id_cannot_be_read_from_what_the_bridge_publishes(
    mqtt_broker: Broker, mqtt_listener: Callable[..., Listener], tmp_path: Path
) -> None:
    """Who knows the client id can take over the bridge's session and its presses."""
    everything = mqtt_listener("#")
    config = bridge_config(mqtt_broker, tmp_path)
    async with run_bridge(config) as bridge:
        await bridge.wait_mqtt()
        await bridge.session.post(f"{bridge.url}/api/cameras/front_door/ring", headers=bridge.auth)
        await asyncio.to_thread(everything.wait_for, RING)
        client_id, bridge_id = bridge.app[MQTT].client_id, bridge.app[BRIDGE_ID]
        # The broker knows the bridge under it...
        assert await _connecting_as_takes_the_bridge_s_place(bridge, mqtt_broker, client_id)
        # ... and not under the id an older version used, made of the published bridge id.
        assert not await _connecting_as_takes_the_bridge_s_place(
            bridge, mqtt_broker, f"doorstep-{bridge_id}"
        )
        published = await asyncio.to_thread(everything.drain, 1.0)
    assert client_id.startswith(f"doorstep-{bridge_id}-")
    random_part = client_id.removeprefix(f"doorstep-{bridge_id}-")
    assert len(random_part) == 32
    assert any(bridge_id.encode() in payload for _topic, payload, _retain in published)
    for topic, payload, _retain in published:
        assert random_part not in topic
        assert random_part.encode() not in payload, topic
    key_file = tmp_path / MQTT_CLIENT_KEY_FILE
    assert key_file.read_text().strip() == random_part
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # The same id after a restart: the broker's session (and presses queued in it) is kept.
    async with run_bridge(config) as bridge:
        await bridge.wait_mqtt()
        assert bridge.app[MQTT].client_id == client_id


async def test_a_configured_client_id_wins(mqtt_broker: Broker, tmp_path: Path) -> None:
    config = bridge_config(mqtt_broker, tmp_path, mqtt={"client_id": "porch-bridge"})
    async with run_bridge(config) as bridge:
        await bridge.wait_mqtt()
        assert bridge.app[MQTT].client_id == "porch-bridge"
        assert await _connecting_as_takes_the_bridge_s_place(bridge, mqtt_broker, "porch-bridge")
    assert not (tmp_path / MQTT_CLIENT_KEY_FILE).exists()


async def test_the_session_of_the_earlier_client_id_is_ended(
    mqtt_broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """An older version connected as ``doorstep-<bridge id>``: its session would stay for good,
    presses queued in it."""
    caplog.set_level(logging.INFO, logger="doorstep_bridge.lifecycle")
    tmp_path.joinpath("bridge_id").write_text("0123456789abcdef\n")
    earlier = "doorstep-0123456789abcdef"
    older = await asyncio.to_thread(_connect_as, mqtt_broker, earlier, clean_session=False)
    older.subscribe("doorstep/+/ring/set", qos=1)
    await asyncio.sleep(0.3)
    await asyncio.to_thread(_close, older)
    again = await asyncio.to_thread(_connect_as, mqtt_broker, earlier, clean_session=False)
    assert again.flags.session_present  # what the upgrade finds on the broker
    await asyncio.to_thread(_close, again)

    async with run_bridge(bridge_config(mqtt_broker, tmp_path)) as bridge:
        await bridge.wait_mqtt()
        for _ in range(100):  # up to 10 s
            if "Ended the MQTT session of the client id the bridge used before" in caplog.text:
                break
            await asyncio.sleep(0.1)
        client_id = bridge.app[MQTT].client_id
    assert earlier in caplog.text
    assert client_id not in caplog.text
    after = await asyncio.to_thread(_connect_as, mqtt_broker, earlier, clean_session=False)
    try:
        assert not after.flags.session_present
    finally:
        await asyncio.to_thread(_close, after)
    # Once only: the next start has nothing left to end.
    caplog.clear()
    async with run_bridge(bridge_config(mqtt_broker, tmp_path)) as bridge:
        await bridge.wait_mqtt()
        await asyncio.sleep(0.5)
    assert "Ended the MQTT session" not in caplog.text
