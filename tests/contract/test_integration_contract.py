"""The integration parses exactly what the bridge publishes.

Payloads come from the bridge's own builders (``RingEvent.payload``,
``ClipInfo.payload``, ``Share.payload``, ``bridge_info``), topics from its
``Topics``; the integration's parsers and topic names must agree with them.
"""

from __future__ import annotations

import ast
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
import json
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer
import pytest

from doorstep_bridge import PROTOCOL_VERSION, keys
from doorstep_bridge.camera.manager import CameraManager
from doorstep_bridge.config import RESERVED_CAMERA_NAMES, parse_config
from doorstep_bridge.events import CameraSwitchChanged, EventBus, MaskProblem, RecordingProblem
from doorstep_bridge.http import routes as bridge_routes
from doorstep_bridge.http import switches as switch_routes
from doorstep_bridge.http.auth import token_middleware
from doorstep_bridge.keys import API_TOKEN, BRIDGE_ID, CONFIG
from doorstep_bridge.lifecycle import share_service
from doorstep_bridge.models import CameraHealth, ClipInfo, RingEvent, StreamStatus
from doorstep_bridge.mqtt import topics as bridge_topics
from doorstep_bridge.mqtt.publisher import Publisher, bridge_info
from doorstep_bridge.recording.store import ClipStore
from doorstep_bridge.sharing.state import Decision, RejectedRequest, Share, ShareState

from .conftest import INTEGRATION_DIR

TOKEN = "contract-token-0123456789abcdef"
NOW = datetime(2026, 11, 23, 10, 15, 2, 417000, tzinfo=UTC)
CAMERAS = ("front_door", "back_yard", "garage-2")
BASES = ("doorstep", "home/doorstep", "site_b")


def config(tmp_path: Path) -> Any:
    """A bridge config with two cameras."""
    return parse_config(
        {
            "mqtt": {"host": "127.0.0.1", "port": 1883, "base_topic": "doorstep"},
            "http": {"token": TOKEN},
            "storage": {"path": str(tmp_path / "data")},
            "cameras": {
                "front_door": {"source": "rtsp://192.0.2.10/stream"},
                "back_yard": {"source": "rtsp://192.0.2.11/stream"},
            },
        }
    )


# The integration's wire modules stay free of Home Assistant --------------------------


@pytest.mark.parametrize("module", ["protocol.py", "api.py"])
def test_wire_modules_import_no_home_assistant(module: str) -> None:
    tree = ast.parse((INTEGRATION_DIR / module).read_text())
    imported = [
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import)
        for alias in node.names
    ] + [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]  # fmt: skip
    assert not [name for name in imported if name.startswith("homeassistant")]


# Topics --------------------------------------------------------------------------------


@pytest.mark.parametrize("base", BASES)
def test_topics_match(protocol: Any, base: str) -> None:
    ours, theirs = protocol.Topics(base), bridge_topics.Topics(base)
    assert ours.available == theirs.available
    assert ours.bridge_info == theirs.bridge_info
    assert ours.bridge_stats == theirs.bridge_stats
    for camera in CAMERAS:
        for name in ("camera_available", "camera_status", "motion", "ring", "clip", "snapshot",
                     "record_set", "recording_problem", "mask_problem"):  # fmt: skip
            assert getattr(ours, name)(camera) == getattr(theirs, name)(camera), name
        for switch in bridge_topics.SWITCHES:
            assert ours.switch(camera, switch) == theirs.switch(camera, switch)
            assert ours.switch_set(camera, switch) == theirs.switch_set(camera, switch)
        # Every per-camera state topic is covered by one of our subscriptions and
        # maps back to (camera, leaf).
        state_topics = [
            theirs.camera_available(camera),
            theirs.camera_status(camera),
            theirs.recording_problem(camera),
            theirs.mask_problem(camera),
            theirs.motion(camera),
            theirs.ring(camera),
            theirs.clip(camera),
        ]
        state_topics += [theirs.switch(camera, s) for s in bridge_topics.SWITCHES]
        for topic in state_topics:
            assert any(_matches(sub, topic) for sub in ours.camera_wildcards), topic
            assert ours.split_camera_topic(topic)[0] == camera
        assert _matches(f"{base}/+/snapshot", theirs.snapshot(camera))
    assert ours.share("s_1") == theirs.share("s_1")
    assert _matches(ours.share_wildcard, theirs.share("s_7Q2M9X4K"))
    # The request topic shares the wildcard: the integration must skip it.
    assert _matches(ours.share_wildcard, theirs.share_request)
    assert theirs.share_request.rpartition("/")[2] == "request"


def test_constants_match(protocol: Any) -> None:
    assert protocol.DISCOVERY_PREFIX == bridge_topics.DISCOVERY_PREFIX
    assert (protocol.ON, protocol.OFF) == (bridge_topics.ON, bridge_topics.OFF)
    assert (protocol.ONLINE, protocol.OFFLINE) == (bridge_topics.ONLINE, bridge_topics.OFFLINE)
    assert protocol.SWITCHES == bridge_topics.SWITCHES
    # Topic levels the integration never takes for a camera are names no camera can have;
    # the bridge may reserve more (storage folder names).
    assert protocol.RESERVED_CAMERA_NAMES <= RESERVED_CAMERA_NAMES
    topics = bridge_topics.Topics("b")
    first_levels = {t.split("/")[1] for t in (topics.available, topics.bridge_info,
                                              topics.bridge_stats, topics.share("s"))}  # fmt: skip
    assert first_levels <= protocol.RESERVED_CAMERA_NAMES
    assert protocol.PROTOCOL_VERSION == PROTOCOL_VERSION
    assert set(protocol.SHARE_STATES) == {str(s) for s in ShareState}


def test_manifest_subscribes_to_discovery(protocol: Any) -> None:
    manifest = json.loads((INTEGRATION_DIR / "manifest.json").read_text())
    topic = bridge_topics.Topics("anything").discovery("3f9c2a7be1d04c55")
    assert any(_matches(matcher, topic) for matcher in manifest["mqtt"])
    assert protocol.discovery_topic("3f9c2a7be1d04c55") == topic


def _matches(subscription: str, topic: str) -> bool:
    """MQTT topic filter matching (``+`` one level, ``#`` the rest)."""
    sub, top = subscription.split("/"), topic.split("/")
    for i, level in enumerate(sub):
        if level == "#":
            return True
        if i >= len(top) or (level not in ("+", top[i])):
            return False
    return len(sub) == len(top)


# Payloads --------------------------------------------------------------------------------


def test_bridge_info(protocol: Any, tmp_path: Path) -> None:
    data = bridge_info(config(tmp_path), "3f9c2a7be1d04c55")
    for payload in (json.dumps(data), json.dumps(data).encode()):
        info = protocol.parse_bridge_info(payload)
        assert info.id == "3f9c2a7be1d04c55"
        assert info.base_topic == "doorstep"
        assert info.api_url == "http://127.0.0.1:5080"
        assert info.compatible
        assert [c.key for c in info.cameras] == ["front_door", "back_yard"]
        assert info.retention == {"ring": 30.0, "person": 30.0, "motion": 7.0, "manual": 30.0}
        assert [c.name for c in info.cameras] == [
            data["cameras"]["front_door"]["name"], data["cameras"]["back_yard"]["name"]
        ]  # fmt: skip


def test_ring(protocol: Any) -> None:
    event = RingEvent(id="r_01JDB4N9Y4M5", camera="front_door", time=NOW, source="button")
    ring = protocol.parse_ring(json.dumps(event.payload()))
    assert (ring.id, ring.camera, ring.time) == (event.id, event.camera, NOW)


@pytest.mark.parametrize("status", list(StreamStatus))
def test_camera_status(protocol: Any, status: StreamStatus) -> None:
    assert set(protocol.STREAM_STATUSES) == {str(s) for s in StreamStatus}
    for detail in ("rtsp://***@192.0.2.10/stream: user or password refused (401)", None):
        health = protocol.parse_camera_health(
            json.dumps(CameraHealth(status, NOW, detail).payload())
        )
        assert (health.status, health.detail, health.since) == (str(status), detail, NOW)
        assert health.down is (status not in {StreamStatus.ONLINE, StreamStatus.CONNECTING})


def test_recording_problem(protocol: Any) -> None:
    sent: list[tuple[str, str]] = []

    class Mqtt:
        topics = bridge_topics.Topics("doorstep")

        def publish(self, topic: str, payload: str, **_kwargs: Any) -> None:
            sent.append((topic, payload))

    bus = EventBus()
    Publisher(Mqtt(), bus)  # type: ignore[arg-type]
    message = "cannot write c_1.partial.mp4: No space left on device"
    bus.publish(RecordingProblem("front_door", message, NOW))
    problem = protocol.parse_recording_problem(sent[-1][1])
    assert (problem.problem, problem.since) == (message, NOW)
    # The privacy masks' problem has the same form.
    message = "privacy mask(s) 2 lie wholly outside the 1280x720 frames"
    bus.publish(MaskProblem("front_door", message, NOW))
    assert sent[-1][0] == "doorstep/front_door/mask_problem"
    problem = protocol.parse_recording_problem(sent[-1][1])
    assert (problem.problem, problem.since) == (message, NOW)
    bus.publish(MaskProblem("front_door", None, NOW))
    assert sent[-1] == ("doorstep/front_door/mask_problem", "")


def test_clip(protocol: Any, tmp_path: Path) -> None:
    path = tmp_path / "c.mp4"
    for snapshot in (path, None):
        info = ClipInfo(
            id="c_20261123T101500_front_door_3a1f", camera="front_door", start=NOW,
            end=NOW + timedelta(seconds=17.2), reason="ring", path=path, size=1843220,
            snapshot_path=snapshot, held_by=("s_1",),
        )  # fmt: skip
        clip = protocol.parse_clip(json.dumps(info.payload()))
        assert (clip.id, clip.camera, clip.reason, clip.size) == (
            info.id, info.camera, info.reason, info.size
        )  # fmt: skip
        assert (clip.start, clip.end) == (info.start, info.end)
        assert clip.duration == pytest.approx(17.2)
        assert clip.has_snapshot is (snapshot is not None)
        assert clip.held is True


def _share(state: ShareState, **changes: Any) -> Share:
    base = Share(
        id="s_7Q2M9X4K", state=state, requester="Neighbour Alice", cameras=("front_door",),
        start=NOW - timedelta(hours=1), end=NOW - timedelta(minutes=30),
        reason="Parcel went missing", created=NOW, deadline=NOW + timedelta(hours=1),
        source="ha", request_id="01JDB4N9Y4M5",
    )  # fmt: skip
    return base.changed(**changes)


@pytest.mark.parametrize("state", list(ShareState))
def test_share_states(protocol: Any, state: ShareState) -> None:
    decision = Decision(decision="approve", by="Owner", via="phone", at=NOW, redact=False)
    share = _share(state, decision=decision, progress=0.5, link_expires=NOW, error="x")
    link = "/share/abcdefghijklmnopqrstuv" if state is ShareState.READY else None
    parsed = protocol.parse_share(json.dumps(share.payload(link)))
    assert parsed.id == share.id
    assert parsed.state == str(state)
    assert parsed.cameras == share.cameras
    assert (parsed.start, parsed.end, parsed.deadline) == (
        share.start,
        share.end,
        NOW + timedelta(hours=1),
    )
    assert parsed.decision.by == "Owner"
    assert parsed.decision.redact is False
    assert parsed.link == link
    assert parsed.request_id == share.request_id
    assert parsed.final == (
        state
        in {
            ShareState.EXPIRED,
            ShareState.REVOKED,
            ShareState.DENIED,
            ShareState.EMPTY,
            ShareState.FAILED,
            ShareState.REJECTED,
        }
    )


def test_approvals_carry_the_decider_id(protocol: Any) -> None:
    """The first of two approvals: the integration knows its approver by user id."""
    first = Decision(decision="approve", by="Ann", via="ui", at=NOW, redact=True, by_id="u_ann")
    unnamed = Decision(decision="approve", by="automation", via="automation", at=NOW, redact=True)
    share = _share(ShareState.PENDING, approvals=(first,))
    parsed = protocol.parse_share(json.dumps(share.payload()))
    (approval,) = parsed.approvals
    assert approval.by_id == "u_ann"
    assert approval.made_by("u_ann", "Annie") is True
    assert approval.made_by("u_other", "Ann") is False
    parsed = protocol.parse_share(json.dumps(_share(ShareState.DENIED, decision=unnamed).payload()))
    assert parsed.decision.by_id is None


def test_a_revoked_share_says_who_approved_and_who_revoked(protocol: Any) -> None:
    approval = Decision(decision="approve", by="Ann", via="phone", at=NOW, redact=True)
    revoke = Decision(decision="revoke", by="Bob", via="ui", at=NOW, redact=True, by_id="u_bob")
    share = _share(ShareState.REVOKED, decision=approval, revoked_by=revoke)
    parsed = protocol.parse_share(json.dumps(share.payload()))
    assert (parsed.decision.by, parsed.revoked_by.by) == ("Ann", "Bob")
    assert parsed.event_data()["revoked_by"] == "Bob"
    assert protocol.parse_share(json.dumps(_share(ShareState.READY).payload())).revoked_by is None


def test_undecided_share(protocol: Any) -> None:
    parsed = protocol.parse_share(json.dumps(_share(ShareState.PENDING).payload()))
    assert parsed.decision is None
    assert parsed.link is None


def test_rejected_request(protocol: Any) -> None:
    """The one-off answer to a refused MQTT request, as the bridge publishes it."""
    rejected = RejectedRequest(
        id="s_7Q2M9X4KAB", created=NOW, error="cameras: unknown camera 'garage'",
        requester="Neighbour Alice", cameras=("garage",), start=NOW - timedelta(hours=1),
        request_id="q1",
    )  # fmt: skip
    parsed = protocol.parse_share(json.dumps(rejected.payload()))
    assert (parsed.id, parsed.state, parsed.final) == ("s_7Q2M9X4KAB", "rejected", True)
    assert (parsed.requester, parsed.cameras, parsed.request_id) == (
        "Neighbour Alice",
        ("garage",),
        "q1",
    )
    assert (parsed.start, parsed.end, parsed.deadline) == (NOW - timedelta(hours=1), None, None)
    assert parsed.error == "cameras: unknown camera 'garage'"
    # Nothing usable in the request: only the error is said.
    bare = protocol.parse_share(json.dumps(RejectedRequest("s_7Q2M9X4KAC", NOW, "junk").payload()))
    assert (bare.requester, bare.cameras, bare.start, bare.error) == ("", (), None, "junk")


@pytest.mark.parametrize(
    "stats",
    [
        {"storage_used_bytes": 123, "clips": 4},  # from the camera manager
        {"pending_shares": 2},  # from the share service
        {"storage_used_bytes": 123, "clips": 4, "pending_shares": 2},  # merged on the topic
    ],
)
def test_stats(protocol: Any, stats: dict[str, int]) -> None:
    parsed = protocol.parse_stats(json.dumps(stats))
    for key, value in stats.items():
        assert getattr(parsed, key) == value


def test_share_request_body_is_valid_for_the_bridge(protocol: Any, tmp_path: Path) -> None:
    service = share_service(config(tmp_path), EventBus(), clip_store=None, audit=None)  # type: ignore[arg-type]
    body = protocol.share_request_body(
        requester="Owner", cameras=["front_door"], start=NOW - timedelta(hours=1),
        end=NOW - timedelta(minutes=30), reason="Parcel", request_id="01JDB4N9Y4M5ABCDEFGHJKMNPQ",
    )  # fmt: skip
    cleaned = service.validate(json.loads(json.dumps(body)))
    assert cleaned.cameras == ("front_door",)
    assert cleaned.start == NOW - timedelta(hours=1)


# HTTP: the real /api/info route, read by the integration's client ------------------


@pytest.fixture
async def info_server(tmp_path: Path) -> AsyncIterator[TestServer]:
    app = web.Application(middlewares=[token_middleware])
    app[CONFIG] = config(tmp_path)
    app[BRIDGE_ID] = "3f9c2a7be1d04c55"
    app[API_TOKEN] = TOKEN
    app.add_routes(bridge_routes.routes)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server
    await server.close()


async def test_api_info(api: Any, info_server: TestServer) -> None:
    async with aiohttp.ClientSession() as session:
        url = str(info_server.make_url(""))
        snapshot = await api.DoorstepApiClient(session, url, TOKEN).info()
        assert snapshot.info.id == "3f9c2a7be1d04c55"
        assert snapshot.info.compatible
        assert {c.key for c in snapshot.info.cameras} == {"front_door", "back_yard"}
        with pytest.raises(api.DoorstepAuthError):
            await api.DoorstepApiClient(session, url, "wrong").info()


async def test_announcement_proof(api: Any, protocol: Any, info_server: TestServer) -> None:
    """The integration checks the bridge's proof over what the bridge itself announces."""
    announced = protocol.parse_bridge_info(
        bridge_info(info_server.app[CONFIG], info_server.app[BRIDGE_ID])
    )
    nonce = "a-fresh-nonce-of-the-integration"
    async with aiohttp.ClientSession() as session:
        url = str(info_server.make_url(""))
        proof = await api.ask_announcement_proof(session, url, nonce)
    assert proof == api.announcement_proof(TOKEN, announced.api_url, announced.base_topic, nonce)
    assert proof != api.announcement_proof("wrong", announced.api_url, announced.base_topic, nonce)
    assert proof != api.announcement_proof(TOKEN, "http://elsewhere:5080", "doorstep", nonce)


async def test_api_info_camera_status(api: Any, tmp_path: Path) -> None:
    """The real camera manager behind the real /api/info: the status reaches the client."""
    bridge_config = parse_config(
        {
            "http": {"token": TOKEN},
            "storage": {"path": str(tmp_path / "data")},
            "cameras": {"front_door": {"source": str(tmp_path / "missing.mp4")}},
        }
    )
    store = ClipStore(bridge_config.storage.path)
    store.open()
    manager = CameraManager(
        bridge_config.cameras, bridge_config.storage, EventBus(), store, lambda _camera: None
    )
    await manager.start()
    app = web.Application(middlewares=[token_middleware])
    app[CONFIG] = bridge_config
    app[BRIDGE_ID] = "3f9c2a7be1d04c55"
    app[API_TOKEN] = TOKEN
    app[keys.CAMERAS] = manager
    app.add_routes(bridge_routes.routes)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            client = api.DoorstepApiClient(session, str(server.make_url("")), TOKEN)
            health = (await client.info()).cameras["front_door"].health
            while health.status == "connecting":  # the first attempt is under way
                health = (await client.info()).cameras["front_door"].health
    finally:
        await server.close()
        await manager.stop()
        store.close()
    assert health.status == "not_found"
    assert health.detail.endswith("missing.mp4: no such file")
    assert health.since is not None


# HTTP: the real switch route and camera manager, driven by the integration's client --


@pytest.fixture
async def switch_server(
    tmp_path: Path,
) -> AsyncIterator[tuple[TestServer, CameraManager, list[CameraSwitchChanged]]]:
    demo = "demo://?period=3600&fps=2&width=160&height=120"
    bridge_config = parse_config(
        {
            "http": {"token": TOKEN},
            "storage": {"path": str(tmp_path / "data")},
            "cameras": {"front_door": {"source": demo}},
        }
    )
    store = ClipStore(bridge_config.storage.path)
    store.open()
    bus = EventBus()
    manager = CameraManager(
        bridge_config.cameras, bridge_config.storage, bus, store, lambda _camera: None
    )
    await manager.start()
    changes: list[CameraSwitchChanged] = []
    bus.subscribe(CameraSwitchChanged, changes.append)  # after start: changes only
    app = web.Application(middlewares=[token_middleware])
    app[CONFIG] = bridge_config
    app[API_TOKEN] = TOKEN
    app[keys.CAMERAS] = manager
    app.add_routes(switch_routes.routes)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield server, manager, changes
    await server.close()
    await manager.stop()
    store.close()


async def test_api_set_switch(
    api: Any,
    protocol: Any,
    switch_server: tuple[TestServer, CameraManager, list[CameraSwitchChanged]],
) -> None:
    server, manager, changes = switch_server
    async with aiohttp.ClientSession() as session:
        client = api.DoorstepApiClient(session, str(server.make_url("")), TOKEN)
        for switch in protocol.SWITCHES:
            assert await client.set_switch("front_door", switch, on=False) is False
            assert await client.set_switch("front_door", switch, on=True) is True
        assert [(c.switch, c.on) for c in changes] == [
            (switch, on) for switch in protocol.SWITCHES for on in (False, True)
        ]
        with pytest.raises(api.DoorstepNotFoundError):
            await client.set_switch("ghost", "recording", on=False)
        with pytest.raises(api.DoorstepRequestError) as refused:
            await client.set_switch("front_door", "privacy", on=False)
        assert refused.value.status == 400
        with pytest.raises(api.DoorstepAuthError):
            await api.DoorstepApiClient(session, str(server.make_url("")), "wrong").set_switch(
                "front_door", "recording", on=False
            )
    assert manager.status("front_door").recording
