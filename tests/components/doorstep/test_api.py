"""The bridge client turns every odd answer into its own small error tree."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime

import aiohttp
import pytest

from custom_components.doorstep.api import (
    DoorstepApiClient,
    DoorstepAuthError,
    DoorstepConnectionError,
    DoorstepNotFoundError,
    DoorstepRequestError,
)

from .conftest import TOKEN, FakeBridge


@pytest.fixture
async def client(bridge: FakeBridge) -> AsyncIterator[DoorstepApiClient]:
    session = aiohttp.ClientSession()
    yield DoorstepApiClient(session, bridge.url + "/", TOKEN)
    await session.close()


@pytest.mark.parametrize(
    ("path", "status", "body", "error"),
    [
        ("/api/info", 200, "[1, 2]", DoorstepConnectionError),
        ("/api/info", 200, "not json", DoorstepConnectionError),
        ("/api/info", 200, '{"id": "x"}', DoorstepConnectionError),
        ("/api/info", 403, "{}", DoorstepAuthError),
        ("/api/info", 418, '{"error": "teapot"}', DoorstepRequestError),
        ("/api/clips", 200, '{"clips": [{"id": 1}]}', DoorstepConnectionError),
        ("/api/clips", 200, '{"clips": [], "total": "many"}', DoorstepConnectionError),
        ("/api/share-requests", 201, '{"id": "s_1", "state": "weird"}', DoorstepConnectionError),
    ],
)
async def test_odd_answers(
    *, client: DoorstepApiClient, bridge: FakeBridge, path: str, status: int, body: str,
    error: type[Exception],
) -> None:  # fmt: skip
    bridge.canned[path] = (status, body)
    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "/api/info": client.info,
        "/api/clips": client.clips,
        "/api/share-requests": lambda: client.create_share({}),
    }
    call = calls[path]
    with pytest.raises(error):
        await call()


async def test_info_and_clips(client: DoorstepApiClient, bridge: FakeBridge) -> None:
    snapshot = await client.info()
    assert snapshot.stats is not None
    assert snapshot.cameras["front_door"].recording is True
    page = await client.clips(camera="front_door", since=datetime(2026, 11, 23, tzinfo=UTC))
    assert page.total == 2
    assert [c.id for c in page.clips] == [c.id for c in bridge.clips[:2]]


async def test_media_errors(client: DoorstepApiClient, bridge: FakeBridge) -> None:
    with pytest.raises(DoorstepNotFoundError):
        await client.open_clip_media("c_1", "config")
    with pytest.raises(DoorstepNotFoundError):
        await client.open_clip_media("c_unknown", "video")
    response = await client.open_clip_media(bridge.clips[0].id, "snapshot")
    assert response.status == 200
    response.release()
    bridge.token = "rotated"
    with pytest.raises(DoorstepAuthError):
        await client.open_clip_media(bridge.clips[0].id, "video")
    await bridge.stop()
    with pytest.raises(DoorstepConnectionError):
        await client.open_clip_media(bridge.clips[0].id, "video")
    with pytest.raises(DoorstepConnectionError):
        await client.info()


async def test_audit_unknown_share(client: DoorstepApiClient) -> None:
    with pytest.raises(DoorstepNotFoundError):
        await client.audit("s_nope", "notification", {})


async def test_a_bridge_that_does_not_answer_is_told_in_words(
    client: DoorstepApiClient, bridge: FakeBridge
) -> None:
    bridge.canned["/api/clips"] = (200, "<html>a proxy's page</html>")
    with pytest.raises(DoorstepConnectionError) as err:
        await client.clips()
    assert str(err.value) == "the bridge answered something that is not JSON"
    port = bridge.url.rsplit(":", 1)[1]
    await bridge.stop()
    with pytest.raises(DoorstepConnectionError) as err:
        await client.clips()
    assert str(err.value) == f"cannot connect to the bridge at 127.0.0.1:{port}: Connection refused"
