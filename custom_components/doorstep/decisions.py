"""Decisions on share requests: the only way one reaches the bridge.

Service actions and phone taps both end here, once they have checked who decides.
"""

from __future__ import annotations

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant

from .api import DoorstepApiClient
from .const import CONF_APPROVERS, CONF_LINK_TTL_HOURS, DEFAULT_LINK_TTL_HOURS
from .coordinator import DoorstepCoordinator
from .errors import action_errors
from .protocol import Share


async def async_decider_name(hass: HomeAssistant, user_id: str | None) -> str:
    """Who acts, as the bridge's audit log names them (``by``).

    A user's name (their id when they have none); ``automation`` for an action with
    no user: an automation or script the owner wrote.
    """
    if user_id is None:
        return "automation"
    user = await hass.auth.async_get_user(user_id)
    return user.name if user and user.name else user_id


class ShareDecisions:
    """Approve, deny or revoke share requests of one bridge."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        client: DoorstepApiClient,
        coordinator: DoorstepCoordinator,
    ) -> None:
        self.hass = hass
        # Read at each decision: the owner's options, not a copy from setup time.
        self.entry = entry
        self.client = client
        self.coordinator = coordinator

    async def async_may_decide(self, user_id: str) -> bool:
        """Whether a logged-in user's decisions count on this bridge.

        The configured approvers when the owner named some, else HA's administrators:
        one rule for the service actions and the panel.
        """
        approvers = self.entry.options.get(CONF_APPROVERS, [])
        if approvers:
            return user_id in approvers
        user = await self.hass.auth.async_get_user(user_id)
        return bool(user and user.is_admin)

    async def async_decide(
        self, share_id: str, decision: str, *, user_id: str | None, via: str, redact: bool = True
    ) -> Share:
        """Send a decision; the bridge's answer updates the coordinator at once.

        The link lifetime of an approval is the owner's (options), never the decider's.
        """
        by = await async_decider_name(self.hass, user_id)
        link_ttl_hours = (
            float(self.entry.options.get(CONF_LINK_TTL_HOURS, DEFAULT_LINK_TTL_HOURS))
            if decision == "approve"
            else None
        )
        with action_errors(share_id):
            share = await self.client.decide(
                share_id, decision=decision, by=by, via=via, redact=redact,
                link_ttl_hours=link_ttl_hours, by_id=user_id,
            )  # fmt: skip
        self.coordinator.async_share_update(share)
        return share
