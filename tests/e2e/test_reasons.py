"""A camera that refuses the password, seen from a real Home Assistant.

Its own small system (the session's camera works): a GStreamer RTSP camera that
asks for a password, a bridge configured with the wrong one, Mosquitto and a real
Home Assistant set up through its config flows. The camera's status sensor must
read "auth failed", and a repair issue must name the camera and the reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from tests.e2e.conftest import own_stack, why_not
from tests.e2e.ha_client import HaClient
from tests.e2e.servers import CAMERA
from tests.e2e.stack import Stack, bridge_id
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
    with rtsp_server({"/main": footage.path}, auth=("digest", "viewer", "right")) as url:
        host = url.removeprefix("rtsp://")
        source = f"rtsp://viewer:{WRONG_PASSWORD}@{host}/main"
        with own_stack(work, source, "e2e-logs-reasons") as running:
            yield running


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

    issue = await owner.wait_repair_issue(ISSUE.format(bridge_id=await bridge_id(locked_out)))
    assert issue is not None
    assert issue["translation_key"] == "camera_auth_failed"
    assert issue["severity"] == "error"
    assert issue["translation_placeholders"]["camera"] == "Front door"
    assert WRONG_PASSWORD not in str(issue)

    # What the owner reads on the Repairs page, in English and in French.
    for language, words in (("en", "wrong user or password"), ("fr", "mot de passe refusé")):
        strings = await owner.issue_strings(language)
        prefix = "component.doorstep.issues.camera_auth_failed"
        title = strings[f"{prefix}.title"].format(**issue["translation_placeholders"])
        description = strings[f"{prefix}.description"].format(**issue["translation_placeholders"])
        assert "Front door" in title
        assert words in title.lower()
        assert "401" in description
