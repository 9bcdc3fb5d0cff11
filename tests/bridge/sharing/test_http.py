"""Share routes over HTTP: who may request and decide, share links, Range, 404/410."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient
import pytest

from doorstep_bridge.sharing.audit import verify

from .conftest import API_TOKEN, REQUESTER_TOKEN, Harness, share_routes_client

API = {"Authorization": f"Bearer {API_TOKEN}"}
REQUESTER = {"Authorization": f"Bearer {REQUESTER_TOKEN}"}


@pytest.fixture
async def bridge(tmp_path: Path) -> AsyncIterator[tuple[Harness, TestClient[Any, Any]]]:
    async with share_routes_client(tmp_path) as served:
        yield served


async def _ready(harness: Harness, client: TestClient[Any, Any]) -> tuple[str, str]:
    response = await client.post("/api/share-requests", json=harness.request(), headers=REQUESTER)
    assert response.status == 201
    share_id = (await response.json())["id"]
    response = await client.post(
        f"/api/shares/{share_id}/decision",
        json={"decision": "approve", "by": "owner", "via": "phone", "redact": True},
        headers=API,
    )
    assert response.status == 200, await response.text()
    ready = await harness.wait_state(share_id, "ready")
    return share_id, ready["link"]


@contextmanager
def _audit_unwritable(harness: Harness) -> Iterator[None]:
    """The audit log cannot be written meanwhile (as on a full disk)."""
    blocker = harness.audit.path / "head.tmp"
    blocker.mkdir()
    try:
        yield
    finally:
        blocker.rmdir()


async def test_requests_need_a_token(bridge: tuple[Harness, TestClient[Any, Any]]) -> None:
    harness, client = bridge
    response = await client.post("/api/share-requests", json=harness.request())
    assert response.status == 401
    bad = {"Authorization": "Bearer not-a-token-at-all-000"}
    response = await client.post("/api/share-requests", json=harness.request(), headers=bad)
    assert response.status == 401
    assert harness.service.list() == []


async def test_requester_token_creates_but_never_decides(
    bridge: tuple[Harness, TestClient[Any, Any]],
) -> None:
    harness, client = bridge
    response = await client.post("/api/share-requests", json=harness.request(), headers=REQUESTER)
    assert response.status == 201
    state = await response.json()
    assert state["state"] == "pending"
    assert harness.audit.records()[-1]["source"] == "http:Neighbour Alice"
    decision = {"decision": "approve", "by": "Neighbour Alice", "via": "ui"}
    response = await client.post(
        f"/api/shares/{state['id']}/decision", json=decision, headers=REQUESTER
    )
    assert response.status == 401
    for path in ("/api/shares", f"/api/shares/{state['id']}"):
        assert (await client.get(path, headers=REQUESTER)).status == 401
    assert harness.service.get(state["id"]).payload()["state"] == "pending"  # type: ignore[union-attr]


async def test_invalid_request_is_a_400_with_the_reason(
    bridge: tuple[Harness, TestClient[Any, Any]],
) -> None:
    harness, client = bridge
    response = await client.post(
        "/api/share-requests", json=harness.request(cameras=["garage"]), headers=API
    )
    assert response.status == 400
    assert "unknown camera 'garage'" in (await response.json())["error"]
    response = await client.post("/api/share-requests", data=b"{not json", headers=API)
    assert response.status == 400
    deep = b"[" * 60000  # deeper than the JSON parser follows
    response = await client.post("/api/share-requests", data=deep, headers=API)
    assert response.status == 400
    assert "nested too deeply" in (await response.json())["error"]


async def test_a_request_body_that_is_not_json_is_audited_like_any_invalid_request(
    bridge: tuple[Harness, TestClient[Any, Any]],
) -> None:
    harness, client = bridge
    response = await client.post("/api/share-requests", data=b"{not json", headers=REQUESTER)
    assert response.status == 400
    assert "expected a JSON body" in (await response.json())["error"]
    [record] = [r for r in harness.audit.records() if r["kind"] == "request_rejected"]
    assert record["source"] == "http:Neighbour Alice"
    assert "expected a JSON body" in record["error"]


async def test_decision_errors(bridge: tuple[Harness, TestClient[Any, Any]]) -> None:
    harness, client = bridge
    response = await client.post("/api/share-requests", json=harness.request(), headers=API)
    share_id = (await response.json())["id"]
    url = f"/api/shares/{share_id}/decision"
    cases = [
        ({"decision": "approve", "by": "owner"}, 400),
        ({"decision": "approve", "by": "owner", "via": "phone", "release": True}, 400),
        ({"decision": "approve", "by": "owner", "via": "phone", "redact": "no"}, 400),
        ({"decision": "approve", "by": "owner", "via": "phone", "by_id": ""}, 400),
        ({"decision": "revoke", "by": "owner", "via": "ui"}, 409),
    ]
    for body, status in cases:
        response = await client.post(url, json=body, headers=API)
        assert response.status == status, body
    response = await client.post(
        "/api/shares/s_AAAAAAAAAA/decision",
        json={"decision": "deny", "by": "owner", "via": "ui"},
        headers=API,
    )
    assert response.status == 404
    response = await client.post(
        url, json={"decision": "deny", "by": "o", "via": "ui", "by_id": "u1"}, headers=API
    )
    assert response.status == 200
    denied = await response.json()
    assert denied["state"] == "denied"
    assert denied["decision"]["by_id"] == "u1"
    response = await client.post(
        url, json={"decision": "deny", "by": "o", "via": "ui"}, headers=API
    )
    assert response.status == 409


async def test_share_link_range_and_audit(bridge: tuple[Harness, TestClient[Any, Any]]) -> None:
    harness, client = bridge
    share_id, link = await _ready(harness, client)
    listed = await (await client.get("/api/shares", headers=API)).json()
    assert [s["id"] for s in listed["shares"]] == [share_id]
    one = await (await client.get(f"/api/shares/{share_id}", headers=API)).json()
    assert one["link"] == link

    response = await client.get(link, headers={"User-Agent": "Recipient/1.0"})
    assert response.status == 200
    assert response.headers["Content-Type"] == "video/mp4"
    assert response.headers["Cache-Control"] == "no-store, private"
    body = await response.read()
    assert body[4:8] == b"ftyp"

    response = await client.get(link, headers={"Range": "bytes=0-99"})
    assert response.status == 206
    assert await response.read() == body[:100]
    assert response.headers["Content-Range"] == f"bytes 0-99/{len(body)}"
    beyond = await client.get(link, headers={"Range": f"bytes={len(body)}-"})
    assert beyond.status == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(body)}"
    assert "error" in await beyond.json()

    downloads = [r for r in harness.audit.records() if r["kind"] == "download"]
    assert len(downloads) == 3  # the refused range too: every request on the link
    assert downloads[0]["client"] == "127.0.0.1"
    assert downloads[0]["agent"] == "Recipient/1.0"
    assert downloads[0]["via"] == "direct"
    assert downloads[1]["range"] == "bytes=0-99"


async def test_share_link_refuses_an_empty_range_and_honours_if_range(
    bridge: tuple[Harness, TestClient[Any, Any]],
) -> None:
    harness, client = bridge
    _, link = await _ready(harness, client)
    response = await client.get(link)
    body = await response.read()
    etag = response.headers["ETag"]
    empty = await client.get(link, headers={"Range": "bytes=-0"})
    assert empty.status == 416
    assert empty.headers["Content-Range"] == f"bytes */{len(body)}"
    assert "error" in await empty.json()
    beyond = await client.get(link, headers={"Range": f"bytes={len(body)}-", "If-Range": etag})
    assert beyond.status == 416
    assert beyond.headers["Content-Range"] == f"bytes */{len(body)}"
    assert "error" in await beyond.json()
    seek = await client.get(link, headers={"Range": "bytes=0-99", "If-Range": etag})
    assert seek.status == 206
    assert await seek.read() == body[:100]
    stale = await client.get(link, headers={"Range": "bytes=0-99", "If-Range": '"0-0"'})
    assert stale.status == 200
    assert await stale.read() == body


async def test_a_head_on_the_link_is_audited_as_headers_only(
    bridge: tuple[Harness, TestClient[Any, Any]],
) -> None:
    # A chat app previewing the link, or a download manager sizing it: no footage sent.
    harness, client = bridge
    _, link = await _ready(harness, client)
    response = await client.head(link, headers={"User-Agent": "LinkPreview/1.0"})
    assert response.status == 200
    assert response.headers["Content-Type"] == "video/mp4"
    assert await response.read() == b""
    [head] = [r for r in harness.audit.records() if r["kind"] == "download"]
    assert (head["agent"], head["method"]) == ("LinkPreview/1.0", "HEAD")
    await (await client.get(link)).read()
    video = [r for r in harness.audit.records() if r["kind"] == "download"][1:]
    assert [r.get("method") for r in video] == [None]


async def _read_to_the_end(response: aiohttp.ClientResponse) -> None:
    while await response.content.read(1024 * 1024):
        pass


async def test_a_revoke_cuts_off_a_download_under_way(
    bridge: tuple[Harness, TestClient[Any, Any]],
) -> None:
    harness, client = bridge
    share_id, link = await _ready(harness, client)
    # A large export, so that the transfer is still under way when the owner revokes.
    size = 32 * 1024 * 1024
    (harness.config.storage.path / "shares" / f"{share_id}.mp4").write_bytes(bytes(size))
    response = await client.get(link)
    assert response.status == 200
    await response.content.readexactly(1024 * 1024)
    revoke = await client.post(
        f"/api/shares/{share_id}/decision",
        json={"decision": "revoke", "by": "owner", "via": "ui"},
        headers=API,
    )
    assert revoke.status == 200
    with pytest.raises(aiohttp.ClientPayloadError):  # the rest never comes
        await _read_to_the_end(response)
    # A download that is not cut short still gets every byte.
    _other_id, other_link = await _ready(harness, client)
    assert (await (await client.get(other_link)).read())[4:8] == b"ftyp"


async def test_proxy_client_headers_only_with_the_api_token(
    bridge: tuple[Harness, TestClient[Any, Any]],
) -> None:
    harness, client = bridge
    _share_id, link = await _ready(harness, client)
    forwarded = {"X-Doorstep-Client-Address": "198.51.100.7", "X-Doorstep-Client-Agent": "Phone"}
    assert (await client.get(link, headers=forwarded)).status == 200
    assert (await client.get(link, headers={**forwarded, **API})).status == 200
    downloads = [r for r in harness.audit.records() if r["kind"] == "download"]
    assert downloads[0]["client"] == "127.0.0.1"  # forged headers without the token: ignored
    assert downloads[0]["via"] == "direct"
    assert downloads[1]["client"] == "198.51.100.7"
    assert downloads[1]["agent"] == "Phone"
    assert downloads[1]["via"] == "proxy"


async def test_forged_truncated_and_traversal_tokens_are_404(
    bridge: tuple[Harness, TestClient[Any, Any]],
) -> None:
    harness, client = bridge
    _share_id, link = await _ready(harness, client)
    token = link.removeprefix("/share/")
    forged = ("A" if token[0] != "A" else "B") + token[1:]
    for path in (
        f"/share/{forged}",
        f"/share/{token[:-1]}",
        f"/share/{token[:22]}",
        f"/share/{token}x",
        "/share/..%2F..%2Faudit%2Faudit.jsonl",
        "/share/%2E%2E%2Fshares.sqlite3",
        "/share/s_" + "A" * 41,
    ):
        response = await client.get(path)
        assert response.status == 404, path
    response = await client.get("/share/../audit/audit.jsonl")
    assert response.status == 404
    assert [r for r in harness.audit.records() if r["kind"] == "download"] == []


async def test_revoked_and_expired_links_are_410(
    bridge: tuple[Harness, TestClient[Any, Any]],
) -> None:
    harness, client = bridge
    share_id, link = await _ready(harness, client)
    other_id, other_link = await _ready(harness, client)
    response = await client.post(
        f"/api/shares/{share_id}/decision",
        json={"decision": "revoke", "by": "owner", "via": "ui"},
        headers=API,
    )
    assert (await response.json())["state"] == "revoked"
    assert (await client.get(link)).status == 410
    harness.clock.advance(hours=25)  # the expiry timer has not run: the link checks itself
    assert (await client.get(other_link)).status == 410
    assert harness.service.get(other_id).payload()["state"] == "expired"  # type: ignore[union-attr]
    refused = [r for r in harness.audit.records() if r["kind"] == "download_refused"]
    assert [r["state"] for r in refused] == ["revoked", "expired"]
    assert verify(harness.audit.path).ok


async def test_integration_audit_records(bridge: tuple[Harness, TestClient[Any, Any]]) -> None:
    harness, client = bridge
    response = await client.post("/api/share-requests", json=harness.request(), headers=API)
    share_id = (await response.json())["id"]
    url = f"/api/shares/{share_id}/audit"
    body = {"kind": "notification", "to": ["notify.mobile_app_pixel"], "approvers": ["owner"]}
    assert (await client.post(url, json=body, headers=API)).status == 204
    refused = {"kind": "decision_refused", "user": "guest", "why": "not an approver"}
    assert (await client.post(url, json=refused, headers=API)).status == 204
    records = harness.audit.records()[-2:]
    assert records[0]["kind"] == "notification"
    assert records[0]["to"] == ["notify.mobile_app_pixel"]
    assert records[1]["why"] == "not an approver"
    for bad in (
        {"kind": "decision"},
        {"kind": "notification", "hash": "0" * 64},
        {"kind": "notification", "blob": {"a": 1}},
    ):
        assert (await client.post(url, json=bad, headers=API)).status == 400
    # Before, a kind that was no string at all was a 500.
    for kind in (["notification"], {"notification": True}):
        response = await client.post(url, json={"kind": kind}, headers=API)
        assert response.status == 400, kind
        assert (await response.json())["error"].startswith("expected a JSON object with kind: ")
    assert harness.audit.records()[-1]["why"] == "not an approver"  # nothing more written
    assert (await client.post(url, json=body, headers=REQUESTER)).status == 401
    response = await client.post("/api/shares/s_AAAAAAAAAA/audit", json=body, headers=API)
    assert response.status == 404


@pytest.mark.parametrize(("asked", "hours"), [(2, 2.0), (100, 24.0)])
async def test_approver_chosen_link_lifetime_is_capped(
    bridge: tuple[Harness, TestClient[Any, Any]], asked: float, hours: float
) -> None:
    harness, client = bridge
    response = await client.post("/api/share-requests", json=harness.request(), headers=API)
    share_id = (await response.json())["id"]
    response = await client.post(
        f"/api/shares/{share_id}/decision",
        json={"decision": "approve", "by": "owner", "via": "phone", "link_ttl_hours": asked},
        headers=API,
    )
    assert response.status == 200
    ready = await harness.wait_state(share_id, "ready")
    expected = harness.clock.now + timedelta(hours=hours)
    assert ready["link_expires"] == expected.isoformat(timespec="milliseconds")
    decision = next(r for r in harness.audit.records() if r["kind"] == "decision")
    assert decision["link_ttl_hours"] == hours


async def test_invalid_link_lifetime_is_a_400(bridge: tuple[Harness, TestClient[Any, Any]]) -> None:
    harness, client = bridge
    response = await client.post("/api/share-requests", json=harness.request(), headers=API)
    share_id = (await response.json())["id"]
    # 10**400: a JSON integer no float can hold (before, a 500).
    for bad in (0, -1, "24", True, 10**400, -(10**400)):
        response = await client.post(
            f"/api/shares/{share_id}/decision",
            json={"decision": "approve", "by": "owner", "via": "phone", "link_ttl_hours": bad},
            headers=API,
        )
        assert response.status == 400, bad
        assert (await response.json()) == {
            "error": "link_ttl_hours: expected a finite number of hours above 0"
        }
    assert "decision" not in harness.kinds()
    assert harness.service.get(share_id).payload()["state"] == "pending"  # type: ignore[union-attr]


async def test_too_many_pending_requests_is_a_429(
    bridge: tuple[Harness, TestClient[Any, Any]],
) -> None:
    from doorstep_bridge.sharing.requests import MAX_PENDING

    harness, client = bridge
    for _ in range(MAX_PENDING):
        response = await client.post(
            "/api/share-requests", json=harness.request(), headers=REQUESTER
        )
        assert response.status == 201
    response = await client.post("/api/share-requests", json=harness.request(), headers=REQUESTER)
    assert response.status == 429
    assert "waiting for a decision" in (await response.json())["error"]


async def test_the_signature_is_served_beside_the_link_and_verifies(
    bridge: tuple[Harness, TestClient[Any, Any]], tmp_path: Path
) -> None:
    harness, client = bridge
    share_id, link = await _ready(harness, client)
    video = await client.get(link)
    assert video.status == 200
    received = tmp_path / "received.mp4"
    received.write_bytes(await video.read())
    response = await client.get(f"{link}/signature", headers={"User-Agent": "Checker/1"})
    assert response.status == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store, private"
    assert (
        f'filename="doorstep-{share_id}.mp4.doorstep-sig.json"'
        in (response.headers["Content-Disposition"])
    )
    signature = tmp_path / "received.mp4.doorstep-sig.json"
    signature.write_bytes(await response.read())
    from doorstep_bridge.sharing.signing import verify_export

    result = verify_export(received)
    assert result.ok, result.problems
    assert result.manifest["share_id"] == share_id
    fetched = [r for r in harness.audit.records() if r.get("file") == "signature"]
    assert [(r["kind"], r["agent"]) for r in fetched] == [("download", "Checker/1")]

    await client.post(
        f"/api/shares/{share_id}/decision",
        json={"decision": "revoke", "by": "owner", "via": "ui"},
        headers=API,
    )
    assert (await client.get(f"{link}/signature")).status == 410
    token = link.removeprefix("/share/")
    assert (await client.get(f"/share/{token[:-1]}/signature")).status == 404


async def test_a_missing_signature_file_is_a_410(
    bridge: tuple[Harness, TestClient[Any, Any]],
) -> None:
    harness, client = bridge
    share_id, link = await _ready(harness, client)
    (harness.config.storage.path / "shares" / f"{share_id}.mp4.doorstep-sig.json").unlink()
    response = await client.get(f"{link}/signature")
    assert response.status == 410
    assert "no longer available" in (await response.json())["error"]


BROWSER = {
    "Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "User-Agent": "Mozilla/5.0 Recipient",
}


async def test_a_browser_gets_the_recipient_page_curl_the_video(
    bridge: tuple[Harness, TestClient[Any, Any]],
) -> None:
    harness, client = bridge
    share_id, link = await _ready(harness, client)
    response = await client.get(link, headers=BROWSER)
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    csp = response.headers["Content-Security-Policy"]
    assert csp.startswith("default-src 'none'; style-src 'sha256-")
    assert "script-src" not in csp
    assert "media-src 'self'" in csp
    assert response.headers["Vary"] == "Accept"
    assert response.headers["Cache-Control"] == "no-store, private"
    page = await response.text()
    assert "<script" not in page.lower()
    assert "http://" not in page
    assert "https://" not in page
    assert '<video controls preload="metadata" playsinline src="?raw=1">' in page
    assert "Neighbour Alice" in page  # who asked
    assert "Parcel went missing" in page  # why
    assert "owner" in page  # who approved
    assert "front_door: 1 area(s) blacked out" in page
    assert "faces blurred" in page
    fingerprint = harness.service.signing_fingerprint
    assert fingerprint is not None
    assert fingerprint in page
    token = link.removeprefix("/share/")
    assert f'href="{token}/signature"' in page
    assert f"doorstep-bridge verify-export doorstep-{share_id}.mp4" in page
    ready = harness.service.get(share_id)
    assert ready is not None
    expires = ready.payload()["link_expires"]
    assert f"{expires[:10]} {expires[11:16]}" in page  # the expiry, as people read it
    page_views = [r for r in harness.audit.records() if r.get("file") == "page"]
    assert [(r["kind"], r["agent"]) for r in page_views] == [("download", "Mozilla/5.0 Recipient")]

    # The player's request, curl and ?raw=1 all get the MP4.
    for headers, query in ((BROWSER, "?raw=1"), ({}, ""), ({"Accept": "*/*"}, "")):
        video = await client.get(link + query, headers=headers)
        assert video.status == 200
        assert video.headers["Content-Type"] == "video/mp4"
        assert video.headers["Content-Disposition"].startswith("inline;")
        assert (await video.read())[4:8] == b"ftyp"
    attached = await client.get(link + "?raw=1&download=1", headers=BROWSER)
    assert attached.headers["Content-Disposition"] == (
        f'attachment; filename="doorstep-{share_id}.mp4"'
    )


async def test_a_legal_release_says_under_what_authority(
    bridge: tuple[Harness, TestClient[Any, Any]],
) -> None:
    harness, client = bridge
    body = harness.request(
        kind="legal",
        authority="Tribunal judiciaire de Lyon",
        reference="RG 26/01234",
        legal_basis="Ordonnance du juge <b>d'instruction</b>",
        scope={
            "cameras": ["front_door"],
            "start": harness.request()["start"],
            "end": harness.request()["end"],
        },
    )
    response = await client.post("/api/share-requests", json=body, headers=API)
    assert response.status == 201, await response.text()
    share_id = (await response.json())["id"]
    await client.post(
        f"/api/shares/{share_id}/decision",
        json={"decision": "approve", "by": "owner", "via": "phone", "redact": False},
        headers=API,
    )
    ready = await harness.wait_state(share_id, "ready")
    page = await (await client.get(ready["link"], headers=BROWSER)).text()
    assert "Released under legal authority" in page
    assert "RG 26/01234" in page
    # Text from outside is escaped, never markup.
    assert "&lt;b&gt;d&#x27;instruction&lt;/b&gt;" in page
    assert "<b>" not in page
    assert "faces NOT blurred" in page


async def test_gone_and_unknown_links_show_a_plain_page(
    bridge: tuple[Harness, TestClient[Any, Any]],
) -> None:
    harness, client = bridge
    share_id, link = await _ready(harness, client)
    other_id, other_link = await _ready(harness, client)
    (harness.config.storage.path / "shares" / f"{other_id}.mp4.doorstep-sig.json").unlink()
    missing = await client.get(other_link, headers=BROWSER)
    assert missing.status == 410
    assert "no longer available" in await missing.text()
    await client.post(
        f"/api/shares/{share_id}/decision",
        json={"decision": "revoke", "by": "owner", "via": "ui"},
        headers=API,
    )
    gone = await client.get(link, headers=BROWSER)
    assert gone.status == 410
    assert gone.headers["Content-Type"] == "text/html; charset=utf-8"
    assert gone.headers["Content-Security-Policy"].startswith("default-src 'none'")
    text = await gone.text()
    assert "This link no longer works" in text
    assert "this share link was revoked" in text
    assert "<video" not in text
    # curl still gets JSON, with the same status.
    assert (await client.get(link)).status == 410
    assert "error" in await (await client.get(link)).json()
    unknown = await client.get("/share/" + "A" * 43, headers=BROWSER)
    assert unknown.status == 404
    assert "This link does not work" in await unknown.text()


async def test_a_link_that_cannot_be_audited_shows_a_browser_a_page_saying_so(
    bridge: tuple[Harness, TestClient[Any, Any]],
) -> None:
    harness, client = bridge
    _share_id, link = await _ready(harness, client)
    with _audit_unwritable(harness):
        response = await client.get(link, headers=BROWSER)
        assert response.status == 503
        assert response.headers["Content-Type"] == "text/html; charset=utf-8"
        text = await response.text()
        assert "try again later" in text
        assert "<video" not in text
        # curl still gets JSON, with the same status.
        response = await client.get(link)
        assert response.status == 503
        assert "audit log" in (await response.json())["error"]


async def test_no_request_on_a_link_is_served_while_the_audit_log_cannot_be_written(
    bridge: tuple[Harness, TestClient[Any, Any]],
) -> None:
    # A player's requests beyond its first few are summed, not written one by one: while
    # the log cannot be written, they must not be let through on the promise of a sum.
    harness, client = bridge
    _share_id, link = await _ready(harness, client)
    with _audit_unwritable(harness):
        for _ in range(6):
            response = await client.get(link, headers={"User-Agent": "Player/1"})
            assert response.status == 503
            assert await response.read() != b""
            assert "ftyp" not in await response.text()
    # The failed attempts did not use up the client's records written one by one: its
    # next requests are each written before they are served.
    for _ in range(3):
        response = await client.get(link, headers={"User-Agent": "Player/1"})
        assert response.status == 200
        assert (await response.read())[4:8] == b"ftyp"
    downloads = [r for r in harness.audit.records() if r["kind"] == "download"]
    assert [r["agent"] for r in downloads] == ["Player/1"] * 3
    assert verify(harness.audit.path).ok


async def test_a_sum_that_cannot_be_written_keeps_its_counts(
    bridge: tuple[Harness, TestClient[Any, Any]],
) -> None:
    harness, client = bridge
    share_id, link = await _ready(harness, client)
    for _ in range(5):  # 3 written one by one, 2 counted
        assert (await client.get(link, headers={"User-Agent": "Player/1"})).status == 200
    harness.clock.advance(seconds=61)
    with _audit_unwritable(harness):
        await harness.service.tick()  # the sum is due, and cannot be written
    await harness.service.tick()
    [summary] = [r for r in harness.audit.records() if r["kind"] == "repeated"]
    assert (summary["share_id"], summary["of"], summary["count"]) == (share_id, "download", 2)
    assert summary["entries"][0]["agent"] == "Player/1"


async def test_a_new_client_over_a_links_cap_is_refused_not_served_unnamed(
    bridge: tuple[Harness, TestClient[Any, Any]],
) -> None:
    # Whoever holds a link could otherwise hide a download among decoys: after the
    # link's cap of records written one by one, a new client would only be counted.
    harness, client = bridge
    share_id, link = await _ready(harness, client)
    statuses = []
    for index in range(30):
        response = await client.get(
            link, headers={"User-Agent": f"decoy/{index}", "Range": "bytes=0-0"}
        )
        await response.read()
        statuses.append(response.status)
    assert statuses == [206] * 10 + [429] * 20
    refused = await client.get(link, headers={"User-Agent": "Hidden/9"})
    assert refused.status == 429
    assert refused.headers["Retry-After"] == "60"
    assert "ftyp" not in await refused.text()
    page = await client.get(link, headers={**BROWSER, "User-Agent": "Mozilla/5.0 Late"})
    assert page.status == 429
    assert "Too many visits right now" in await page.text()
    # Every client that was served is named in a record of its own.
    downloads = [r for r in harness.audit.records() if r["kind"] == "download"]
    assert [r["agent"] for r in downloads] == [f"decoy/{index}" for index in range(10)]
    refusals = [r for r in harness.audit.records() if r["kind"] == "download_refused"]
    assert refusals[0]["reason"] == "too many clients"
    assert refusals[0]["state"] == "ready"
    # A client already named keeps its link (a player's further Range requests) ...
    again = await client.get(link, headers={"User-Agent": "decoy/0", "Range": "bytes=0-0"})
    assert again.status == 206
    # ... and a minute later the link takes new clients again, each written first.
    harness.clock.advance(seconds=61)
    await harness.service.tick()
    late = await client.get(link, headers={"User-Agent": "Hidden/9"})
    assert late.status == 200
    assert (await late.read())[4:8] == b"ftyp"
    last = [r for r in harness.audit.records() if r["kind"] == "download"][-1]
    assert (last["share_id"], last["agent"]) == (share_id, "Hidden/9")


async def test_a_link_kept_busy_by_a_player_takes_a_new_client_within_a_minute(
    bridge: tuple[Harness, TestClient[Any, Any]],
) -> None:
    # "Try again in a minute" must hold even while a recipient keeps seeking in the
    # player: the records written one by one renew every minute, not after a quiet one.
    harness, client = bridge
    share_id, link = await _ready(harness, client)
    for index in range(10):  # the link's records written one by one this minute
        response = await client.get(
            link, headers={"User-Agent": f"viewer/{index}", "Range": "bytes=0-0"}
        )
        assert response.status == 206
    refused = await client.get(link, headers={"User-Agent": "Colleague/2"})
    assert (refused.status, refused.headers["Retry-After"]) == (429, "60")
    for _ in range(4):  # a player seeking every 20 s
        harness.clock.advance(seconds=20)
        await harness.service.tick()
        seek = await client.get(link, headers={"User-Agent": "viewer/0", "Range": "bytes=0-0"})
        assert seek.status == 206
    late = await client.get(link, headers={"User-Agent": "Colleague/2"})
    assert late.status == 200
    assert (await late.read())[4:8] == b"ftyp"
    last = [r for r in harness.audit.records() if r["kind"] == "download"][-1]
    assert (last["share_id"], last["agent"]) == (share_id, "Colleague/2")
    # A client named earlier in the burst is still served once this minute's records
    # are spent by others: a player is not cut off mid-clip.
    statuses = []
    for index in range(10):
        headers = {"User-Agent": f"new/{index}", "Range": "bytes=0-0"}
        statuses.append((await client.get(link, headers=headers)).status)
    assert statuses[-1] == 429  # this minute's records are spent
    assert (
        await client.get(link, headers={"User-Agent": "viewer/1", "Range": "bytes=0-0"})
    ).status == 206
    assert (await client.get(link, headers={"User-Agent": "Stranger/1"})).status == 429


async def test_the_transparency_report_over_http(
    bridge: tuple[Harness, TestClient[Any, Any]],
) -> None:
    harness, client = bridge
    assert (await client.get("/api/share-report")).status == 401
    assert (await client.get("/api/share-report", headers=REQUESTER)).status == 401
    await _ready(harness, client)
    bad = harness.request(cameras=["garage"])
    assert (await client.post("/api/share-requests", json=bad, headers=API)).status == 400
    response = await client.get("/api/share-report", headers=API)
    assert response.status == 200
    assert await response.json() == {
        "log_ok": True,
        "log": (await response.json())["log"],
        "requests": 1,
        "kinds": {"ordinary": 1},
        "refused": 1,
        "outcomes": {"released": 1},
        "requesters": [
            {"requester": "Neighbour Alice", "kind": "ordinary", "asked": 1, "released": 1}
        ],
    }
    assert (await response.json())["log"].startswith("audit log intact")
