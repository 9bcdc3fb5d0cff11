"""A full disk under a running bridge, seen from a real Home Assistant.

Its own small system (the session's stack must keep recording): the bridge's storage
folder is a real tmpfs, filled by a file as something else on the machine would fill
it. Home Assistant must show a recording problem and a repair naming it, and both
must go once the disk has room and a clip is kept again.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from tests.e2e.conftest import own_stack, why_not
from tests.e2e.ha_client import HaClient
from tests.e2e.servers import CAMERA
from tests.e2e.stack import Stack, bridge_id
from tests.support import disk
from tests.support.media import write_h264
from tests.support.servers import rtsp_server

pytestmark = pytest.mark.slow

SENSOR = f"binary_sensor.{CAMERA}_recording_problem"
ISSUE = "recording_problem_{bridge_id}_" + CAMERA


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
    camera = {
        "record": {"pre_roll": 1.0, "post_roll": 0.5},
        "motion": {"frames_to_start": 2, "off_delay": 0.5},
    }
    # The bridge's storage folder (make_bridge's): room for its 256 MiB margin (retention
    # makes room below it) and some clips.
    with (
        disk.tmpfs(work / "bridge-data", "320m"),
        rtsp_server({"/main": footage.path}) as url,
        own_stack(work, f"{url}/main", "e2e-logs-full-disk", camera) as running,
    ):
        yield running


@pytest.fixture
async def owner(small_disk_stack: Stack) -> AsyncIterator[HaClient]:
    async with aiohttp.ClientSession() as session:
        yield HaClient(session, small_disk_stack.ha.url, small_disk_stack.owner_token)


async def test_a_full_disk_is_a_problem_and_a_repair_until_a_clip_is_kept_again(
    small_disk_stack: Stack, owner: HaClient
) -> None:
    storage = small_disk_stack.work / "bridge-data"
    # Recording works: a clip is kept, and nothing is wrong.
    await owner.wait_for_a_clip(CAMERA, 90)
    assert (await owner.wait_state(SENSOR, lambda s: s["state"] == "off", 30))["state"] == "off"
    issue_id = ISSUE.format(bridge_id=await bridge_id(small_disk_stack))
    assert await owner.repair_issue(issue_id) is None

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
        issue = await owner.wait_repair_issue(
            issue_id,
            lambda i: i is not None and i["translation_placeholders"]["problem"] == problem,
        )
        assert issue is not None
        assert issue["translation_key"] == "recording_problem"
        assert issue["translation_placeholders"]["camera"] == "Front door"
        # What the owner reads on the Repairs page, in English and in French.
        for language, words in (("en", "recording fails"), ("fr", "l'enregistrement échoue")):
            strings = await owner.issue_strings(language)
            prefix = "component.doorstep.issues.recording_problem"
            placeholders = issue["translation_placeholders"]
            assert words in strings[f"{prefix}.title"].format(**placeholders)
            assert problem in strings[f"{prefix}.description"].format(**placeholders)
        await asyncio.sleep(5)  # two more attempts fail meanwhile: the same problem
        assert (await owner.state(SENSOR) or {}).get("attributes", {}).get("problem") == problem
    finally:
        filler.unlink()  # room again

    await owner.wait_state(SENSOR, lambda s: s["state"] == "off", 90)
    assert await owner.wait_repair_issue(issue_id, lambda i: i is None) is None
