"""Fixtures shared by the bridge tests: a real Mosquitto broker on a free loopback port."""

from __future__ import annotations

from collections.abc import Iterator
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
        self.process = subprocess.Popen(  # noqa: S603
            ["mosquitto", "-c", str(self.config_path)],  # noqa: S607
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
