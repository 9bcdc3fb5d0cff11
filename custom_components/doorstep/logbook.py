"""Share-request events in the logbook (a mirror; the bridge keeps the real audit log)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from homeassistant.components.logbook.const import (
    LOGBOOK_ENTRY_ICON,
    LOGBOOK_ENTRY_MESSAGE,
    LOGBOOK_ENTRY_NAME,
)
from homeassistant.core import Event, HomeAssistant, callback

from .const import DOMAIN, EVENT_DECISION_REJECTED, EVENT_SHARE_REQUESTED, EVENT_SHARE_UPDATED

type Describer = Callable[[Event[Any]], dict[str, str]]


@callback
def async_describe_events(
    hass: HomeAssistant,  # noqa: ARG001
    async_describe_event: Callable[[str, str, Describer], None],
) -> None:
    """Describe Doorstep's bus events."""

    @callback
    def requested(event: Event[Any]) -> dict[str, str]:
        cameras = ", ".join(event.data.get("cameras") or [])
        return {
            LOGBOOK_ENTRY_NAME: "Doorstep",
            LOGBOOK_ENTRY_MESSAGE: (
                f"share request {event.data.get('share_id')} for {cameras} "
                "is waiting for a decision"
            ),
            LOGBOOK_ENTRY_ICON: "mdi:share-variant",
        }

    @callback
    def updated(event: Event[Any]) -> dict[str, str]:
        data = event.data
        state = data.get("state")
        message = f"share request {data.get('share_id')} is now {state}"
        # A revoked share's decision is still its approval: who revoked it is apart.
        prefix = "revoked" if state == "revoked" else "decided"
        who, via = data.get(f"{prefix}_by"), data.get(f"{prefix}_via")
        if who and state in ("approved", "denied", "revoked"):
            message += f" by {who}" + (f" ({via})" if via else "")
        return {
            LOGBOOK_ENTRY_NAME: "Doorstep",
            LOGBOOK_ENTRY_MESSAGE: message,
            LOGBOOK_ENTRY_ICON: "mdi:share-circle",
        }

    @callback
    def rejected(event: Event[Any]) -> dict[str, str]:
        share = event.data.get("share_id") or "unknown"
        return {
            LOGBOOK_ENTRY_NAME: "Doorstep",
            LOGBOOK_ENTRY_MESSAGE: (
                f"refused a phone decision on share request {share}: {event.data.get('reason')}"
            ),
            LOGBOOK_ENTRY_ICON: "mdi:shield-alert",
        }

    async_describe_event(DOMAIN, EVENT_SHARE_REQUESTED, requested)
    async_describe_event(DOMAIN, EVENT_SHARE_UPDATED, updated)
    async_describe_event(DOMAIN, EVENT_DECISION_REJECTED, rejected)
