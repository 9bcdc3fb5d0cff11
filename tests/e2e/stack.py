"""The whole system on loopback: Mosquitto, a camera, the bridge and a real Home Assistant.

Used by the end-to-end tests, ``scripts/demo`` and ``bench/e2e_latency.py``.
Home Assistant is onboarded over REST and gets its MQTT and Doorstep config
entries through config flows, exactly like a user clicking through the UI.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from tests.e2e.ha_client import (
    OWNER,
    HaClient,
    Phone,
    create_user,
    entity_available,
    login,
    onboard,
    owner_user_id,
    register_phone,
    set_approvers,
    setup_doorstep_discovered,
    setup_doorstep_manual,
    setup_mqtt,
    wait_entry_loaded,
    wait_http,
    wait_notify_services,
)
from tests.e2e.servers import CAMERA, Bridge, HomeAssistant, Service, start_mosquitto


@dataclass
class Stack:
    """Everything running, and what a user or a test needs to reach it."""

    work: Path
    broker: Service
    mqtt_port: int
    bridge: Bridge
    ha: HomeAssistant
    camera: Service | None = None
    owner_token: str = ""
    owner_id: str = ""
    password: str = ""
    entry_id: str = ""
    phones: dict[str, Phone] = field(default_factory=dict)
    users: dict[str, str] = field(default_factory=dict)  # username -> user id

    def start(self) -> None:
        """Start the broker, the bridge and HA, in that order (the camera is the caller's)."""
        start_mosquitto(self.broker, self.mqtt_port)
        self.bridge.start()
        self.ha.start()

    def stop(self) -> None:
        """Stop in the reverse order of start: HA, bridge, camera, broker."""
        for service in (self.ha.service, self.bridge.service, self.camera, self.broker):
            if service is not None:
                service.stop()

    def credentials(self) -> dict[str, Any]:
        """What a person needs to log in."""
        return {
            "url": self.ha.url,
            "username": OWNER,
            "password": self.password,
            "token": self.owner_token,
        }


async def configure_owner_only(stack: Stack) -> None:
    """Onboard, then MQTT and Doorstep through their config flows: no phones, no approvers."""
    async with aiohttp.ClientSession() as session:
        await wait_http(session, f"{stack.ha.url}/api/onboarding")
        owner = await onboard(session, stack.ha.url, stack.password)
        stack.owner_token = owner.token
        await setup_mqtt(owner, stack.mqtt_port)
        stack.entry_id = await setup_doorstep_discovered(owner, stack.bridge)
        await wait_entry_loaded(owner, stack.entry_id)


async def bridge_id(stack: Stack) -> str:
    """The bridge's id, from its own API (repair issues are named after it)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{stack.bridge.url}/api/info",
            headers={"Authorization": f"Bearer {stack.bridge.token}"},
        ) as response,
    ):
        return str((await response.json())["id"])


async def bridge_clips(session: aiohttp.ClientSession, stack: Stack) -> list[dict[str, Any]]:
    """The camera's clips, newest first, from the bridge's own API."""
    headers = {"Authorization": f"Bearer {stack.bridge.token}"}
    url = f"{stack.bridge.url}/api/clips?camera={CAMERA}&limit=500"
    async with session.get(url, headers=headers) as response:
        assert response.status == 200
        return list((await response.json())["clips"])


async def configure_home_assistant(
    stack: Stack, *, guest_password: str | None = None, discovery: bool = True
) -> None:
    """Onboard, register phones, set up MQTT and Doorstep with the owner as approver."""
    async with aiohttp.ClientSession() as session:
        await wait_http(session, f"{stack.ha.url}/api/onboarding")
        owner = await onboard(session, stack.ha.url, stack.password)
        stack.owner_token = owner.token
        stack.owner_id = await owner_user_id(owner)
        stack.users[OWNER] = stack.owner_id
        stack.phones[OWNER] = await register_phone(owner, "Owner phone")
        if guest_password is not None:
            stack.users["guest"] = await create_user(owner, "Guest", "guest", guest_password)
            guest = HaClient(
                session, stack.ha.url, await login(session, stack.ha.url, "guest", guest_password)
            )
            stack.phones["guest"] = await register_phone(guest, "Guest phone")
        await setup_mqtt(owner, stack.mqtt_port)
        if discovery:
            stack.entry_id = await setup_doorstep_discovered(owner, stack.bridge)
        else:
            stack.entry_id = await setup_doorstep_manual(owner, stack.bridge)
        await wait_entry_loaded(owner, stack.entry_id)
        await wait_notify_services(owner, [p.notify_service for p in stack.phones.values()])
        await set_approvers(
            owner,
            stack.entry_id,
            [stack.owner_id],
            [phone.notify_service for phone in stack.phones.values()],
        )
        await asyncio.sleep(0.5)  # the options update schedules a reload of the entry
        await wait_entry_loaded(owner, stack.entry_id)
        await owner.wait_state(f"event.{CAMERA}_doorbell", entity_available)
