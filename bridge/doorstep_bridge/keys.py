"""Typed keys for the objects the aiohttp application owns (no globals)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from doorstep_bridge.camera.manager import CameraManager
    from doorstep_bridge.config import Config
    from doorstep_bridge.doorbell import Doorbell
    from doorstep_bridge.events import EventBus
    from doorstep_bridge.live.stream import LiveHub
    from doorstep_bridge.mqtt.client import MqttClient
    from doorstep_bridge.recording.store import ClipStore
    from doorstep_bridge.sharing.audit import AuditLog
    from doorstep_bridge.sharing.service import ShareService

CONFIG: web.AppKey[Config] = web.AppKey("config")
BUS: web.AppKey[EventBus] = web.AppKey("bus")
API_TOKEN: web.AppKey[str] = web.AppKey("api_token")
BRIDGE_ID: web.AppKey[str] = web.AppKey("bridge_id")
#: The bridge id was generated at this start: an empty storage folder, a new bridge.
NEW_BRIDGE: web.AppKey[bool] = web.AppKey("new_bridge")
MQTT: web.AppKey[MqttClient] = web.AppKey("mqtt")
DOORBELL: web.AppKey[Doorbell] = web.AppKey("doorbell")
CLIP_STORE: web.AppKey[ClipStore] = web.AppKey("clip_store")
CAMERAS: web.AppKey[CameraManager] = web.AppKey("cameras")
AUDIT: web.AppKey[AuditLog] = web.AppKey("audit")
SHARES: web.AppKey[ShareService] = web.AppKey("shares")
LIVE: web.AppKey[LiveHub] = web.AppKey("live")
