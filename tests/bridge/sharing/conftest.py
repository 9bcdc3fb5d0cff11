"""Fixtures for the share workflow: real H.264 clips, a small clip store, a clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
import contextlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
import json
from pathlib import Path
import sys
import threading
import time
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
import av
import numpy as np
import pytest

from doorstep_bridge.config import Config, parse_config
from doorstep_bridge.events import EventBus, ShareStateChanged, StatsChanged
from doorstep_bridge.http.auth import token_middleware
from doorstep_bridge.http.errors import error_middleware
from doorstep_bridge.http.shares import routes as share_routes
from doorstep_bridge.keys import API_TOKEN as API_TOKEN_KEY
from doorstep_bridge.keys import CONFIG, SHARES
from doorstep_bridge.lifecycle import share_service
from doorstep_bridge.models import ClipInfo
from doorstep_bridge.sharing.audit import AuditLog, audit_dir
from doorstep_bridge.sharing.exports import Renderer
from doorstep_bridge.sharing.render import render
from doorstep_bridge.sharing.service import ShareService

from ..conftest import Listener

#: Footage in the tests starts here; "now" is a little later.
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)
MASK = [[0, 0], [96, 0], [96, 64], [0, 64]]
API_TOKEN = "api-token-0123456789abcdef"
REQUESTER_TOKEN = "neighbour-token-0123456789"


def write_clip(
    path: Path,
    *,
    seconds: float = 2.0,
    fps: int = 10,
    size: tuple[int, int] = (320, 240),
    paint: Callable[[np.ndarray[Any, Any], int], None] | None = None,
) -> Path:
    """A real H.264 MP4 (libx264) of noisy frames; `paint(frame_bgr, index)` adds content."""
    width, height = size
    rng = np.random.default_rng(7)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps, options={"preset": "ultrafast"})
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for index in range(round(seconds * fps)):
            image = rng.integers(60, 200, (height, width, 3), dtype=np.uint8)
            if paint is not None:
                paint(image, index)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return path


@dataclass
class FakeClipStore:
    """The clip store protocol over a list of clips, remembering holds."""

    clips: list[ClipInfo] = field(default_factory=list)
    holds: dict[str, tuple[str, ...]] = field(default_factory=dict)
    released: list[str] = field(default_factory=list)

    def add(self, camera: str, path: Path, start: datetime, seconds: float) -> ClipInfo:
        clip = ClipInfo(
            id=f"c_{camera}_{len(self.clips)}",
            camera=camera,
            start=start,
            end=start + timedelta(seconds=seconds),
            reason="motion",
            path=path,
            size=path.stat().st_size,
        )
        self.clips.append(clip)
        return clip

    def clips_between(
        self, cameras: Sequence[str], start: datetime, end: datetime
    ) -> list[ClipInfo]:
        found = [c for c in self.clips if c.camera in cameras and c.end > start and c.start < end]
        return sorted(found, key=lambda c: c.start)

    def hold(self, share_id: str, clip_ids: Sequence[str]) -> None:
        self.holds[share_id] = tuple(clip_ids)

    def release(self, share_id: str) -> None:
        self.holds.pop(share_id, None)
        self.released.append(share_id)


@dataclass
class Clock:
    """A clock the test moves by hand: the wall clock, and a steady one nobody sets."""

    now: datetime = T0 + timedelta(minutes=30)
    seconds: float = 1000.0

    def __call__(self) -> datetime:
        return self.now

    def steady(self) -> float:
        return self.seconds

    def advance(self, **delta: float) -> None:
        """Time passes."""
        self.now += timedelta(**delta)
        self.seconds += timedelta(**delta).total_seconds()

    def step(self, **delta: float) -> None:
        """The wall clock is set (NTP, by hand) while no time passes."""
        self.now += timedelta(**delta)


def make_config(tmp_path: Path, **sharing: Any) -> Config:
    return parse_config(
        {
            "mqtt": {"host": "127.0.0.1", "port": 1883, "base_topic": "doorstep"},
            "http": {"token": API_TOKEN},
            "storage": {"path": str(tmp_path / "data")},
            "cameras": {
                "front_door": {"source": "rtsp://192.0.2.10/stream", "privacy_masks": [MASK]},
                "back_yard": {"source": "rtsp://192.0.2.11/stream"},
            },
            "sharing": {"requester_tokens": {"Neighbour Alice": REQUESTER_TOKEN}, **sharing},
        }
    )


@dataclass
class Harness:
    """A share service with everything around it observable."""

    config: Config
    store: FakeClipStore
    clock: Clock
    bus: EventBus
    audit: AuditLog
    service: ShareService
    states: list[dict[str, Any]]
    stats: list[dict[str, Any]]
    changed: asyncio.Event

    async def wait_state(
        self, share_id: str, *states: str, timeout: float = 30.0
    ) -> dict[str, Any]:
        """Wait until the share reaches one of `states` (renders run in a thread)."""
        async with asyncio.timeout(timeout):
            while True:
                view = self.service.get(share_id)
                current = None if view is None else view.payload()
                if current is not None and current["state"] in states:
                    return current
                self.changed.clear()
                await self.changed.wait()

    def kinds(self) -> list[str]:
        """Kinds of the audit records after ``log_created`` (the log's first)."""
        return [record["kind"] for record in self.audit.records()[1:]]

    def request(self, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "requester": "Neighbour Alice",
            "cameras": ["front_door"],
            "start": (T0 + timedelta(seconds=0.5)).isoformat(),
            "end": (T0 + timedelta(seconds=1.5)).isoformat(),
            "reason": "Parcel went missing",
        }
        body.update(overrides)
        return body

    async def restart(self) -> None:
        await self.service.stop()
        self.service = share_service(
            self.config,
            self.bus,
            self.store,
            self.audit,
            clock=self.clock,
            steady=self.clock.steady,
        )
        await self.service.start()


async def make_harness(tmp_path: Path, *, renderer: Renderer = render, **sharing: Any) -> Harness:
    """A started share service on fake clips; ``renderer`` stands in for the real render."""
    config = make_config(tmp_path, **sharing)
    store = FakeClipStore()
    clips = tmp_path / "clips"
    clips.mkdir()
    store.add("front_door", write_clip(clips / "front.mp4"), T0, 2.0)
    store.add("back_yard", write_clip(clips / "back.mp4", size=(160, 120)), T0, 2.0)
    clock = Clock()
    bus = EventBus()
    audit = AuditLog(audit_dir(config.storage.path))
    states: list[dict[str, Any]] = []
    stats: list[dict[str, Any]] = []
    changed = asyncio.Event()

    def on_state(event: ShareStateChanged) -> None:
        # As the MQTT edge sends it (a forgotten share: an empty payload).
        states.append({} if event.view is None else event.view.payload())
        changed.set()

    bus.subscribe(ShareStateChanged, on_state)
    bus.subscribe(StatsChanged, lambda event: stats.append(event.stats))
    service = share_service(
        config, bus, store, audit, clock=clock, steady=clock.steady, renderer=renderer
    )
    await service.start()
    return Harness(config, store, clock, bus, audit, service, states, stats, changed)


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    h = await make_harness(tmp_path)
    yield h
    await h.service.stop()


@dataclass
class Connections:
    """Every socket.connect / getaddrinfo the process makes while `active`."""

    active: bool = False
    connects: list[Any] = field(default_factory=list)
    lookups: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def hook(self, event: str, args: tuple[Any, ...]) -> None:
        if not self.active:
            return
        if event == "socket.connect":
            with self.lock:
                self.connects.append(args[1])
        elif event == "socket.getaddrinfo":
            with self.lock:
                self.lookups.append(args[0])


CONNECTIONS = Connections()
sys.addaudithook(CONNECTIONS.hook)  # audit hooks cannot be removed: one for the whole session


def share_state(listener: Listener, *, timeout: float = 30.0, **match: Any) -> dict[str, Any]:
    """The next share state on `doorstep/share/<id>` whose fields match.

    Messages after the match stay queued for the next call.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = listener.drain(settle=0.1)
        for index, (topic, payload, _retain) in enumerate(items):
            if not topic.startswith("doorstep/share/s_"):
                continue
            try:
                state: dict[str, Any] = json.loads(payload)
            except ValueError:
                continue
            if all(state.get(key) == value for key, value in match.items()):
                listener.seen[:0] = items[index + 1 :]
                return state
    pytest.fail(f"no share state matching {match} in {timeout} s")


@contextlib.asynccontextmanager
async def share_routes_client(
    tmp_path: Path,
) -> AsyncIterator[tuple[Harness, TestClient[Any, Any]]]:
    """The share routes as the bridge serves them (error and token middleware)."""
    harness = await make_harness(tmp_path)
    app = web.Application(middlewares=[error_middleware, token_middleware])
    app[CONFIG] = harness.config
    app[API_TOKEN_KEY] = API_TOKEN
    app[SHARES] = harness.service
    app.add_routes(share_routes)
    client = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield harness, client
    finally:
        await client.close()
        await harness.service.stop()
