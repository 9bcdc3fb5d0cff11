"""The share life cycle in the service: validation, decisions, render, link, expiry, audit."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta
import json
import logging
from pathlib import Path
import threading

import av
import pytest

from doorstep_bridge.events import ShareStateChanged
from doorstep_bridge.exceptions import AuditError, ShareError
from doorstep_bridge.sharing import exports
from doorstep_bridge.sharing.audit import verify
from doorstep_bridge.sharing.exports import Renderer
from doorstep_bridge.sharing.render import render
from doorstep_bridge.sharing.repeats import RepeatLimits
from doorstep_bridge.sharing.requests import MAX_PENDING, MQTT_REQUESTS_PER_MINUTE
from doorstep_bridge.sharing.state import (
    ShareConflictError,
    ShareGoneError,
    ShareLimitError,
    ShareNotFoundError,
)

from .conftest import T0, Harness, make_harness


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"cameras": ["garage"]}, "unknown camera 'garage'"),
        ({"cameras": []}, "cameras: expected a list"),
        ({"end": T0.isoformat()}, "end must be after start"),
        ({"end": (T0 + timedelta(hours=13)).isoformat()}, "max_window_hours (12 h)"),
        ({"requester": ""}, "requester: expected a non-empty string"),
        ({"reason": None}, "reason: expected a non-empty string"),
        # What would make an approver read a request other than it is.
        (
            {"requester": "Alice\u202eecilop"},
            "requester: control and text-direction characters are not allowed ('\\u202e' at",
        ),
        ({"requester": "Alice\nLEGAL REQUEST"}, "('\\n' at character 6)"),
        ({"reason": "Parcel\x1b[2J"}, "reason: control and text-direction characters"),
        ({"start": "yesterday"}, "not an ISO 8601 time"),
        ({"start": "2026-11-23T10:00:00"}, "needs a timezone"),
        (
            {
                "start": (T0 + timedelta(days=1)).isoformat(),
                "end": (T0 + timedelta(days=1, hours=1)).isoformat(),
            },
            "in the future",
        ),
        ({"decision": "approve"}, "unknown field(s) decision"),
    ],
)
async def test_invalid_requests_are_refused_with_a_clear_message(
    harness: Harness, overrides: dict[str, object], message: str
) -> None:
    with pytest.raises(ShareError) as err:
        await harness.service.create_request(harness.request(**overrides), "http")
    assert message in str(err.value)
    assert harness.service.list() == []
    assert harness.kinds() == ["request_rejected"]


async def test_stop_right_after_a_wake_up_stops(tmp_path: Path) -> None:
    """A stop that comes as the timers wake (a request was just made) still ends them."""
    h = await make_harness(tmp_path)
    await asyncio.sleep(0.05)  # the timers are waiting
    h.service._book.wake.set()
    async with asyncio.timeout(5):
        await h.service.stop()


async def test_request_is_pending_holds_clips_and_counts(harness: Harness) -> None:
    state = (
        await harness.service.create_request(harness.request(request_id="abc"), "mqtt")
    ).payload()
    assert state["state"] == "pending"
    assert state["id"].startswith("s_")
    assert state["request_id"] == "abc"
    assert state["decision"] is None
    assert state["link"] is None
    assert state["deadline"] == (harness.clock.now + timedelta(minutes=60)).isoformat(
        timespec="milliseconds"
    )
    assert harness.store.holds[state["id"]] == ("c_front_door_0",)
    assert harness.states[-1] == state
    assert harness.stats[-1] == {"pending_shares": 1}
    record = harness.audit.records()[-1]
    assert record["kind"] == "request"
    assert record["requester"] == "Neighbour Alice"
    assert record["source"] == "mqtt"


async def test_full_life_cycle_approve_render_download_expire(harness: Harness) -> None:
    service = harness.service
    share = (
        await service.create_request(harness.request(cameras=["front_door", "back_yard"]), "http")
    ).payload()
    approved = (await service.decide(share["id"], "approve", "owner", "phone", True)).payload()
    assert approved["state"] == "approved"
    assert approved["decision"]["by"] == "owner"
    assert approved["decision"]["via"] == "phone"
    assert approved["decision"]["redact"] is True
    assert harness.stats[-1] == {"pending_shares": 0}

    ready = await harness.wait_state(share["id"], "ready", "failed", "empty")
    assert ready["state"] == "ready", ready
    assert ready["progress"] == 1.0
    assert ready["link"].startswith("/share/")
    assert ready["link_expires"] == (harness.clock.now + timedelta(hours=24)).isoformat(
        timespec="milliseconds"
    )
    seen = [s["state"] for s in harness.states if s["id"] == share["id"]]
    assert seen[:3] == ["pending", "approved", "rendering"]
    assert seen[-1] == "ready"

    token = ready["link"].removeprefix("/share/")
    download = await service.download(token, "192.0.2.50", "curl/8")
    with av.open(str(download.path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = sum(1 for _ in container.decode(stream))
    # One second of each camera (10 fps), cut to the window.
    assert 18 <= frames <= 22
    # The token is nowhere on disk, only its hash.
    data = harness.config.storage.path
    for path in data.rglob("*"):
        if path.is_file() and path.suffix != ".mp4":
            assert token.encode() not in path.read_bytes(), path

    harness.clock.advance(hours=24)
    await service.tick()
    expired = service.get(share["id"])
    assert expired is not None
    assert expired.payload()["state"] == "expired"
    assert expired.payload()["link"] is None
    assert not download.path.exists()
    assert share["id"] in harness.store.released
    with pytest.raises(ShareGoneError):
        await service.download(token, "192.0.2.50", "curl/8")

    kinds = harness.kinds()
    for kind in (
        "request",
        "decision",
        "render_start",
        "render",
        "download",
        "expiry",
        "purge",
        "download_refused",
    ):
        assert kind in kinds
    download_record = next(r for r in harness.audit.records() if r["kind"] == "download")
    assert download_record["client"] == "192.0.2.50"
    assert download_record["agent"] == "curl/8"
    render_record = next(r for r in harness.audit.records() if r["kind"] == "render")
    assert len(render_record["sha256"]) == 64
    assert verify(harness.audit.path).ok


async def test_deny_releases_and_cannot_be_approved_after(harness: Harness) -> None:
    from doorstep_bridge.events import ClipsHeld

    held: list[tuple[str, ...]] = []
    harness.bus.subscribe(ClipsHeld, lambda event: held.append(event.clip_ids))
    share = (await harness.service.create_request(harness.request(), "http")).payload()
    # The cameras announce their latest clip's `held` again, each time it changes.
    assert held == [tuple(harness.store.holds[share["id"]])]
    denied = (await harness.service.decide(share["id"], "deny", "owner", "ui")).payload()
    assert denied["state"] == "denied"
    assert share["id"] not in harness.store.holds
    assert len(held) == 2
    assert held[0] == held[1]
    denial = next(r for r in harness.audit.records() if r["kind"] == "decision")
    assert (denial["decision"], "redact" in denial) == ("deny", False)
    with pytest.raises(ShareConflictError, match="denied, not pending"):
        await harness.service.decide(share["id"], "approve", "owner", "ui")


async def test_no_decision_before_the_deadline_expires(harness: Harness) -> None:
    share = (await harness.service.create_request(harness.request(), "http")).payload()
    harness.clock.advance(minutes=59)
    await harness.service.tick()
    assert harness.service.get(share["id"]).payload()["state"] == "pending"  # type: ignore[union-attr]
    harness.clock.advance(minutes=1)
    await harness.service.tick()
    assert harness.service.get(share["id"]).payload()["state"] == "expired"  # type: ignore[union-attr]
    with pytest.raises(ShareConflictError):
        await harness.service.decide(share["id"], "approve", "owner", "phone")
    assert harness.kinds()[-1] == "expiry"
    assert harness.audit.records()[-1]["reason"] == "no decision before the deadline"


async def test_late_approval_expires_instead(harness: Harness) -> None:
    share = (await harness.service.create_request(harness.request(), "http")).payload()
    harness.clock.advance(hours=2)  # the timer has not run yet
    with pytest.raises(ShareConflictError, match="expired without a decision"):
        await harness.service.decide(share["id"], "approve", "owner", "phone")
    assert harness.service.get(share["id"]).payload()["state"] == "expired"  # type: ignore[union-attr]


async def test_revoke_deletes_the_file_and_the_link_goes(harness: Harness) -> None:
    share = (await harness.service.create_request(harness.request(), "http")).payload()
    await harness.service.decide(share["id"], "approve", "owner", "automation", False)
    ready = await harness.wait_state(share["id"], "ready")
    token = ready["link"].removeprefix("/share/")
    path = (await harness.service.download(token, None, None)).path
    revoked = (await harness.service.decide(share["id"], "revoke", "Bob", "ui")).payload()
    assert revoked["state"] == "revoked"
    assert revoked["link"] is None
    # Who approved it, and who took it back.
    assert (revoked["decision"]["by"], revoked["revoked_by"]["by"]) == ("owner", "Bob")
    assert revoked["revoked_by"]["decision"] == "revoke"
    assert not path.exists()
    with pytest.raises(ShareGoneError):
        await harness.service.download(token, None, None)
    with pytest.raises(ShareConflictError, match="nothing to revoke"):
        await harness.service.decide(share["id"], "revoke", "owner", "ui")
    record = next(r for r in harness.audit.records() if r["kind"] == "revoke")
    assert record["by"] == "Bob"
    # A revoke releases nothing: whether faces are blurred is the approval's.
    assert "redact" not in record
    approval = next(r for r in harness.audit.records() if r["kind"] == "decision")
    assert approval["redact"] is False


async def test_a_revoke_whose_purge_cannot_be_audited_still_ends_the_share(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # The disk fills between the revoke's record and the purge's: the share is revoked
    # (its record is written), so it must not be held from retention for ever, nor the
    # owner told that nothing happened; the export waits for its purge record.
    caplog.set_level(logging.DEBUG, logger="doorstep_bridge.sharing.book")
    share = (await harness.service.create_request(harness.request(), "http")).payload()
    await harness.service.decide(share["id"], "approve", "owner", "automation", False)
    ready = await harness.wait_state(share["id"], "ready")
    token = ready["link"].removeprefix("/share/")
    path = (await harness.service.download(token, None, None)).path
    append = harness.audit.append

    def no_purge(kind: str, /, **fields: object) -> dict[str, object]:
        if kind == "purge":
            raise AuditError("the disk is full")
        return append(kind, **fields)

    monkeypatch.setattr(harness.audit, "append", no_purge)
    revoked = (await harness.service.decide(share["id"], "revoke", "owner", "ui")).payload()
    assert revoked["state"] == "revoked"
    assert share["id"] not in harness.store.holds  # retention has its clips again
    with pytest.raises(ShareGoneError):
        await harness.service.download(token, None, None)
    assert path.exists()  # not deleted without its record
    await harness.service.tick()  # still failing: still kept
    assert path.exists()
    said = [r for r in caplog.records if "Cannot audit the purge" in r.getMessage()]
    assert [r.levelname for r in said] == ["ERROR", "DEBUG"]  # said once, not every minute
    monkeypatch.setattr(harness.audit, "append", append)
    await harness.service.tick()
    assert not path.exists()
    purge = harness.audit.records()[-1]
    assert (purge["kind"], purge["share_id"], purge["reason"], purge["existed"]) == (
        "purge",
        share["id"],
        "revoked",
        True,
    )
    assert verify(harness.audit.path).ok


async def test_a_download_and_a_revoke_at_once_are_audited_in_the_order_they_took_effect(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    share = (await harness.service.create_request(harness.request(), "http")).payload()
    await harness.service.decide(share["id"], "approve", "owner", "phone")
    ready = await harness.wait_state(share["id"], "ready")
    token = ready["link"].removeprefix("/share/")
    writing_download, go_on = threading.Event(), threading.Event()
    append = harness.audit.append

    def slow_download_record(kind, /, **fields):  # type: ignore[no-untyped-def]
        if kind == "download":  # the disk is slow while the download is audited
            writing_download.set()
            go_on.wait(10)
        return append(kind, **fields)

    monkeypatch.setattr(harness.audit, "append", slow_download_record)
    download = asyncio.create_task(harness.service.download(token, "192.0.2.50", "curl/8"))
    assert await asyncio.to_thread(writing_download.wait, 10)
    revoke = asyncio.create_task(harness.service.decide(share["id"], "revoke", "owner", "ui"))
    await asyncio.sleep(0.3)  # the revoke gets as far as it can meanwhile
    go_on.set()
    served = await download
    assert (await revoke).payload()["state"] == "revoked"
    # The download was checked and audited before the revoke: the log says so, and the
    # file was still there to be served.
    kinds = [r["kind"] for r in harness.audit.records() if r.get("share_id") == share["id"]]
    assert kinds.index("download") < kinds.index("revoke")
    assert served.filename == f"doorstep-{share['id']}.mp4"


async def test_revoking_a_request_past_its_deadline_says_it_expired(harness: Harness) -> None:
    share = (await harness.service.create_request(harness.request(), "http")).payload()
    harness.clock.advance(hours=2)  # past the deadline, before the timers ran
    # Not "deny it instead": a deny would be refused too, the request is over.
    with pytest.raises(ShareConflictError, match="expired without a decision"):
        await harness.service.decide(share["id"], "revoke", "owner", "ui")
    assert harness.service.get(share["id"]).payload()["state"] == "expired"  # type: ignore[union-attr]


async def test_revoke_pending_says_deny(harness: Harness) -> None:
    share = (await harness.service.create_request(harness.request(), "http")).payload()
    with pytest.raises(ShareConflictError, match="deny it instead"):
        await harness.service.decide(share["id"], "revoke", "owner", "ui")


async def test_window_without_footage_is_empty(harness: Harness) -> None:
    share = (
        await harness.service.create_request(
            harness.request(
                start=(T0 + timedelta(minutes=5)).isoformat(),
                end=(T0 + timedelta(minutes=6)).isoformat(),
            ),
            "http",
        )
    ).payload()
    await harness.service.decide(share["id"], "approve", "owner", "phone")
    empty = await harness.wait_state(share["id"], "empty", "ready", "failed")
    assert empty["state"] == "empty"
    assert empty["error"] == "no footage in the window"
    assert empty["link"] is None


async def test_unreadable_clip_fails_clearly(harness: Harness, tmp_path: Path) -> None:
    harness.store.clips[0].path.write_bytes(b"not a video")
    share = (await harness.service.create_request(harness.request(), "http")).payload()
    await harness.service.decide(share["id"], "approve", "owner", "phone")
    failed = await harness.wait_state(share["id"], "failed", "ready", "empty")
    assert failed["state"] == "failed"
    assert failed["error"].startswith("rendering failed")
    assert share["id"] in harness.store.released


@pytest.mark.parametrize(
    ("decision", "by", "via", "message"),
    [
        ("release", "owner", "phone", "decision: expected one of"),
        ("approve", "", "phone", "by: expected a non-empty string"),
        ("approve", "owner", "mqtt", "via: expected one of"),
    ],
)
async def test_invalid_decisions(
    harness: Harness, decision: str, by: str, via: str, message: str
) -> None:
    share = (await harness.service.create_request(harness.request(), "http")).payload()
    with pytest.raises(ShareError, match=message):
        await harness.service.decide(share["id"], decision, by, via)
    assert harness.service.get(share["id"]).payload()["state"] == "pending"  # type: ignore[union-attr]


async def test_unknown_share(harness: Harness) -> None:
    with pytest.raises(ShareNotFoundError):
        await harness.service.decide("s_AAAAAAAAAA", "approve", "owner", "ui")
    with pytest.raises(ShareNotFoundError):
        await harness.service.decide("../../etc", "approve", "owner", "ui")
    with pytest.raises(ShareNotFoundError):
        await harness.service.download("x" * 43, None, None)


async def test_state_survives_a_restart_and_the_link_still_works(harness: Harness) -> None:
    share = (await harness.service.create_request(harness.request(), "http")).payload()
    pending = (await harness.service.create_request(harness.request(), "http")).payload()
    await harness.service.decide(share["id"], "approve", "owner", "phone")
    ready = await harness.wait_state(share["id"], "ready")
    token = ready["link"].removeprefix("/share/")
    await harness.restart()
    again = harness.service.get(share["id"])
    assert again is not None
    assert again.payload()["state"] == "ready"
    assert again.payload()["link"] is None  # the token is not stored; the recipient still has it
    assert (await harness.service.download(token, None, None)).path.exists()
    assert harness.service.get(pending["id"]).payload()["state"] == "pending"  # type: ignore[union-attr]
    await harness.service.decide(pending["id"], "deny", "owner", "phone")


async def test_orphan_exports_are_purged_at_start(tmp_path: Path) -> None:
    harness = await make_harness(tmp_path)
    exports = harness.config.storage.path / "shares"
    (exports / "s_LEFTOVERAA.mp4.part").write_bytes(b"half a render")
    (exports / "s_LEFTOVERBB.mp4").write_bytes(b"a render of a share that is gone")
    await harness.restart()
    assert not (exports / "s_LEFTOVERAA.mp4.part").exists()
    assert not (exports / "s_LEFTOVERBB.mp4").exists()
    # With the fields every purge record has (docs/sharing.md): a render cut short by a
    # kill is told by its share id.
    assert [
        (r["kind"], r["share_id"], r["file"], r["existed"]) for r in harness.audit.records()[-2:]
    ] == [
        ("purge", "s_LEFTOVERAA", "s_LEFTOVERAA.mp4.part", True),
        ("purge", "s_LEFTOVERBB", "s_LEFTOVERBB.mp4", True),
    ]
    # The database next to them is not an export.
    share = (await harness.service.create_request(harness.request(), "http")).payload()
    assert harness.service.get(share["id"]) is not None
    await harness.service.stop()


async def test_revoke_while_rendering_leaves_nothing(tmp_path: Path) -> None:
    from doorstep_bridge.sharing.render import render

    gate = threading.Event()
    finished = threading.Event()
    outcome: list[str] = []

    def slow_render(job, progress, cancel):  # type: ignore[no-untyped-def]
        gate.wait(10)
        try:
            result = render(job, progress, cancel)
        except BaseException as err:
            outcome.append(type(err).__name__)
            raise
        finally:
            finished.set()
        outcome.append("rendered")
        return result

    harness = await make_harness(tmp_path, renderer=slow_render)
    try:
        share = (await harness.service.create_request(harness.request(), "http")).payload()
        await harness.service.decide(share["id"], "approve", "owner", "phone")
        await harness.wait_state(share["id"], "rendering")
        revoked = (await harness.service.decide(share["id"], "revoke", "owner", "ui")).payload()
        assert revoked["state"] == "revoked"
        gate.set()
        # The render notices the cancel and stops; then the worker gets a few turns.
        assert await asyncio.to_thread(finished.wait, 10)
        for _ in range(10):
            await asyncio.sleep(0)
        assert outcome == ["RenderCancelledError"]
        assert harness.service.get(share["id"]).payload()["state"] == "revoked"  # type: ignore[union-attr]
        exports = harness.config.storage.path / "shares"
        assert list(exports.glob("s_*")) == []
        assert "render" not in harness.kinds()
        assert share["id"] in harness.store.released
    finally:
        gate.set()
        await harness.service.stop()


async def test_a_revoke_that_cannot_be_audited_leaves_the_render_going(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The owner is told the revoke was not applied: so it was not. Before, the render
    # was stopped anyway and the share stayed "rendering" with nothing rendering it,
    # until a restart resumed the render and released the export.
    gate = threading.Event()

    def gated_render(job, progress, cancel):  # type: ignore[no-untyped-def]
        from doorstep_bridge.sharing.render import render

        gate.wait(10)
        return render(job, progress, cancel)

    harness = await make_harness(tmp_path, renderer=gated_render)
    try:
        share = (await harness.service.create_request(harness.request(), "http")).payload()
        await harness.service.decide(share["id"], "approve", "owner", "phone")
        await harness.wait_state(share["id"], "rendering")
        append = harness.audit.append

        def no_revoke(kind: str, /, **fields: object) -> dict[str, object]:
            if kind == "revoke":
                raise AuditError("the disk is full")
            return append(kind, **fields)

        monkeypatch.setattr(harness.audit, "append", no_revoke)
        with pytest.raises(AuditError):
            await harness.service.decide(share["id"], "revoke", "owner", "ui")
        monkeypatch.setattr(harness.audit, "append", append)
        gate.set()
        ready = await harness.wait_state(share["id"], "ready")
        assert ready["link"]
        # The owner revokes again, and this one is applied.
        revoked = (await harness.service.decide(share["id"], "revoke", "owner", "ui")).payload()
        assert revoked["state"] == "revoked"
        assert harness.kinds().count("revoke") == 1
    finally:
        gate.set()
        await harness.service.stop()


def _gated_render(gate: threading.Event) -> Renderer:
    """The real render, once `gate` is set."""

    def gated(job, progress, cancel):  # type: ignore[no-untyped-def]
        gate.wait(10)
        return render(job, progress, cancel)

    return gated


def _no_audit_of(harness: Harness, monkeypatch: pytest.MonkeyPatch, kind: str) -> threading.Event:
    """Records of `kind` cannot be written (as on a full disk), until monkeypatch undoes it.

    Returns:
        Set once such a record was refused.
    """
    append = harness.audit.append
    refused = threading.Event()

    def refuse(record_kind: str, /, **fields: object) -> dict[str, object]:
        if record_kind == kind:
            refused.set()
            raise AuditError("cannot write the audit log: No space left on device")
        return append(record_kind, **fields)

    monkeypatch.setattr(harness.audit, "append", refuse)
    return refused


async def _waiting(harness: Harness, share_id: str) -> dict[str, object]:
    """The share's state once it says that a step of its render waits."""
    async with asyncio.timeout(10):
        while True:
            current = harness.service.get(share_id).payload()  # type: ignore[union-attr]
            if current["error"]:
                return current
            harness.changed.clear()
            await harness.changed.wait()


async def test_an_orphan_export_whose_purge_cannot_be_audited_is_kept_for_a_later_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Deleted first and audited after, a failed record left a file gone without one, and
    # the error stopped the start.
    harness = await make_harness(tmp_path)
    leftover = harness.config.storage.path / "shares" / "s_LEFTOVERAA.mp4"
    leftover.write_bytes(b"a render of a share that is gone")
    with monkeypatch.context() as full_disk:
        _no_audit_of(harness, full_disk, "purge")
        await harness.restart()  # starts
        assert leftover.exists()
        assert "purge" not in harness.kinds()
    await harness.restart()
    assert not leftover.exists()
    assert harness.kinds()[-1] == "purge"
    await harness.service.stop()


async def test_a_render_whose_end_cannot_be_audited_says_so_and_ends_once_it_can(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before, the share stayed "rendering" (100 %) until a restart, its clips held.
    monkeypatch.setattr(exports, "RETRY_AFTER_FAILURE", 0.1, raising=False)
    gate = threading.Event()
    harness = await make_harness(tmp_path, renderer=_gated_render(gate))
    try:
        share = (await harness.service.create_request(harness.request(), "http")).payload()
        await harness.service.decide(share["id"], "approve", "owner", "phone")
        await harness.wait_state(share["id"], "rendering")
        with monkeypatch.context() as full_disk:
            _no_audit_of(harness, full_disk, "render")
            gate.set()
            waiting = await _waiting(harness, share["id"])
            assert waiting["state"] == "rendering"
            assert waiting["error"] == (
                "the render is done but its end cannot be recorded (cannot write the audit log:"
                " No space left on device); trying again every 0.1 s"
            )
            assert waiting["link"] is None
            await asyncio.sleep(0.5)  # tried again meanwhile, still failing
        ready = await harness.wait_state(share["id"], "ready", "failed", timeout=10)
        assert ready["state"] == "ready"
        assert ready["error"] is None
        token = ready["link"].removeprefix("/share/")
        assert (await harness.service.download(token, None, None)).path.exists()
        assert harness.kinds().count("render") == 1
        assert verify(harness.audit.path).ok
    finally:
        gate.set()
        await harness.service.stop()


async def test_revoking_a_render_whose_end_was_not_recorded_deletes_its_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Before, the revoke left the rendered MP4 in shares/ with no purge record.
    monkeypatch.setattr(exports, "RETRY_AFTER_FAILURE", 0.1, raising=False)
    gate = threading.Event()
    harness = await make_harness(tmp_path, renderer=_gated_render(gate))
    exports_folder = harness.config.storage.path / "shares"
    try:
        share = (await harness.service.create_request(harness.request(), "http")).payload()
        await harness.service.decide(share["id"], "approve", "owner", "phone")
        await harness.wait_state(share["id"], "rendering")
        with monkeypatch.context() as full_disk:
            refused = _no_audit_of(harness, full_disk, "render")
            gate.set()
            assert await asyncio.to_thread(refused.wait, 10)
            assert (exports_folder / f"{share['id']}.mp4").exists()
            revoked = (await harness.service.decide(share["id"], "revoke", "owner", "ui")).payload()
        assert revoked["state"] == "revoked"
        assert revoked["error"] is None
        assert list(exports_folder.glob("s_*")) == []
        purge = harness.audit.records()[-1]
        assert (purge["kind"], purge["share_id"], purge["reason"], purge["existed"]) == (
            "purge",
            share["id"],
            "revoked",
            True,
        )
        assert share["id"] not in harness.store.holds
        await asyncio.sleep(0.5)  # the render's end, tried again, finds it revoked
        assert harness.service.get(share["id"]).payload()["state"] == "revoked"  # type: ignore[union-attr]
        assert "render" not in harness.kinds()
        assert list(exports_folder.glob("s_*")) == []
    finally:
        gate.set()
        await harness.service.stop()


async def test_a_render_that_cannot_start_says_so_and_starts_once_it_can(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(exports, "RETRY_AFTER_FAILURE", 0.1, raising=False)
    share = (await harness.service.create_request(harness.request(), "http")).payload()
    with monkeypatch.context() as full_disk:
        _no_audit_of(harness, full_disk, "render_start")
        await harness.service.decide(share["id"], "approve", "owner", "phone")
        waiting = await _waiting(harness, share["id"])
        assert waiting["state"] == "approved"
        assert str(waiting["error"]).startswith("the render cannot start (cannot write the audit")
    ready = await harness.wait_state(share["id"], "ready", "failed", timeout=10)
    assert ready["state"] == "ready"
    assert ready["error"] is None


async def test_a_share_for_a_camera_no_longer_configured_fails_clearly(harness: Harness) -> None:
    # Before, the approval raised inside the render queue and the share stayed "approved"
    # for ever, holding its clips.
    share = (
        await harness.service.create_request(harness.request(cameras=["back_yard"]), "http")
    ).payload()
    cameras = {k: v for k, v in harness.config.cameras.items() if k != "back_yard"}
    harness.config = replace(harness.config, cameras=cameras)
    await harness.restart()  # the owner took the camera out of the configuration
    await harness.service.decide(share["id"], "approve", "owner", "phone")
    failed = await harness.wait_state(share["id"], "failed", "ready", "empty", timeout=10)
    assert failed["state"] == "failed"
    assert failed["error"] == "rendering failed: camera 'back_yard' is no longer configured"
    assert failed["link"] is None
    assert share["id"] not in harness.store.holds
    render_record = harness.audit.records()[-1]
    assert (render_record["kind"], render_record["result"]) == ("render", "failed")


async def test_holds_are_renewed_at_start(harness: Harness) -> None:
    share = (await harness.service.create_request(harness.request(), "http")).payload()
    harness.store.holds.clear()  # a clip store that forgot its holds
    await harness.restart()
    assert harness.store.holds[share["id"]] == ("c_front_door_0",)


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not json", "expected a JSON object"),
        (b'["a", "list"]', "expected a JSON object"),
        pytest.param(b"[" * 60000, "expected a JSON object", id="too-deep-for-the-parser"),
        ((b'{"requester": "x", "cameras": ["front_door"], "start": "yesterday", "end": "today",'
         b' "reason": "r", "request_id": "q1"}'), "not an ISO 8601 time"),
    ],
)  # fmt: skip
async def test_invalid_mqtt_requests_are_published_once_as_rejected(
    harness: Harness, payload: bytes, message: str
) -> None:
    harness.service.handle_mqtt_request(payload)
    async with asyncio.timeout(10):
        while not harness.states:
            harness.changed.clear()
            await harness.changed.wait()
    [rejected] = harness.states
    assert rejected["state"] == "rejected"
    assert message in rejected["error"]
    assert rejected["start"] is None
    assert rejected["id"].startswith("s_")
    assert harness.service.list() == []
    assert harness.kinds() == ["request_rejected"]


async def test_a_render_cut_off_by_a_stop_resumes_at_the_next_start(tmp_path: Path) -> None:
    from doorstep_bridge.sharing.render import render

    started = threading.Event()
    cancelled: list[bool] = []

    def stuck_render(job, progress, cancel):  # type: ignore[no-untyped-def]
        started.set()
        cancelled.append(cancel.wait(30))  # the stop cancels it
        return render(job, progress, cancel)

    harness = await make_harness(tmp_path, renderer=stuck_render)
    share = (await harness.service.create_request(harness.request(), "http")).payload()
    await harness.service.decide(share["id"], "approve", "owner", "phone")
    assert await asyncio.to_thread(started.wait, 10)
    async with asyncio.timeout(10):  # not the whole render
        await harness.service.stop()
    assert cancelled == [True]
    exports = harness.config.storage.path / "shares"
    assert list(exports.glob("s_*")) == []  # the partial file is gone

    await harness.restart()  # with the real renderer
    ready = await harness.wait_state(share["id"], "ready", "failed")
    assert ready["state"] == "ready"
    assert ready["link"].startswith("/share/")
    await harness.service.stop()


async def test_a_step_that_cannot_be_audited_does_not_happen(harness: Harness) -> None:
    from doorstep_bridge.exceptions import AuditError

    service = harness.service
    share = (await service.create_request(harness.request(), "http")).payload()
    published = len(harness.states)
    blocker = harness.audit.path / "head.tmp"
    blocker.mkdir()  # the audit log cannot be written (as on a full disk)
    with pytest.raises(AuditError):
        await service.create_request(harness.request(), "http")
    with pytest.raises(AuditError):
        await service.decide(share["id"], "approve", "owner", "phone", True)
    assert [s.payload()["id"] for s in service.list()] == [share["id"]]
    assert service.get(share["id"]).payload()["state"] == "pending"  # type: ignore[union-attr]
    assert list(harness.store.holds) == [share["id"]]
    assert len(harness.states) == published
    # Over MQTT the asker is told, in a (not retained) rejection.
    events = await _share_events(harness)
    harness.service.handle_mqtt_request(json.dumps(harness.request(request_id="q")).encode())
    await _wait_for(events, 1, harness)
    rejection = events[0].view
    assert rejection is not None
    assert rejection.payload()["state"] == "rejected"
    assert rejection.payload()["request_id"] == "q"
    assert "cannot write its audit log" in rejection.payload()["error"]
    blocker.rmdir()
    await harness.restart()
    assert harness.service.get(share["id"]).payload()["state"] == "pending"  # type: ignore[union-attr]
    assert verify(harness.audit.path).ok


async def test_timers_that_cannot_audit_an_expiry_do_not_flood_the_log(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from doorstep_bridge.exceptions import AuditError

    service = harness.service
    share = (await service.create_request(harness.request(), "http")).payload()
    append = harness.audit.append

    def no_room_for_an_expiry(kind, /, **fields):  # type: ignore[no-untyped-def]
        if kind == "expiry":  # as on a full disk
            raise AuditError("cannot write the audit log: No space left on device")
        return append(kind, **fields)

    monkeypatch.setattr(harness.audit, "append", no_room_for_an_expiry)
    harness.clock.advance(hours=2)  # the first request is past its deadline
    await service.create_request(harness.request(), "http")  # wakes the timers
    await asyncio.sleep(1.0)
    failures = [r for r in caplog.records if "Share timers failed" in r.getMessage()]
    assert len(failures) == 1  # one traceback, not one every 50 ms
    assert service.get(share["id"]).payload()["state"] == "pending"  # type: ignore[union-attr]
    # Once the disk has room again, the expiry happens.
    monkeypatch.setattr(harness.audit, "append", append)
    await service.tick()
    assert service.get(share["id"]).payload()["state"] == "expired"  # type: ignore[union-attr]


async def _share_events(harness: Harness) -> list[ShareStateChanged]:
    """Every share state event from now on, with its retain flag."""
    events: list[ShareStateChanged] = []
    harness.bus.subscribe(ShareStateChanged, events.append)
    return events


async def _wait_for(events: list[ShareStateChanged], count: int, harness: Harness) -> None:
    async with asyncio.timeout(10):
        while len(events) < count:
            harness.changed.clear()
            await harness.changed.wait()


async def test_mqtt_rejections_are_not_retained(harness: Harness) -> None:
    events = await _share_events(harness)
    harness.service.handle_mqtt_request(b"junk")
    await _wait_for(events, 1, harness)
    assert events[0].view is not None
    assert events[0].view.payload()["state"] == "rejected"
    assert events[0].retain is False  # nothing left behind on the broker


async def test_mqtt_requests_are_limited_per_minute(harness: Harness) -> None:
    events = await _share_events(harness)
    for _ in range(MQTT_REQUESTS_PER_MINUTE + 2):
        harness.service.handle_mqtt_request(b"junk")
    await _wait_for(events, MQTT_REQUESTS_PER_MINUTE + 2, harness)
    errors = [event.view.payload()["error"] for event in events]  # type: ignore[union-attr]
    assert sum("expected a JSON object" in e for e in errors) == MQTT_REQUESTS_PER_MINUTE
    assert sum("at most 10 a minute" in e for e in errors) == 2
    assert all(not event.retain for event in events)
    # Only what was read is audited, and the same refusal over and over is summed after
    # the first few: a flood cannot fill the disk through the log.
    per_entry = RepeatLimits().per_entry
    assert harness.kinds() == ["request_rejected"] * per_entry
    harness.clock.advance(seconds=61)
    await harness.service.tick()
    summary = harness.audit.records()[-1]
    assert summary["kind"] == "repeated"
    assert (summary["of"], summary["source"]) == ("request_rejected", "mqtt")
    assert summary["count"] == MQTT_REQUESTS_PER_MINUTE - per_entry
    harness.service.handle_mqtt_request(json.dumps(harness.request(request_id="ok")).encode())
    await _wait_for(events, MQTT_REQUESTS_PER_MINUTE + 3, harness)
    last = events[-1].view
    assert last is not None
    assert last.payload()["state"] == "pending"
    assert last.payload()["request_id"] == "ok"


async def test_pending_requests_are_capped_per_source(harness: Harness) -> None:
    service = harness.service
    neighbour = "http:Neighbour Alice"
    shares = [
        await service.create_request(harness.request(), neighbour) for _ in range(MAX_PENDING)
    ]
    with pytest.raises(ShareLimitError, match="too many requests from this source are waiting"):
        await service.create_request(harness.request(), neighbour)
    assert len(service.list()) == MAX_PENDING
    assert harness.kinds()[-1] == "request_rejected"
    # The requester token filled its own quota, not the owner's (nor MQTT's).
    assert (await service.create_request(harness.request(), "http")).payload()["state"] == "pending"
    assert (await service.create_request(harness.request(), "mqtt")).payload()["state"] == "pending"
    await service.decide(shares[0].share.id, "deny", "owner", "ui")
    assert (await service.create_request(harness.request(), neighbour)).payload()[
        "state"
    ] == "pending"


async def test_ended_shares_are_forgotten_after_a_week(harness: Harness) -> None:
    service = harness.service
    denied = (await service.create_request(harness.request(), "http")).payload()
    await service.decide(denied["id"], "deny", "owner", "ui")
    waiting = (await service.create_request(harness.request(), "http")).payload()
    events = await _share_events(harness)
    harness.clock.advance(days=6)
    await service.tick()  # the pending one expires now; the denied one is kept
    assert service.get(denied["id"]).payload()["state"] == "denied"  # type: ignore[union-attr]
    assert service.get(waiting["id"]).payload()["state"] == "expired"  # type: ignore[union-attr]
    harness.clock.advance(days=1, seconds=1)
    await service.tick()
    assert service.get(denied["id"]) is None
    assert [s.payload()["id"] for s in service.list()] == [waiting["id"]]
    cleared = [e for e in events if e.share_id == denied["id"]]
    assert cleared[-1].view is None  # an empty retained payload clears the topic
    assert cleared[-1].retain is True
    record = harness.audit.records()[-1]
    assert (record["kind"], record["share_id"], record["state"]) == (
        "forget",
        denied["id"],
        "denied",
    )
    # Gone from the database too: a restart does not bring it back or publish it.
    events.clear()
    await harness.restart()
    assert harness.service.get(denied["id"]) is None
    assert all(e.share_id != denied["id"] for e in events)
    # Forgotten at start when the bridge was off for the week.
    harness.clock.advance(days=7)
    await harness.restart()
    assert harness.service.list() == []
    assert [e.view for e in events if e.share_id == waiting["id"]][-1] is None
    assert verify(harness.audit.path).ok
