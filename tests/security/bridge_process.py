"""A real bridge process for attack tests: its own Mosquitto, config, log file and limits.

The bridge runs as users run it (``python -m doorstep_bridge run --config ...``), so
descriptor limits, the HTTP server's own settings and everything that reaches the log
are the real ones. The log goes to a file the test reads afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
import contextlib
from dataclasses import dataclass
import json
from pathlib import Path
import shutil
import subprocess
import sys
import time
from typing import Any
import urllib.error
import urllib.request

import pytest
import yaml

from tests.bridge.conftest import Broker, free_port

#: Passwords and tokens the attack tests plant in the config, to grep the log for.
API_TOKEN = "sEcReT-api-token-4f9c2b7e1d0a6385"
REQUESTER_TOKEN = "sEcReT-requester-token-77ab31c9e2"
CAMERA_PASSWORD = "sEcReT-camera-pw-5521"
SECRETS = (API_TOKEN, REQUESTER_TOKEN, CAMERA_PASSWORD)


@dataclass
class BridgeProcess:
    """A started bridge process."""

    process: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path
    storage: Path
    broker: Broker

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {API_TOKEN}"}

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None


#: Runs the bridge module after setting RLIMIT_NOFILE to (argv[1], argv[2]). Done in the
#: child's own Python rather than with preexec_fn, which can deadlock in a threaded parent.
_LIMITED_RUN = (
    "import resource, runpy, sys; "
    "resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv.pop(1)), int(sys.argv.pop(1)))); "
    "runpy.run_module('doorstep_bridge', run_name='__main__', alter_sys=True)"
)


def bridge_command(config_path: Path, descriptors: tuple[int, int] | None) -> list[str]:
    """The command line of a bridge run, optionally under a descriptor limit (soft, hard)."""
    run = ["run", "--config", str(config_path)]
    if descriptors is None:
        return [sys.executable, "-m", "doorstep_bridge", *run]
    soft, hard = descriptors
    return [sys.executable, "-c", _LIMITED_RUN, str(soft), str(hard), *run]


def get(
    url: str, headers: dict[str, str] | None = None, timeout: float = 10.0
) -> tuple[int, bytes]:
    """A plain GET (no keep-alive) → (status, body); HTTP errors are answers too."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def post(
    url: str, body: Any = None, headers: dict[str, str] | None = None, timeout: float = 10.0
) -> tuple[int, bytes]:
    """A POST of `body` as JSON (none when None) → (status, body); HTTP errors are answers."""
    data = b"" if body is None else json.dumps(body).encode()
    sent = {"Content-Type": "application/json", **(headers or {})}
    request = urllib.request.Request(url, data=data, headers=sent, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def wait_healthy(bridge: BridgeProcess, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not bridge.alive():
            pytest.fail(f"bridge exited with {bridge.process.returncode}:\n{bridge.log()[-3000:]}")
        try:
            if get(f"{bridge.url}/api/health", timeout=2)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"bridge not healthy after {timeout} s:\n{bridge.log()[-3000:]}")


@contextlib.contextmanager
def broker_at(tmp_path: Path, *, persistence: bool = False) -> Iterator[Broker]:
    """A Mosquitto broker on a free loopback port.

    With `persistence`, sessions and their queued messages survive a restart
    (`Broker.stop` then `Broker.start`), as on an installed broker.
    """
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed (scripts/setup installs it)")
    port = free_port()
    config = tmp_path / "mosquitto.conf"
    # Run as root, Mosquitto drops to its own user, which cannot write the test's
    # folder; `user root` keeps it (and means nothing to a non-root run).
    stored = f"persistence true\npersistence_location {tmp_path}/\nuser root\n"
    config.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\n"
        + (stored if persistence else "persistence false\n"),
        encoding="utf-8",
    )
    broker = Broker(port=port, config_path=config)
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@contextlib.contextmanager
def bridge_process(
    tmp_path: Path,
    broker: Broker,
    *,
    descriptors: tuple[int, int] | None = None,
    cameras: dict[str, Any] | None = None,
    keep_log: bool = False,
) -> Iterator[BridgeProcess]:
    """Run the bridge (one demo camera unless `cameras`) with planted secrets; stop it after.

    `descriptors` is the (soft, hard) RLIMIT_NOFILE the process starts with. The
    storage folder is ``tmp_path / "data"``, so a second run in the same `tmp_path`
    is a restart; `keep_log` appends to its log instead of starting a new one.
    """
    storage = tmp_path / "data"
    port = free_port()
    config: dict[str, Any] = {
        "mqtt": {"host": broker.host, "port": broker.port, "keepalive": 5},
        "http": {"host": "127.0.0.1", "port": port, "token": API_TOKEN},
        "storage": {"path": str(storage)},
        "cameras": cameras
        or {
            "front_door": {
                "source": "demo://?period=3600&fps=10&width=320&height=180",
                "doorbell": {"debounce": 0.5},
                "record": {"pre_roll": 1, "post_roll": 1},
            }
        },
        "sharing": {"requester_tokens": {"neighbour": REQUESTER_TOKEN}},
    }
    config_path = tmp_path / "doorstep.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    log_path = tmp_path / "bridge.log"
    with log_path.open("ab" if keep_log else "wb") as log_file:
        process = subprocess.Popen(
            bridge_command(config_path, descriptors), stdout=log_file, stderr=subprocess.STDOUT
        )
    bridge = BridgeProcess(process, "127.0.0.1", port, log_path, storage, broker)
    try:
        wait_healthy(bridge)
        yield bridge
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
