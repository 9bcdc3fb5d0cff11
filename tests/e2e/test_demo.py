"""The demo as a user runs it: starts, writes a private credentials file, rings, stops on Ctrl-C."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import aiohttp
import pytest

from tests.e2e.ha_client import HaClient
from tests.e2e.servers import CAMERA, ROOT, free_port, listening, missing_parts

pytestmark = pytest.mark.slow


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, int]]:
    why = missing_parts()
    if why is not None:
        pytest.skip(why)
    port = free_port()
    env = {**os.environ, "DEMO_DIR": str(tmp_path / "demo"), "DEMO_HA_PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.demo"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process, tmp_path / "demo", port
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _read_until(process: subprocess.Popen[str], *needles: str, timeout: float = 180) -> str:
    """Read the demo's output until every needle has appeared (in any order)."""
    assert process.stdout is not None
    seen: list[str] = []
    missing = set(needles)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line and process.poll() is not None:
            break
        seen.append(line)
        missing = {needle for needle in missing if needle not in line}
        if not missing:
            return "".join(seen)
    pytest.fail(f"no {sorted(missing)} in the demo's output:\n{''.join(seen)[-3000:]}")


async def _doorbell(url: str, token: str) -> dict[str, object] | None:
    async with aiohttp.ClientSession() as session:
        return await HaClient(session, url, token).state(f"event.{CAMERA}_doorbell")


def test_demo_starts_rings_and_stops_cleanly(
    demo: tuple[subprocess.Popen[str], Path, int],
) -> None:
    process, folder, port = demo
    banner = _read_until(process, "Ctrl-C stops everything")
    credentials_file = folder / "credentials.json"
    assert credentials_file.stat().st_mode & 0o777 == 0o600
    credentials = json.loads(credentials_file.read_text())
    assert credentials["url"] == f"http://127.0.0.1:{port}"
    assert credentials["username"] == "owner"
    assert credentials["password"] in banner
    assert credentials["url"] in banner

    # The token works, and the doorbell entity is there.
    assert asyncio.run(_doorbell(credentials["url"], credentials["token"])) is not None

    # `scripts/demo ring` presses the doorbell; the demo prints the traffic and HA's event.
    env = {**os.environ, "DEMO_DIR": str(folder)}
    ring = subprocess.run(
        [sys.executable, "-m", "tests.e2e.demo", "ring"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert ring.returncode == 0, ring.stderr
    # Both lines, in whichever order the monitor's threads print them.
    _read_until(process, f"mqtt  doorstep/{CAMERA}/ring ", f"ha    event.{CAMERA}_doorbell")

    # Ctrl-C: everything stops, nothing keeps listening.
    mqtt_port = json.loads((folder / "run.json").read_text())["mqtt_port"]
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=90) == 0
    assert not listening(port)
    assert not listening(mqtt_port)
    assert not (folder / "run.json").exists()
