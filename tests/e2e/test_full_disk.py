"""A full disk under a running bridge, seen from a real Home Assistant.

Its own small system (the session's stack must keep recording): the bridge's storage
folder is a real tmpfs, filled by a file as something else on the machine would fill
it. Home Assistant must show a recording problem and a repair naming it, and both
must go once the disk has room and a clip is kept again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
import contextlib
from pathlib import Path
import subprocess
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
from tests.e2e.servers import CAMERA, free_port, make_bridge, make_home_assistant, mosquitto
from tests.e2e.stack import Stack
from tests.support import disk
from tests.support.media import write_h264
from tests.support.servers import rtsp_server

pytestmark = pytest.mark.slow

SENSOR = f"binary_sensor.{CAMERA}_recording_problem"
ISSUE = "recording_problem_{bridge_id}_" + CAMERA


@contextlib.contextmanager
def tmpfs(folder: Path, size: str) -> Iterator[Path]:
    """A tmpfs mounted at ``folder``; always unmounted; skips without root."""
    folder.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {result.stderr!r}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.fixture(scope="module")
def small_disk_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Mosquitto, a camera with a walker every 8 s, a bridge storing on a tmpfs, and HA."""
    why = why_not()
    if why is not None:
        pytest.skip(why)
    work = tmp_path_factory.mktemp("e2e-full-disk")
    footage = write_h264(
        work / "porch.mp4", width=320, height=180, fps=10, seconds=8, gop=10, motion=(2.0, 4.0)
    )
    broker, mqtt_port = mosquitto(work)
    # Room for the bridge's 256 MiB margin (retention makes room below it) and some clips.
    with (
        tmpfs(work / "bridge-data", "320m"),
        rtsp_server({"/main": footage.path}) as url,
    ):
        camera = {
            "record": {"pre_roll": 1.0, "post_roll": 0.5},
            "motion": {"frames_to_start": 2, "off_delay": 0.5},
        }
        bridge = make_bridge(work, mqtt_port, f"{url}/main", camera)
        ha = make_home_assistant(work / "ha", free_port(), work / "logs/home-assistant.log")
        running = Stack(work, broker, mqtt_port, bridge, ha, password="owner-e2e-password")
        try:
            running.start()
            asyncio.run(_configure(running))
            yield running
        finally:
            running.stop()
            keep_logs(work, "e2e-logs-full-disk")


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
async def owner(small_disk_stack: Stack) -> AsyncIterator[HaClient]:
    async with aiohttp.ClientSession() as session:
        yield HaClient(session, small_disk_stack.ha.url, small_disk_stack.owner_token)


async def test_a_full_disk_is_a_problem_and_a_repair_until_a_clip_is_kept_again(
    small_disk_stack: Stack, owner: HaClient
) -> None:
    storage = small_disk_stack.work / "bridge-data"
    # Recording works: a clip is kept, and nothing is wrong.
    await owner.wait_state(
        f"sensor.{CAMERA}_last_clip", lambda s: s["state"] not in ("unknown", "unavailable"), 90
    )
    assert (await owner.wait_state(SENSOR, lambda s: s["state"] == "off", 30))["state"] == "off"
    bridge_id = await _bridge_id(small_disk_stack)
    issue_id = ISSUE.format(bridge_id=bridge_id)
    assert await _issue(owner, issue_id) is None

    filler = disk.fill(storage, leave=0)  # something else fills the disk
    try:
        # First at risk (retention cannot make room), then stopped (the next clip fails),
        # and that stands while the disk stays full.
        state = await owner.wait_state(
            SENSOR,
            lambda s: (
                s["state"] == "on" and not s["attributes"]["problem"].startswith("disk almost full")
            ),
            60,
        )
        problem = state["attributes"]["problem"]
        issue = await _wait_issue(
            owner, issue_id, lambda i: i and i["translation_placeholders"]["problem"] == problem
        )
        assert issue is not None
        assert issue["translation_key"] == "recording_problem"
        assert issue["translation_placeholders"]["camera"] == "Front door"
        # What the owner reads on the Repairs page, in English and in French.
        for language, words in (("en", "recording fails"), ("fr", "l'enregistrement échoue")):
            async with owner.websocket() as ws:
                strings: dict[str, str] = (
                    await ws.call(
                        type="frontend/get_translations",
                        language=language,
                        category="issues",
                        integration=["doorstep"],
                    )
                )["resources"]
            prefix = "component.doorstep.issues.recording_problem"
            placeholders = issue["translation_placeholders"]
            assert words in strings[f"{prefix}.title"].format(**placeholders)
            assert problem in strings[f"{prefix}.description"].format(**placeholders)
        await asyncio.sleep(5)  # two more attempts fail meanwhile: the same problem
        assert (await owner.state(SENSOR) or {}).get("attributes", {}).get("problem") == problem
    finally:
        filler.unlink()  # room again

    await owner.wait_state(SENSOR, lambda s: s["state"] == "off", 90)
    assert await _wait_issue(owner, issue_id, lambda i: i is None) is None


async def _bridge_id(stack: Stack) -> str:
    async with (
        aiohttp.ClientSession() as session,
        session.get(
            f"{stack.bridge.url}/api/info",
            headers={"Authorization": f"Bearer {stack.bridge.token}"},
        ) as response,
    ):
        return str((await response.json())["id"])


async def _issue(owner: HaClient, issue_id: str) -> dict[str, Any] | None:
    async with owner.websocket() as ws:
        issues = (await ws.call(type="repairs/list_issues"))["issues"]
    found = next((i for i in issues if i["issue_id"] == issue_id), None)
    return dict(found) if found is not None else None


async def _wait_issue(
    owner: HaClient, issue_id: str, predicate: Callable[[Any], bool]
) -> dict[str, Any] | None:
    """The repair issue (None: there is none) once ``predicate`` holds for it."""
    found = None
    for _ in range(300):
        found = await _issue(owner, issue_id)
        if predicate(found):
            return found
        await asyncio.sleep(0.2)
    pytest.fail(f"repair issue {issue_id}: {found}")
