"""Run the real bridge application in-process for tests (real broker, real HTTP)."""

from __future__ import annotations

from collections.abc import AsyncIterator
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import ClientSession, web

from doorstep_bridge.app import create_app
from doorstep_bridge.config import Config, parse_config
from doorstep_bridge.keys import API_TOKEN, MQTT
from tests.bridge.conftest import Broker, free_port


def bridge_config(broker: Broker, storage: Path, **overrides: Any) -> Config:
    """A config for one demo camera against `broker`, with `overrides` merged per section."""
    raw: dict[str, Any] = {
        "mqtt": {"host": broker.host, "port": broker.port, "keepalive": 5},
        "http": {"host": "127.0.0.1", "port": free_port()},
        "storage": {"path": str(storage)},
        "cameras": {"front_door": {"source": "demo://", "doorbell": {"debounce": 0.5}}},
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return parse_config(raw, storage)


@dataclass
class RunningBridge:
    """A started bridge: its app, HTTP base URL and API token."""

    app: web.Application
    url: str
    token: str
    session: ClientSession

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def wait_mqtt(self, timeout: float = 10.0) -> None:
        """Wait until the bridge is connected and all its subscriptions are active."""
        assert await self.app[MQTT].wait_subscribed(timeout), "bridge did not connect to MQTT"


@contextlib.asynccontextmanager
async def run_bridge(config: Config) -> AsyncIterator[RunningBridge]:
    """Start the bridge app on its configured HTTP port; stop it cleanly afterwards."""
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.http.host, config.http.port)
    await site.start()
    url = f"http://{config.http.host}:{config.http.port}"
    async with ClientSession() as session:
        try:
            yield RunningBridge(app, url, app[API_TOKEN], session)
        finally:
            await runner.cleanup()
