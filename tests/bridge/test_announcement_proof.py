"""``POST /api/announcement-proof``: the bridge proves what it announces, without a token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
import pytest

from doorstep_bridge.config import parse_config
from doorstep_bridge.http import routes as bridge_routes
from doorstep_bridge.http.auth import token_middleware
from doorstep_bridge.http.routes import announcement_proof
from doorstep_bridge.keys import API_TOKEN, BRIDGE_ID, CONFIG
from doorstep_bridge.mqtt.publisher import bridge_info

#: The same inputs and hex as tests/components/doorstep/test_discovery_proof.py.
VECTOR = (
    ("vector-token-0123456789abcdefABCDEF", "http://192.0.2.7:5080", "home/doorstep"),
    "bm9uY2Utb2YtdGhlLXRlc3QtdmVjdG9y",
    "7d44681a211cc52a70fbde50d3daad7508980e4e5cb7494062e865ac785127e0",
)
(TOKEN, API_URL, BASE_TOPIC), NONCE, PROOF = VECTOR


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[str]:
    """The bridge's routes behind its token check; it announces the vector's URL and topic."""
    app = web.Application(middlewares=[token_middleware])
    app[CONFIG] = parse_config(
        {
            "mqtt": {"host": "127.0.0.1", "base_topic": BASE_TOPIC},
            "http": {"token": TOKEN, "public_url": API_URL + "/"},
            "storage": {"path": str(tmp_path)},
            "cameras": {"front_door": {"source": "rtsp://192.0.2.10/stream"}},
        }
    )
    app[BRIDGE_ID] = "3f9c2a7be1d04c55"
    app[API_TOKEN] = TOKEN
    app.add_routes(bridge_routes.routes)
    test_server = TestServer(app, host="127.0.0.1")
    await test_server.start_server()
    # The proof covers the very strings of the discovery message.
    announced = bridge_info(app[CONFIG], app[BRIDGE_ID])
    assert (announced["api_url"], announced["base_topic"]) == (API_URL, BASE_TOPIC)
    yield str(test_server.make_url("/api/announcement-proof"))
    await test_server.close()


def test_proof_matches_the_test_vector() -> None:
    assert announcement_proof(TOKEN, API_URL, BASE_TOPIC, NONCE) == PROOF


async def test_answers_the_test_vector_without_a_token(server: str) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(server, json={"nonce": NONCE}) as response,
    ):
        assert response.status == 200
        assert await response.json() == {"proof": PROOF}


@pytest.mark.parametrize(
    "body",
    [
        {"nonce": "too-short"},
        {"nonce": "x" * 129},
        {"nonce": "has spaces in it, and commas"},
        {"nonce": "bm9uY2Utb2YtdGhlLXRlc3QtdmVjdG9y="},
        {"nonce": 1234567890123456789},
        {"nonce": NONCE, "api_url": "http://elsewhere:5080"},
        {},
        [NONCE],
        "not json",
    ],
)
async def test_refuses_a_bad_nonce(server: str, body: Any) -> None:
    data = body if isinstance(body, str) else None
    json_body = None if isinstance(body, str) else body
    async with (
        aiohttp.ClientSession() as session,
        session.post(server, json=json_body, data=data) as response,
    ):
        assert response.status == 400
        assert await response.json() == {
            "error": 'expected a JSON body {"nonce": "..."} with 16 to 128 URL-safe characters'
        }
