"""Helpers for the benchmarks: a throwaway Mosquitto and a bridge subprocess."""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
from pathlib import Path
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from typing import Any

import yaml


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_listening(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


@contextlib.contextmanager
def mosquitto(extra_config: str = "") -> Iterator[int]:
    """Run Mosquitto on a free loopback port; yields the port.

    `extra_config` is appended to its mosquitto.conf (one option a line).
    """
    if shutil.which("mosquitto") is None:
        sys.exit("mosquitto is not installed: run scripts/setup")
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "mosquitto.conf"
        conf.write_text(
            f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n{extra_config}"
        )
        proc = subprocess.Popen(["mosquitto", "-c", str(conf)], stderr=subprocess.DEVNULL)
        try:
            wait_listening(port)
            yield port
        finally:
            proc.terminate()
            proc.wait()


@contextlib.contextmanager
def bridge(config: dict[str, Any]) -> Iterator[subprocess.Popen[bytes]]:
    """Run `doorstep-bridge run` on `config` until the block ends."""
    with tempfile.TemporaryDirectory() as tmp:
        config.setdefault("storage", {"path": str(Path(tmp) / "data")})
        path = Path(tmp) / "doorstep.yaml"
        path.write_text(yaml.safe_dump(config))
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "doorstep_bridge",
                "run",
                "--config",
                str(path),
                "--log-level",
                "WARNING",
            ]
        )
        try:
            wait_listening(config["http"]["port"])
            yield proc
        finally:
            proc.terminate()
            proc.wait(timeout=20)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]
