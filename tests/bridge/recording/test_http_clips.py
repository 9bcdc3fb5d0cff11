"""Clip routes over HTTP: token, filters, Range on the video, snapshots, record now."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
import pytest

from doorstep_bridge.config import parse_config
from doorstep_bridge.events import ClipDeleted, EventBus, RecordRequested
from doorstep_bridge.files import atomic_write
from doorstep_bridge.http.auth import token_middleware
from doorstep_bridge.http.clips import routes
from doorstep_bridge.keys import API_TOKEN, AUDIT, BUS, CLIP_STORE, CONFIG
from doorstep_bridge.packets import EncodedPacket
from doorstep_bridge.recording.masks import MaskSet
from doorstep_bridge.recording.snapshots import make_snapshot
from doorstep_bridge.recording.store import ClipStore
from doorstep_bridge.recording.writer import ClipWriter, finalize
from doorstep_bridge.sharing.audit import AuditLog, audit_dir

TOKEN = "t" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}
T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def _clip(store: ClipStore, packets: list[EncodedPacket], start: datetime, reason: str) -> str:
    import numpy as np

    pending = store.new_clip("front_door", start, reason)
    writer = ClipWriter(pending.partial, packets[0].stream, MaskSet(()))
    for packet in packets:
        writer.write(packet)
    writer.close()
    done = finalize(pending.partial, pending.final)
    snapshot = make_snapshot(np.full((360, 640, 3), 128, np.uint8), MaskSet(()))
    atomic_write(pending.snapshot, snapshot.jpeg)
    atomic_write(pending.thumbnail, snapshot.thumbnail)
    store.complete(pending, duration=done.duration, size=done.size, snapshot=True)
    return pending.id


@pytest.fixture
async def api(
    storage: Path, packets: list[EncodedPacket]
) -> AsyncIterator[tuple[TestClient[Any, Any], list[str], list[Any]]]:
    config = parse_config(
        {"storage": {"path": str(storage)}, "cameras": {"front_door": {"source": "demo://"}}}
    )
    audit = AuditLog(audit_dir(storage))  # before the store: a new storage folder
    store = ClipStore(storage)
    store.open()
    ids = [
        _clip(store, packets[:30], T0 + timedelta(minutes=i), reason)
        for i, reason in enumerate(["motion", "ring", "motion"])
    ]
    bus = EventBus()
    requested: list[Any] = []
    bus.subscribe(RecordRequested, requested.append)
    bus.subscribe(ClipDeleted, requested.append)
    app = web.Application(middlewares=[token_middleware])
    app[AUDIT] = audit
    app[CONFIG] = config
    app[API_TOKEN] = TOKEN
    app[CLIP_STORE] = store
    app[BUS] = bus
    app.add_routes(routes)
    client = TestClient(TestServer(app))
    await client.start_server()
    yield client, ids, requested
    await client.close()
    store.close()


@pytest.mark.parametrize(
    "path",
    [
        "/api/clips",
        "/api/clips/x",
        "/api/clips/x/video",
        "/api/clips/x/snapshot",
        "/api/clips/x/thumbnail",
    ],
)
async def test_every_clip_route_needs_the_token(api: Any, path: str) -> None:
    client, ids, _ = api
    response = await client.get(path.replace("x", ids[0]))
    assert response.status == 401
    response = await client.get(path.replace("x", ids[0]), headers={"Authorization": "Bearer nope"})
    assert response.status == 401


async def test_record_needs_the_token(api: Any) -> None:
    client, _, requested = api
    response = await client.post("/api/cameras/front_door/record")
    assert response.status == 401
    assert requested == []


async def test_list_filters_and_pages(api: Any) -> None:
    client, ids, _ = api
    response = await client.get("/api/clips", headers=AUTH)
    assert response.status == 200
    body = await response.json()
    assert body["total"] == 3
    assert [c["id"] for c in body["clips"]] == ids[::-1]
    first = body["clips"][-1]
    assert first["camera"] == "front_door"
    assert first["start"] == "2026-11-23T10:00:00.000+00:00"
    assert first["duration"] == pytest.approx(2.0, abs=0.01)
    assert first["has_snapshot"] is True
    response = await client.get("/api/clips?reason=ring", headers=AUTH)
    assert [c["id"] for c in (await response.json())["clips"]] == [ids[1]]
    response = await client.get("/api/clips?reason=person", headers=AUTH)
    assert response.status == 200  # a reason of its own: none here
    assert (await response.json())["clips"] == []
    response = await client.get("/api/clips?limit=1&offset=1", headers=AUTH)
    body = await response.json()
    assert body["total"] == 3
    assert [c["id"] for c in body["clips"]] == [ids[1]]
    response = await client.get(
        "/api/clips",
        params={"since": "2026-11-23T10:00:30+00:00", "until": "2026-11-23T10:01:30+00:00"},
        headers=AUTH,
    )
    assert [c["id"] for c in (await response.json())["clips"]] == [ids[1]]
    response = await client.get("/api/clips?camera=garage", headers=AUTH)
    assert (await response.json()) == {"clips": [], "total": 0}


@pytest.mark.parametrize(
    "query",
    [
        # curl '...?since=...+00:00': the unencoded '+' reaches the bridge as a space.
        "since=2026-11-23T10:00:30+00:00&until=2026-11-23T10:01:30+00:00",
        "since=2026-11-23T11:00:30+01:00&until=2026-11-23 11:01:30+0100",
        "since=2026-11-23T10:00:30%2B00:00&until=2026-11-23T10:01:30Z",
        "since=2026-11-23T09:00:30-01:00&until=2026-11-23T10:01:30 00",
    ],
)
async def test_time_filters_take_an_unencoded_plus(api: Any, query: str) -> None:
    client, ids, _ = api
    response = await client.get(f"/api/clips?{query}", headers=AUTH)
    assert response.status == 200, await response.text()
    assert [c["id"] for c in (await response.json())["clips"]] == [ids[1]]


@pytest.mark.parametrize(
    "query",
    [
        "since=yesterday",
        "since=2026-11-23+10:00",  # a date, then a time with no offset: not an offset
        "since=2026-11-23T10:00:00+",
        "since=2026-11-23T10:00:00",
        "limit=0",
        "limit=x",
        "offset=-1",
        "reason=party",
    ],
)
async def test_bad_queries_are_400(api: Any, query: str) -> None:
    client, _, _ = api
    response = await client.get(f"/api/clips?{query}", headers=AUTH)
    assert response.status == 400
    assert "error" in await response.json()


@pytest.mark.parametrize(
    ("query", "error"),
    [
        (
            # A typo answered every clip, as if filtered.
            "cameras=front_door",
            "'cameras': unknown parameter; expected camera, since, until, reason, limit, offset",
        ),
        (
            "camera=front_door&reasons=ring",
            "'reasons': unknown parameter; expected camera, since, until, reason, limit, offset",
        ),
        (
            # Swapped times answered no clip, as if there were none.
            "since=2026-11-24T00:00:00Z&until=2026-11-23T00:00:00Z",
            "since: after until; since is the earlier time",
        ),
        (
            # The display name answered no clip, as if there were none.
            "camera=Front%20door",
            (
                "camera: expected a camera key such as front_door (lowercase letters, digits"
                " and '_'), not 'Front door'"
            ),
        ),
    ],
)
async def test_a_mistyped_query_is_named_not_answered(api: Any, query: str, error: str) -> None:
    client, _, _ = api
    response = await client.get(f"/api/clips?{query}", headers=AUTH)
    assert response.status == 400
    assert await response.json() == {"error": error}


async def test_video_supports_range_requests(api: Any, storage: Path) -> None:
    client, ids, _ = api
    response = await client.get(f"/api/clips/{ids[0]}/video", headers=AUTH)
    assert response.status == 200
    assert response.headers["Content-Type"] == "video/mp4"
    whole = await response.read()
    assert whole[4:8] == b"ftyp"
    response = await client.get(
        f"/api/clips/{ids[0]}/video", headers={**AUTH, "Range": "bytes=100-199"}
    )
    assert response.status == 206
    assert response.headers["Content-Range"] == f"bytes 100-199/{len(whole)}"
    assert await response.read() == whole[100:200]
    # Past the end, or not a range at all: 416 like aiohttp, with the error in JSON as
    # every error of the API, and the file's size.
    for asked in (f"bytes={len(whole)}-", "bytes=x-y"):
        response = await client.get(f"/api/clips/{ids[0]}/video", headers={**AUTH, "Range": asked})
        assert response.status == 416
        assert response.headers["Content-Range"] == f"bytes */{len(whole)}"
        assert (await response.json())["error"].startswith("Range: ")
    # Another unit must be ignored, and several ranges may be (RFC 9110, 14.2): the whole
    # file, rather than a 416 saying none of them is in it.
    for asked in ("items=0-9", "bytes=0-99,200-299", "bytes=0-99, -50"):
        response = await client.get(f"/api/clips/{ids[0]}/video", headers={**AUTH, "Range": asked})
        assert response.status == 200, asked
        assert "Content-Range" not in response.headers
        assert await response.read() == whole
    # What aiohttp clamps is still served: a suffix longer than the file, an end past it.
    for asked in (f"bytes=-{len(whole) * 2}", f"bytes=100-{len(whole) * 2}"):
        response = await client.get(f"/api/clips/{ids[0]}/video", headers={**AUTH, "Range": asked})
        assert response.status in (200, 206), asked


async def test_a_range_of_no_bytes_is_refused_with_the_files_size(api: Any) -> None:
    # RFC 9110: a suffix of zero bytes selects nothing; aiohttp alone sends the whole file.
    client, ids, _ = api
    for kind in ("video", "snapshot"):
        url = f"/api/clips/{ids[0]}/{kind}"
        size = len(await (await client.get(url, headers=AUTH)).read())
        response = await client.get(url, headers={**AUTH, "Range": "bytes=-0"})
        assert response.status == 416, kind
        assert response.headers["Content-Range"] == f"bytes */{size}"
        assert (await response.json())["error"].startswith("Range: bytes=-0")


async def test_if_range_serves_the_range_only_for_the_file_the_client_has(api: Any) -> None:
    client, ids, _ = api
    url = f"/api/clips/{ids[0]}/video"
    whole_response = await client.get(url, headers=AUTH)
    whole = await whole_response.read()
    etag, modified = whole_response.headers["ETag"], whole_response.headers["Last-Modified"]
    for validator in (etag, modified):
        # The client's copy is this file: the range (a player seeking), and past the end
        # a 416 that says how long the file is, as without If-Range.
        headers = {**AUTH, "Range": "bytes=100-199", "If-Range": validator}
        response = await client.get(url, headers=headers)
        assert response.status == 206, validator
        assert await response.read() == whole[100:200]
        headers = {**AUTH, "Range": f"bytes={len(whole)}-", "If-Range": validator}
        response = await client.get(url, headers=headers)
        assert response.status == 416, validator
        assert response.headers["Content-Range"] == f"bytes */{len(whole)}"
        assert (await response.json())["error"].startswith("Range: starts at byte")
    # Another version of the file (a stale or weak tag, another date): the whole file.
    for validator in ('"0-0"', f"W/{etag}", "Thu, 01 Jan 2004 00:00:00 GMT"):
        for asked in ("bytes=100-199", f"bytes={len(whole)}-"):
            headers = {**AUTH, "Range": asked, "If-Range": validator}
            response = await client.get(url, headers=headers)
            assert response.status == 200, (validator, asked)
            assert "Content-Range" not in response.headers
            assert await response.read() == whole


async def test_a_forgotten_clip_is_asked_for_again_not_kept_in_a_cache(api: Any) -> None:
    # "Forget this visit" must not leave the footage in a client's cache for an hour: a
    # client may keep the file, but asks the bridge each time, which then says it is gone.
    client, ids, _ = api
    for suffix in ("/video", "/snapshot", "/thumbnail"):
        response = await client.get(f"/api/clips/{ids[1]}{suffix}", headers=AUTH)
        assert response.status == 200
        cache = response.headers["Cache-Control"]
        assert "no-cache" in cache
        assert "private" in cache
        assert "max-age" not in cache
        etag = response.headers["ETag"]
        again = await client.get(
            f"/api/clips/{ids[1]}{suffix}", headers={**AUTH, "If-None-Match": etag}
        )
        assert again.status == 304  # unchanged: nothing sent again
    response = await client.delete(f"/api/clips/{ids[1]}", headers=AUTH)
    assert response.status == 200
    again = await client.get(f"/api/clips/{ids[1]}/video", headers={**AUTH, "If-None-Match": etag})
    assert again.status == 404


async def test_clip_json_snapshot_and_thumbnail(api: Any) -> None:
    client, ids, _ = api
    response = await client.get(f"/api/clips/{ids[1]}", headers=AUTH)
    assert (await response.json())["reason"] == "ring"
    for kind in ("snapshot", "thumbnail"):
        response = await client.get(f"/api/clips/{ids[1]}/{kind}", headers=AUTH)
        assert response.status == 200
        assert response.headers["Content-Type"] == "image/jpeg"
        assert (await response.read())[:2] == b"\xff\xd8"


@pytest.mark.parametrize(
    "clip_id", ["c_unknown", "..%2F..%2Fclips.db", "%2E%2E", "c_1.mp4", "a%00b"]
)
async def test_unknown_and_malicious_ids_are_404(api: Any, clip_id: str) -> None:
    client, _, _ = api
    for suffix in ("", "/video", "/snapshot", "/thumbnail"):
        response = await client.get(f"/api/clips/{clip_id}{suffix}", headers=AUTH)
        assert response.status == 404, (clip_id, suffix)


async def test_record_now_publishes_the_request(api: Any) -> None:
    client, _, requested = api
    response = await client.post("/api/cameras/front_door/record", headers=AUTH)
    assert response.status == 202
    response = await client.post(
        "/api/cameras/front_door/record", json={"duration": 12}, headers=AUTH
    )
    assert response.status == 202
    assert [(r.camera, r.duration) for r in requested] == [
        ("front_door", None),
        ("front_door", 12.0),
    ]
    response = await client.post("/api/cameras/garage/record", headers=AUTH)
    assert response.status == 404
    for bad in ({"duration": -1}, {"duration": "long"}, {"length": 3}, [1]):
        response = await client.post("/api/cameras/front_door/record", json=bad, headers=AUTH)
        assert response.status == 400
    assert len(requested) == 2


async def test_forget_needs_the_token(api: Any) -> None:
    client, ids, _ = api
    for headers in ({}, {"Authorization": "Bearer nope"}):
        response = await client.delete(f"/api/clips/{ids[1]}", headers=headers)
        assert response.status == 401
    response = await client.get(f"/api/clips/{ids[1]}", headers=AUTH)
    assert response.status == 200


async def test_forget_erases_the_clip_and_its_images_and_audits_only_that(
    api: Any, storage: Path
) -> None:
    client, ids, events = api
    store: ClipStore = client.app[CLIP_STORE]
    clip = store.get(ids[1])
    assert clip is not None
    files = [clip.path, clip.snapshot_path, clip.thumbnail_path]
    assert all(path is not None and path.is_file() for path in files)

    response = await client.delete(f"/api/clips/{ids[1]}", json={"by": "Alice"}, headers=AUTH)

    assert response.status == 200
    assert await response.json() == {"id": ids[1], "erased": True}
    assert not any(path is not None and path.exists() for path in files)
    assert store.get(ids[1]) is None
    assert [c.id for c in store.list()[0]] == [ids[2], ids[0]]
    erased = [r for r in client.app[AUDIT].records() if r["kind"] == "clip_erased"]
    assert len(erased) == 1
    assert {k: v for k, v in erased[0].items() if k not in ("seq", "time", "prev", "hash")} == {
        "kind": "clip_erased",
        "clip": ids[1],
        "camera": "front_door",
        "by": "Alice",
    }
    assert [e.action for e in store.events() if e.clip_id == ids[1]] == ["erased"]
    assert events == [ClipDeleted(ids[1], "front_door", "forgotten")]
    # Once gone, it is gone; without a body the API is "by".
    response = await client.delete(f"/api/clips/{ids[1]}", headers=AUTH)
    assert response.status == 404
    response = await client.delete(f"/api/clips/{ids[0]}", headers=AUTH)
    assert response.status == 200
    assert client.app[AUDIT].records()[-1]["by"] == "api"


async def test_a_clip_a_share_holds_is_not_forgotten(api: Any) -> None:
    client, ids, events = api
    store: ClipStore = client.app[CLIP_STORE]
    store.hold("s_pending", [ids[2]])
    response = await client.delete(f"/api/clips/{ids[2]}", json={"by": "Bob"}, headers=AUTH)
    assert response.status == 409
    body = await response.json()
    assert body["shares"] == ["s_pending"]
    assert "s_pending" in body["error"]
    assert "deny or revoke the share first" in body["error"]
    clip = store.get(ids[2])
    assert clip is not None
    assert clip.path.is_file()
    assert not [r for r in client.app[AUDIT].records() if r["kind"] == "clip_erased"]
    assert events == []
    store.release("s_pending")
    response = await client.delete(f"/api/clips/{ids[2]}", headers=AUTH)
    assert response.status == 200


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"{", 'expected a JSON body such as {"by": "Alice"}'),
        (b"[1]", "expected a JSON object with an optional by"),
        (b'{"who": "x"}', "expected a JSON object with an optional by"),
        (b'{"by": ""}', "by: expected text of 1 to 100 characters"),
        (b'{"by": 3}', "by: expected text of 1 to 100 characters"),
        (b'{"by": "' + b"x" * 101 + b'"}', "by: expected text of 1 to 100 characters"),
        (b'{"by": "\\ud800"}', "by: expected text of 1 to 100 characters"),
    ],
)
async def test_forget_refuses_bad_bodies(api: Any, body: bytes, expected: str) -> None:
    client, ids, _ = api
    response = await client.delete(f"/api/clips/{ids[0]}", data=body, headers=AUTH)
    assert response.status == 400
    assert (await response.json())["error"] == expected
    assert client.app[CLIP_STORE].get(ids[0]) is not None


@pytest.mark.parametrize("clip_id", ["c_unknown", "..%2Fclips.db", "c_1.mp4"])
async def test_forget_unknown_and_malicious_ids_are_404(api: Any, clip_id: str) -> None:
    client, _, _ = api
    response = await client.delete(f"/api/clips/{clip_id}", headers=AUTH)
    assert response.status == 404


async def test_no_audit_record_no_erasure(api: Any) -> None:
    client, ids, events = api
    # The log's own state after a write it could not take back: it refuses appends.
    client.app[AUDIT]._broken = "disk full"
    response = await client.delete(f"/api/clips/{ids[0]}", headers=AUTH)
    assert response.status == 503
    assert "the clip was not erased" in (await response.json())["error"]
    clip = client.app[CLIP_STORE].get(ids[0])
    assert clip is not None
    assert clip.path.is_file()
    assert events == []


async def test_a_client_whose_copy_is_current_gets_304_whatever_its_range(api: Any) -> None:
    # RFC 9110 (13.2.2): If-None-Match and If-Modified-Since come before Range, so a
    # player revalidating its cached copy with a range past the end hears "not modified",
    # and a failed If-Match or If-Unmodified-Since is a 412, not a 416.
    client, ids, _ = api
    url = f"/api/clips/{ids[0]}/video"
    whole_response = await client.get(url, headers=AUTH)
    whole = await whole_response.read()
    etag, modified = whole_response.headers["ETag"], whole_response.headers["Last-Modified"]
    past_end = f"bytes={len(whole)}-"
    for conditions, status in (
        ({"If-None-Match": etag}, 304),
        ({"If-None-Match": f"W/{etag}"}, 304),
        ({"If-None-Match": "*"}, 304),
        ({"If-Modified-Since": modified}, 304),
        ({"If-Match": '"0-0"'}, 412),
        ({"If-Unmodified-Since": "Thu, 01 Jan 2004 00:00:00 GMT"}, 412),
        # Not ended by a precondition: the range decides, as before.
        ({"If-None-Match": '"0-0"'}, 416),
        ({"If-Match": etag}, 416),
        ({"If-None-Match": '"0-0"', "If-Modified-Since": modified}, 416),
        ({"If-Modified-Since": "Thu, 01 Jan 2004 00:00:00 GMT"}, 416),
    ):
        response = await client.get(url, headers={**AUTH, "Range": past_end, **conditions})
        assert response.status == status, conditions
        if status == 416:
            assert response.headers["Content-Range"] == f"bytes */{len(whole)}"
        else:
            assert await response.read() == b""
