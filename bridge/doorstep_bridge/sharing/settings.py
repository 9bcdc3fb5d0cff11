"""Share workflow settings: the top-level `sharing` config section."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import voluptuous as vol

from doorstep_bridge.validation import boolean, number, text


@dataclass(frozen=True, slots=True)
class SharingSettings:
    """Limits on what may leave the home and for how long.

    Attributes:
        link_ttl_hours: Longest lifetime of a share link once it is ready: the lifetime
            when the owner set none in the integration's options, and the cap when they did.
        max_window_hours: Longest footage window one request may ask for.
        redact_faces: Blur faces in exports unless the approver chose otherwise.
        decision_timeout_minutes: A request with no decision by then expires.
        requester_tokens: Tokens (by requester name, at least 16 characters each)
            allowed to create requests over HTTP; they can never decide.
        legal_two_approvers: A ``kind: legal`` request needs the approvals of two
            different people: the first is recorded and waits, the second releases.
    """

    link_ttl_hours: float = 24.0
    max_window_hours: float = 12.0
    redact_faces: bool = True
    decision_timeout_minutes: float = 60.0
    requester_tokens: tuple[tuple[str, str], ...] = ()
    legal_two_approvers: bool = False


SHARING_SCHEMA = vol.Schema(
    {
        vol.Optional("link_ttl_hours"): number(0.1, 24.0 * 30),
        vol.Optional("max_window_hours"): number(0.01, 24.0 * 7),
        vol.Optional("redact_faces"): boolean,
        vol.Optional("decision_timeout_minutes"): number(1.0, 24.0 * 60 * 7),
        # As long as http.token: a requester token opens the share request route.
        vol.Optional("requester_tokens"): vol.Schema(
            {text: vol.All(text, vol.Length(min=16, msg="expected at least 16 characters"))}
        ),
        vol.Optional("legal_two_approvers"): boolean,
    }
)


def sharing_settings(data: dict[str, Any]) -> SharingSettings:
    """Build settings from a validated `sharing` section."""
    data = dict(data)
    if "requester_tokens" in data:
        data["requester_tokens"] = tuple(sorted(data["requester_tokens"].items()))
    return SharingSettings(**data)
