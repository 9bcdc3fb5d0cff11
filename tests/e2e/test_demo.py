"""The demo as a user runs it: starts, writes a private credentials file, rings, stops on Ctrl-C."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import fcntl
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import aiohttp
import pytest
import yaml

from tests.e2e.ha_client import HaClient
from tests.e2e.servers import CAMERA, ROOT, free_port, h264_frames, listening, missing_parts

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


async def _open_as_recipient(link: str) -> tuple[int, str, bytes]:
    """What a recipient of ``link`` gets: no login, only the link."""
    async with aiohttp.ClientSession() as session, session.get(link) as response:
        return response.status, response.headers.get("Content-Type", ""), await response.read()


async def _status(url: str, token: str, path: str) -> int:
    headers = {"Authorization": f"Bearer {token}"}
    async with aiohttp.ClientSession() as session, session.get(url + path, headers=headers) as r:
        return r.status


def _command(folder: Path, *args: str, port: int | None = None) -> subprocess.CompletedProcess[str]:
    """``scripts/demo <args>`` against the demo in ``folder``."""
    env = {**os.environ, "DEMO_DIR": str(folder)}
    if port is not None:
        env["DEMO_HA_PORT"] = str(port)
    return subprocess.run(
        [sys.executable, "-m", "tests.e2e.demo", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_commands_without_a_running_demo_say_so(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    for command in ("ring", "share", "approve", "deny"):
        result = _command(folder, command)
        assert result.returncode == 1
        assert "not running (start it with scripts/demo)" in result.stderr
        assert "Traceback" not in result.stderr


def test_ring_while_the_demo_starts_says_so(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    folder.mkdir()
    # A demo that holds its lock but has not written run.json: Home Assistant is not ready.
    with (folder / "demo.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lock.write("4242\n")
        lock.flush()
        result = _command(folder, "ring")
        second = _command(folder, port=free_port())
    assert result.returncode == 1
    assert "still starting (pid 4242)" in result.stderr
    assert "Traceback" not in result.stderr
    assert second.returncode == 1
    assert "already running" in second.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["demo.lock"]  # nothing else touched


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

    # The demo HA has the offline parts of default_config, the blueprints and a masked camera.
    token = credentials["token"]
    assert asyncio.run(_status(credentials["url"], token, "/api/logbook")) == 200
    assert (
        asyncio.run(
            _status(
                credentials["url"],
                token,
                f"/api/history/period?filter_entity_id=event.{CAMERA}_doorbell",
            )
        )
        == 200
    )
    blueprints = folder / "ha" / "blueprints" / "automation" / "doorstep"
    assert sorted(p.name for p in blueprints.glob("*.yaml")) == [
        "ask_on_phone.yaml",
        "ring_notify.yaml",
    ]
    bridge_config = yaml.safe_load((folder / "doorstep.yaml").read_text())
    assert bridge_config["cameras"][CAMERA]["privacy_masks"]

    # A second demo in the same folder refuses, names the first, and touches nothing.
    ha_config = folder / "ha" / "configuration.yaml"
    before = ha_config.stat().st_mtime_ns
    second = _command(folder, port=free_port())
    assert second.returncode == 1
    assert "already running" in second.stderr
    assert str(process.pid) in second.stderr
    assert credentials["url"] in second.stderr
    assert ha_config.stat().st_mtime_ns == before
    assert asyncio.run(_doorbell(credentials["url"], token)) is not None

    # A share request, approved from the 'phone': the command reports what HA did. Once a
    # clip is stored, so that the footage asked for is there to render.
    _read_until(process, f"mqtt  doorstep/{CAMERA}/clip ")
    assert _command(folder, "share").returncode == 0
    _read_until(process, "answer from the 'phone'")
    approve = _command(folder, "approve")
    assert approve.returncode == 0, approve.stderr
    assert "is now approved" in approve.stdout
    # The rendered share's link is printed as its recipient opens it: through Home Assistant.
    link_prefix = f"link {credentials['url']}/api/doorstep/share/"
    output = _read_until(process, link_prefix, timeout=300)
    link = output.split(link_prefix, 1)[1].split()[0]
    status, content_type, video = asyncio.run(
        _open_as_recipient(f"{credentials['url']}/api/doorstep/share/{link}")
    )
    assert status == 200
    assert content_type == "video/mp4"
    assert h264_frames(video) >= 1
    # The same button again: HA refuses it, and the command says so.
    again = _command(folder, "approve")
    assert again.returncode == 1
    assert "Home Assistant refused the tap: already used" in again.stderr

    # Ctrl-C: everything stops, nothing keeps listening.
    mqtt_port = json.loads((folder / "run.json").read_text())["mqtt_port"]
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=90) == 0
    assert not listening(port)
    assert not listening(mqtt_port)
    assert not (folder / "run.json").exists()
