"""Clips in the media browser, and the proxies that serve footage."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
import json
import logging
from pathlib import Path
from typing import Any

import aiohttp
from homeassistant.components import media_source
from homeassistant.components.media_player.errors import BrowseError
from homeassistant.components.media_source import Unresolvable
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
import pytest
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    MockUser,
    async_fire_mqtt_message,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator
from yarl import URL

from .conftest import BRIDGE_ID, T0, TOPICS, FakeBridge, children, clip_info

pytestmark = pytest.mark.usefixtures("setup_entry")
ROOT = "media-source://doorstep"


@pytest.fixture(autouse=True)
async def media(hass: HomeAssistant) -> None:
    """The media_source component (the frontend loads it)."""
    assert await async_setup_component(hass, "media_source", {})


async def test_browse_camera_day_clips(hass: HomeAssistant, bridge: FakeBridge) -> None:
    root = await media_source.async_browse_media(hass, ROOT)
    assert root.title == "Doorstep"
    assert [c.title for c in children(root)] == ["Front door"]
    camera = await media_source.async_browse_media(hass, children(root)[0].media_content_id)
    days = [c.title for c in children(camera)]
    assert days == ["2026-11-23", "2026-11-22"]  # newest first, local time (US/Pacific)
    # Each day shows its newest clip.
    assert children(camera)[0].thumbnail == (
        f"/api/doorstep/clips/{BRIDGE_ID}/{bridge.clips[0].id}/thumbnail"
    )
    assert str(children(camera)[1].thumbnail).endswith(f"{bridge.clips[2].id}/thumbnail")
    day = await media_source.async_browse_media(hass, children(camera)[0].media_content_id)
    assert [c.can_play for c in children(day)] == [True, True]
    newest = bridge.clips[0]
    assert str(children(day)[0].identifier).endswith(newest.id)
    assert children(day)[0].thumbnail == f"/api/doorstep/clips/{BRIDGE_ID}/{newest.id}/thumbnail"
    assert children(day)[0].title.endswith("motion · 12 s") or "motion" in children(day)[0].title


async def test_resolve_points_at_authenticated_view(
    hass: HomeAssistant, bridge: FakeBridge
) -> None:
    clip = bridge.clips[0]
    item = f"{ROOT}/{BRIDGE_ID}/front_door/2026-11-23/{clip.id}"
    play = await media_source.async_resolve_media(hass, item, None)
    assert play.url == f"/api/doorstep/clips/{BRIDGE_ID}/{clip.id}/video"
    assert play.mime_type == "video/mp4"


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (
            f"{ROOT}/{BRIDGE_ID}/front_door/2026-11-23",
            f"There is no Doorstep clip {BRIDGE_ID}/front_door/2026-11-23",
        ),
        (
            f"{ROOT}/other/front_door/2026-11-23/c_1",
            "There is no Doorstep clip other/front_door/2026-11-23/c_1",
        ),
        (
            f"{ROOT}/{BRIDGE_ID}/front_door/2026-11-23/..%2Fetc",
            f"There is no Doorstep clip {BRIDGE_ID}/front_door/2026-11-23/..%2Fetc",
        ),
    ],
)
async def test_resolve_rejects(hass: HomeAssistant, item: str, message: str) -> None:
    with pytest.raises(Unresolvable) as err:
        await media_source.async_resolve_media(hass, item, None)
    assert err.value.translation_key == "unknown_clip"
    # The translated text, as the media browser shows it (HA drops the final period).
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("item", "message"),
    [
        (f"{ROOT}/other", "There is no Doorstep media item other"),
        (f"{ROOT}/{BRIDGE_ID}/nope", "There is no Doorstep camera nope"),
        (f"{ROOT}/{BRIDGE_ID}/nope/2026-11-23", "There is no Doorstep camera nope"),
        (
            f"{ROOT}/{BRIDGE_ID}/front_door/not-a-day",
            f"There is no Doorstep media item {BRIDGE_ID}/front_door/not-a-day",
        ),
        (
            f"{ROOT}/{BRIDGE_ID}/front_door/2026-11-23/c/x",
            f"There is no Doorstep media item {BRIDGE_ID}/front_door/2026-11-23/c/x",
        ),
    ],
)
async def test_browse_rejects(hass: HomeAssistant, item: str, message: str) -> None:
    with pytest.raises(BrowseError) as err:
        await media_source.async_browse_media(hass, item)
    assert str(err.value) == message


async def test_browse_bridge_down(hass: HomeAssistant, bridge: FakeBridge) -> None:
    bridge.broken = True
    with pytest.raises(BrowseError) as err:
        await media_source.async_browse_media(hass, f"{ROOT}/{BRIDGE_ID}/front_door")
    assert err.value.translation_key == "clips_unavailable"
    assert str(err.value).startswith("The Doorstep bridge did not list its clips: ")


async def test_browse_bridge_stopped_says_where_and_why(
    hass: HomeAssistant, bridge: FakeBridge
) -> None:
    port = URL(bridge.url).port
    await bridge.stop()
    with pytest.raises(BrowseError) as err:
        await media_source.async_browse_media(hass, f"{ROOT}/{BRIDGE_ID}/front_door")
    # It was the repr of aiohttp's error: ClientConnectorError(ConnectionKey(host=...
    assert str(err.value) == (
        "The Doorstep bridge did not list its clips: "
        f"cannot connect to the bridge at 127.0.0.1:{port}: Connection refused"
    )


async def test_browse_bridge_level(hass: HomeAssistant) -> None:
    level = await media_source.async_browse_media(hass, f"{ROOT}/{BRIDGE_ID}")
    assert [c.title for c in children(level)] == ["Front door"]


async def test_video_proxy_needs_auth_and_supports_range(
    hass: HomeAssistant,
    bridge: FakeBridge,
    hass_client: ClientSessionGenerator,
    hass_client_no_auth: ClientSessionGenerator,
) -> None:
    clip = bridge.clips[0]
    url = f"/api/doorstep/clips/{BRIDGE_ID}/{clip.id}/video"
    video = bridge.video.read_bytes()
    anonymous = await hass_client_no_auth()
    response = await anonymous.get(url)
    assert response.status == HTTPStatus.UNAUTHORIZED
    assert not [r for r in bridge.requests if "/video" in r[1]]  # never reached the bridge

    client = await hass_client()
    response = await client.get(url)
    assert response.status == HTTPStatus.OK
    assert response.headers["Content-Type"] == "video/mp4"
    assert await response.read() == video
    response = await client.get(url, headers={"Range": "bytes=10-29"})
    assert response.status == HTTPStatus.PARTIAL_CONTENT
    assert response.headers["Content-Range"] == f"bytes 10-29/{len(video)}"
    assert await response.read() == video[10:30]
    assert bridge.requests[-1][2]["Authorization"] == f"Bearer {bridge.token}"
    # A player resuming with the version it holds: the range while it is this file's...
    current = {"Range": "bytes=10-29", "If-Range": response.headers["ETag"]}
    response = await client.get(url, headers=current)
    assert response.status == HTTPStatus.PARTIAL_CONTENT
    assert await response.read() == video[10:30]
    # ... the whole file once the one it holds is another (older than this file).
    stale = {"Range": "bytes=10-29", "If-Range": "Wed, 21 Oct 2015 07:28:00 GMT"}
    response = await client.get(url, headers=stale)
    assert bridge.requests[-1][2]["If-Range"] == stale["If-Range"]
    assert response.status == HTTPStatus.OK
    assert await response.read() == video


async def test_signed_path_plays(
    hass: HomeAssistant, bridge: FakeBridge, hass_client_no_auth: ClientSessionGenerator,
    hass_admin_user: MockUser,
) -> None:  # fmt: skip
    from datetime import timedelta

    from homeassistant.components.http.auth import async_sign_path

    refresh = await hass.auth.async_create_refresh_token(
        hass_admin_user, client_id="https://example.com/app"
    )
    clip = bridge.clips[0]
    path = async_sign_path(
        hass, f"/api/doorstep/clips/{BRIDGE_ID}/{clip.id}/video", timedelta(minutes=1),
        refresh_token_id=refresh.id,
    )  # fmt: skip
    anonymous = await hass_client_no_auth()
    response = await anonymous.get(path)
    assert response.status == HTTPStatus.OK


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"/api/doorstep/clips/{BRIDGE_ID}/c_unknown/video", HTTPStatus.NOT_FOUND),
        (f"/api/doorstep/clips/{BRIDGE_ID}/c_1/config", HTTPStatus.NOT_FOUND),
        ("/api/doorstep/clips/other/c_1/video", HTTPStatus.NOT_FOUND),
        (f"/api/doorstep/clips/{BRIDGE_ID}/c%201/video", HTTPStatus.NOT_FOUND),
    ],
)
async def test_video_proxy_not_found(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, path: str, status: int
) -> None:
    client = await hass_client()
    assert (await client.get(path)).status == status


async def test_video_proxy_bridge_down(
    hass: HomeAssistant, bridge: FakeBridge, hass_client: ClientSessionGenerator,
    setup_entry: MockConfigEntry,
) -> None:  # fmt: skip
    await bridge.stop()
    client = await hass_client()
    response = await client.get(f"/api/doorstep/clips/{BRIDGE_ID}/{bridge.clips[0].id}/video")
    assert response.status == HTTPStatus.BAD_GATEWAY


async def test_share_link_view(
    hass: HomeAssistant, bridge: FakeBridge, hass_client_no_auth: ClientSessionGenerator
) -> None:
    bridge.share_links = {
        "tok_ready": 200,
        "tok_revoked": 410,
        "tok_busy": 429,
        "tok_unaudited": 503,
        "tok_beyond": 416,
    }
    anonymous = await hass_client_no_auth()
    base = f"/api/doorstep/share/{BRIDGE_ID}"
    response = await anonymous.get(
        f"{base}/tok_ready", headers={"Range": "bytes=0-9", "User-Agent": "Recipient/1.0"}
    )
    assert response.status == HTTPStatus.PARTIAL_CONTENT
    assert await response.read() == bridge.video.read_bytes()[:10]
    headers = bridge.requests[-1][2]
    assert headers["X-Doorstep-Client-Agent"] == "Recipient/1.0"
    assert headers["X-Doorstep-Client-Address"] == "127.0.0.1"
    # A recipient resuming a download of a file it holds in another version: the whole file.
    stale = {"Range": "bytes=0-9", "If-Range": "Wed, 21 Oct 2015 07:28:00 GMT"}
    response = await anonymous.get(f"{base}/tok_ready", headers=stale)
    assert bridge.requests[-1][2]["If-Range"] == stale["If-Range"]
    assert response.status == HTTPStatus.OK
    assert await response.read() == bridge.video.read_bytes()
    # A chat app previewing the link: the headers only, audited by the bridge as a HEAD.
    preview = await anonymous.head(f"{base}/tok_ready")
    assert preview.status == HTTPStatus.OK
    assert int(preview.headers["Content-Length"]) == bridge.video.stat().st_size
    assert bridge.requests[-1][:2] == ("HEAD", "/share/tok_ready")
    # A browser gets the recipient's page, with its policy; its video and signature links
    # resolve under Home Assistant's link, and reach the bridge.
    browser = {"Accept": "text/html,application/xhtml+xml"}
    page = await anonymous.get(f"{base}/tok_ready", headers=browser)
    assert page.status == HTTPStatus.OK
    assert page.content_type == "text/html"
    assert page.headers["Content-Security-Policy"] == "default-src 'none'"
    assert page.headers["X-Frame-Options"] == "DENY"
    video = await anonymous.get(f"{base}/tok_ready?raw=1&download=1&other=x", headers=browser)
    assert video.status == HTTPStatus.OK
    assert await video.read() == bridge.video.read_bytes()
    assert bridge.requests[-1][1] == "/share/tok_ready?raw=1&download=1"  # nothing else
    signature = await anonymous.get(f"{base}/tok_ready/signature", headers=browser)
    assert signature.status == HTTPStatus.OK
    assert await signature.json() == {"manifest": {}}
    assert bridge.requests[-1][:2] == ("GET", "/share/tok_ready/signature")
    gone = await anonymous.get(f"{base}/tok_revoked", headers=browser)
    assert gone.status == HTTPStatus.GONE
    assert "This link no longer works" in await gone.text()
    assert (await anonymous.get(f"{base}/tok_revoked")).status == HTTPStatus.GONE
    assert (await anonymous.get(f"{base}/tok_revoked/signature")).status == HTTPStatus.GONE
    busy_page = await anonymous.get(f"{base}/tok_busy", headers=browser)
    assert busy_page.status == HTTPStatus.TOO_MANY_REQUESTS
    assert busy_page.headers["Retry-After"] == "60"
    busy = await anonymous.get(f"{base}/tok_busy")
    assert busy.status == HTTPStatus.TOO_MANY_REQUESTS
    assert busy.headers["Retry-After"] == "60"
    beyond = await anonymous.get(f"{base}/tok_beyond", headers={"Range": "bytes=999999999-"})
    assert beyond.status == HTTPStatus.REQUESTED_RANGE_NOT_SATISFIABLE
    assert beyond.headers["Content-Range"] == f"bytes */{bridge.video.stat().st_size}"
    unaudited = await anonymous.get(f"{base}/tok_unaudited")
    assert unaudited.status == HTTPStatus.SERVICE_UNAVAILABLE
    assert (await anonymous.get(f"{base}/tok_unknown")).status == HTTPStatus.NOT_FOUND
    assert (await anonymous.get(f"{base}/bad%20token")).status == HTTPStatus.NOT_FOUND
    assert (await anonymous.get("/api/doorstep/share/other/tok_ready")).status == 404
    await bridge.stop()
    assert (await anonymous.get(f"{base}/tok_ready")).status == HTTPStatus.BAD_GATEWAY


async def test_camera_folder_shows_the_last_clip(hass: HomeAssistant, bridge: FakeBridge) -> None:
    root = await media_source.async_browse_media(hass, ROOT)
    assert children(root)[0].thumbnail is None  # no clip heard yet
    clip = bridge.clips[0]
    async_fire_mqtt_message(hass, TOPICS.clip("front_door"), json.dumps(clip.payload()))
    await hass.async_block_till_done()
    root = await media_source.async_browse_media(hass, ROOT)
    assert children(root)[0].thumbnail == f"/api/doorstep/clips/{BRIDGE_ID}/{clip.id}/thumbnail"


def log_problems(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """Warnings and errors in the log, without asyncio's "Executing … took 0.1 seconds".

    The test harness runs the loop in debug mode, which warns of every slow step: on a
    busy machine that says nothing about the code under test.
    """
    return [r for r in caplog.records if r.levelno >= logging.WARNING and r.name != "asyncio"]


async def test_a_player_leaving_mid_clip_is_no_error(
    hass: HomeAssistant,
    bridge: FakeBridge,
    hass_client: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
) -> None:
    # A browser's player drops the request at every seek and when its dialog closes.
    big = tmp_path / "long.mp4"
    big.write_bytes(bytes(20_000_000))  # more than the sockets' buffers hold
    bridge.clips[0] = replace(bridge.clips[0], path=big)
    client = await hass_client()
    response = await client.get(f"/api/doorstep/clips/{BRIDGE_ID}/{bridge.clips[0].id}/video")
    assert response.status == HTTPStatus.OK
    await response.content.readexactly(100_000)
    response.close()
    for _ in range(100):  # until the view has tried to write to the closed connection
        if "Error handling request" in caplog.text or "left before the end" in caplog.text:
            break
        await asyncio.sleep(0.02)
    # Nothing in Home Assistant's log (it was an "Error handling request" traceback).
    assert [r.getMessage() for r in log_problems(caplog)] == []
    assert "left before the end of clip" in caplog.text


async def test_a_bridge_going_away_mid_clip_ends_the_file(
    hass: HomeAssistant,
    bridge: FakeBridge,
    hass_client: ClientSessionGenerator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    bridge.video_cut_after = 100
    client = await hass_client()
    clip = bridge.clips[0]
    response = await client.get(f"/api/doorstep/clips/{BRIDGE_ID}/{clip.id}/video")
    assert response.status == HTTPStatus.OK
    with pytest.raises(aiohttp.ClientPayloadError):
        await response.read()
    # One line that says what happened, no "Error handling request" traceback.
    problems = log_problems(caplog)
    assert [r.getMessage().split(":")[0] for r in problems] == [
        f"The bridge stopped sending clip {clip.id}'s video"
    ]
    assert not problems[0].exc_info


async def test_head_tells_a_player_the_clip_size_without_the_footage(
    hass: HomeAssistant, bridge: FakeBridge, hass_client: ClientSessionGenerator
) -> None:
    clip = bridge.clips[0]
    client = await hass_client()
    response = await client.head(f"/api/doorstep/clips/{BRIDGE_ID}/{clip.id}/video")
    assert response.status == HTTPStatus.OK  # was 405 Method Not Allowed
    assert response.headers["Content-Type"] == "video/mp4"
    assert response.headers["Content-Length"] == str(bridge.video.stat().st_size)
    assert response.headers["Accept-Ranges"] == "bytes"
    assert await response.read() == b""
    # The bridge was asked for the headers only, not for the file.
    assert bridge.requests[-1][:2] == ("HEAD", f"/api/clips/{clip.id}/video")
    unknown = await client.head(f"/api/doorstep/clips/{BRIDGE_ID}/c_unknown/video")
    assert unknown.status == HTTPStatus.NOT_FOUND


async def test_a_clip_without_a_picture_gets_no_thumbnail(
    hass: HomeAssistant, bridge: FakeBridge
) -> None:
    # A clip finished after a full disk or repaired after a crash may have no snapshot: its
    # thumbnail URL was a 404, a blank tile in the media browser instead of the video icon.
    bridge.clips[0] = replace(bridge.clips[0], snapshot_path=None, thumbnail_path=None)
    async_fire_mqtt_message(hass, TOPICS.clip("front_door"), json.dumps(bridge.clips[0].payload()))
    await hass.async_block_till_done()
    root = await media_source.async_browse_media(hass, ROOT)
    assert children(root)[0].thumbnail is None
    camera = await media_source.async_browse_media(hass, children(root)[0].media_content_id)
    # The day shows its newest clip that has a picture.
    assert str(children(camera)[0].thumbnail).endswith(f"/{bridge.clips[1].id}/thumbnail")
    day = await media_source.async_browse_media(hass, children(camera)[0].media_content_id)
    assert [c.thumbnail for c in children(day)] == [
        None,
        f"/api/doorstep/clips/{BRIDGE_ID}/{bridge.clips[1].id}/thumbnail",
    ]


async def test_every_day_and_every_clip_of_a_busy_camera_is_listed(
    hass: HomeAssistant, bridge: FakeBridge, video_file: Path
) -> None:
    # 14 days of a busy street: 120 clips a day, 700 on the busiest. Only the days of the
    # 500 newest clips were listed (4 of 14), and a day showed 500 clips at most.
    busiest = T0.replace(hour=20) - timedelta(days=3)  # noon in US/Pacific
    bridge.clips = [
        clip_info("front_door", T0 - timedelta(minutes=12 * n), 5, video_file, n)
        for n in range(14 * 120)
    ] + [
        clip_info("front_door", busiest + timedelta(seconds=20 * n), 5, video_file, 5000 + n)
        for n in range(700)
    ]
    camera = await media_source.async_browse_media(hass, f"{ROOT}/{BRIDGE_ID}/front_door")
    days = [c.title for c in children(camera)]
    local = [dt_util.as_local(c.start).date().isoformat() for c in bridge.clips]
    assert days == sorted(set(local), reverse=True)
    assert len(days) == 15
    # A few requests, not one per clip: a page, or a day, at a time.
    assert len([r for r in bridge.requests if r[1].startswith("/api/clips?")]) <= len(days)
    day = await media_source.async_browse_media(
        hass, f"{ROOT}/{BRIDGE_ID}/front_door/{busiest.date().isoformat()}"
    )
    shown = [str(c.identifier).rsplit("/", 1)[1] for c in children(day)]
    expected = [c for c in bridge.clips if local[bridge.clips.index(c)] == "2026-11-20"]
    assert len(shown) == len(expected) > 500
    assert shown == [c.id for c in sorted(expected, key=lambda c: c.start, reverse=True)]


async def test_a_clip_deleted_since_the_list_was_shown_says_so(
    hass: HomeAssistant, bridge: FakeBridge
) -> None:
    camera = await media_source.async_browse_media(hass, f"{ROOT}/{BRIDGE_ID}/front_door")
    day = await media_source.async_browse_media(hass, children(camera)[0].media_content_id)
    listed = children(day)[0]
    gone = bridge.clips.pop(0)  # retention, or doorstep.forget_clip, meanwhile
    # The media browser shows this message; it handed the player a URL that was a 404
    # (an empty player at 0:00, and no word why).
    with pytest.raises(Unresolvable) as err:
        await media_source.async_resolve_media(hass, listed.media_content_id, None)
    assert str(err.value) == (
        f"Clip {gone.id} is no longer on the bridge: retention deleted it, or it was"
        " forgotten. Go back to see the clips there are now"
    )
    await bridge.stop()
    with pytest.raises(Unresolvable) as err:
        await media_source.async_resolve_media(hass, children(day)[1].media_content_id, None)
    assert str(err.value).startswith(
        f"The Doorstep bridge cannot play clip {bridge.clips[0].id} now: cannot connect"
    )


async def test_a_bridge_that_stops_answering_is_a_502_not_a_player_waiting_forever(
    hass: HomeAssistant,
    bridge: FakeBridge,
    hass_client: ClientSessionGenerator,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("custom_components.doorstep.api.REQUEST_TIMEOUT", 0.5)
    clip = bridge.clips[0]
    bridge.stalled.add(f"/api/clips/{clip.id}/thumbnail")
    client = await hass_client()
    async with asyncio.timeout(5):  # was: no answer until the connection itself died
        response = await client.get(f"/api/doorstep/clips/{BRIDGE_ID}/{clip.id}/thumbnail")
    assert response.status == HTTPStatus.BAD_GATEWAY


async def test_a_clip_across_midnight_is_listed_on_the_day_it_started(
    hass: HomeAssistant, bridge: FakeBridge, video_file: Path
) -> None:
    # 23:59:55 to 00:00:07 in Home Assistant's time zone (US/Pacific).
    late = clip_info("front_door", datetime(2026, 11, 23, 7, 59, 55, tzinfo=UTC), 12, video_file)
    early = clip_info("front_door", datetime(2026, 11, 23, 8, 0, 30, tzinfo=UTC), 5, video_file)
    bridge.clips = [early, late]
    days: dict[str, list[str]] = {}
    for day in ("2026-11-22", "2026-11-23"):
        folder = await media_source.async_browse_media(hass, f"{ROOT}/{BRIDGE_ID}/front_door/{day}")
        days[day] = [c.title for c in children(folder)]
    # It was also the last clip of the 23rd, titled with a time that day never had.
    assert days == {
        "2026-11-22": ["23:59:55 · motion · 12 s"],
        "2026-11-23": ["00:00:30 · motion · 5 s"],
    }


@pytest.mark.parametrize("setup_entry", [None])  # set up below, with the bridge down
async def test_a_bridge_not_connected_yet_is_named_not_an_empty_folder(
    hass: HomeAssistant, mqtt: Any, config_entry: MockConfigEntry, bridge: FakeBridge
) -> None:
    bridge.broken = True  # down when Home Assistant started: setup is retried
    config_entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(config_entry.entry_id)
    # An empty "Doorstep" folder, and no word why.
    with pytest.raises(BrowseError) as err:
        await media_source.async_browse_media(hass, ROOT)
    assert str(err.value) == (
        "The Doorstep bridge Doorstep is not connected; Settings → Devices & services →"
        " Doorstep says why"
    )
