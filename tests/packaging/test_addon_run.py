"""The add-on's ``run`` script, natively: a fake Supervisor, a real broker, a real bridge.

The Supervisor is an aiohttp server on 127.0.0.1 answering ``/services/mqtt`` to the
add-on's token only; the script's paths point into a temporary folder through the
environment variables it reads (the defaults are the container's).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
import contextlib
import json
import os
from pathlib import Path
import queue
import signal
import subprocess
import sys
import threading
import time
from typing import Any
import urllib.request

from aiohttp import web
import pytest
import yaml

from tests.bridge.conftest import Broker, Listener, free_port

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / "addon" / "doorstep" / "run"
TOKEN = "supervisor-token-for-the-add-on"


class FakeSupervisor:
    """``GET /services/mqtt`` with the add-on's bearer token, in a thread of its own."""

    def __init__(self, service: dict[str, Any]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.requests: list[str] = []
        self._service = service
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    async def _mqtt(self, request: web.Request) -> web.Response:
        self.requests.append(request.headers.get("Authorization", ""))
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.json_response({"result": "error", "message": "Unauthorized"}, status=401)
        return web.json_response({"result": "ok", "data": self._service})

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_get("/services/mqtt", self._mqtt)
        runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(runner.setup())
        self._loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())

    def __enter__(self) -> FakeSupervisor:
        self._thread.start()
        assert self._ready.wait(10)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def _environment(tmp_path: Path, token: str, http_port: int) -> dict[str, str]:
    media, data = tmp_path / "media", tmp_path / "data"
    media.mkdir()
    data.mkdir()
    bin_dir = str(Path(sys.executable).parent)
    return {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "SUPERVISOR_TOKEN": token,
        "DOORSTEP_ADDON_OPTIONS": str(data / "options.json"),
        "DOORSTEP_ADDON_CONFIG": str(data / "doorstep.yaml"),
        "DOORSTEP_MEDIA_DIR": str(media),
        "DOORSTEP_DATA_DIR": str(data),
        "DOORSTEP_LISTEN_HOST": "127.0.0.1",
        "DOORSTEP_LISTEN_PORT": str(http_port),
        "DOORSTEP_HOSTNAME": "local-doorstep",
    }


@contextlib.contextmanager
def _started(env: dict[str, str], supervisor: FakeSupervisor) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [str(RUN)],
        env={**env, "DOORSTEP_SUPERVISOR_URL": supervisor.url},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _options(path: str) -> dict[str, Any]:
    return {
        "cameras": [
            {
                "name": "front_door",
                "source": "demo://",
                "doorbell_topic": "zigbee2mqtt/front_button",
                "doorbell_payload": '{"action": "single"}',
                "privacy_masks": ["0,0 100,0 100,80 0,80"],
            }
        ],
        "storage": path,
        "retention_days": 7,
        "api_token": "a-long-random-token-of-mine",
        "redact_faces": True,
    }


@pytest.mark.slow
def test_run_starts_the_bridge_on_the_supervisor_broker(
    tmp_path: Path, mqtt_broker: Broker
) -> None:
    http_port = free_port()
    env = _environment(tmp_path, TOKEN, http_port)
    Path(env["DOORSTEP_ADDON_OPTIONS"]).write_text(json.dumps(_options("media")))
    service = {
        "host": mqtt_broker.host,
        "port": mqtt_broker.port,
        "ssl": False,
        "protocol": "3.1.1",
        "username": "addons",
        "password": "password-from-the-supervisor",
    }
    listener = Listener(mqtt_broker, ["doorstep/discovery/#"])
    try:
        with FakeSupervisor(service) as supervisor, _started(env, supervisor) as process:
            payload = json.loads(_discovery(listener, timeout=60))
            assert supervisor.requests == [f"Bearer {TOKEN}"]
            assert payload["api_url"] == f"http://local-doorstep:{http_port}"
            assert payload["cameras"] == {"front_door": {"name": "Front door"}}
            from doorstep_bridge import __version__

            assert payload["version"] == __version__
            health = _get(f"http://127.0.0.1:{http_port}/api/health")
            assert health["status"] == "ok"
            assert process.poll() is None
        assert process.returncode == 0, process.stdout.read() if process.stdout else ""
    finally:
        listener.close()

    config_path = Path(env["DOORSTEP_ADDON_CONFIG"])
    assert config_path.stat().st_mode & 0o777 == 0o600
    config = yaml.safe_load(config_path.read_text())
    assert config["mqtt"]["password"] == "password-from-the-supervisor"
    assert config["storage"]["path"] == str(tmp_path / "media" / "doorstep")
    assert (tmp_path / "media" / "doorstep" / "bridge_id").is_file()
    assert (tmp_path / "media" / "doorstep").stat().st_mode & 0o777 == 0o700


def _discovery(listener: Listener, timeout: float) -> bytes:
    """The first retained discovery message (its topic holds the bridge's id)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            topic, payload, _retain = listener.messages.get(timeout=0.5)
        except queue.Empty:
            continue
        if topic.startswith("doorstep/discovery/") and payload:
            return payload
    pytest.fail(f"no discovery message in {timeout} s")


def _get(url: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                result: dict[str, Any] = json.loads(response.read())
                return result
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.mark.slow
def test_run_stops_with_a_clear_message_when_the_supervisor_refuses(
    tmp_path: Path,
) -> None:
    env = _environment(tmp_path, "not-the-add-on-token", free_port())
    Path(env["DOORSTEP_ADDON_OPTIONS"]).write_text(json.dumps(_options("data")))
    with FakeSupervisor({"host": "127.0.0.1", "port": 1}) as supervisor:
        with _started(env, supervisor) as process:
            output, _ = process.communicate(timeout=60)
        assert supervisor.requests == ["Bearer not-the-add-on-token"]
    assert process.returncode == 2
    assert "supervisor: no MQTT service (401); install the Mosquitto broker add-on" in output
    assert not Path(env["DOORSTEP_ADDON_CONFIG"]).exists()


@pytest.mark.slow
def test_run_stops_naming_a_bad_option(tmp_path: Path) -> None:
    env = _environment(tmp_path, TOKEN, free_port())
    options = _options("data")
    options["cameras"][0]["privacy_masks"] = ["0,0 100,0"]
    Path(env["DOORSTEP_ADDON_OPTIONS"]).write_text(json.dumps(options))
    with (
        FakeSupervisor({"host": "127.0.0.1", "port": 1883}) as supervisor,
        _started(env, supervisor) as process,
    ):
        output, _ = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "cameras.0.privacy_masks.0: a mask needs at least 3 points" in output
