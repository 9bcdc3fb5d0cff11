"""Home Assistant as the frontend and the companion app reach it: REST and websocket.

Onboarding, logins, users, config and options flows, and phones registered
exactly as the Android companion app registers (local push only), whose taps on
a notification are the app's ``fire_event`` webhook.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
import contextlib
from dataclasses import dataclass
import time
from typing import Any

import aiohttp

from tests.e2e.servers import BASE_TOPIC, CAMERA, Bridge

OWNER = "owner"
CLIENT_NAME = "doorstep-e2e"
#: Integrations HA's onboarding adds by itself; they need the internet or extra packages.
ONBOARDING_EXTRAS = frozenset({"google_translate", "met", "radio_browser", "shopping_list"})


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

    async def repair_issue(self, issue_id: str) -> dict[str, Any] | None:
        """A repair issue as the Repairs page lists it, or None."""
        async with self.websocket() as ws:
            issues = (await ws.call(type="repairs/list_issues"))["issues"]
        found = next((i for i in issues if i["issue_id"] == issue_id), None)
        return dict(found) if found is not None else None

    async def wait_repair_issue(
        self,
        issue_id: str,
        predicate: Callable[[dict[str, Any] | None], bool] = lambda issue: issue is not None,
        timeout: float = 120.0,
    ) -> dict[str, Any] | None:
        """Poll the repair issue (None while there is none) until ``predicate`` holds."""
        deadline = time.monotonic() + timeout
        found = None
        while time.monotonic() < deadline:
            found = await self.repair_issue(issue_id)
            if predicate(found):
                return found
            await _sleep(0.2)
        raise TimeoutError(f"repair issue {issue_id} never matched; last: {found}")

    async def issue_strings(self, language: str) -> dict[str, str]:
        """Doorstep's repair texts in ``language``, as the frontend gets them."""
        async with self.websocket() as ws:
            strings: dict[str, str] = (
                await ws.call(
                    type="frontend/get_translations",
                    language=language,
                    category="issues",
                    integration=["doorstep"],
                )
            )["resources"]
        return strings

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

    async def wait_for_a_clip(self, camera: str, timeout: float = 120.0) -> dict[str, Any]:
        """The camera's last-clip sensor once it names a clip (the stack's first one)."""
        return await self.wait_state(
            f"sensor.{camera}_last_clip",
            lambda s: s["state"] not in ("unknown", "unavailable"),
            timeout,
        )


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
    """Start a (config or options) flow over REST, submit each step; it must create its entry."""
    result: dict[str, Any] = await client.post(path, start)
    for body in steps:
        if result.get("type") != "form":
            raise HaError(f"flow {start} ended early: {result}")
        result = await client.post(f"{path}/{result['flow_id']}", body)
    if result.get("type") != "create_entry":
        raise HaError(f"flow {start} did not create its entry: {result}")
    return result


def fill_form(schema: list[dict[str, Any]], typed: dict[str, Any]) -> dict[str, Any]:
    """What the frontend submits: what the user typed or picked, else each field's default.

    Only fields the form shows are sent (``typed`` may name more); a required switch the
    user did not touch is sent as off, as the frontend does; sections are filled alike.
    """
    values: dict[str, Any] = {}
    for field in schema:
        name = field["name"]
        if field.get("type") == "expandable":
            values[name] = fill_form(field["schema"], typed.get(name, {}))
        elif name in typed:
            values[name] = typed[name]
        elif "default" in field:
            values[name] = field["default"]
        elif field.get("required") and "boolean" in field.get("selector", {}):
            values[name] = False
    return values


async def setup_mqtt(client: HaClient, mqtt_port: int) -> None:
    """The MQTT integration, configured through its config flow as a user fills it in.

    The user types broker and port and, where the form asks (current HA's required
    "other settings" section), picks no certificate check; the rest keeps its defaults.
    """
    path = "/api/config/config_entries/flow"
    form = await client.post(path, {"handler": "mqtt", "show_advanced_options": False})
    if form.get("type") != "form":
        raise HaError(f"MQTT flow did not show its form: {form}")
    typed = {"broker": "127.0.0.1", "port": mqtt_port, "other_settings": {"set_ca_cert": "off"}}
    result = await client.post(f"{path}/{form['flow_id']}", fill_form(form["data_schema"], typed))
    if result.get("type") != "create_entry":
        raise HaError(f"MQTT flow did not create its entry: {result}")


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
    entry_id: str = result["result"]["entry_id"]
    return entry_id


async def set_approvers(client: HaClient, entry_id: str, approvers: list[str],
                        phones: list[str]) -> None:  # fmt: skip
    """The options flow: who approves, on which phones."""
    await run_flow(
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


async def request_share(client: HaClient, requester: str, reason: str) -> dict[str, Any]:
    """doorstep.request_share for the camera's last 10 minutes; the service's answer."""
    answer = await client.call_service(
        "doorstep", "request_share",
        {"entity_id": f"event.{CAMERA}_doorbell", "last_minutes": 10,
         "requester": requester, "reason": reason},
        response=True,
    )  # fmt: skip
    response: dict[str, Any] = answer["service_response"]
    return response


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


async def wait_notify_services(client: HaClient, services: list[str]) -> None:
    wanted = {s.partition(".")[2] for s in services}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        domains = await client.get("/api/services")
        have = {name for d in domains if d["domain"] == "notify" for name in d["services"]}
        if wanted <= have:
            return
        await _sleep(0.25)
    raise HaError(f"notify services {wanted} never appeared")
