"""Wording of the phone notification for a share request: pure functions, no HA state.

Phone notifications travel through HA's push relay: short, and only as detailed
as the owner chose. The texts are kept here because HA has no translation
category for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

from .const import ACTION_APPROVE, ACTION_APPROVE_UNREDACTED, ACTION_DENY, ACTION_PREFIX
from .protocol import Share

TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Footage share request",
        "minimal": "A request to share doorbell footage is waiting for your decision.",
        "cameras": "A request to share footage of {cameras} is waiting for your decision.",
        "full": "{requester} asks for footage of {cameras}, {start} to {end}: {reason}",
        "approve": "Approve (redacted)",
        "approve_full": "Approve without redaction",
        "deny": "Deny",
        "legal": "LEGAL REQUEST",
        "legal_full": (
            "LEGAL REQUEST from {authority}, reference {reference}, under {legal_basis}; "
            "scope: {scope_cameras}, {scope_start} to {scope_end}."
        ),
        "second": "Approved by {approvers}: a second approver is needed.",
        "second_unnamed": "Approved once: a second approver is needed.",
        "again": "The last answer did not reach the bridge: this request still waits.",
    },
    "fr": {
        "title": "Demande de partage d'images",
        "minimal": "Une demande de partage d'images de la sonnette attend votre décision.",
        "cameras": "Une demande de partage d'images de {cameras} attend votre décision.",
        "full": "{requester} demande les images de {cameras}, de {start} à {end} : {reason}",
        "approve": "Approuver (floutées)",
        "approve_full": "Approuver sans floutage",
        "deny": "Refuser",
        "legal": "RÉQUISITION",
        "legal_full": (
            "RÉQUISITION de {authority}, référence {reference}, au titre de {legal_basis} ; "
            "périmètre : {scope_cameras}, de {scope_start} à {scope_end}."
        ),
        "second": "Approuvé par {approvers} : un second approbateur est nécessaire.",
        "second_unnamed": "Approuvé une fois : un second approbateur est nécessaire.",
        "again": "La dernière réponse n'a pas atteint le pont : cette demande attend toujours.",
    },
}


def texts_for(language: str) -> dict[str, str]:
    """Texts in HA's language (``fr-CA`` reads French), English otherwise."""
    return TEXTS.get(language.partition("-")[0], TEXTS["en"])


def notification_tag(share_id: str) -> str:
    """Tag of a share's notification: a later message with it replaces or clears it."""
    return f"doorstep_{share_id}"


def action_id(verb: str, nonce: str) -> str:
    """Action id of one notification button: the nonce is what makes it count."""
    return f"{ACTION_PREFIX}{verb}_{nonce}"


def approval_notification(
    share: Share,
    nonce: str,
    *,
    language: str,
    detail: str,
    title: str | None,
    offer_unredacted: bool,
    camera_names: Sequence[str],
    zone: tzinfo,
    again: bool = False,
) -> dict[str, Any]:
    """Service data of the actionable notification (no footage, no link).

    ``detail`` is one of ``NOTIFICATION_DETAILS``; ``title`` is the owner's own
    title, if any; ``camera_names`` are the display names of the share's cameras.
    ``again``: sent anew because a tap on it never reached the bridge (the phone
    that tapped no longer shows it); it says so before anything else.
    """
    texts = texts_for(language)

    def hhmm(moment: datetime | None) -> str:
        return moment.astimezone(zone).strftime("%d/%m %H:%M") if moment else "?"

    message = texts[detail].format(
        cameras=", ".join(camera_names),
        requester=share.requester,
        reason=share.reason or "-",
        start=hhmm(share.start),
        end=hhmm(share.end),
    )
    legal = share.legal
    if legal is not None:
        # The authority and its scope are what the approver decides on; the minimal
        # wording still says that it is one, without naming anyone.
        heading = (
            texts["legal_full"].format(
                authority=legal.authority,
                reference=legal.reference,
                legal_basis=legal.legal_basis,
                scope_cameras=", ".join(legal.scope_cameras),
                scope_start=hhmm(legal.scope_start),
                scope_end=hhmm(legal.scope_end),
            )
            if detail == "full"
            else texts["legal"] + ":"
        )
        message = f"{heading} {message}"
    if share.approvals:
        # Names travel through the push relay only when the owner chose full detail.
        approvers = ", ".join(approval.by for approval in share.approvals)
        second = (
            texts["second"].format(approvers=approvers)
            if detail == "full"
            else texts["second_unnamed"]
        )
        message = f"{second} {message}"
    if again:
        message = f"{texts['again']} {message}"
    actions = [{"action": action_id(ACTION_APPROVE, nonce), "title": texts["approve"]}]
    if offer_unredacted:
        actions.append(
            {"action": action_id(ACTION_APPROVE_UNREDACTED, nonce), "title": texts["approve_full"]}
        )
    actions.append({"action": action_id(ACTION_DENY, nonce), "title": texts["deny"]})
    return {
        "title": title or texts["title"],
        "message": message,
        "data": {"tag": notification_tag(share.id), "actions": actions},
    }


def clear_notification(share_id: str) -> dict[str, Any]:
    """Service data that removes a share's notification from a phone."""
    return {"message": "clear_notification", "data": {"tag": notification_tag(share_id)}}
