"""The whole system on loopback: Mosquitto, a camera, the bridge and a real Home Assistant.

Used by the end-to-end tests and by ``scripts/demo``. Every server runs as a
subprocess on a free 127.0.0.1 port and is stopped by its own handle (never by
name). Home Assistant runs from the project's ``.venv`` (``hass --skip-pip``)
with the integration linked from the working tree, is onboarded over REST,
and gets its MQTT and Doorstep config entries through config flows, exactly
like a user clicking through the UI.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import contextlib
from dataclasses import dataclass, field
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

import aiohttp
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
import yaml

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
CAMERA = "front_door"
BASE_TOPIC = "doorstep"
OWNER = "owner"
CLIENT_NAME = "doorstep-e2e"
#: Integrations HA's onboarding adds by itself; they need the internet or extra packages.
ONBOARDING_EXTRAS = frozenset({"google_translate", "met", "radio_browser", "shopping_list"})

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
http:
  server_host: 127.0.0.1
  server_port: {port}
logger:
  default: warning
  logs:
    custom_components.doorstep: info
"""


def missing_parts() -> str | None:
    """None when Mosquitto and a runnable Home Assistant are here, else what is missing."""
    if shutil.which("mosquitto") is None:
        return "mosquitto is not installed (scripts/setup installs it)"
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


@dataclass
class Service:
    """One subprocess with its log file; started and stopped by its own handle."""

    name: str
    args: list[str]
    log_path: Path
    cwd: Path | None = None
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        """Is the process alive."""
        return self.process is not None and self.process.poll() is None

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
            # Its own process group: Ctrl-C in a terminal reaches only the demo,
            # which then stops every service in order.
            start_new_session=True,
        )

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


def mosquitto(work: Path) -> tuple[Service, int]:
    """A Mosquitto broker on a free loopback port (no persistence)."""
    if shutil.which("mosquitto") is None:
        raise RuntimeError("mosquitto is not installed (scripts/setup installs it)")
    port = free_port()
    conf = work / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n", encoding="utf-8"
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
        "sharing": {"link_ttl_hours": 24, "max_window_hours": 12, "redact_faces": True},
    }
    path = work / "doorstep.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    path.chmod(0o600)  # holds the API token
    service = Service(
        "bridge",
        [str(VENV_BIN / "doorstep-bridge"), "run", "--config", str(path), "--log-level", "INFO"],
        work / "logs/bridge.log",
        cwd=work,
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


def make_home_assistant(config_dir: Path, port: int, log_path: Path) -> HomeAssistant:
    """A fresh HA config dir with the integration linked from the working tree."""
    config_dir.mkdir(parents=True, exist_ok=True)
    (config_dir / "configuration.yaml").write_text(
        HA_CONFIGURATION.format(port=port), encoding="utf-8"
    )
    custom = config_dir / "custom_components"
    custom.mkdir(exist_ok=True)
    link = custom / "doorstep"
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(ROOT / "custom_components" / "doorstep", target_is_directory=True)
    args = [str(VENV_BIN / "hass"), "-c", str(config_dir), "--skip-pip", "--log-no-color"]
    return HomeAssistant(config_dir, port, Service("home-assistant", args, log_path))


# Talking to Home Assistant ----------------------------------------------------------


class HaError(RuntimeError):
    """Home Assistant answered something unexpected."""


class HaWebSocket:
    """A minimal websocket API client (one connection, one user)."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self._id = 0
        self.pending: list[dict[str, Any]] = []

    async def send(self, **message: Any) -> int:
        """Send a command; returns its id."""
        self._id += 1
        await self.ws.send_json({"id": self._id, **message})
        return self._id

    async def receive(self, timeout: float = 60.0) -> dict[str, Any]:
        """The next message (kept ones first)."""
        if self.pending:
            return self.pending.pop(0)
        message: dict[str, Any] = await self.ws.receive_json(timeout=timeout)
        return message

    async def call(self, timeout: float = 60.0, **message: Any) -> Any:
        """Send a command and return its result; other messages are kept for later."""
        command_id = await self.send(**message)
        kept: list[dict[str, Any]] = []
        try:
            while True:
                reply: dict[str, Any] = await self.ws.receive_json(timeout=timeout)
                if reply.get("id") == command_id and reply.get("type") == "result":
                    if not reply.get("success"):
                        raise HaError(f"{message.get('type')}: {reply.get('error')}")
                    return reply.get("result")
                kept.append(reply)
        finally:
            self.pending.extend(kept)

    async def subscribe(self, **message: Any) -> int:
        """Subscribe (events, trigger, push channel); returns the subscription id."""
        command_id = await self.send(**message)
        while True:
            reply: dict[str, Any] = await self.ws.receive_json(timeout=60)
            if reply.get("id") == command_id and reply.get("type") == "result":
                if not reply.get("success"):
                    raise HaError(f"{message.get('type')}: {reply.get('error')}")
                return command_id
            self.pending.append(reply)

    async def next_event(
        self, subscription: int, predicate: Callable[[Any], bool], timeout: float = 60.0
    ) -> Any:
        """The next event of ``subscription`` matching ``predicate`` (others dropped)."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.receive(timeout=timeout)
                if message.get("id") == subscription and message.get("type") == "event":
                    event = message["event"]
                    if predicate(event):
                        return event


@dataclass
class HaClient:
    """REST + websocket access to one HA instance as one user."""

    session: aiohttp.ClientSession
    url: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        """Bearer header."""
        return {"Authorization": f"Bearer {self.token}"}

    async def get(self, path: str, expect: int = 200) -> Any:
        """GET a JSON resource."""
        async with self.session.get(f"{self.url}{path}", headers=self.headers) as response:
            if response.status != expect:
                raise HaError(f"GET {path}: {response.status} {await response.text()}")
            return await response.json()

    async def post(self, path: str, body: Any, expect: tuple[int, ...] = (200, 201)) -> Any:
        """POST JSON, return the JSON answer."""
        async with self.session.post(
            f"{self.url}{path}", headers=self.headers, json=body
        ) as response:
            if response.status not in expect:
                raise HaError(f"POST {path}: {response.status} {await response.text()}")
            return await response.json()

    async def state(self, entity_id: str) -> dict[str, Any] | None:
        """An entity's state object, or None when it does not exist."""
        async with self.session.get(
            f"{self.url}/api/states/{entity_id}", headers=self.headers
        ) as response:
            if response.status == 404:
                return None
            response.raise_for_status()
            state: dict[str, Any] = await response.json()
            return state

    async def call_service(
        self, domain: str, service: str, data: dict[str, Any], *, response: bool = False
    ) -> Any:
        """Call a service over REST (``return_response`` when asked)."""
        path = f"/api/services/{domain}/{service}" + ("?return_response" if response else "")
        return await self.post(path, data)

    @contextlib.asynccontextmanager
    async def websocket(self) -> AsyncIterator[HaWebSocket]:
        """An authenticated websocket connection."""
        async with self.session.ws_connect(f"{self.url}/api/websocket", heartbeat=30) as ws:
            hello = await ws.receive_json(timeout=30)
            assert hello["type"] == "auth_required", hello
            await ws.send_json({"type": "auth", "access_token": self.token})
            reply = await ws.receive_json(timeout=30)
            if reply["type"] != "auth_ok":
                raise HaError(f"websocket auth failed: {reply}")
            yield HaWebSocket(ws)

    async def wait_state(
        self,
        entity_id: str,
        predicate: Callable[[dict[str, Any]], bool],
        timeout: float = 90.0,
    ) -> dict[str, Any]:
        """Poll an entity until its state object satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] | None = None
        while time.monotonic() < deadline:
            last = await self.state(entity_id)
            if last is not None and predicate(last):
                return last
            await _sleep(0.25)
        raise TimeoutError(f"{entity_id} never matched; last state: {last}")


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)


async def wait_http(session: aiohttp.ClientSession, url: str, timeout: float = 120.0) -> None:
    """Wait until ``url`` answers at all (any status below 500)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            async with session.get(url) as response:
                if response.status < 500:
                    return
        except aiohttp.ClientError:
            pass
        await _sleep(0.25)
    raise TimeoutError(f"{url} does not answer")


async def login(session: aiohttp.ClientSession, url: str, username: str, password: str) -> str:
    """Log in with the login flow the frontend uses; returns an access token."""
    client_id = f"{url}/"
    async with session.post(
        f"{url}/auth/login_flow",
        json={
            "client_id": client_id,
            "handler": ["homeassistant", None],
            "redirect_uri": f"{url}/?auth_callback=1",
        },
    ) as response:
        flow = await response.json()
    async with session.post(
        f"{url}/auth/login_flow/{flow['flow_id']}",
        json={"client_id": client_id, "username": username, "password": password},
    ) as response:
        result = await response.json()
    if result.get("type") != "create_entry":
        raise HaError(f"login of {username} failed: {result}")
    return await _token_for_code(session, url, result["result"])


async def _token_for_code(session: aiohttp.ClientSession, url: str, code: str) -> str:
    async with session.post(
        f"{url}/auth/token",
        data={"grant_type": "authorization_code", "code": code, "client_id": f"{url}/"},
    ) as response:
        tokens = await response.json()
    if "access_token" not in tokens:
        raise HaError(f"no token for the auth code: {tokens}")
    token: str = tokens["access_token"]
    return token


async def onboard(session: aiohttp.ClientSession, url: str, password: str) -> HaClient:
    """Create the owner (admin) over the onboarding API; returns a client with a 10-year token."""
    client_id = f"{url}/"
    async with session.post(
        f"{url}/api/onboarding/users",
        json={
            "client_id": client_id,
            "name": "Owner",
            "username": OWNER,
            "password": password,
            "language": "en",
        },
    ) as response:
        if response.status != 200:
            raise HaError(f"onboarding: {response.status} {await response.text()}")
        code = (await response.json())["auth_code"]
    owner = HaClient(session, url, await _token_for_code(session, url, code))
    await owner.post("/api/onboarding/core_config", {})
    await owner.post("/api/onboarding/analytics", {})
    await owner.post(
        "/api/onboarding/integration",
        {"client_id": client_id, "redirect_uri": f"{url}/?auth_callback=1"},
    )
    async with owner.websocket() as ws:
        token = await ws.call(
            type="auth/long_lived_access_token", client_name=CLIENT_NAME, lifespan=3650
        )
    client = HaClient(session, url, token)
    await _remove_onboarding_extras(client)
    return client


async def _remove_onboarding_extras(client: HaClient) -> None:
    """Drop what onboarding sets up on its own and cannot run offline (text-to-speech)."""
    await _sleep(1.0)
    for entry in await client.get("/api/config/config_entries/entry"):
        if entry["domain"] in ONBOARDING_EXTRAS:
            async with client.session.delete(
                f"{client.url}/api/config/config_entries/entry/{entry['entry_id']}",
                headers=client.headers,
            ) as response:
                response.raise_for_status()


async def create_user(owner: HaClient, name: str, username: str, password: str) -> str:
    """A non-admin user with a password (as Settings → People does); returns the user id."""
    async with owner.websocket() as ws:
        created = await ws.call(
            type="config/auth/create", name=name, group_ids=["system-users"], local_only=False
        )
        user_id: str = created["user"]["id"]
        await ws.call(
            type="config/auth_provider/homeassistant/create",
            user_id=user_id,
            username=username,
            password=password,
        )
    return user_id


async def owner_user_id(owner: HaClient) -> str:
    """The id of the token's user."""
    async with owner.websocket() as ws:
        me = await ws.call(type="auth/current_user")
    user_id: str = me["id"]
    return user_id


@dataclass(frozen=True)
class Phone:
    """A companion-app registration: which user, which webhook, which notify service."""

    user_token: str
    webhook_id: str
    device_name: str

    @property
    def notify_service(self) -> str:
        """``notify.mobile_app_<device>``."""
        return "notify.mobile_app_" + self.device_name.lower().replace(" ", "_").replace("'", "")


async def register_phone(client: HaClient, device_name: str) -> Phone:
    """Register a phone exactly as the Android companion app does (local push only)."""
    body = {
        "app_id": "io.homeassistant.companion.android",
        "app_name": "Home Assistant",
        "app_version": "2025.4.1-full",
        "device_name": device_name,
        "manufacturer": "Google",
        "model": "Pixel 8",
        "os_name": "Android",
        "os_version": "14",
        "device_id": device_name.lower().replace(" ", "-"),
        "supports_encryption": False,
        # No push_url: notifications reach the phone only over its websocket channel,
        # so nothing in these runs talks to a push relay outside the machine.
        "app_data": {"push_websocket_channel": True},
    }
    registration = await client.post("/api/mobile_app/registrations", body, expect=(201,))
    return Phone(client.token, registration["webhook_id"], device_name)


async def tap_action(session: aiohttp.ClientSession, url: str, phone: Phone, action: str,
                     tag: str | None) -> int:  # fmt: skip
    """The app's webhook for a tap on a notification action; returns the HTTP status."""
    body = {
        "type": "fire_event",
        "data": {
            "event_type": "mobile_app_notification_action",
            "event_data": {"action": action, "tag": tag},
        },
    }
    async with session.post(f"{url}/api/webhook/{phone.webhook_id}", json=body) as response:
        return response.status


async def run_flow(client: HaClient, path: str, start: dict[str, Any],
                   steps: list[dict[str, Any]]) -> dict[str, Any]:  # fmt: skip
    """Start a (config or options) flow over REST and submit each step."""
    result: dict[str, Any] = await client.post(path, start)
    for body in steps:
        if result.get("type") != "form":
            raise HaError(f"flow {start} ended early: {result}")
        result = await client.post(f"{path}/{result['flow_id']}", body)
    return result


async def setup_mqtt(client: HaClient, mqtt_port: int) -> None:
    """The MQTT integration, configured through its config flow."""
    result = await run_flow(
        client,
        "/api/config/config_entries/flow",
        {"handler": "mqtt", "show_advanced_options": False},
        [{"broker": "127.0.0.1", "port": mqtt_port}],
    )
    if result.get("type") != "create_entry":
        raise HaError(f"mqtt flow: {result}")


async def setup_doorstep_discovered(client: HaClient, bridge: Bridge,
                                    timeout: float = 60.0) -> str:  # fmt: skip
    """Finish the flow HA started from the bridge's MQTT discovery; returns the entry id."""
    deadline = time.monotonic() + timeout
    flow: dict[str, Any] | None = None
    while flow is None:
        async with client.websocket() as ws:
            flows = await ws.call(type="config_entries/flow/progress")
        flow = next((f for f in flows if f.get("handler") == "doorstep"), None)
        if flow is None:
            if time.monotonic() > deadline:
                raise HaError("HA never discovered the bridge on MQTT")
            await _sleep(0.25)
    result = await client.post(
        f"/api/config/config_entries/flow/{flow['flow_id']}",
        {"url": bridge.url, "api_token": bridge.token},
    )
    if result.get("type") != "create_entry":
        raise HaError(f"doorstep flow: {result}")
    entry_id: str = result["result"]["entry_id"]
    return entry_id


async def setup_doorstep_manual(client: HaClient, bridge: Bridge) -> str:
    """The manual path of the config flow (base topic, URL, token)."""
    result = await run_flow(
        client,
        "/api/config/config_entries/flow",
        {"handler": "doorstep", "show_advanced_options": False},
        [{"base_topic": BASE_TOPIC, "url": bridge.url, "api_token": bridge.token}],
    )
    if result.get("type") != "create_entry":
        raise HaError(f"doorstep flow: {result}")
    entry_id: str = result["result"]["entry_id"]
    return entry_id


async def set_approvers(client: HaClient, entry_id: str, approvers: list[str],
                        phones: list[str]) -> None:  # fmt: skip
    """The options flow: who approves, on which phones."""
    result = await run_flow(
        client,
        "/api/config/config_entries/options/flow",
        {"handler": entry_id},
        [
            {
                "approvers": approvers,
                "notify_services": phones,
                "link_ttl_hours": 24,
                "notification_detail": "minimal",
                "offer_unredacted": False,
            }
        ],
    )
    if result.get("type") != "create_entry":
        raise HaError(f"options flow: {result}")


async def entry_state(client: HaClient, entry_id: str) -> str | None:
    """The state of a config entry (``loaded``, ``setup_retry``...)."""
    entries = await client.get("/api/config/config_entries/entry")
    return next((e["state"] for e in entries if e["entry_id"] == entry_id), None)


async def wait_entry_loaded(client: HaClient, entry_id: str, timeout: float = 90.0) -> None:
    """Wait for a config entry to be loaded (after setup or a reload)."""
    deadline = time.monotonic() + timeout
    state: str | None = None
    while time.monotonic() < deadline:
        try:
            state = await entry_state(client, entry_id)
        except (aiohttp.ClientError, HaError):
            state = None
        if state == "loaded":
            return
        await _sleep(0.25)
    raise TimeoutError(f"config entry {entry_id} is {state}, not loaded")


def entity_available(state: dict[str, Any]) -> bool:
    """Neither unavailable nor unknown-because-missing."""
    return state.get("state") not in ("unavailable", None)


@dataclass
class Stack:
    """Everything running, and what a user or a test needs to reach it."""

    work: Path
    broker: Service
    mqtt_port: int
    bridge: Bridge
    ha: HomeAssistant
    camera: Service | None = None
    owner_token: str = ""
    owner_id: str = ""
    password: str = ""
    entry_id: str = ""
    phones: dict[str, Phone] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)  # username -> user id

    def stop(self) -> None:
        """Stop in the reverse order of start: HA, bridge, camera, broker."""
        for service in (self.ha.service, self.bridge.service, self.camera, self.broker):
            if service is not None:
                service.stop()

    def credentials(self) -> dict[str, Any]:
        """What a person needs to log in."""
        return {
            "url": self.ha.url,
            "username": OWNER,
            "password": self.password,
            "token": self.owner_token,
        }


async def configure_home_assistant(
    stack: Stack, *, guest_password: str | None = None, discovery: bool = True
) -> None:
    """Onboard, register phones, set up MQTT and Doorstep with the owner as approver."""
    async with aiohttp.ClientSession() as session:
        await wait_http(session, f"{stack.ha.url}/api/onboarding")
        owner = await onboard(session, stack.ha.url, stack.password)
        stack.owner_token = owner.token
        stack.owner_id = await owner_user_id(owner)
        stack.users[OWNER] = stack.owner_id
        stack.phones[OWNER] = await register_phone(owner, "Owner phone")
        if guest_password is not None:
            stack.users["guest"] = await create_user(owner, "Guest", "guest", guest_password)
            guest = HaClient(
                session, stack.ha.url, await login(session, stack.ha.url, "guest", guest_password)
            )
            stack.phones["guest"] = await register_phone(guest, "Guest phone")
        await setup_mqtt(owner, stack.mqtt_port)
        if discovery:
            stack.entry_id = await setup_doorstep_discovered(owner, stack.bridge)
        else:
            stack.entry_id = await setup_doorstep_manual(owner, stack.bridge)
        await wait_entry_loaded(owner, stack.entry_id)
        await _wait_notify_services(owner, [p.notify_service for p in stack.phones.values()])
        await set_approvers(
            owner,
            stack.entry_id,
            [stack.owner_id],
            [phone.notify_service for phone in stack.phones.values()],
        )
        await _sleep(0.5)  # the options update schedules a reload of the entry
        await wait_entry_loaded(owner, stack.entry_id)
        await owner.wait_state(f"event.{CAMERA}_doorbell", entity_available)


async def _wait_notify_services(client: HaClient, services: list[str]) -> None:
    wanted = {s.partition(".")[2] for s in services}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        domains = await client.get("/api/services")
        have = {name for d in domains if d["domain"] == "notify" for name in d["services"]}
        if wanted <= have:
            return
        await _sleep(0.25)
    raise HaError(f"notify services {wanted} never appeared")


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
