"""Requests under legal authority: scope checked, fields audited, two approvers when set."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from doorstep_bridge.exceptions import ShareError
from doorstep_bridge.sharing.audit import verify
from doorstep_bridge.sharing.signing import signature_path, verify_export
from doorstep_bridge.sharing.state import ShareConflictError

from .conftest import T0, Harness, make_harness


def legal(harness: Harness, **overrides: Any) -> dict[str, Any]:
    body = harness.request(
        requester="Gendarmerie de Villeurbanne",
        reason="Burglary on 23 November",
        kind="legal",
        authority="Gendarmerie nationale, brigade de Villeurbanne",
        reference="PV 2026/004512",
        legal_basis="Code de procédure pénale, art. 60-1 (réquisition)",
        scope={
            "cameras": ["front_door"],
            "start": T0.isoformat(),
            "end": (T0 + timedelta(seconds=2)).isoformat(),
        },
    )
    body.update(overrides)
    return body


@pytest.fixture
async def two(tmp_path: Path) -> AsyncIterator[Harness]:
    h = await make_harness(tmp_path, legal_two_approvers=True)
    yield h
    await h.service.stop()


async def test_a_legal_request_is_stored_shown_and_audited(harness: Harness) -> None:
    state = (await harness.service.create_request(legal(harness), "http")).payload()
    assert state["kind"] == "legal"
    assert state["legal"] == {
        "authority": "Gendarmerie nationale, brigade de Villeurbanne",
        "reference": "PV 2026/004512",
        "legal_basis": "Code de procédure pénale, art. 60-1 (réquisition)",
        "scope": {
            "cameras": ["front_door"],
            "start": "2026-11-23T10:00:00.000+00:00",
            "end": "2026-11-23T10:00:02.000+00:00",
        },
    }
    record = harness.audit.records()[-1]
    assert record["kind"] == "request"
    assert record["request_kind"] == "legal"
    assert record["authority"] == state["legal"]["authority"]
    assert record["reference"] == "PV 2026/004512"
    assert record["legal_basis"] == state["legal"]["legal_basis"]
    assert record["scope"] == state["legal"]["scope"]
    # The database keeps it across a restart.
    await harness.restart()
    view = harness.service.get(state["id"])
    assert view is not None
    assert view.payload()["legal"] == state["legal"]
    assert view.payload()["kind"] == "legal"


async def test_an_ordinary_request_says_so(harness: Harness) -> None:
    state = (await harness.service.create_request(harness.request(), "http")).payload()
    assert state["kind"] == "ordinary"
    assert state["legal"] is None
    assert harness.audit.records()[-1]["request_kind"] == "ordinary"
    assert "authority" not in harness.audit.records()[-1]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"cameras": ["front_door", "back_yard"]},
            "outside the stated scope: camera 'back_yard' is not in the scope (front_door)",
        ),
        (
            {"end": (T0 + timedelta(seconds=3)).isoformat()},
            (
                "outside the stated scope: the window 2026-11-23T10:00:00.500+00:00 to "
                "2026-11-23T10:00:03.000+00:00 is not inside the scope's "
                "2026-11-23T10:00:00.000+00:00 to 2026-11-23T10:00:02.000+00:00"
            ),
        ),
        ({"authority": ""}, "authority: expected a non-empty string"),
        ({"reference": None}, "reference: expected a non-empty string"),
        ({"legal_basis": "x" * 501}, "legal_basis: at most 500 characters"),
        ({"scope": None}, "scope: expected the cameras and window"),
        ({"scope": {"cameras": ["front_door"], "start": T0.isoformat()}}, "scope.end: expected"),
        (
            {"scope": {"cameras": ["garage"], "start": T0.isoformat(), "end": T0.isoformat()}},
            "scope.cameras: unknown camera 'garage'",
        ),
        (
            {
                "scope": {
                    "cameras": ["front_door"],
                    "start": T0.isoformat(),
                    "end": T0.isoformat(),
                    "warrant": "yes",
                }
            },
            "scope: unknown field(s) warrant",
        ),
        (
            {"scope": {"cameras": ["front_door"], "start": T0.isoformat(), "end": T0.isoformat()}},
            "scope: end must be after start",
        ),
        ({"kind": "police"}, "kind: expected one of ordinary, legal"),
    ],
)
async def test_out_of_scope_and_incomplete_legal_requests_are_refused(
    harness: Harness, overrides: dict[str, Any], message: str
) -> None:
    with pytest.raises(ShareError) as err:
        await harness.service.create_request(legal(harness, **overrides), "http")
    assert message in str(err.value)
    assert harness.service.list() == []
    assert harness.kinds() == ["request_rejected"]


async def test_legal_fields_need_kind_legal(harness: Harness) -> None:
    with pytest.raises(ShareError, match="reference: only a request with kind: legal"):
        await harness.service.create_request(harness.request(reference="PV 1"), "http")


async def test_one_approver_is_enough_unless_set(harness: Harness) -> None:
    share = (await harness.service.create_request(legal(harness), "http")).payload()
    approved = (await harness.service.decide(share["id"], "approve", "Ann", "phone")).payload()
    assert approved["state"] == "approved"
    assert approved["approvals"] == []


async def test_two_approvers_the_first_waits_the_second_releases(two: Harness) -> None:
    service = two.service
    share = (await service.create_request(legal(two), "http")).payload()
    first = (await service.decide(share["id"], "approve", "Ann", "phone", False)).payload()
    assert first["state"] == "pending"
    assert first["decision"] is None
    assert [a["by"] for a in first["approvals"]] == ["Ann"]
    assert two.states[-1]["approvals"] == first["approvals"]
    record = two.audit.records()[-1]
    assert (record["kind"], record["by"], record["step"]) == (
        "decision",
        "Ann",
        "first of two approvals",
    )
    # The same person again does not count as a second approver.
    with pytest.raises(ShareConflictError, match="Ann already approved"):
        await service.decide(share["id"], "approve", "Ann", "ui")
    # Nor does a restart lose the first approval.
    await two.restart()
    service = two.service
    second = (await service.decide(share["id"], "approve", "Bob", "phone", False)).payload()
    assert second["state"] == "approved"
    assert second["decision"]["by"] == "Bob"
    # Faces stay unblurred only when both approvers chose so.
    assert second["decision"]["redact"] is False
    ready = await two.wait_state(share["id"], "ready", "failed", "empty")
    assert ready["state"] == "ready", ready
    token = ready["link"].removeprefix("/share/")
    export = (await service.download(token, "192.0.2.9", "curl/8")).path
    result = verify_export(export, signature_path(export))
    assert result.ok
    assert result.manifest["approvers"] == ["Ann", "Bob"]
    assert result.manifest["kind"] == "legal"
    assert result.manifest["legal"]["reference"] == "PV 2026/004512"
    assert verify(two.audit.path).ok


async def test_two_approvers_are_two_people_not_two_names(two: Harness) -> None:
    """Home Assistant sends each decider's user id: a rename is still the same person."""
    service = two.service
    share = (await service.create_request(legal(two), "http")).payload()
    first = await service.decide(share["id"], "approve", "Ann", "phone", by_id="a1")
    assert [a["by_id"] for a in first.payload()["approvals"]] == ["a1"]
    assert two.audit.records()[-1]["by_id"] == "a1"
    # Ann renamed herself "Annie" in Home Assistant before approving again.
    with pytest.raises(ShareConflictError, match="Annie already approved"):
        await service.decide(share["id"], "approve", "Annie", "ui", by_id="a1")
    await two.restart()  # the id is kept with the first approval
    with pytest.raises(ShareConflictError, match="already approved"):
        await two.service.decide(share["id"], "approve", "Annie", "ui", by_id="a1")
    # Another Ann (same name, another user) is a second approver.
    second = await two.service.decide(share["id"], "approve", "Ann", "phone", by_id="a2")
    assert second.payload()["state"] == "approved"
    assert second.payload()["decision"]["by_id"] == "a2"


async def test_a_decider_id_must_be_text(two: Harness) -> None:
    share = (await two.service.create_request(legal(two), "http")).payload()
    with pytest.raises(ShareError, match="by_id: expected a non-empty string"):
        await two.service.decide(share["id"], "approve", "Ann", "ui", by_id=7)  # type: ignore[arg-type]


async def test_two_approvers_a_deny_ends_it_and_redaction_wins(two: Harness) -> None:
    share = (await two.service.create_request(legal(two), "http")).payload()
    await two.service.decide(share["id"], "approve", "Ann", "phone", True)
    denied = (await two.service.decide(share["id"], "deny", "Bob", "phone")).payload()
    assert denied["state"] == "denied"
    other = (await two.service.create_request(legal(two), "http")).payload()
    await two.service.decide(other["id"], "approve", "Ann", "phone", True)
    second = (await two.service.decide(other["id"], "approve", "Bob", "ui", False)).payload()
    assert second["decision"]["redact"] is True


async def test_ordinary_requests_need_one_approver_even_when_set(two: Harness) -> None:
    share = (await two.service.create_request(two.request(), "http")).payload()
    approved = (await two.service.decide(share["id"], "approve", "Ann", "phone")).payload()
    assert approved["state"] == "approved"


async def test_the_transparency_report(
    two: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service = two.service
    # Released to a neighbour, downloaded twice.
    ordinary = (await service.create_request(two.request(), "http")).payload()
    await service.decide(ordinary["id"], "approve", "Ann", "phone")
    ready = await two.wait_state(ordinary["id"], "ready")
    token = ready["link"].removeprefix("/share/")
    for _ in range(2):
        await service.download(token, "192.0.2.9", "curl/8")
    await service.decide(ordinary["id"], "revoke", "Ann", "ui")
    # A legal request approved by two people.
    legal_ok = (await service.create_request(legal(two), "mqtt")).payload()
    await service.decide(legal_ok["id"], "approve", "Ann", "phone")
    await service.decide(legal_ok["id"], "approve", "Bob", "phone")
    await two.wait_state(legal_ok["id"], "ready")
    # One waiting for its second approval, one denied, one never decided, one refused.
    waiting = (await service.create_request(legal(two), "mqtt")).payload()
    await service.decide(waiting["id"], "approve", "Ann", "phone")
    denied = (
        await service.create_request(two.request(requester="Bob's insurer"), "http")
    ).payload()
    await service.decide(denied["id"], "deny", "Ann", "phone")
    await service.create_request(two.request(requester="Carol"), "http")
    with pytest.raises(ShareError, match="outside the stated scope"):
        await service.create_request(legal(two, cameras=["back_yard"]), "mqtt")
    two.clock.advance(hours=2)
    await service.tick()

    from doorstep_bridge.sharing.audit import audit_dir
    from doorstep_bridge.sharing.report import build_report

    report = build_report(audit_dir(two.config.storage.path))
    outcomes = {share.share_id: share.outcome for share in report.shares}
    assert outcomes[ordinary["id"]] == "released"
    assert outcomes[legal_ok["id"]] == "released"
    assert outcomes[waiting["id"]] == "expired without a decision" or outcomes[waiting["id"]] == (
        "waiting for a second approval"
    )
    assert outcomes[denied["id"]] == "denied"
    assert sorted(outcomes.values()).count("expired without a decision") >= 1
    assert report.refused == 1
    text = report.text()
    assert "Requests: 5 (ordinary 3, legal 2); refused as invalid or out of scope: 1" in text
    assert "Gendarmerie de Villeurbanne (legal): 2 asked, 1 released" in text
    assert "Neighbour Alice (ordinary): 1 asked, 1 released" in text
    assert "reference:   PV 2026/004512" in text
    assert "approved by: Ann, Bob" in text
    assert "downloads 2; revoked by Ann" in text
    assert "denied 1" in text

    config = tmp_path / "doorstep.yaml"
    config.write_text(
        "mqtt: {host: 127.0.0.1}\n"
        f"storage: {{path: {two.config.storage.path}}}\n"
        "cameras: {front_door: {source: rtsp://192.0.2.10/stream}}\n"
    )
    from doorstep_bridge.__main__ import main

    assert main(["report", "--config", str(config)]) == 0
    assert "Doorstep transparency report" in capsys.readouterr().out
    assert main(["report", "--config", str(config), "--since", "2099-01-01"]) == 0
    assert "Requests: 0 (ordinary 0, legal 0)" in capsys.readouterr().out
    assert main(["report", "--config", str(config), "--since", "soon"]) == 2
    assert "not an ISO 8601" in capsys.readouterr().err
    # A damaged log: the report says so and exits 1.
    log = audit_dir(two.config.storage.path) / "audit.jsonl"
    log.write_text(log.read_text().replace("Neighbour Alice", "Neighbour Alicf", 1))
    assert main(["report", "--config", str(config)]) == 1
    assert "NOT intact" in capsys.readouterr().out
    assert main(["report", "--config", str(tmp_path / "missing.yaml")]) == 2


@pytest.mark.parametrize(
    ("changes", "outcome"),
    [
        ({}, "pending"),
        ({"approvers": ["Ann"]}, "approved"),
        ({"approvers": ["Ann"], "first_approval": True}, "waiting for a second approval"),
        ({"approvers": ["Ann"], "render": "empty"}, "empty"),
        ({"approvers": ["Ann"], "render": "failed"}, "failed"),
        ({"approvers": ["Ann"], "render": "ready"}, "released"),
        ({"denied_by": "Ann"}, "denied"),
        ({"ended": "expired"}, "expired without a decision"),
    ],
)
def test_report_outcomes(changes: dict[str, Any], outcome: str) -> None:
    from doorstep_bridge.sharing.report import ShareHistory

    share = ShareHistory("s_AAAAAAAAAA", "t", "Alice", "ordinary", ("front_door",), "a", "b", "r")
    for key, value in changes.items():
        setattr(share, key, value)
    assert share.outcome == outcome


def test_report_since_counts_only_refusals_in_the_period(tmp_path: Path) -> None:
    from datetime import UTC, datetime
    import time

    from doorstep_bridge.sharing.audit import AuditLog
    from doorstep_bridge.sharing.report import build_report

    log = AuditLog(tmp_path / "audit")
    log.append("request_rejected", source="mqtt", error="cameras: unknown camera 'garage'")
    log.append("repeated", of="request_rejected", group="mqtt", count=3)
    time.sleep(0.01)
    since = datetime.now(UTC)
    time.sleep(0.01)
    log.append("request_rejected", source="mqtt", error="end must be after start")
    log.append("repeated", of="request_rejected", group="mqtt", count=2)
    assert build_report(log.path).refused == 7
    assert build_report(log.path, since).refused == 3


def test_a_share_revoked_before_its_export_was_ready_is_not_reported_as_approved(
    tmp_path: Path,
) -> None:
    from doorstep_bridge.sharing.audit import AuditLog
    from doorstep_bridge.sharing.report import build_report

    log = AuditLog(tmp_path / "audit")
    for share_id in ("s_AAAAAAAAAA", "s_BBBBBBBBBB"):
        log.append("request", share_id=share_id, requester="Alice", cameras=["front_door"])
        log.append("decision", share_id=share_id, decision="approve", by="Ann", via="phone")
    # The first is revoked while it renders (a cancelled render writes no render record).
    log.append("render_start", share_id="s_AAAAAAAAAA", clips=["c_1"], redact=True)
    log.append("revoke", share_id="s_AAAAAAAAAA", by="Ann", via="ui")
    report = build_report(log.path)
    outcomes = {share.share_id: share.outcome for share in report.shares}
    assert outcomes == {"s_AAAAAAAAAA": "revoked before release", "s_BBBBBBBBBB": "approved"}
    assert report.summary()["outcomes"] == {"revoked before release": 1, "approved": 1}
    assert "Outcomes: approved 1, revoked before release 1" in report.text()
    assert "Alice (ordinary): 2 asked, 0 released" in report.text()


async def test_the_report_counts_video_downloads_not_page_views_signatures_or_heads(
    harness: Harness,
) -> None:
    from doorstep_bridge.sharing.audit import audit_dir
    from doorstep_bridge.sharing.report import build_report

    service = harness.service
    share = (await service.create_request(harness.request(), "http")).payload()
    await service.decide(share["id"], "approve", "Ann", "phone")
    token = (await harness.wait_state(share["id"], "ready"))["link"].removeprefix("/share/")
    for _ in range(5):  # the recipient's page, reloaded: a burst, partly summed
        await service.download(token, "192.0.2.9", "Firefox", via="direct", file="page")
    await service.download(token, "192.0.2.9", "Firefox", via="direct", file="signature")
    for _ in range(2):
        await service.download(token, "192.0.2.9", "Firefox", via="direct")
    for _ in range(4):  # headers only (a link preview): no footage sent
        await service.download(token, "192.0.2.7", "Preview", via="direct", method="HEAD")
    harness.clock.advance(minutes=2)
    await service.tick()  # writes the sum of the burst

    [released] = build_report(audit_dir(harness.config.storage.path)).shares
    assert released.downloads == 2


def test_every_camera_outside_the_scope_is_named() -> None:
    from doorstep_bridge.sharing.state import LegalBasis

    basis = LegalBasis(
        authority="Police",
        reference="2026/1",
        legal_basis="Warrant",
        scope_cameras=("front_door",),
        scope_start=T0,
        scope_end=T0 + timedelta(hours=1),
    )
    assert basis.problem(("front_door", "back_yard", "garage"), T0, T0) == (
        "outside the stated scope: cameras 'back_yard', 'garage' are not in the scope (front_door)"
    )
