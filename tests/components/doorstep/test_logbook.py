"""Share events read well in the logbook."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.core import Event, HomeAssistant

from custom_components.doorstep.logbook import async_describe_events


def _describers(hass: HomeAssistant) -> dict[str, Callable[[Event[Any]], dict[str, str]]]:
    found: dict[str, Callable[[Event[Any]], dict[str, str]]] = {}
    async_describe_events(hass, lambda domain, event_type, fn: found.__setitem__(event_type, fn))
    return found


async def test_share_events_described(hass: HomeAssistant) -> None:
    describe = _describers(hass)
    entry = describe["doorstep_share_requested"](
        Event("doorstep_share_requested", {"share_id": "s_1", "cameras": ["front_door"]})
    )
    assert entry["message"] == "share request s_1 for front_door is waiting for a decision"
    entry = describe["doorstep_share_updated"](
        Event(
            "doorstep_share_updated",
            {"share_id": "s_1", "state": "approved", "decided_by": "Owner", "decided_via": "phone"},
        )
    )
    assert entry["message"] == "share request s_1 is now approved by Owner (phone)"
    # Revoked: the decision is still the approval; the logbook names who revoked.
    entry = describe["doorstep_share_updated"](
        Event(
            "doorstep_share_updated",
            {
                "share_id": "s_1",
                "state": "revoked",
                "decided_by": "automation",
                "decided_via": "automation",
                "revoked_by": "Alice",
                "revoked_via": "ui",
            },
        )
    )
    assert entry["message"] == "share request s_1 is now revoked by Alice (ui)"
    entry = describe["doorstep_share_updated"](
        Event("doorstep_share_updated", {"share_id": "s_1", "state": "ready"})
    )
    assert entry["message"] == "share request s_1 is now ready"
    entry = describe["doorstep_share_decision_rejected"](
        Event("doorstep_share_decision_rejected", {"share_id": None, "reason": "unknown_nonce"})
    )
    assert entry["message"] == "refused a phone decision on share request unknown: unknown_nonce"
