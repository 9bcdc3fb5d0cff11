"""Diagnostics with secrets and personal data redacted."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_API_TOKEN
from homeassistant.core import HomeAssistant

from .api import DoorstepError
from .const import CONF_APPROVERS, CONF_NOTIFY_SERVICES
from .data import DoorstepConfigEntry
from .protocol import Share

TO_REDACT = {
    CONF_API_TOKEN, CONF_APPROVERS, CONF_NOTIFY_SERVICES,
    "link", "requester", "by", "by_id",
}  # fmt: skip
#: A share request's reason is free text typed by a person; a clip's reason is one
#: of motion/person/ring/manual and helps debugging, so only the shares' one is redacted.
#: A legal request's authority, case reference and legal basis name who asks and why,
#: like its requester and reason.
SHARE_TO_REDACT = TO_REDACT | {"reason", "authority", "reference", "legal_basis"}


def _share(share: Share) -> dict[str, Any]:
    # asdict keeps a tuple a tuple, and redaction looks only into dicts and lists:
    # the approvals (each names who approved) go as a list.
    return {**asdict(share), "approvals": [asdict(approval) for approval in share.approvals]}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant,  # noqa: ARG001
    entry: DoorstepConfigEntry,
) -> dict[str, Any]:
    """Connection settings, bridge state and share states, without secrets."""
    coordinator = entry.runtime_data.coordinator
    data = coordinator.data
    cameras = {
        key: {
            **{k: v for k, v in asdict(state).items() if k not in ("snapshot", "last_clip")},
            "snapshot_bytes": len(state.snapshot) if state.snapshot else 0,
            "last_clip": asdict(state.last_clip) if state.last_clip else None,
        }
        for key, state in data.cameras.items()
    }
    # The key share exports are signed with: what a recipient's verify-export must show.
    try:
        signing_key = (await entry.runtime_data.client.info()).export_signing_key
    except DoorstepError as err:
        signing_key = f"unknown: {err}"
    # The transparency report's figures (who asked is redacted like the shares' requesters).
    report: dict[str, Any] | str
    try:
        report = await entry.runtime_data.client.share_report()
    except DoorstepError as err:
        report = f"unknown: {err}"
    return async_redact_data(
        {
            "entry": {"data": dict(entry.data), "options": dict(entry.options)},
            "bridge": {
                "info": asdict(data.info),
                "online": data.online,
                "heard_on_mqtt": coordinator.heard,
                "stats": asdict(data.stats) if data.stats else None,
                "export_signing_key": signing_key,
            },
            "cameras": cameras,
            "shares": {
                share_id: async_redact_data(_share(share), SHARE_TO_REDACT)
                for share_id, share in data.shares.items()
            },
            "approvals": entry.runtime_data.approvals.diagnostics(),
            "transparency_report": report,
        },
        TO_REDACT,
    )
