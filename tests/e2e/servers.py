"""The servers of an end-to-end run, each a subprocess on a free loopback port.

Mosquitto, the bridge (``doorstep-bridge run``) and Home Assistant (``hass
--skip-pip``, the integration linked from the working tree). Home Assistant is
the one in the project's ``.venv`` (the oldest supported release), or, when
``DOORSTEP_HA_ROOT`` names a root built by ``scripts/ha-current``, the current
release inside that root. Each is started and stopped by its own handle, never
by name. Also a plain MQTT client and the video checks the tests share.

Owners update the bridge and the integration at different times. To run one side
from another checkout (an older release: ``git worktree add /tmp/old <tag>``), name
that checkout's root in ``DOORSTEP_E2E_BRIDGE_TREE`` (the bridge runs its
``bridge/doorstep_bridge``) or ``DOORSTEP_E2E_INTEGRATION_TREE`` (Home Assistant
loads its ``custom_components/doorstep``). Both default to this checkout.
"""

from __future__ import annotations

from collections.abc import Callable
import contextlib
from dataclasses import dataclass
import functools
import json
import os
from pathlib import Path
import queue
import shutil
import socket
import subprocess
import sys
import time
from typing import IO, Any

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
import yaml

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
CAMERA = "front_door"
BASE_TOPIC = "doorstep"
#: A Debian root holding the current Home Assistant (``scripts/ha-current --host``).
HA_ROOT = os.environ.get("DOORSTEP_HA_ROOT") or None
#: The checkouts whose bridge and whose integration run (see the module's docstring).
BRIDGE_TREE = Path(os.environ.get("DOORSTEP_E2E_BRIDGE_TREE") or ROOT).resolve()
INTEGRATION_TREE = Path(os.environ.get("DOORSTEP_E2E_INTEGRATION_TREE") or ROOT).resolve()
#: Integrations the test/demo HA loads. Not ``default_config``: go2rtc needs a
#: binary, and ssdp/zeroconf/dhcp reach beyond loopback.
HA_CONFIGURATION = """\
homeassistant:
  name: Doorstep
  unit_system: metric
  time_zone: UTC
  country: FR
  language: en
frontend:
config:
mobile_app:
webhook:
media_source:
# What default_config brings that works offline (HA loads automation, person, helpers... by
# itself). Left out: discovery (dhcp, ssdp, zeroconf), go2rtc, bluetooth and usb (hardware),
# cloud and homeassistant_alerts (they reach the internet).
assist_pipeline:
conversation:
energy:
history:
logbook:
my:
stream:
sun:
{http}logger:
  default: warning
  logs:
    custom_components.doorstep: info
"""
HTTP_YAML = """\
http:
  server_host: 127.0.0.1
  server_port: {port}
"""


def _ha_python() -> list[str]:
    """The Python interpreter of the Home Assistant under test."""
    if HA_ROOT is not None:
        return ["chroot", HA_ROOT, "/opt/ha/bin/python"]
    return [sys.executable]


@functools.cache
def ha_facts() -> dict[str, Any]:
    """The version of the Home Assistant under test, and whether it keeps HTTP settings in storage.

    From 2026.x HA reads its HTTP server settings from ``.storage/http`` (set in the UI); YAML
    is imported once, staged as a trial that reverts after five minutes, and ignored from
    2027.2.
    """
    probe = (
        "import importlib.util, json\n"
        "from homeassistant.const import __version__\n"
        "spec = importlib.util.find_spec('homeassistant.components.http.config')\n"
        "print(json.dumps({'version': __version__, 'http_store': spec is not None}))\n"
    )
    out = subprocess.run(
        [*_ha_python(), "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    facts: dict[str, Any] = json.loads(out.stdout)
    return facts


def artifacts() -> Path:
    """Where a run keeps logs and screenshots: one folder per Home Assistant version."""
    return ROOT / "test-artifacts" / f"ha-{ha_facts()['version']}"


def missing_parts() -> str | None:
    """None when Mosquitto and a runnable Home Assistant are here, else what is missing."""
    if shutil.which("mosquitto") is None:
        return "mosquitto is not installed (scripts/setup installs it)"
    if HA_ROOT is not None:
        if not Path(HA_ROOT, "opt/ha/bin/hass").exists():
            return f"no Home Assistant in {HA_ROOT} (scripts/ha-current --build makes it)"
        return None
    if not (VENV_BIN / "hass").exists():
        return "homeassistant is not installed in the venv (dev extras)"
    try:
        import hass_frontend  # noqa: F401 - only probing
        import nacl  # noqa: F401
    except ImportError:
        return "home-assistant-frontend / PyNaCl missing (dev extras; needed by hass --skip-pip)"
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: Callable[[], bool], timeout: float, what: str, interval: float = 0.1) -> None:
    """Poll ``check`` until it holds; RuntimeError naming ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def listening(port: int) -> bool:
    """Does something accept TCP connections on 127.0.0.1:``port``."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


#: The watchdog's program: it reads ``+pid`` / ``-pid`` lines until its starter is gone (end
#: of its input, however the starter ended), then stops the pids still listed: SIGTERM, and
#: SIGKILL for any left after WATCHDOG_GRACE seconds.
WATCHDOG_PROGRAM = """\
import os, signal, sys, time
for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
    signal.signal(sig, signal.SIG_IGN)
grace = float(sys.argv[1])
def stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as file:
            fields = file.read().rpartition(")")[2].split()
        return fields[0], fields[19]  # state, start time
    except (OSError, IndexError):
        return None
pids = {}
for line in sys.stdin:
    if line[:1] == "+":
        pids[int(line[1:])] = stat(int(line[1:]))
    elif line[:1] == "-":
        pids.pop(int(line[1:]), None)
def alive(pid):
    now = stat(pid)
    if pids[pid] is not None:  # Linux: the same process (not a reused pid), not a zombie
        return now is not None and now[1] == pids[pid][1] and now[0] != "Z"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        pass
    return True
for pid in [pid for pid in pids if alive(pid)]:
    try:
        os.kill(pid, signal.SIGTERM)
    except OSError:
        pass
deadline = time.monotonic() + grace
while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
    time.sleep(0.2)
for pid in pids:
    if alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
"""
WATCHDOG_GRACE = 30.0


class Watchdog:
    """A helper process that stops the services of a process that died without stopping them.

    Services run in sessions of their own (a terminal's Ctrl-C or hang-up reaches only their
    starter, which stops them in order), so nothing else would end them if the starter were
    killed outright. The watchdog holds the read end of a pipe that only the starter can
    write: the kernel closes it whichever way the starter ends.
    """

    def __init__(self) -> None:
        read, self._write = os.pipe()  # neither end is inherited by the services
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-c", WATCHDOG_PROGRAM, str(WATCHDOG_GRACE)],
                stdin=read,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            os.close(read)

    def _send(self, line: str) -> None:
        if self._write < 0:
            return
        with contextlib.suppress(OSError):  # the watchdog itself was killed: nothing to tell
            os.write(self._write, line.encode())

    def watch(self, pid: int) -> None:
        """Stop ``pid`` should the starter die."""
        self._send(f"+{pid}\n")

    def forget(self, pid: int) -> None:
        """``pid`` is stopped and reaped: leave it (and whoever gets the number next) alone."""
        self._send(f"-{pid}\n")

    def close(self, timeout: float = 10.0) -> None:
        """The starter stopped its services itself: let the watchdog end."""
        if self._write >= 0:
            os.close(self._write)
            self._write = -1
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Service:
    """One subprocess with its log file; started and stopped by its own handle."""

    name: str
    args: list[str]
    log_path: Path
    cwd: Path | None = None
    #: A folder put first on the process's ``PYTHONPATH``, ahead of this process's own
    #: at each start (a test may add a plug-in to it between two starts).
    python_path_first: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    #: Stops the process should its starter die without stopping it (the demo sets one).
    watchdog: Watchdog | None = None
    _log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        """Is the process alive."""
        if self.process is None:
            return False
        if self.process.poll() is None:
            return True
        # Reaped: its pid may be reused, so the watchdog must never signal it.
        if self.watchdog is not None:
            self.watchdog.forget(self.process.pid)
        return False

    def start(self) -> None:
        """Start the process, appending its output to the log file."""
        assert not self.running, f"{self.name} already running"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.args,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.cwd,
            env=(
                None
                if self.python_path_first is None
                else {**os.environ, "PYTHONPATH": _path_first(self.python_path_first)}
            ),
            # Its own process group: Ctrl-C in a terminal reaches only the demo,
            # which then stops every service in order.
            start_new_session=True,
        )
        if self.watchdog is not None:
            self.watchdog.watch(self.process.pid)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM, wait, SIGKILL if it will not go."""
        if self.process is not None:
            if self.process.poll() is None:
                self.process.terminate()
                try:
                    self.process.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
            if self.watchdog is not None:
                self.watchdog.forget(self.process.pid)
            self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_tail(self, lines: int = 40) -> str:
        """The end of the log, for failure messages."""
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def check_alive(self) -> None:
        """Raise with the log tail when the process died."""
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")


def mosquitto(work: Path, extra: str = "") -> tuple[Service, int]:
    """A Mosquitto broker on a free loopback port (no persistence); ``extra`` config lines."""
    if shutil.which("mosquitto") is None:
        raise RuntimeError("mosquitto is not installed (scripts/setup installs it)")
    port = free_port()
    conf = work / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n{extra}",
        encoding="utf-8",
    )
    return Service("mosquitto", ["mosquitto", "-c", str(conf)], work / "logs/mosquitto.log"), port


def start_mosquitto(service: Service, port: int) -> None:
    """Start the broker and wait until it accepts connections."""
    service.start()
    wait_until(lambda: listening(port) or not service.running, 15, "mosquitto")
    service.check_alive()


@dataclass
class Bridge:
    """The real ``doorstep-bridge run`` process with a known API token."""

    config_path: Path
    http_port: int
    token: str
    service: Service

    @property
    def url(self) -> str:
        """Base URL of the bridge's HTTP API."""
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, timeout: float = 60.0) -> None:
        """Start it and wait for its health endpoint."""
        self.service.start()
        wait_until(
            lambda: listening(self.http_port) or not self.service.running, timeout, "the bridge"
        )
        self.service.check_alive()

    def stop(self) -> None:
        """Stop it cleanly (it publishes ``offline``)."""
        self.service.stop()

    def audit_verify(self) -> subprocess.CompletedProcess[str]:
        """``doorstep-bridge audit verify`` on this bridge's config."""
        return subprocess.run(
            [
                str(VENV_BIN / "doorstep-bridge"),
                "audit",
                "verify",
                "--config",
                str(self.config_path),
            ],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )


def _path_first(folder: Path) -> str:
    """``PYTHONPATH`` with ``folder`` first."""
    rest = [entry for entry in os.environ.get("PYTHONPATH", "").split(os.pathsep) if entry]
    return os.pathsep.join([str(folder), *rest])


def make_bridge(
    work: Path, mqtt_port: int, source: str, camera: dict[str, Any] | None = None
) -> Bridge:
    """Write a bridge config (one camera ``front_door``) and return the unstarted bridge."""
    http_port = free_port()
    token = os.urandom(24).hex()
    config: dict[str, Any] = {
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "base_topic": BASE_TOPIC, "keepalive": 10},
        "http": {"host": "127.0.0.1", "port": http_port, "token": token},
        "storage": {"path": str(work / "bridge-data"), "retention_days": 2},
        "cameras": {CAMERA: {"source": source, **(camera or {})}},
        # A legal request needs two approvers (tests/e2e/test_legal_release.py).
        "sharing": {
            "link_ttl_hours": 24,
            "max_window_hours": 12,
            "redact_faces": True,
            "legal_two_approvers": True,
        },
    }
    path = work / "doorstep.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    path.chmod(0o600)  # holds the API token
    service = Service(
        "bridge",
        [str(VENV_BIN / "doorstep-bridge"), "run", "--config", str(path), "--log-level", "INFO"],
        work / "logs/bridge.log",
        cwd=work,
        # First on the path: the package installed in the venv may be another checkout's.
        python_path_first=BRIDGE_TREE / "bridge",
    )
    return Bridge(path, http_port, token, service)


@dataclass
class HomeAssistant:
    """A real Home Assistant core from the venv, its config under ``config_dir``."""

    config_dir: Path
    port: int
    service: Service

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> None:
        """Start it and wait until its HTTP server answers."""
        self.service.start()
        wait_until(
            lambda: listening(self.port) or not self.service.running, timeout, "Home Assistant"
        )
        self.service.check_alive()

    def stop(self) -> None:
        """Stop it (HA saves its storage on SIGTERM)."""
        self.service.stop(timeout=60)


def write_http_settings(config_dir: Path, port: int) -> str:
    """Listen on 127.0.0.1:``port``, the way this Home Assistant reads it.

    Returns the YAML for ``configuration.yaml``: empty when the settings go to
    ``.storage/http`` (version 1, the stored format every release with the store migrates).
    """
    if not ha_facts()["http_store"]:
        return HTTP_YAML.format(port=port)
    write_json_private(
        config_dir / ".storage" / "http",
        {
            "version": 1,
            "minor_version": 1,
            "key": "http",
            "data": {"server_host": ["127.0.0.1"], "server_port": port},
        },
    )
    return ""


def make_home_assistant(config_dir: Path, port: int, log_path: Path) -> HomeAssistant:
    """A fresh HA config dir with the integration linked from the working tree."""
    config_dir.mkdir(parents=True, exist_ok=True)
    http = write_http_settings(config_dir, port)
    (config_dir / "configuration.yaml").write_text(
        HA_CONFIGURATION.format(http=http), encoding="utf-8"
    )
    custom = config_dir / "custom_components"
    custom.mkdir(exist_ok=True)
    link = custom / "doorstep"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(INTEGRATION_TREE / "custom_components" / "doorstep", target_is_directory=True)
    hass = ["chroot", HA_ROOT, "/opt/ha/bin/hass"] if HA_ROOT else [str(VENV_BIN / "hass")]
    args = [*hass, "-c", str(config_dir), "--skip-pip", "--log-no-color"]
    return HomeAssistant(config_dir, port, Service("home-assistant", args, log_path))


def write_json_private(path: Path, data: dict[str, Any]) -> None:
    """Write JSON readable by the owner only (it holds secrets)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2)
        handle.write("\n")
    path.chmod(0o600)


class Mqtt:
    """A plain paho client: publishes like a button, records what it sees."""

    def __init__(self, port: int, topics: tuple[str, ...] = ()) -> None:
        self.messages: queue.Queue[tuple[str, bytes, bool]] = queue.Queue()
        self._subscribed: queue.Queue[int] = queue.Queue()
        self._topics = topics
        self._client = paho.Client(CallbackAPIVersion.VERSION2)
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = lambda _c, _u, mid, *_: self._subscribed.put(mid)
        self._client.on_message = lambda _c, _u, msg: self.messages.put(
            (msg.topic, bytes(msg.payload), bool(msg.retain))
        )
        self._client.reconnect_delay_set(min_delay=1, max_delay=2)
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()
        if topics:
            self._subscribed.get(timeout=30)

    def _on_connect(self, *_args: object) -> None:
        if self._topics:
            self._client.subscribe([(topic, 1) for topic in self._topics])

    def publish(self, topic: str, payload: bytes | str = b"", retain: bool = False) -> None:
        """Publish with QoS 1 and wait for the broker's ack."""
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        info.wait_for_publish(10)

    def next(self, topic: str, timeout: float = 60.0) -> bytes:
        """The next message on ``topic`` (others are dropped)."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                seen, payload, _retain = self.messages.get(timeout=left)
            except queue.Empty:
                break
            if seen == topic:
                return payload
        raise TimeoutError(f"no message on {topic} in {timeout:.0f} s")

    def close(self) -> None:
        """Disconnect."""
        self._client.disconnect()
        self._client.loop_stop()


def h264_frames(mp4: bytes) -> int:
    """Decode an MP4 held in memory; the number of H.264 frames (ValueError if not H.264)."""
    import io

    import av

    with av.open(io.BytesIO(mp4), mode="r", format="mp4") as container:
        stream = container.streams.video[0]
        if stream.codec_context.name != "h264":
            raise ValueError(f"not H.264 but {stream.codec_context.name}")
        return sum(1 for _ in container.decode(stream))


def masked_area_is_black(mp4: bytes, mask: list[list[int]]) -> bool:
    """Is the rectangle ``mask`` (4 corners, frame pixels) black in every frame of ``mp4``."""
    import io

    import av

    xs, ys = [x for x, _ in mask], [y for _, y in mask]
    with av.open(io.BytesIO(mp4), mode="r", format="mp4") as container:
        lumas = [
            frame.to_ndarray(format="gray")
            for frame in container.decode(container.streams.video[0])
        ]
    if not lumas:
        return False
    # A few pixels of margin: chroma subsampling and the encoder soften the edge.
    inside = (slice(min(ys) + 4, max(ys) - 4), slice(min(xs) + 4, max(xs) - 4))
    return all(int(luma[inside].max()) <= 8 for luma in lumas)
