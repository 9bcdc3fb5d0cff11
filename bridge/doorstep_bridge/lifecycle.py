"""Start-up and shutdown of every long-lived service: the one place that wires them.

Each service is an aiohttp ``cleanup_ctx``: set up in the order of
:data:`SERVICES` at start, torn down in reverse at stop. Feature packages export
plain classes that take their own settings and collaborators; only this module
(and the HTTP handlers, the edge) reads and writes the app keys of `keys`.

The order matters:

- the storage folder is locked before anything else: a second bridge started on
  it by mistake stops there, before it touches the clips the first is recording
  or takes its place on the broker;
- the audit log is first up, last down: everything else may write to it;
- the broker client outlives the cameras, so the last clip and ``offline``
  still reach MQTT;
- the connection to the broker opens last, once every subscription is in place:
  the persistent session may deliver what was sent while the bridge was down
  right after the CONNACK, and it must find its handler. What is published
  before that is queued: the bridge info without a removed camera reaches the
  broker before that camera's retained topics are cleared.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
import contextlib
import logging
import os
import sqlite3
from typing import TypeAlias
from urllib.parse import urlsplit

from aiohttp import web

from doorstep_bridge import egress
from doorstep_bridge.camera.manager import CameraManager
from doorstep_bridge.clock import Clock, SteadyClock, steady_seconds
from doorstep_bridge.config import Config
from doorstep_bridge.doorbell import Doorbell
from doorstep_bridge.events import EventBus, PersonChanged
from doorstep_bridge.exceptions import StorageError
from doorstep_bridge.identity import (
    api_token,
    bridge_id,
    ensure_storage,
    lock_storage,
    mqtt_client_id,
)
from doorstep_bridge.keys import (
    API_TOKEN,
    AUDIT,
    BRIDGE_ID,
    BUS,
    CAMERAS,
    CLIP_STORE,
    CONFIG,
    DOORBELL,
    LIVE,
    MQTT,
    NEW_BRIDGE,
    SHARES,
)
from doorstep_bridge.live.stream import LiveHub
from doorstep_bridge.models import ClipInfo, iso, utcnow
from doorstep_bridge.mqtt.client import MqttClient
from doorstep_bridge.mqtt.commands import subscribe_camera_commands
from doorstep_bridge.mqtt.publisher import (
    Publisher,
    bridge_info,
    clear_stale_retained,
    publish_egress,
    start_lookups,
)
from doorstep_bridge.recording.store import ClipStore
from doorstep_bridge.sharing.audit import AuditLog, audit_dir
from doorstep_bridge.sharing.clips import ClipSource
from doorstep_bridge.sharing.exports import Renderer
from doorstep_bridge.sharing.render import render
from doorstep_bridge.sharing.service import ShareService, share_files_dir

_LOGGER = logging.getLogger(__name__)

CleanupContext: TypeAlias = Callable[[web.Application], AsyncIterator[None]]


def _unsubscribe_all(unsubscribes: Sequence[Callable[[], None]]) -> None:
    for unsubscribe in unsubscribes:
        unsubscribe()


async def storage_lock_ctx(app: web.Application) -> AsyncIterator[None]:
    """Hold the storage folder for this bridge alone; refuse to start when another holds it."""
    lock = lock_storage(app[CONFIG].storage.path)
    try:
        yield
    finally:
        if lock is not None:
            os.close(lock)


async def identity_ctx(app: web.Application) -> AsyncIterator[None]:
    """Storage folder, bridge id and API token (generated on first start)."""
    storage = app[CONFIG].storage.path
    ensure_storage(storage)
    app[BRIDGE_ID], app[NEW_BRIDGE] = bridge_id(storage)
    app[API_TOKEN] = api_token(storage, app[CONFIG].http.token)
    yield


async def audit_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open ``<storage>/audit`` for everything that writes to it.

    A log that does not verify is refused (`AuditError`): the bridge does not
    start sharing on top of a damaged history. Retention deletions are written by
    the camera manager itself (``clip_deleted``), in the thread that deletes.
    """
    app[AUDIT] = await asyncio.to_thread(AuditLog, audit_dir(app[CONFIG].storage.path))
    yield


async def clip_store_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the clip store (and repair what a crash left) at start-up, close it at shutdown."""
    store = ClipStore(app[CONFIG].storage.path)
    for event in await asyncio.to_thread(store.open):
        _LOGGER.info("Clip store: %s %s (%s)", event.action, event.clip_id, event.detail)
    app[CLIP_STORE] = store
    yield
    await asyncio.to_thread(store.close)


async def mqtt_ctx(app: web.Application) -> AsyncIterator[None]:
    """Own the broker client for the bridge's lifetime; ``offline`` on a clean stop.

    The connection itself is opened by :func:`mqtt_connect_ctx`.
    """
    config = app[CONFIG]
    earlier: str | None = None
    if config.mqtt.client_id:
        client_id = config.mqtt.client_id
    else:
        client_id, earlier = mqtt_client_id(
            config.storage.path, app[BRIDGE_ID], new_bridge=app[NEW_BRIDGE]
        )
    client = MqttClient(config.mqtt, client_id=client_id)
    app[MQTT] = client
    ending = None if earlier is None else asyncio.create_task(_end_session(client, earlier))
    yield
    if ending is not None:
        ending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ending
    await client.stop()


#: Seconds between attempts at ending the earlier client id's session.
END_SESSION_RETRY = 30.0


async def _end_session(client: MqttClient, earlier: str) -> None:
    """End the persistent session of the client id an older version used.

    Nobody connects under it any more: the broker would keep it, and queue the
    doorbell's presses in it, for good.
    """
    while True:
        await client.wait_connected()
        if await client.end_session(earlier):
            # Not the new id: a log shared for help must not hand it out.
            _LOGGER.info(
                "Ended the MQTT session of the client id the bridge used before (%s); its"
                " client id now has a random part, kept in the storage folder",
                earlier,
            )
            return
        await asyncio.sleep(END_SESSION_RETRY)


async def publisher_ctx(app: web.Application) -> AsyncIterator[None]:
    """Mirror bus events to MQTT and publish the bridge info."""
    publisher = Publisher(app[MQTT], app[BUS])
    publisher.publish_info(bridge_info(app[CONFIG], app[BRIDGE_ID]))
    yield
    publisher.close()


def egress_endpoints(config: Config) -> list[egress.Endpoint]:
    """What the bridge may connect to: the broker, the cameras, its own HTTP API."""
    endpoints = [
        egress.Endpoint(config.mqtt.host, config.mqtt.port),
        egress.Endpoint(config.http.host, config.http.port),
    ]
    for camera in config.cameras.values():
        for source in (camera.source, camera.detect_source):
            host = urlsplit(source).hostname if source and "://" in source else None
            if host:
                endpoints.append(egress.Endpoint(host))
    return endpoints


async def egress_ctx(app: web.Application) -> AsyncIterator[None]:
    """Put the egress guard in force before anything connects; lift it at the very end."""
    mqtt = app[MQTT]
    audit = app[AUDIT]
    reporter = egress.EgressReporter(
        asyncio.get_running_loop(),
        audit=lambda record: audit.append("connection_blocked", **record),
        publish=lambda report: publish_egress(mqtt, report),
    )
    guard = egress.EgressGuard(egress.EgressPolicy(egress_endpoints(app[CONFIG])), reporter.blocked)
    publish_egress(mqtt, reporter.report())
    egress.activate(guard)
    try:
        yield
    finally:
        egress.deactivate(guard)
        await reporter.close()


async def doorbell_ctx(app: web.Application) -> AsyncIterator[None]:
    """Create the doorbell and subscribe its MQTT inputs."""
    cameras = {name: camera.doorbell for name, camera in app[CONFIG].cameras.items()}
    doorbell = Doorbell(cameras, app[BUS], app[MQTT], asyncio.get_running_loop())
    app[DOORBELL] = doorbell
    unsubscribes = doorbell.subscribe()
    yield
    _unsubscribe_all(unsubscribes)


async def cameras_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start every camera (and retention); stop them at shutdown."""
    audit = app.get(AUDIT)

    def on_ring(camera: str) -> object:
        return app[DOORBELL].press(camera, "demo")

    def audit_deletion(clip: ClipInfo, why: str) -> None:
        if audit is not None:
            audit.append(
                "clip_deleted", clip=clip.id, camera=clip.camera, start=iso(clip.start), why=why
            )

    config = app[CONFIG]
    manager = CameraManager(
        config.cameras,
        config.storage,
        app[BUS],
        app[CLIP_STORE],
        on_ring,
        on_delete=audit_deletion,
    )
    app[CAMERAS] = manager
    sightings = _SightingLog(app[CLIP_STORE])
    unsubscribe = app[BUS].subscribe(PersonChanged, sightings.changed)
    await manager.start()
    yield
    await manager.stop()
    unsubscribe()
    await sightings.drain()


class _SightingLog:
    """Writes person sightings to the clip store, in order (retention keeps ``person`` clips)."""

    def __init__(self, store: ClipStore) -> None:
        self._store = store
        self._last: asyncio.Task[None] | None = None

    def changed(self, event: PersonChanged) -> None:
        previous = self._last

        async def write() -> None:
            if previous is not None:
                await asyncio.gather(previous, return_exceptions=True)
            try:
                await asyncio.to_thread(
                    self._store.person_seen, event.camera, event.time, active=event.active
                )
            except (StorageError, sqlite3.Error) as err:
                _LOGGER.error("Cannot record a person sighting of %s: %s", event.camera, err)  # noqa: TRY400

        self._last = asyncio.ensure_future(write())

    async def drain(self) -> None:
        if self._last is not None:
            await self._last


async def commands_ctx(app: web.Application) -> AsyncIterator[None]:
    """Route camera commands (record now, switches) from MQTT to the camera manager."""
    manager = app[CAMERAS]

    def set_switch(camera: str, switch: str, on: bool) -> object:
        return manager.set_switch(camera, switch, on, via="MQTT")

    unsubscribes = subscribe_camera_commands(app[MQTT], app[BUS], manager.cameras, set_switch)
    yield
    _unsubscribe_all(unsubscribes)


async def shares_ctx(app: web.Application) -> AsyncIterator[None]:
    """Start the share service and listen for requests on ``<b>/share/request``."""
    mqtt = app[MQTT]
    service = share_service(app[CONFIG], app[BUS], app[CLIP_STORE], app[AUDIT])
    await service.start()
    app[SHARES] = service

    def on_request(_topic: str, payload: bytes) -> None:
        service.handle_mqtt_request(payload)

    unsubscribe = mqtt.subscribe(mqtt.topics.share_request, on_request)
    try:
        yield
    finally:
        unsubscribe()
        await service.stop()


def share_service(
    config: Config,
    bus: EventBus,
    clip_store: ClipSource,
    audit: AuditLog,
    *,
    clock: Clock = utcnow,
    steady: SteadyClock = steady_seconds,
    renderer: Renderer = render,
) -> ShareService:
    """The share service for ``config``: given only what sharing needs of it."""
    return ShareService(
        config.sharing,
        share_files_dir(config.storage.path),
        {name: camera.privacy_masks for name, camera in config.cameras.items()},
        bus=bus,
        clip_store=clip_store,
        audit=audit,
        clock=clock,
        steady=steady,
        renderer=renderer,
    )


async def live_ctx(app: web.Application) -> AsyncIterator[None]:
    """The live view hub: sources open only while someone watches."""
    # Masks on a detect stream are placed from the main stream's size as the camera
    # pipeline reads it now, so the live view follows a camera that changes it.
    # MJPEG cameras are watched over the pipeline's own connection: many serve one client.
    cameras = app[CAMERAS]
    app[LIVE] = LiveHub(
        app[CONFIG].cameras, main_size=cameras.main_size, shared_source=cameras.live_source
    )
    yield
    await app[LIVE].close()


async def mqtt_connect_ctx(app: web.Application) -> AsyncIterator[None]:
    """Open the broker connection, after every subscription is registered.

    Once connected, what earlier runs left retained and nobody publishes any more is
    cleared: removed cameras, a previous base topic, an announcement of this bridge
    under an earlier id.
    """
    # Asked before start(): the broker answers it before the bridge's own messages.
    found_at_connect = app[MQTT].retained_at_connect(start_lookups(app[MQTT].topics))
    await app[MQTT].start()
    removed_cameras = asyncio.create_task(
        clear_stale_retained(app[MQTT], found_at_connect, app[CONFIG].cameras, app[BRIDGE_ID]),
        name="clear-stale-retained",
    )
    yield
    removed_cameras.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await removed_cameras


#: Every long-lived service, in start-up order (shutdown runs it backwards).
SERVICES: tuple[CleanupContext, ...] = (
    storage_lock_ctx,  # first: a second bridge on the folder stops before touching it
    identity_ctx,
    audit_ctx,  # first up, last down: everything else may write to it
    clip_store_ctx,
    mqtt_ctx,  # outlives the cameras: the last clip and "offline" still go out
    publisher_ctx,
    egress_ctx,  # before anything connects (the broker connects last)
    doorbell_ctx,
    cameras_ctx,
    commands_ctx,
    shares_ctx,
    live_ctx,
    mqtt_connect_ctx,  # last: every subscription is in place when messages arrive
)
