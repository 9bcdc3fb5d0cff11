"""A camera that refuses the password, seen from a real Home Assistant.

Its own small system (the session's camera works): a GStreamer RTSP camera that
asks for a password, a bridge configured with the wrong one, Mosquitto and a real
Home Assistant set up through its config flows. The camera's status sensor must
read "auth failed", and a repair issue must name the camera and the reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import keep_logs, why_not
from tests.e2e.ha_client import (
    HaClient,
    onboard,
    setup_doorstep_discovered,
    setup_mqtt,
    wait_entry_loaded,
    wait_http,
)
from tests.e2e.servers import (
    CAMERA,
    free_port,
    make_bridge,
    make_home_assistant,
    mosquitto,
)
from tests.e2e.stack import Stack
from tests.support.media import write_h264
from tests.support.servers import rtsp_server

pytestmark = pytest.mark.slow

WRONG_PASSWORD = "not-the-password-e2e"
STATUS = f"sensor.{CAMERA}_status"
ISSUE = "camera_down_{bridge_id}_" + CAMERA


@pytest.fixture(scope="module")
def locked_out(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Mosquitto, a camera asking for a password, a bridge with the wrong one, and HA."""
    why = why_not()
    if why is not None:
        pytest.skip(why)
    work = tmp_path_factory.mktemp("e2e-reasons")
    footage = write_h264(work / "porch.mp4", width=320, height=180, fps=10, seconds=4, gop=10)
    broker, mqtt_port = mosquitto(work)
    with rtsp_server({"/main": footage.path}, auth=("digest", "viewer", "right")) as url:
        host = url.removeprefix("rtsp://")
        bridge = make_bridge(work, mqtt_port, f"rtsp://viewer:{WRONG_PASSWORD}@{host}/main")
        ha = make_home_assistant(work / "ha", free_port(), work / "logs/home-assistant.log")
        running = Stack(work, broker, mqtt_port, bridge, ha, password="owner-e2e-password")
        try:
            running.start()
            asyncio.run(_configure(running))
            yield running
        finally:
            running.stop()
            keep_logs(work, "e2e-logs-reasons")


async def _configure(stack: Stack) -> None:
    """Onboard, then MQTT and Doorstep through their config flows, as a user would."""
    async with aiohttp.ClientSession() as session:
        await wait_http(session, f"{stack.ha.url}/api/onboarding")
        owner = await onboard(session, stack.ha.url, stack.password)
        stack.owner_token = owner.token
        await setup_mqtt(owner, stack.mqtt_port)
        stack.entry_id = await setup_doorstep_discovered(owner, stack.bridge)
        await wait_entry_loaded(owner, stack.entry_id)


@pytest.fixture
async def owner(locked_out: Stack) -> AsyncIterator[HaClient]:
    async with aiohttp.ClientSession() as session:
        yield HaClient(session, locked_out.ha.url, locked_out.owner_token)


async def test_a_wrong_password_is_named_by_the_sensor_and_a_repair(
    locked_out: Stack, owner: HaClient
) -> None:
    state = await owner.wait_state(STATUS, lambda s: s["state"] == "auth_failed", 120)
    assert "401" in state["attributes"]["detail"]
    assert WRONG_PASSWORD not in str(state)
    # Every other entity of the camera can only say it is unavailable.
    doorbell = await owner.state(f"event.{CAMERA}_doorbell")
    assert doorbell is not None
    assert doorbell["state"] == "unavailable"

    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{locked_out.bridge.url}/api/info",
            headers={"Authorization": f"Bearer {locked_out.bridge.token}"},
        ) as response,
    ):
        bridge_id = (await response.json())["id"]

    issue = await _wait_issue(owner, ISSUE.format(bridge_id=bridge_id))
    assert issue["translation_key"] == "camera_auth_failed"
    assert issue["severity"] == "error"
    assert issue["translation_placeholders"]["camera"] == "Front door"
    assert WRONG_PASSWORD not in str(issue)

    # What the owner reads on the Repairs page, in English and in French.
    for language, words in (("en", "wrong user or password"), ("fr", "mot de passe refusé")):
        async with owner.websocket() as ws:
            strings: dict[str, str] = (
                await ws.call(
                    type="frontend/get_translations",
                    language=language,
                    category="issues",
                    integration=["doorstep"],
                )
            )["resources"]
        prefix = "component.doorstep.issues.camera_auth_failed"
        title = strings[f"{prefix}.title"].format(**issue["translation_placeholders"])
        description = strings[f"{prefix}.description"].format(**issue["translation_placeholders"])
        assert "Front door" in title
        assert words in title.lower()
        assert "401" in description


async def _wait_issue(owner: HaClient, issue_id: str) -> dict[str, Any]:
    """The repair issue, once the integration has raised it (it does so at once for 401)."""
    for _ in range(600):
        async with owner.websocket() as ws:
            issues = (await ws.call(type="repairs/list_issues"))["issues"]
        found = next((i for i in issues if i["issue_id"] == issue_id), None)
        if found is not None:
            return dict(found)
        await asyncio.sleep(0.2)
    pytest.fail(f"no repair issue {issue_id}: {issues}")
