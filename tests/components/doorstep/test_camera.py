"""The live camera: on the camera's device, a still and an MJPEG stream behind HA's login."""

from __future__ import annotations

from http import HTTPStatus

from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
import pytest
from pytest_homeassistant_custom_component.common import async_fire_mqtt_message
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.doorstep.entity import camera_identifier

from .conftest import BRIDGE_ID, TOKEN, TOPICS, FakeBridge, get_device, get_state

pytestmark = pytest.mark.usefixtures("setup_entry")

ENTITY = "camera.front_door"
#: HA's camera views answer 401 or 403 (versions differ) without a login or a valid token.
REFUSED = {HTTPStatus.UNAUTHORIZED, HTTPStatus.FORBIDDEN}


def live_requests(bridge: FakeBridge, name: str) -> list[dict[str, str]]:
    path = f"/api/cameras/front_door/{name}"
    return [headers for _method, url, headers in bridge.requests if url == path]


async def test_the_camera_is_on_the_camera_device(hass: HomeAssistant) -> None:
    state = get_state(hass, ENTITY)
    assert state.state == "streaming"
    assert state.attributes["friendly_name"] == "Front door"
    entry = er.async_get(hass).async_get(ENTITY)
    assert entry is not None
    assert entry.unique_id == f"{BRIDGE_ID}_front_door_live"
    assert entry.translation_key == "live"
    assert entry.device_id == get_device(hass, camera_identifier(BRIDGE_ID, "front_door")).id


async def test_the_still_is_the_bridge_live_frame(
    hass: HomeAssistant, bridge: FakeBridge, hass_client: ClientSessionGenerator
) -> None:
    client = await hass_client()
    response = await client.get(f"/api/camera_proxy/{ENTITY}")
    assert response.status == HTTPStatus.OK
    assert response.content_type == "image/jpeg"
    assert await response.read() == bridge.live_frames[-1]
    (headers,) = live_requests(bridge, "live.jpg")
    assert headers["Authorization"] == f"Bearer {TOKEN}"


@pytest.mark.parametrize("reason", ["camera_offline", "no_recent_frame"])
async def test_without_a_live_frame_the_still_is_the_last_snapshot(
    hass: HomeAssistant, bridge: FakeBridge, hass_client: ClientSessionGenerator, reason: str
) -> None:
    """The bridge has no picture of now (offline, or motion detection off): the snapshot."""
    snapshot = b"\xff\xd8snapshot\xff\xd9"
    async_fire_mqtt_message(hass, TOPICS.snapshot("front_door"), snapshot, retain=True)
    await hass.async_block_till_done()
    bridge.live_refused = reason
    client = await hass_client()
    response = await client.get(f"/api/camera_proxy/{ENTITY}")
    assert response.status == HTTPStatus.OK
    assert await response.read() == snapshot


async def test_the_stream_is_the_bridge_mjpeg_relayed(
    hass: HomeAssistant, bridge: FakeBridge, hass_client: ClientSessionGenerator
) -> None:
    client = await hass_client()
    response = await client.get(f"/api/camera_proxy_stream/{ENTITY}")
    assert response.status == HTTPStatus.OK
    assert response.headers["Content-Type"] == "multipart/x-mixed-replace; boundary=frame"
    body = await response.read()
    assert [frame in body for frame in bridge.live_frames] == [True, True, True]
    (headers,) = live_requests(bridge, "live.mjpeg")
    assert headers["Authorization"] == f"Bearer {TOKEN}"


async def test_a_refused_stream_is_a_bad_gateway(
    hass: HomeAssistant, bridge: FakeBridge, hass_client: ClientSessionGenerator
) -> None:
    bridge.live_refused = "too_many_viewers"
    client = await hass_client()
    response = await client.get(f"/api/camera_proxy_stream/{ENTITY}")
    assert response.status == HTTPStatus.BAD_GATEWAY


async def test_a_refused_stream_says_why_in_the_log_once(
    hass: HomeAssistant,
    bridge: FakeBridge,
    hass_client: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A broken picture in the dashboard: Home Assistant's log names the bridge's reason.

    Once per reason: a dashboard that keeps trying does not flood the log.
    """
    bridge.live_refused = "too_many_viewers"
    client = await hass_client()
    for _ in range(3):
        response = await client.get(f"/api/camera_proxy_stream/{ENTITY}")
        assert response.status == HTTPStatus.BAD_GATEWAY
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == ["Live view of front_door unavailable: camera front_door is offline"]
    bridge.live_refused = None
    response = await client.get(f"/api/camera_proxy_stream/{ENTITY}")
    assert response.status == HTTPStatus.OK
    await response.read()
    bridge.live_refused = "too_many_viewers"
    response = await client.get(f"/api/camera_proxy_stream/{ENTITY}")
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2, "said again after the live view worked in between"


async def test_without_a_login_nothing_is_served(
    hass: HomeAssistant, bridge: FakeBridge, hass_client_no_auth: ClientSessionGenerator
) -> None:
    client = await hass_client_no_auth()
    for view in ("camera_proxy", "camera_proxy_stream"):
        for query in ("", "?token=guessed"):
            response = await client.get(f"/api/{view}/{ENTITY}{query}")
            assert response.status in REFUSED, (view, query)
    assert live_requests(bridge, "live.jpg") == []
    assert live_requests(bridge, "live.mjpeg") == []
