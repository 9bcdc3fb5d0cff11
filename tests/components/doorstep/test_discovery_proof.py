"""A discovery message moves an entry only when the bridge proves it holds the token.

Anyone who can publish to the broker can send ``doorstep/discovery/<bridge id>``
(the id is public). An entry that followed any announcement would send its API
token to whatever address the message names.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
import json
import logging
from typing import Any
from unittest.mock import MagicMock

import aiohttp
from aiohttp import web
from homeassistant.config_entries import SOURCE_MQTT, ConfigEntryState
from homeassistant.const import CONF_API_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.service_info.mqtt import MqttServiceInfo
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_mqtt_message

from custom_components.doorstep.api import announcement_proof
from custom_components.doorstep.const import CONF_ANNOUNCED_URL, CONF_BASE_TOPIC, DOMAIN

from .conftest import BASE, BRIDGE_ID, TOKEN, FakeBridge, set_up

ISSUE = f"announcement_not_proven_{BRIDGE_ID}"
#: The same inputs and hex as tests/bridge/test_announcement_proof.py: both sides agree.
VECTOR = (
    ("vector-token-0123456789abcdefABCDEF", "http://192.0.2.7:5080", "home/doorstep"),
    "bm9uY2Utb2YtdGhlLXRlc3QtdmVjdG9y",
    "7d44681a211cc52a70fbde50d3daad7508980e4e5cb7494062e865ac785127e0",
)

Answer = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class ForgedServer:
    """An address named by a forged announcement: records what reaches it."""

    url: str = ""
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)
    #: How it answers ``POST /api/announcement-proof``.
    answer: Answer | None = None


@pytest.fixture
async def forged(socket_enabled: None) -> AsyncIterator[ForgedServer]:
    server = ForgedServer()

    async def anything(request: web.Request) -> web.StreamResponse:
        server.seen.append((request.method, request.path, request.headers.get("Authorization")))
        if request.path == "/api/announcement-proof" and server.answer is not None:
            return await server.answer(request)
        return web.json_response({"error": "nothing here"}, status=404)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", anything)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
    yield server
    await runner.cleanup()


@pytest.fixture
async def followed_entry(
    hass: HomeAssistant, mqtt: MagicMock, bridge: FakeBridge
) -> MockConfigEntry:
    """Set up from the bridge's own announcement (the usual path): it follows moves."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=BRIDGE_ID,
        title="Doorstep",
        data={
            CONF_BASE_TOPIC: BASE,
            CONF_URL: bridge.url,
            CONF_API_TOKEN: TOKEN,
            CONF_ANNOUNCED_URL: bridge.url,
        },
        options={},
    )
    return await set_up(hass, entry, bridge)


async def announce(hass: HomeAssistant, info: dict[str, Any], **changes: Any) -> None:
    """A discovery message for the bridge, published by whoever can, while HA listens.

    Published retained, but a subscriber that is already listening gets it without the
    retain flag (MQTT 3.1.1 3.3.1.3); Home Assistant passes each retained topic to a
    subscription once.
    """
    payload = json.dumps({**info, **changes})
    async_fire_mqtt_message(hass, f"doorstep/discovery/{BRIDGE_ID}", payload)
    # Discovery flows run as background tasks; a reload they start, as a task.
    await hass.async_block_till_done(wait_background_tasks=True)
    await hass.async_block_till_done()


def test_proof_matches_the_bridges_test_vector() -> None:
    (token, api_url, base_topic), nonce, expected = VECTOR
    assert announcement_proof(token, api_url, base_topic, nonce) == expected


async def _no_proof(request: web.Request) -> web.StreamResponse:
    return web.json_response({"error": "boom"}, status=500)


async def _wrong_proof(request: web.Request) -> web.StreamResponse:
    return web.json_response({"proof": "0" * 64})


async def _garbage(request: web.Request) -> web.StreamResponse:
    return web.Response(text="<html>a router's login page</html>", content_type="text/html")


@pytest.mark.parametrize(
    "answer",
    [None, _no_proof, _wrong_proof, _garbage],
    ids=["not_found", "error", "wrong_proof", "not_json"],
)
async def test_a_forged_announcement_is_not_followed(
    *,
    hass: HomeAssistant,
    bridge: FakeBridge,
    forged: ForgedServer,
    followed_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
    caplog: pytest.LogCaptureFixture,
    answer: Answer | None,
) -> None:
    entry = followed_entry
    before = dict(entry.data)
    forged.answer = answer
    caplog.set_level(logging.WARNING)
    await announce(hass, bridge.info(), api_url=forged.url, base_topic="stolen")
    # Nothing moved, and the token never went to the forged address.
    assert dict(entry.data) == before
    assert forged.seen == [("POST", "/api/announcement-proof", None)]
    assert entry.state is ConfigEntryState.LOADED
    issue = issue_registry.async_get_issue(DOMAIN, ISSUE)
    assert issue is not None
    assert issue.translation_key == "announcement_not_proven"
    assert issue.translation_placeholders == {
        "name": "Doorstep", "url": forged.url, "base_topic": "stolen",
    }  # fmt: skip
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [w for w in warnings if forged.url in w] == [
        (
            f"Doorstep bridge Doorstep ({BRIDGE_ID}) was announced on MQTT at {forged.url} "
            f"with base topic stolen, but {forged.url} could not prove it holds the bridge's "
            f"API token ({_why(answer)}): keeping {bridge.url} and base topic {BASE}. If the "
            "bridge moved, use Reconfigure on its entry"
        )
    ]
    # The same message again (as after a restart of Home Assistant): no second warning.
    caplog.clear()
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_MQTT},
        data=MqttServiceInfo(
            topic=f"doorstep/discovery/{BRIDGE_ID}",
            payload=json.dumps({**bridge.info(), "api_url": forged.url, "base_topic": "stolen"}),
            qos=1,
            retain=True,
            subscribed_topic="doorstep/discovery/#",
            timestamp=0,
        ),
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert len(forged.seen) == 2  # asked again: it might have become the bridge meanwhile
    assert not [r for r in caplog.records if forged.url in r.getMessage()]
    assert dict(entry.data) == before
    # The entry keeps working with the bridge it has, token and all.
    bridge.requests.clear()
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert ("GET", "/api/info", f"Bearer {TOKEN}") in [
        (m, p, h.get("Authorization")) for m, p, h in bridge.requests
    ]
    assert all(auth is None for _, _, auth in forged.seen)
    # The bridge's own announcement again: the issue goes.
    await announce(hass, bridge.info())
    assert issue_registry.async_get_issue(DOMAIN, ISSUE) is None


def _why(answer: Answer | None) -> str:
    if answer is None:
        return "it has no such endpoint (an older bridge?)"
    if answer is _no_proof:
        return "it answered 500: boom"
    if answer is _wrong_proof:
        return "its proof is wrong"
    return "the bridge answered something that is not JSON"


async def test_an_unreachable_announced_address_is_not_followed(
    hass: HomeAssistant,
    bridge: FakeBridge,
    followed_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    before = dict(followed_entry.data)
    await announce(hass, bridge.info(), api_url="http://127.0.0.1:1")
    assert dict(followed_entry.data) == before
    assert issue_registry.async_get_issue(DOMAIN, ISSUE) is not None


async def test_a_relayed_proof_is_refused(
    hass: HomeAssistant,
    bridge: FakeBridge,
    forged: ForgedServer,
    followed_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    """The forged address asks the real bridge for the proof: it proves the real announcement."""
    relayed: list[str] = []

    async def relay(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{bridge.url}/api/announcement-proof", json=body) as response,
        ):
            answer = await response.json()
        relayed.append(answer["proof"])
        return web.json_response(answer)

    forged.answer = relay
    before = dict(followed_entry.data)
    await announce(hass, bridge.info(), api_url=forged.url)
    assert dict(followed_entry.data) == before
    assert relayed  # the real bridge did answer the relayed challenge
    assert all(auth is None for _, _, auth in forged.seen)
    assert issue_registry.async_get_issue(DOMAIN, ISSUE) is not None


async def test_a_genuine_move_is_followed_and_clears_the_issue(
    hass: HomeAssistant,
    bridge: FakeBridge,
    forged: ForgedServer,
    followed_entry: MockConfigEntry,
    issue_registry: ir.IssueRegistry,
) -> None:
    entry = followed_entry
    await announce(hass, bridge.info(), api_url=forged.url)
    assert issue_registry.async_get_issue(DOMAIN, ISSUE) is not None
    # The bridge really moves: it listens on a new address and announces it.
    moved = bridge.announced_url = await bridge.listen_also()
    bridge.requests.clear()
    await announce(hass, bridge.info())
    assert entry.data[CONF_URL] == moved
    assert entry.data[CONF_ANNOUNCED_URL] == moved
    assert issue_registry.async_get_issue(DOMAIN, ISSUE) is None
    assert entry.state is ConfigEntryState.LOADED  # reloaded onto the new address
    asked = [(m, p, h.get("Authorization")) for m, p, h in bridge.requests]
    assert asked[0] == ("POST", "/api/announcement-proof", None)  # first the proof
    assert ("GET", "/api/info", f"Bearer {TOKEN}") in asked[1:]  # then the token
