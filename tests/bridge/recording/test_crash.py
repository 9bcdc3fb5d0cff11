"""The real bridge process mid-clip: after a kill -9 and a restart the clip is repaired and
plays; a second bridge started on the same storage folder leaves it alone."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
import io
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import time
from typing import Any
from urllib.error import URLError
from urllib.request import Request, urlopen

import av
import pytest

from tests.bridge.conftest import Broker, free_port

pytestmark = pytest.mark.slow

TOKEN = "crash-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _get(url: str) -> bytes:
    with urlopen(Request(url, headers=AUTH), timeout=5) as response:
        body: bytes = response.read()
        return body


def _json(url: str) -> Any:

    return json.loads(_get(url))


def _post(url: str, body: bytes) -> int:
    request = Request(
        url, data=body, method="POST", headers={**AUTH, "Content-Type": "application/json"}
    )
    with urlopen(request, timeout=5) as response:
        status: int = response.status
        return status


@contextmanager
def bridge(config: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "doorstep_bridge", "run", "--config", str(config)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)


def _wait(predicate: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            result = predicate()
        except (URLError, OSError):
            result = None
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError("timed out")


def _write_config(tmp_path: Path, broker: Broker, port: int) -> Path:
    config = tmp_path / "doorstep.yaml"
    config.write_text(
        f"""
mqtt: {{host: 127.0.0.1, port: {broker.port}}}
http: {{host: 127.0.0.1, port: {port}, token: {TOKEN}}}
storage: {{path: {tmp_path / "data"}}}
cameras:
  front_door:
    source: "demo://?period=600&fps=10&width=320&height=180"
    record: {{pre_roll: 2}}
""",
        encoding="utf-8",
    )
    return config


def test_kill_9_mid_clip_then_restart(mqtt_broker: Broker, tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = _write_config(tmp_path, mqtt_broker, port)
    log = tmp_path / "bridge.log"

    def online() -> bool:
        info = _json(f"{base}/api/info")
        return bool(info["cameras"]["front_door"]["online"])

    with bridge(config, log) as process:
        _wait(online)
        time.sleep(2.5)  # the pre-roll fills
        status = _post(f"{base}/api/cameras/front_door/record", b'{"duration": 60}')
        assert status == 202
        time.sleep(3.5)
        assert _json(f"{base}/api/clips")["total"] == 0  # still recording
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)

    with bridge(config, log):
        listing = _wait(lambda: _json(f"{base}/api/clips"))
        assert listing["total"] == 1, log.read_text()
        clip = listing["clips"][0]
        assert clip["reason"] == "manual"
        assert 3.0 <= clip["duration"] <= 8.0
        video = _get(f"{base}/api/clips/{clip['id']}/video")
    with av.open(io.BytesIO(video)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    assert frames == pytest.approx(clip["duration"] * 10, abs=1)
    assert "cut off by a crash; repaired" in log.read_text()
    assert not list((tmp_path / "data").rglob("*.partial.mp4"))


def test_a_second_bridge_on_the_same_storage_leaves_the_clip_being_recorded_alone(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    """Installed twice, or started by hand while the service runs: the second one stops.

    It used to take the clip being recorded for one cut off by a crash, finish it
    and delete its file, then fail on the HTTP port: the rest of the clip was lost.
    """
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config = _write_config(tmp_path, mqtt_broker, port)
    storage = tmp_path / "data"
    log = tmp_path / "bridge.log"

    def online() -> bool:
        info = _json(f"{base}/api/info")
        return bool(info["cameras"]["front_door"]["online"])

    with bridge(config, log):
        _wait(online)
        time.sleep(2.5)  # the pre-roll fills
        assert _post(f"{base}/api/cameras/front_door/record", b'{"duration": 8}') == 202
        partial = _wait(lambda: list(storage.rglob("*.partial.mp4")))[0]
        time.sleep(1.0)

        second = subprocess.run(
            [sys.executable, "-m", "doorstep_bridge", "run", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert partial.is_file(), second.stderr  # the clip being recorded is left alone
        assert second.returncode == 1
        assert (
            f"another doorstep-bridge is already using the storage folder {storage}"
            in second.stderr
        )
        assert "cut off by a crash" not in second.stderr
        assert "Traceback" not in second.stderr
        # Checking the config touches no storage: it works while the bridge runs.
        check = subprocess.run(
            [sys.executable, "-m", "doorstep_bridge", "check", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert check.returncode == 0, check.stderr

        listing = _wait(lambda: _json(f"{base}/api/clips")["clips"], timeout=30)
    [clip] = listing
    assert clip["reason"] == "manual"
    assert clip["duration"] >= 8.0  # the whole clip, not what was written before the second
    text = log.read_text()
    assert "cannot finish" not in text
    assert "cut off by a crash" not in text
