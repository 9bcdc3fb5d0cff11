"""Privacy masks drawn for another picture size, seen from a real Home Assistant.

Its own small system: a GStreamer RTSP camera sending 320x180, a bridge whose storage
says the camera's masks were drawn while it sent 640x360 (the owner has since lowered
the camera's resolution), Mosquitto and a real Home Assistant. A repair issue must name
the camera and both sizes, and go once the masks are redrawn for the new size.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
import json
from pathlib import Path

import aiohttp
import pytest
import yaml

from doorstep_bridge.camera.mask_sizes import FILE_NAME, masks_digest
from tests.e2e.conftest import own_stack, why_not
from tests.e2e.ha_client import HaClient
from tests.e2e.servers import CAMERA
from tests.e2e.stack import Stack, bridge_id
from tests.support.media import write_h264
from tests.support.servers import rtsp_server

pytestmark = pytest.mark.slow

#: The neighbour's window, drawn on a 640x360 snapshot.
MASK = [[400, 0], [640, 0], [640, 120], [400, 120]]
ISSUE = "privacy_masks_misplaced_{bridge_id}_" + CAMERA


@pytest.fixture(scope="module")
def resized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    why = why_not()
    if why is not None:
        pytest.skip(why)
    work = tmp_path_factory.mktemp("e2e-masks")
    footage = write_h264(work / "porch.mp4", width=320, height=180, fps=10, seconds=4, gop=10)
    storage = work / "bridge-data"
    storage.mkdir(mode=0o700)
    # What the bridge kept while the camera sent 640x360.
    drawn = {CAMERA: {"masks": masks_digest([tuple((x, y) for x, y in MASK)]), "size": [640, 360]}}
    (storage / FILE_NAME).write_text(json.dumps(drawn), encoding="utf-8")
    with (
        rtsp_server({"/main": footage.path}) as url,
        own_stack(work, f"{url}/main", "e2e-logs-masks", {"privacy_masks": [MASK]}) as running,
    ):
        yield running


@pytest.fixture
async def owner(resized: Stack) -> AsyncIterator[HaClient]:
    async with aiohttp.ClientSession() as session:
        yield HaClient(session, resized.ha.url, resized.owner_token)


async def test_masks_for_another_picture_size_raise_a_repair_until_redrawn(
    resized: Stack, owner: HaClient
) -> None:
    issue_id = ISSUE.format(bridge_id=await bridge_id(resized))
    issue = await owner.wait_repair_issue(issue_id)
    assert issue is not None
    assert issue["translation_key"] == "privacy_masks_misplaced"
    assert issue["severity"] == "error"
    placeholders = issue["translation_placeholders"]
    assert placeholders["camera"] == "Front door"
    assert placeholders["problem"] == (
        "the privacy masks were drawn while the camera sent 640x360 frames; it now sends 320x180"
    )
    # What the owner reads on the Repairs page, in English and in French.
    for language, words in (("en", "do not fit"), ("fr", "ne correspondent pas")):
        strings = await owner.issue_strings(language)
        prefix = "component.doorstep.issues.privacy_masks_misplaced"
        title = strings[f"{prefix}.title"].format(**placeholders)
        description = strings[f"{prefix}.description"].format(**placeholders)
        assert "Front door" in title
        assert words in title
        assert "640x360" in description
        assert f"cameras.{CAMERA}.privacy_masks" in description
    log = await asyncio.to_thread(resized.bridge.service.log_path.read_text, encoding="utf-8")
    assert "Camera front_door now sends 320x180 frames" in log

    await asyncio.to_thread(redraw_masks, resized)
    assert await owner.wait_repair_issue(issue_id, lambda found: found is None) is None


def redraw_masks(stack: Stack) -> None:
    """What the owner does: masks drawn on a snapshot of the picture sent now; a restart."""
    config_path: Path = stack.bridge.config_path
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    config["cameras"][CAMERA]["privacy_masks"] = [[[x // 2, y // 2] for x, y in MASK]]
    config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    stack.bridge.stop()
    stack.bridge.start()
