"""Camera passwords in URLs, re-run: a refused or unreachable camera never shows its secret."""

from __future__ import annotations

from pathlib import Path
import subprocess
import sys

import pytest
import yaml

from tests.bridge.conftest import Listener, free_port
from tests.security.bridge_process import broker_at
from tests.security.storage_bridge import bridge, request, wait_for, write_config
from tests.support.servers import refusing_http_server

SECRET = "cam-SECRET-9b1f2e"


def _check(config: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "doorstep_bridge", "check", "--config", str(config)],
        capture_output=True,
        check=False,
        timeout=60,
    )
    return result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")


@pytest.mark.slow
def test_camera_secrets_stay_out_of_logs_status_and_check(tmp_path: Path) -> None:
    nothing_there = free_port()
    with refusing_http_server() as refusing, broker_at(tmp_path) as broker:
        cameras = {
            "front_door": {"source": f"{refusing}/video.mjpg?user=admin&pwd={SECRET}"},
            "back_door": {
                "source": f"http://127.0.0.1:{nothing_there}/v.cgi?USER=admin&Password={SECRET}"
            },
            "garage": {
                "source": f"rtsp://admin:{SECRET}@127.0.0.1:{nothing_there}/s?token={SECRET}"
            },
        }
        config, port = write_config(tmp_path, broker, tmp_path / "data", cameras)
        log = tmp_path / "bridge.log"
        listener = Listener(broker, ["#"])
        try:
            with bridge(config, log, port):
                for camera in cameras:
                    wait_for(
                        f"{camera} to be reported offline",
                        lambda camera=camera: (
                            f"Camera {camera} is offline" in log.read_text(errors="replace")
                        ),
                    )
                status, info = request(f"http://127.0.0.1:{port}/api/info")
                assert status == 200
            messages = listener.drain()
        finally:
            listener.close()
        checked = _check(config)
        broken = yaml.safe_load(config.read_text(encoding="utf-8"))
        broken["cameras"]["front_door"]["record"] = {"pre_roll": "lots"}
        config.write_text(yaml.safe_dump(broken), encoding="utf-8")
        rejected = _check(config)

    text = log.read_text(errors="replace")
    assert [line for line in text.splitlines() if SECRET in line] == []
    assert "pwd=***" in text  # the refused camera is named, its password is not
    assert "Password=***" in text
    assert SECRET.encode() not in info
    assert messages
    assert not [topic for topic, payload, _ in messages if SECRET.encode() in payload]
    assert "valid" in checked
    assert SECRET not in checked
    assert "cameras.front_door.record.pre_roll" in rejected
    assert SECRET not in rejected
