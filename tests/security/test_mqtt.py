"""MQTT input attacks on a real bridge process and a real Mosquitto (loopback only).

Anyone who can write to the broker can send the bridge anything: the bridge must
neither crash, nor write tracebacks, nor let the garbage flood its log, and the
doorbell must still ring afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
import json
from pathlib import Path
import shutil
import signal
import subprocess
import sys

import pytest
import yaml

from tests.bridge.conftest import Broker, Listener, free_port
from tests.security.fuzz_mqtt import command_topics, flood, fuzz_messages
from tests.security.soak import record, scaled

BASE = "doorstep"
BUTTON = "zigbee2mqtt/front_button"
RING = f"{BASE}/front_door/ring"
AVAILABLE = f"{BASE}/available"
#: A camera the flood never names: a press on it, sent after the flood, marks its end.
SENTINEL_RING = f"{BASE}/porch/ring"

#: Bound on the warnings a flood may add (a first line and summaries per kind of garbage).
MAX_WARNINGS = 50
#: Bound on all it may add: some of the garbage is valid by chance ("1" switches
#: recording on, any payload on ring/set is a press), and commands are logged.
MAX_LOG_LINES = 200


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """Mosquitto that queues without limit, so the bridge sees the whole flood."""
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed (scripts/setup installs it)")
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"
        "max_queued_messages 0\nmax_queued_bytes 0\n",
        encoding="utf-8",
    )
    broker = Broker(port=port, config_path=config)
    broker.start()
    yield broker
    broker.stop()


@contextlib.contextmanager
def bridge_process(broker: Broker, tmp_path: Path, log: Path) -> Iterator[None]:
    """`doorstep-bridge run` with an outside button; stopped with SIGTERM (summaries flushed)."""
    config = tmp_path / "doorstep.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "mqtt": {"host": broker.host, "port": broker.port, "base_topic": BASE},
                "http": {"host": "127.0.0.1", "port": free_port()},
                "storage": {"path": str(tmp_path / "data")},
                "cameras": {
                    "front_door": {
                        "source": "demo://?period=3600",
                        "doorbell": {"topic": BUTTON, "payload": {"action": "single"}},
                    },
                    "porch": {"source": "demo://?period=3600&fps=2&width=160&height=120"},
                },
            }
        ),
        encoding="utf-8",
    )
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "doorstep_bridge", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.mark.slow
def test_ten_thousand_garbage_messages_leave_no_traceback_and_the_doorbell_rings(
    broker: Broker, tmp_path: Path
) -> None:
    log = tmp_path / "bridge.log"
    listener = Listener(broker, [RING, AVAILABLE, SENTINEL_RING])
    try:
        with bridge_process(broker, tmp_path, log):
            listener.wait_for(AVAILABLE, 30, b"online")
            listener.drain(1.0)  # the bridge's start-up subscriptions settle
            before = len(log.read_bytes().splitlines())

            count = scaled(10_000, 20_000)
            messages = fuzz_messages(command_topics(BASE, [BUTTON]), count=count, seed=13)
            sent = flood(broker.host, broker.port, messages)
            assert sent == count

            # The broker may still be handing the bridge its backlog: a command sent
            # now (QoS 1, like the flood's) is answered once the bridge is through it.
            listener.drain(0)
            listener.publish(f"{SENTINEL_RING}/set", b"1")
            listener.wait_for(SENTINEL_RING, 120)
            # Presses hidden in the garbage may have rung; let the debounce pass.
            listener.drain(2.5)
            listener.publish(BUTTON, json.dumps({"action": "single", "battery": 97}))
            ring = json.loads(listener.wait_for(RING, 30))
            assert ring["camera"] == "front_door"
    finally:
        listener.close()

    text = log.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in text
    assert "Logging error" not in text
    flood_lines = text.splitlines()[before:]
    warnings = [line for line in flood_lines if " INFO " not in line and " DEBUG " not in line]
    record(
        "mqtt fuzz",
        messages=sent,
        tracebacks=text.count("Traceback"),
        logging_errors=text.count("Logging error"),
        log_lines=len(flood_lines),
        warnings=len(warnings),
        rang_afterwards=ring["camera"] == "front_door",
    )
    assert len(warnings) <= MAX_WARNINGS, "\n".join(warnings)
    assert len(flood_lines) <= MAX_LOG_LINES, "\n".join(flood_lines)
    assert max(len(line) for line in flood_lines) < 1000
    # Garbage was seen and counted, not silently swallowed.
    assert "Ignoring message on" in text
    assert "more messages on" in text
