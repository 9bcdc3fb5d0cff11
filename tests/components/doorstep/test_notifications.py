"""Notification wording, called directly: no Home Assistant instance needed."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, timedelta, timezone

from custom_components.doorstep.notifications import (
    approval_notification,
    clear_notification,
    texts_for,
)
from custom_components.doorstep.protocol import Decision, parse_share

SHARE = parse_share(
    {
        "id": "s_1",
        "state": "pending",
        "requester": "Police",
        "cameras": ["front_door", "garden"],
        "start": "2026-03-01T09:00:00+00:00",
        "end": "2026-03-01T09:30:00+00:00",
        "reason": "",
    }
)


def test_language_falls_back_to_english() -> None:
    assert texts_for("fr-CA")["deny"] == "Refuser"
    assert texts_for("de")["deny"] == "Deny"


def test_full_detail_in_the_home_time_zone() -> None:
    payload = approval_notification(
        SHARE, "n0nce", language="en", detail="full", title=None, offer_unredacted=True,
        camera_names=["Front door", "Garden"], zone=timezone(timedelta(hours=1)),
    )  # fmt: skip
    assert payload["title"] == "Footage share request"
    assert payload["message"] == (
        "Police asks for footage of Front door, Garden, 01/03 10:00 to 01/03 10:30: -"
    )
    assert payload["data"]["tag"] == "doorstep_s_1"
    assert [a["action"] for a in payload["data"]["actions"]] == [
        "DOORSTEP_APPROVE_n0nce", "DOORSTEP_APPROVEFULL_n0nce", "DOORSTEP_DENY_n0nce",
    ]  # fmt: skip


def test_minimal_detail_names_nothing() -> None:
    payload = approval_notification(
        SHARE, "n0nce", language="fr", detail="minimal", title="Sonnette",
        offer_unredacted=False, camera_names=["Front door"], zone=UTC,
    )  # fmt: skip
    assert payload["title"] == "Sonnette"
    assert "Front door" not in payload["message"]
    assert "Police" not in payload["message"]
    assert len(payload["data"]["actions"]) == 2
    assert clear_notification("s_1") == {
        "message": "clear_notification",
        "data": {"tag": "doorstep_s_1"},
    }


def test_unknown_times_show_a_question_mark() -> None:
    share = replace(SHARE, start=None, end=None)
    payload = approval_notification(
        share, "n", language="en", detail="full", title=None, offer_unredacted=False,
        camera_names=[], zone=UTC,
    )  # fmt: skip
    assert payload["message"] == "Police asks for footage of , ? to ?: -"


def test_a_first_approver_is_named_at_full_detail_only() -> None:
    approval = Decision(decision="approved", by="Alice Martin", via="phone", at=None, redact=True)
    approved = replace(SHARE, approvals=(approval,))
    by_detail = {
        detail: approval_notification(
            approved, "n0nce", language="en", detail=detail, title=None,
            offer_unredacted=False, camera_names=["Front door"], zone=UTC,
        )["message"]
        for detail in ("minimal", "cameras", "full")
    }  # fmt: skip
    assert by_detail["full"].startswith("Approved by Alice Martin: a second approver is needed.")
    for detail in ("minimal", "cameras"):
        assert by_detail[detail].startswith("Approved once: a second approver is needed.")
        assert "Alice" not in by_detail[detail]


def test_sent_again_says_the_last_answer_was_lost() -> None:
    for language, start in (
        ("en", "The last answer did not reach the bridge: this request still waits. "),
        ("fr", "La dernière réponse n'a pas atteint le pont : cette demande attend toujours. "),
    ):
        payload = approval_notification(
            SHARE, "n0nce", language=language, detail="minimal", title=None,
            offer_unredacted=False, camera_names=["Front door"], zone=UTC, again=True,
        )  # fmt: skip
        assert payload["message"].startswith(start)
        assert len(payload["data"]["actions"]) == 2
