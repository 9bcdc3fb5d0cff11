"""Helpers for the storage and camera-URL attack tests: a real bridge process, its disk.

The bridge runs as users run it (``python -m doorstep_bridge run --config FILE``), so
the umask, the start-up checks and everything that reaches its log are the real ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
import contextlib
import json
from pathlib import Path
import subprocess
import sys
import time
from typing import Any
import urllib.error
import urllib.request

import pytest
import yaml

from tests.bridge.conftest import Broker, free_port

TOKEN = "storage-attack-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def request(url: str, body: Any = None, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    """A GET (or a JSON POST when ``body`` is given) → (status, body); errors are answers."""
    data = None if body is None else json.dumps(body).encode()
    sent = {**AUTH, **({"Content-Type": "application/json"} if data else {}), **(headers or {})}
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, data=data, headers=sent), timeout=10
        ) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def wait_for[T](what: str, probe: Callable[[], T | None], timeout: float = 60.0) -> T:
    """Poll ``probe`` until it returns something truthy (a bounded wait, not a timing test)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = probe()
        except OSError:
            result = None
        if result:
            return result
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def write_config(
    folder: Path, broker: Broker, storage: Path, cameras: dict[str, Any], *, token: bool = True
) -> tuple[Path, int]:
    """A bridge config file (HTTP on a free loopback port) → (its path, the HTTP port)."""
    port = free_port()
    config = {
        "mqtt": {"host": broker.host, "port": broker.port, "keepalive": 5},
        "http": {"host": "127.0.0.1", "port": port, **({"token": TOKEN} if token else {})},
        "storage": {"path": str(storage)},
        "cameras": cameras,
    }
    path = folder / "doorstep.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path, port


@contextlib.contextmanager
def bridge(config: Path, log: Path, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """Run the bridge until it answers on ``port``; stop it (if still running) afterwards."""
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "doorstep_bridge", "run", "--config", str(config)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:

        def healthy() -> bool:
            if process.poll() is not None:
                pytest.fail(f"the bridge exited:\n{log.read_text(errors='replace')[-3000:]}")
            return request(f"http://127.0.0.1:{port}/api/health")[0] == 200

        wait_for("the bridge to answer", healthy)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
