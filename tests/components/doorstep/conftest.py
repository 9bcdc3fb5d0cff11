"""A fake bridge speaking docs/http-api.md over real HTTP, and a set-up entry.

Payloads are built with the bridge's own models (``doorstep_bridge.models``), so
the integration is tested against what the bridge really sends.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import json
from pathlib import Path
from typing import Any, cast
from unittest.mock import MagicMock

from aiohttp import web
from homeassistant.components.media_player.browse_media import BrowseMedia
from homeassistant.components.media_source import BrowseMediaSource
from homeassistant.const import CONF_API_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceEntry
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockMqttReasonCode,
    async_fire_mqtt_message,
)

from custom_components.doorstep.const import CONF_BASE_TOPIC, DOMAIN
from doorstep_bridge.events import Event, EventBus
from doorstep_bridge.http.routes import announcement_proof
from doorstep_bridge.models import ClipInfo, RingEvent
from doorstep_bridge.mqtt.publisher import Publisher
from doorstep_bridge.mqtt.topics import Topics

BRIDGE_ID = "3f9c2a7be1d04c55"
#: The signing key fingerprint the bridge reports in GET /api/info.
EXPORT_SIGNING_KEY = "SHA256:Hx2bT4JvQk0mWcY5n8pLr3sZa7dEf9gUi1oVq6tXw0A"
TOKEN = "test-api-token-0123456789"
BASE = "doorstep"
TOPICS = Topics(BASE)
T0 = datetime(2026, 11, 23, 10, 15, 2, 417000, tzinfo=UTC)


def make_video(path: Path) -> bytes:
    """A real, small H.264 MP4 (PyAV/libx264), as the bridge stores clips."""
    import av
    import numpy as np

    with av.open(str(path), "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(10):
            frame = np.full((48, 64, 3), i * 20, dtype=np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path.read_bytes()


@pytest.fixture(scope="session")
def video_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One MP4 shared by every clip of the fake bridge."""
    path = tmp_path_factory.mktemp("clips") / "clip.mp4"
    make_video(path)
    return path


def clip_info(camera: str, start: datetime, seconds: float, video: Path, n: int = 0) -> ClipInfo:
    """A clip as the bridge's store describes it."""
    return ClipInfo(
        id=f"c_{start:%Y%m%dT%H%M%S}_{camera}_{n:04x}",
        camera=camera,
        start=start,
        end=start + timedelta(seconds=seconds),
        reason="motion",
        path=video,
        size=video.stat().st_size,
        snapshot_path=video,
        thumbnail_path=video,
    )


def share_state(share_id: str, state: str = "pending", **changes: Any) -> dict[str, Any]:
    """A share state JSON as docs/mqtt.md shows it."""
    data: dict[str, Any] = {
        "id": share_id,
        "state": state,
        "requester": "Neighbour Alice",
        "cameras": ["front_door"],
        "start": "2026-11-23T09:00:00.000+00:00",
        "end": "2026-11-23T09:30:00.000+00:00",
        "reason": "Parcel went missing",
        "created": "2026-11-23T10:00:00.000+00:00",
        "deadline": "2099-01-01T00:00:00.000+00:00",
        "decision": None,
        "progress": None,
        "link": None,
        "link_expires": None,
        "error": None,
        "request_id": None,
    }
    data.update(changes)
    return data


def _same_decider(approval: dict[str, Any], body: dict[str, Any]) -> bool:
    """As the bridge compares two approvals: by user id when both have one."""
    if approval.get("by_id") is not None and body.get("by_id") is not None:
        return bool(approval["by_id"] == body["by_id"])
    return bool(approval["by"] == body["by"])


@dataclass
class FakeBridge:
    """State and call log of the fake bridge."""

    video: Path
    token: str = TOKEN
    #: A legal request needs two approvers (sharing.legal_two_approvers).
    two_approvers: bool = False
    #: How far the bridge's clock is ahead of Home Assistant's (behind when negative).
    clock_offset: timedelta = timedelta(0)
    protocol: int = 1
    base_topic: str = BASE
    bridge_id: str = BRIDGE_ID
    cameras: dict[str, dict[str, str]] = field(
        default_factory=lambda: {"front_door": {"name": "Front door"}}
    )
    clips: list[ClipInfo] = field(default_factory=list)
    shares: dict[str, dict[str, Any]] = field(default_factory=dict)
    share_links: dict[str, int] = field(default_factory=dict)  # token -> status
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    bodies: list[Any] = field(default_factory=list)
    audit: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    accepts_link_ttl: bool = True
    #: Takes the decider's user id (``by_id``); an older bridge refuses it as unknown.
    accepts_by_id: bool = True
    #: Switch commands received: (camera, switch, on).
    switched: list[tuple[str, str, bool]] = field(default_factory=list)
    canned: dict[str, tuple[int, str]] = field(default_factory=dict)  # path -> answer
    #: The live view: JPEGs the MJPEG stream sends in turn (the still is the last one).
    live_frames: list[bytes] = field(
        default_factory=lambda: [b"\xff\xd8live-%d\xff\xd9" % n for n in range(3)]
    )
    #: 503 reason (``camera_offline``...) the live routes answer with, or None.
    live_refused: str | None = None
    on_create: Callable[[dict[str, Any]], None] | None = None
    #: Bytes of a clip video sent before the connection drops (a bridge going away), or None.
    video_cut_after: int | None = None
    #: Paths answered with nothing at all until the bridge stops (a host gone mid-connection).
    stalled: set[str] = field(default_factory=set)
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)
    broken: bool = False
    url: str = ""
    #: The API address the bridge announces (discovery, info), when not ``url``.
    announced_url: str | None = None
    runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen on a free loopback port."""
        runner = web.AppRunner(self.app())
        await runner.setup()
        self.runner = runner
        self.url = await self.listen_also()

    async def listen_also(self) -> str:
        """Listen on one more free loopback port (a bridge that moved); its URL."""
        assert self.runner is not None
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        """Stop listening (a bridge that went away)."""
        self._stopping.set()
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None

    def now(self) -> datetime:
        """The time on the bridge's clock."""
        return dt_util.utcnow() + self.clock_offset

    def info(self) -> dict[str, Any]:
        """Bridge info JSON (MQTT and discovery)."""
        return {
            "id": self.bridge_id,
            "name": "Doorstep",
            "version": "0.1.0",
            "protocol": self.protocol,
            "base_topic": self.base_topic,
            "api_url": self.announced_url or self.url,
            "cameras": self.cameras,
        }

    # HTTP handlers ----------------------------------------------------------

    @web.middleware
    async def middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.requests.append((request.method, request.path_qs, dict(request.headers)))
        if request.path in self.stalled:
            await self._stopping.wait()
        if self.broken:
            return web.json_response({"error": "boom"}, status=500)
        if request.path in self.canned:
            status, text = self.canned[request.path]
            return web.Response(status=status, text=text, content_type="application/json")
        if (
            request.path.startswith("/api/")
            and request.path != "/api/announcement-proof"  # public, as on the bridge
            and request.headers.get("Authorization") != f"Bearer {self.token}"
        ):
            return web.json_response({"error": "missing or invalid API token"}, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    async def api_announcement_proof(self, request: web.Request) -> web.Response:
        """The bridge's own proof over what it announces."""
        nonce = (await request.json())["nonce"]
        info = self.info()
        proof = announcement_proof(self.token, info["api_url"], info["base_topic"], nonce)
        return web.json_response({"proof": proof})

    async def api_info(self, request: web.Request) -> web.Response:
        info = self.info()
        info["stats"] = {
            "storage_used_bytes": 1234567,
            "clips": len(self.clips),
            "pending_shares": 0,
        }
        info["cameras"] = {
            key: {**value, "online": True, "motion": False, "motion_detection": True,
                  "recording": True}
            for key, value in self.cameras.items()
        }  # fmt: skip
        info["export_signing_key"] = EXPORT_SIGNING_KEY
        return web.json_response(info)

    async def api_clips(self, request: web.Request) -> web.Response:
        camera = request.query.get("camera")
        since = request.query.get("since")
        until = request.query.get("until")
        reason = request.query.get("reason")
        clips = [c for c in self.clips if camera in (None, c.camera)]
        clips = [c for c in clips if reason in (None, c.reason)]
        # As the bridge: the clips that overlap [since, until].
        if since:
            clips = [c for c in clips if c.end >= datetime.fromisoformat(since)]
        if until:
            clips = [c for c in clips if c.start <= datetime.fromisoformat(until)]
        clips.sort(key=lambda c: c.start, reverse=True)
        limit = int(request.query.get("limit", "50"))
        offset = int(request.query.get("offset", "0"))
        if not 1 <= limit <= 500:  # the bridge's MAX_LIMIT
            return web.json_response({"error": "limit: 1 to 500"}, status=400)
        page = clips[offset : offset + limit]
        return web.json_response({"clips": [c.payload() for c in page], "total": len(clips)})

    def _clip(self, request: web.Request) -> ClipInfo:
        clip = next((c for c in self.clips if c.id == request.match_info["id"]), None)
        if clip is None:
            raise web.HTTPNotFound(text='{"error": "no such clip"}')
        return clip

    async def api_clip(self, request: web.Request) -> web.Response:
        return web.json_response(self._clip(request).payload())

    async def api_clip_file(self, request: web.Request) -> web.StreamResponse:
        clip = self._clip(request)
        kind = request.match_info["kind"]
        if kind not in ("video", "snapshot", "thumbnail"):
            raise web.HTTPNotFound
        content_type = "video/mp4" if kind == "video" else "image/jpeg"
        if kind == "video" and self.video_cut_after is not None:
            data = clip.path.read_bytes()
            cut = web.StreamResponse(headers={"Content-Type": content_type})
            cut.content_length = len(data)
            await cut.prepare(request)
            await cut.write(data[: self.video_cut_after])
            assert request.transport is not None
            request.transport.close()
            return cut
        response: web.StreamResponse = web.FileResponse(
            clip.path, headers={"Content-Type": content_type}
        )
        return response

    async def api_create_share(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bodies.append(body)
        share_id = f"s_{len(self.shares) + 1:08d}"
        state = "rejected" if body.get("reason") == "reject me" else "pending"
        share = share_state(
            share_id, state, requester=body["requester"], cameras=body["cameras"],
            start=body["start"], end=body["end"], reason=body["reason"],
            request_id=body.get("request_id"),
            error="window too long" if state == "rejected" else None,
        )  # fmt: skip
        if body.get("kind") == "legal":
            share.update(
                kind="legal",
                legal={
                    key: body[key] for key in ("authority", "reference", "legal_basis", "scope")
                },
                approvals=[],
            )
        self.shares[share_id] = share
        if self.on_create is not None:
            self.on_create(share)
            await asyncio.sleep(0)  # let HA handle what the hook published first
        return web.json_response(share, status=201)

    async def api_share_report(self, request: web.Request) -> web.Response:
        # The figures as the bridge's GET /api/share-report gives them.
        return web.json_response(
            {
                "log_ok": True, "log": "audit log intact: 12 records", "requests": 1,
                "kinds": {"ordinary": 1}, "refused": 0, "outcomes": {"released": 1},
                "requesters": [{"requester": "Neighbour Alice", "kind": "ordinary",
                                "asked": 1, "released": 1}],
            }
        )  # fmt: skip

    async def api_share(self, request: web.Request) -> web.Response:
        share = self.shares.get(request.match_info["id"])
        if share is None:
            return web.json_response({"error": "no such share"}, status=404)
        return web.json_response(share)

    async def api_decision(self, request: web.Request) -> web.Response:
        share = self.shares.get(request.match_info["id"])
        if share is None:
            return web.json_response({"error": "no such share"}, status=404)
        body = await request.json()
        self.bodies.append(body)
        allowed_fields = {"decision", "by", "via", "redact"}
        if self.accepts_link_ttl:
            allowed_fields.add("link_ttl_hours")
        if self.accepts_by_id:
            allowed_fields.add("by_id")
        if unknown := sorted(set(body) - allowed_fields):
            return web.json_response(
                {"error": f"unknown field(s): {', '.join(unknown)}"}, status=400
            )
        new_state = {"approve": "approved", "deny": "denied", "revoke": "revoked"}[body["decision"]]
        if share["state"] == "pending" and datetime.fromisoformat(share["deadline"]) <= self.now():
            # As the bridge: a request past its deadline, on its own clock, is over.
            share["state"] = "expired"
        allowed = {"approve": ("pending",), "deny": ("pending",), "revoke": ("approved", "ready")}
        if share["state"] not in allowed[body["decision"]]:
            return web.json_response({"error": f"share is {share['state']}"}, status=409)
        decided = {**body, "at": "2026-11-23T10:05:00.000+00:00"}
        if self.two_approvers and share.get("kind") == "legal" and body["decision"] == "approve":
            # As the bridge with sharing.legal_two_approvers: the first approval waits.
            if any(_same_decider(a, body) for a in share["approvals"]):
                return web.json_response({"error": "already approved"}, status=409)
            if not share["approvals"]:
                share["approvals"] = [decided]
                return web.json_response(share)
        if body["decision"] == "revoke":  # the approval stays; who revoked is said apart
            share.update(state=new_state, revoked_by=decided)
        else:
            share.update(state=new_state, decision=decided)
        # The bridge audits the decision in the same log as the integration's records.
        self.audit.append((share["id"], {"kind": "decision", "decision": body["decision"]}))
        return web.json_response(share)

    async def api_audit(self, request: web.Request) -> web.Response:
        if request.match_info["id"] not in self.shares:
            return web.json_response({"error": "no such share"}, status=404)
        body = await request.json()
        if body.get("kind") not in ("notification", "decision_refused"):
            return web.json_response({"error": "bad kind"}, status=400)
        self.audit.append((request.match_info["id"], body))
        return web.Response(status=204)

    async def api_switch(self, request: web.Request) -> web.Response:
        camera, switch = request.match_info["camera"], request.match_info["switch"]
        if camera not in self.cameras:
            return web.json_response({"error": f"unknown camera {camera!r}"}, status=404)
        if switch not in ("motion_detection", "recording"):
            return web.json_response({"error": f"unknown switch {switch!r}"}, status=400)
        body = await request.json()
        if not isinstance(body, dict) or set(body) != {"on"} or not isinstance(body["on"], bool):
            return web.json_response({"error": "expected a JSON body"}, status=400)
        self.switched.append((camera, switch, body["on"]))
        # Like the bridge: the state goes out on MQTT, not from the caller's side.
        return web.json_response({"camera": camera, "switch": switch, "on": body["on"]})

    def _live_refusal(self, camera: str) -> web.Response | None:
        if camera not in self.cameras:
            return web.json_response({"error": f"unknown camera {camera!r}"}, status=404)
        if self.live_refused is not None:
            body = {"error": f"camera {camera} is offline", "reason": self.live_refused}
            return web.json_response(body, status=503)
        return None

    async def api_live_jpeg(self, request: web.Request) -> web.Response:
        if (refusal := self._live_refusal(request.match_info["camera"])) is not None:
            return refusal
        return web.Response(body=self.live_frames[-1], content_type="image/jpeg")

    async def api_live_mjpeg(self, request: web.Request) -> web.StreamResponse:
        if (refusal := self._live_refusal(request.match_info["camera"])) is not None:
            return refusal
        response = web.StreamResponse(
            headers={"Content-Type": "multipart/x-mixed-replace; boundary=frame"}
        )
        await response.prepare(request)
        for jpeg in self.live_frames:
            head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
            await response.write(head.encode() + jpeg + b"\r\n")
        return response

    async def share_link(self, request: web.Request) -> web.StreamResponse:
        """The link as the bridge serves it: a page to a browser, else the video."""
        status = self.share_links.get(request.match_info["token"], 404)
        page = "text/html" in request.headers.get("Accept", "") and not request.query.get("raw")
        if status != 200:
            headers = {"Retry-After": "60"} if status == 429 else None
            if status == 416:
                headers = {"Content-Range": f"bytes */{self.video.stat().st_size}"}
            if page:
                text = "<p>This link no longer works</p>"
                return web.Response(
                    text=text, content_type="text/html", status=status, headers=headers
                )
            return web.json_response({"error": "refused"}, status=status, headers=headers)
        if page:
            headers = {"Content-Security-Policy": "default-src 'none'", "X-Frame-Options": "DENY"}
            text = '<video src="?raw=1"></video><a href="tok/signature">Signature</a>'
            return web.Response(text=text, content_type="text/html", headers=headers)
        if request.match_info.get("file") == "signature":
            return web.json_response(
                {"manifest": {}}, headers={"Content-Disposition": "attachment"}
            )
        return web.FileResponse(self.video, headers={"Content-Type": "video/mp4"})

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(middlewares=[self.middleware])
        app.router.add_post("/api/announcement-proof", self.api_announcement_proof)
        app.router.add_get("/api/info", self.api_info)
        app.router.add_get("/api/clips", self.api_clips)
        app.router.add_get("/api/clips/{id}", self.api_clip)
        app.router.add_get("/api/clips/{id}/{kind}", self.api_clip_file)
        app.router.add_post("/api/share-requests", self.api_create_share)
        app.router.add_get("/api/shares/{id}", self.api_share)
        app.router.add_get("/api/share-report", self.api_share_report)
        app.router.add_post("/api/shares/{id}/decision", self.api_decision)
        app.router.add_post("/api/shares/{id}/audit", self.api_audit)
        app.router.add_put("/api/cameras/{camera}/switches/{switch}", self.api_switch)
        app.router.add_get("/api/cameras/{camera}/live.jpg", self.api_live_jpeg)
        app.router.add_get("/api/cameras/{camera}/live.mjpeg", self.api_live_mjpeg)
        app.router.add_get("/share/{token}", self.share_link)
        app.router.add_get("/share/{token}/{file:signature}", self.share_link)
        return app


@pytest.fixture
async def bridge(socket_enabled: None, video_file: Path) -> AsyncIterator[FakeBridge]:
    """A fake bridge listening on a free loopback port."""
    fake = FakeBridge(video=video_file)
    fake.clips = [clip_info("front_door", T0 - timedelta(minutes=m), 12.5, video_file, m)
                  for m in (0, 30, 60 * 24)]  # fmt: skip
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def config_entry(bridge: FakeBridge) -> MockConfigEntry:
    """The entry of the fake bridge (not added yet)."""
    return MockConfigEntry(
        domain=DOMAIN,
        unique_id=BRIDGE_ID,
        title="Doorstep",
        data={CONF_BASE_TOPIC: BASE, CONF_URL: bridge.url, CONF_API_TOKEN: TOKEN},
        options={},
    )


@pytest.fixture
async def setup_entry(
    hass: HomeAssistant, mqtt: MagicMock, config_entry: MockConfigEntry, bridge: FakeBridge
) -> MockConfigEntry:
    """The entry, set up, with the bridge's retained messages delivered."""
    return await set_up(hass, config_entry, bridge)


async def set_up(
    hass: HomeAssistant, config_entry: MockConfigEntry, bridge: FakeBridge
) -> MockConfigEntry:
    """Set the entry up and deliver the bridge's retained messages."""
    config_entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(config_entry.entry_id)
    await hass.async_block_till_done()
    publish_retained(hass, bridge)
    await hass.async_block_till_done()
    return config_entry


def get_state(hass: HomeAssistant, entity_id: str) -> State:
    """The state of an entity that must exist."""
    found = hass.states.get(entity_id)
    assert found is not None, f"{entity_id} does not exist"
    return found


def find_device(hass: HomeAssistant, identifier: tuple[str, str]) -> DeviceEntry | None:
    """A Doorstep device by identifier, looked up the way the running HA wants.

    HA 2026.8 makes identifiers unique per config entry only, and its
    ``async_get_device`` is deprecated (it raises in tests) for
    ``async_get_device_by_identifier``, which HA 2025.4 does not have.
    """
    registry = dr.async_get(hass)
    by_identifier = getattr(registry, "async_get_device_by_identifier", None)
    if by_identifier is None:
        return registry.async_get_device(identifiers={identifier})
    found = (
        by_identifier(identifier, e.entry_id) for e in hass.config_entries.async_entries(DOMAIN)
    )
    return next((device for device in found if device is not None), None)


def get_device(hass: HomeAssistant, identifier: tuple[str, str]) -> DeviceEntry:
    """A Doorstep device that must exist."""
    found = find_device(hass, identifier)
    assert found is not None, f"no device {identifier}"
    return found


def last_publish(mqtt: MagicMock) -> tuple[str, Any, int, bool]:
    """Topic, payload, QoS and retain flag of the last MQTT publish.

    Only these: HA 2026.6 passes more keywords (``message_expiry_interval``) that
    Doorstep leaves at their defaults.
    """
    call = mqtt.async_publish.call_args
    assert call is not None, "nothing was published"
    names = ("topic", "payload", "qos", "retain")
    given = dict(zip(names, call.args, strict=False)) | {
        name: call.kwargs[name] for name in names if name in call.kwargs
    }
    return given["topic"], given["payload"], given["qos"], given["retain"]


def children(item: BrowseMedia) -> list[BrowseMediaSource]:
    """Children of a media browser node (always media-source nodes here)."""
    assert item.children is not None
    return [cast("BrowseMediaSource", child) for child in item.children]


def publish_as_the_bridge(hass: HomeAssistant, event: Event, *, retain: bool = False) -> str:
    """Send ``event``'s one MQTT message as the bridge does (its own publisher); its payload.

    As a broker forwards it to a client already subscribed: not marked retained.
    """
    sent: list[tuple[str, str]] = []

    class Mqtt:
        topics = Topics(TOPICS.base)

        def publish(self, topic: str, payload: str, **_kwargs: object) -> None:
            sent.append((topic, payload))

    bus = EventBus()
    Publisher(Mqtt(), bus)  # type: ignore[arg-type]
    bus.publish(event)
    [(topic, payload)] = sent
    async_fire_mqtt_message(hass, topic, payload, retain=retain)
    return payload


def publish_retained(hass: HomeAssistant, bridge: FakeBridge) -> None:
    """What the broker hands a new subscriber: the bridge's retained topics."""
    async_fire_mqtt_message(hass, TOPICS.available, "online", retain=True)
    async_fire_mqtt_message(hass, TOPICS.bridge_info, json.dumps(bridge.info()), retain=True)
    for camera in bridge.cameras:
        async_fire_mqtt_message(hass, TOPICS.camera_available(camera), "online", retain=True)
        async_fire_mqtt_message(hass, TOPICS.motion(camera), "OFF", retain=True)


async def set_mqtt_connected(
    hass: HomeAssistant, mqtt: MagicMock, client: MagicMock, *, connected: bool
) -> None:
    """Home Assistant's own broker connection lost or back, as the paho client reports it.

    ``mqtt`` and ``client`` are the ``mqtt`` and ``mqtt_client_mock`` fixtures. The
    paho callbacks run Home Assistant's real MQTT client: it tells its connection
    listeners and, once connected again, subscribes anew and lets retained messages
    through again (``publish_retained`` plays the broker). ``mqtt.connected`` is what
    ``mqtt.is_connected`` reads: the test plugin's wrapper keeps its own flag.
    """
    mqtt.connected = connected
    if connected:
        client.on_connect(client, None, 0, MockMqttReasonCode())
    else:
        client.on_disconnect(client, None, None, MockMqttReasonCode())
    await hass.async_block_till_done()


def ring(hass: HomeAssistant, camera: str = "front_door", n: int = 1) -> RingEvent:
    """Publish one press as the bridge does."""
    event = RingEvent(id=f"r_{n:012d}", camera=camera, time=T0, source="button")
    async_fire_mqtt_message(hass, TOPICS.ring(camera), json.dumps(event.payload()), qos=1)
    return event
