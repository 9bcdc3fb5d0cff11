"""The whole bridge as a user runs it: identity, HTTP basics, motion and clips on MQTT."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
import json
import logging
from pathlib import Path
import stat

from aiohttp import ClientSession, web
import pytest

from doorstep_bridge.app import create_app
from doorstep_bridge.exceptions import StorageError
from doorstep_bridge.http.server import GuardedSite, ServerLimits
from doorstep_bridge.identity import API_TOKEN_FILE, BRIDGE_ID_FILE, LOCK_FILE
from doorstep_bridge.keys import API_TOKEN, CLIP_STORE
from tests.bridge.bridge_runner import bridge_config, run_bridge
from tests.bridge.conftest import Broker, Listener
from tests.support.media import write_h264


async def test_token_and_id_are_generated_once_and_kept_private(
    mqtt_broker: Broker, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="doorstep_bridge")
    storage = tmp_path / "data"
    async with run_bridge(bridge_config(mqtt_broker, storage)) as bridge:
        first_token = bridge.token
        async with bridge.session.get(f"{bridge.url}/api/info", headers=bridge.auth) as response:
            first_id = (await response.json())["id"]
    token_file = storage / API_TOKEN_FILE
    # The owner learns where the token Home Assistant asks for is; the log never holds it.
    assert f"Generated the API token in {token_file}" in caplog.text
    assert first_token not in caplog.text
    # A new bridge: there is no session of an earlier client id to end.
    assert "used before" not in caplog.text
    caplog.clear()
    assert token_file.read_text().strip() == first_token
    assert len(first_token) >= 32
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(storage.stat().st_mode) == 0o700

    async with run_bridge(bridge_config(mqtt_broker, storage)) as bridge:
        assert bridge.token == first_token
        async with bridge.session.get(f"{bridge.url}/api/info", headers=bridge.auth) as response:
            assert (await response.json())["id"] == first_id
    assert (storage / BRIDGE_ID_FILE).read_text().strip() == first_id
    assert "Generated the API token" not in caplog.text


async def test_a_second_bridge_on_the_same_storage_folder_stops_before_touching_it(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    storage = tmp_path / "data"
    async with run_bridge(bridge_config(mqtt_broker, storage)) as bridge:
        store = bridge.app[CLIP_STORE]
        recording = store.new_clip("front_door", datetime.now(UTC), "manual")
        recording.partial.write_bytes(b"fragments being written")

        second = create_app(bridge_config(mqtt_broker, storage))
        runner = web.AppRunner(second, access_log=None)
        with pytest.raises(StorageError) as refused:
            await runner.setup()
        assert str(refused.value) == (
            f"Cannot start: another doorstep-bridge is already using the storage folder"
            f" {storage} (storage.path): stop it first (installed twice, e.g. as a service"
            " and in a container, or started by hand while the service runs?)"
        )
        # The clip being recorded was not taken for one cut off by a crash.
        assert recording.partial.read_bytes() == b"fragments being written"
        assert store.events() == []
    # Released at shutdown (and by the system when the process dies): the next start runs.
    async with run_bridge(bridge_config(mqtt_broker, storage)) as bridge:
        assert not recording.partial.exists()  # unplayable: removed, as after a crash
        async with bridge.session.get(f"{bridge.url}/api/clips", headers=bridge.auth) as response:
            assert (await response.json())["total"] == 0
    assert (storage / LOCK_FILE).is_file()  # never swept as a stray clip file


async def test_configured_token_is_used_and_never_written(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    token = "configured-token-0123456789abcdef"
    config = bridge_config(mqtt_broker, tmp_path, http={"token": token})
    async with run_bridge(config) as bridge:
        assert bridge.token == token
        async with bridge.session.get(f"{bridge.url}/api/info", headers=bridge.auth) as response:
            assert response.status == 200
    assert not (tmp_path / API_TOKEN_FILE).exists()


async def test_health_is_open_everything_else_needs_the_token(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    async with run_bridge(bridge_config(mqtt_broker, tmp_path)) as bridge:
        async with bridge.session.get(f"{bridge.url}/api/health") as response:
            assert response.status == 200
            assert (await response.json())["status"] == "ok"
        for path in ("/api/info", "/api/clips", "/api/shares"):
            async with bridge.session.get(f"{bridge.url}{path}") as response:
                assert response.status == 401, path
        async with bridge.session.get(f"{bridge.url}/api/info", headers=bridge.auth) as response:
            info = await response.json()
        assert info["stats"] == {"storage_used_bytes": 0, "clips": 0, "pending_shares": 0}
        # The key exports are signed with, made at the first start and kept in storage.
        from doorstep_bridge.sharing.signing import KEY_FILE, ExportSigner

        key = ExportSigner.load_or_create(tmp_path / "shares" / KEY_FILE)
        assert info["export_signing_key"] == key.fingerprint
        camera = info["cameras"]["front_door"]
        assert camera["name"] == "Front door"
        assert set(camera) >= {"online", "motion", "motion_detection", "recording"}


async def test_motion_turns_on_and_off_and_a_clip_follows(
    mqtt_broker: Broker, mqtt_listener: Callable[..., Listener], tmp_path: Path
) -> None:
    """A file camera: still for 2 s, someone crosses for 3 s, still again."""
    footage = write_h264(tmp_path / "door.mp4", seconds=12.0, motion=(2.0, 5.0))
    listener = mqtt_listener("doorstep/#")
    config = bridge_config(
        mqtt_broker,
        tmp_path / "data",
        cameras={
            "front_door": {
                "source": str(footage.path),
                "motion": {"off_delay": 1.0},
                "record": {"pre_roll": 1, "post_roll": 1},
            }
        },
    )
    async with run_bridge(config):
        wait = listener.wait_for
        assert await asyncio.to_thread(wait, "doorstep/front_door/available", 15) == b"online"
        # A fresh storage folder has no clip: an earlier run's retained clip is cleared.
        assert await asyncio.to_thread(wait, "doorstep/front_door/clip", 15) == b""
        # And so is its retained snapshot: no clip here has a picture.
        assert await asyncio.to_thread(wait, "doorstep/front_door/snapshot", 15) == b""
        clip = json.loads(await asyncio.to_thread(wait, "doorstep/front_door/clip", 30))
        # Everything seen before the clip, in arrival order: motion went ON, then OFF.
        motion = [p for t, p, _ in listener.seen if t == "doorstep/front_door/motion"]
        assert b"ON" in motion
        assert b"OFF" in motion[motion.index(b"ON") :]
        assert clip["camera"] == "front_door"
        assert clip["reason"] == "motion"
        assert clip["duration"] > 2.0
        snapshot = await asyncio.to_thread(wait, "doorstep/front_door/snapshot", 10)
        assert snapshot.startswith(b"\xff\xd8")  # a JPEG


async def test_http_errors_are_json(mqtt_broker: Broker, tmp_path: Path) -> None:
    async with run_bridge(bridge_config(mqtt_broker, tmp_path)) as bridge:
        async with bridge.session.get(f"{bridge.url}/api/nothing-here", headers=bridge.auth) as r:
            assert r.status == 404
            assert "error" in await r.json()
        async with bridge.session.put(f"{bridge.url}/api/health") as r:
            assert r.status == 405
            assert "error" in await r.json()
        # A wrong method says which ones the path takes (it said "Method Not Allowed" alone,
        # and the JSON answer had lost aiohttp's Allow header).
        url = f"{bridge.url}/api/clips"
        async with bridge.session.post(url, headers=bridge.auth) as r:
            assert r.status == 405
            assert r.headers["Allow"] == "GET,HEAD"
            assert await r.json() == {
                "error": "method POST is not allowed here; this path takes GET, HEAD"
            }
        # Deeply nested JSON is a client error, not a crash.
        async with bridge.session.post(
            f"{bridge.url}/api/cameras/front_door/record",
            headers=bridge.auth,
            data="[" * 60_000,
        ) as r:
            assert r.status == 400
            assert "expected a JSON body" in (await r.json())["error"]
        async with bridge.session.get(f"{bridge.url}/api/health") as r:
            assert r.status == 200


async def test_idle_connections_make_room_for_a_client_at_the_connection_limit(
    mqtt_broker: Broker, tmp_path: Path
) -> None:
    """At the limit, the oldest connection that never sent a request gives way."""
    config = bridge_config(mqtt_broker, tmp_path)
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = GuardedSite(runner, config.http.host, config.http.port, ServerLimits(max_connections=3))
    await site.start()
    url = f"http://{config.http.host}:{config.http.port}"
    headers = {"Authorization": f"Bearer {app[API_TOKEN]}"}

    async def connect() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(config.http.host, config.http.port)

    idle = [await connect() for _ in range(3)]
    try:
        async with ClientSession() as session:
            async with session.get(f"{url}/api/info", headers=headers) as response:
                assert response.status == 200
            # The oldest silent connection was closed for the client.
            assert await asyncio.wait_for(idle[0][0].read(), timeout=30) == b""
            # A newcomer replaces the next silent one, not the client's kept-alive connection.
            idle.append(await connect())
            assert await asyncio.wait_for(idle[1][0].read(), timeout=30) == b""
            async with session.get(f"{url}/api/info", headers=headers) as response:
                assert response.status == 200
    finally:
        for _reader, writer in idle:
            writer.close()
        await runner.cleanup()
