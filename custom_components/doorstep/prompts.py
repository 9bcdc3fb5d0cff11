"""Nonce bookkeeping of the phone notifications, kept across restarts.

Each notification round carries one random nonce. A tap counts only while its
nonce is live; a spent nonce is remembered (the latest ones), so a late replay is
told apart from a forgery. Pending requests already announced are remembered too,
so a restart or reload neither announces them again nor orphans the phones' buttons.
"""

from __future__ import annotations

from dataclasses import dataclass
import secrets
from typing import Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.storage import Store

from .const import DOMAIN

STORAGE_VERSION = 1
#: Spent nonces remembered, so late replays are told apart from forgeries.
MAX_SPENT_NONCES = 500


@dataclass(frozen=True, slots=True)
class PendingPrompt:
    """A notification round for one share request."""

    share_id: str
    nonce: str
    services: tuple[str, ...]


def _store(hass: HomeAssistant, entry_id: str) -> Store[dict[str, Any]]:
    # The key predates this module's name: kept so stored nonces survive updates.
    return Store(hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}.approvals")


async def async_remove_prompts(hass: HomeAssistant, entry_id: str) -> None:
    """Delete a removed bridge's saved prompts and nonces from HA's storage."""
    await _store(hass, entry_id).async_remove()


class PromptBook:
    """Live and spent nonces and announced requests of one bridge, saved in HA's storage."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        self.hass = hass
        self._prompts: dict[str, PendingPrompt] = {}  # nonce -> prompt
        self._spent: dict[str, str] = {}  # spent nonce -> share id
        self._announced: set[str] = set()
        self._store = _store(hass, entry_id)

    async def async_load(self) -> None:
        """Restore what was saved before a restart or reload."""
        stored = await self._store.async_load() or {}
        self._prompts = {
            nonce: PendingPrompt(item["share_id"], nonce, tuple(item["services"]))
            for nonce, item in stored.get("prompts", {}).items()
        }
        self._spent = dict(stored.get("used", {}))
        self._announced = set(stored.get("announced", []))

    @callback
    def _save(self) -> None:
        """Persist prompts, announced requests and the latest spent nonces."""
        self._spent = dict(list(self._spent.items())[-MAX_SPENT_NONCES:])
        data = {
            "prompts": {
                nonce: {"share_id": p.share_id, "services": list(p.services)}
                for nonce, p in self._prompts.items()
            },
            "used": self._spent,
            "announced": sorted(self._announced),
        }
        self.hass.async_create_task(self._store.async_save(data), eager_start=True)

    def diagnostics(self) -> dict[str, int]:
        """Counts only: nonces are secrets."""
        return {
            "live_prompts": len(self._prompts),
            "spent_nonces": len(self._spent),
            "announced_requests": len(self._announced),
        }

    def owns(self, nonce: str) -> bool:
        """Was ``nonce`` issued here (live or spent)."""
        return nonce in self._prompts or nonce in self._spent

    def live(self, nonce: str) -> PendingPrompt | None:
        """The prompt of a nonce that may still be used."""
        return self._prompts.get(nonce)

    def spent_on(self, nonce: str) -> str | None:
        """The share a spent nonce was for."""
        return self._spent.get(nonce)

    @callback
    def issue(self, share_id: str, services: tuple[str, ...]) -> PendingPrompt:
        """A new prompt with a fresh nonce, saved before any phone sees it."""
        prompt = PendingPrompt(share_id, secrets.token_urlsafe(16), services)
        self._prompts[prompt.nonce] = prompt
        self._save()
        return prompt

    @callback
    def spend(self, prompt: PendingPrompt) -> None:
        """Use up a prompt's nonce: one tap only."""
        del self._prompts[prompt.nonce]
        self._spent[prompt.nonce] = prompt.share_id
        self._save()

    @callback
    def restore(self, prompt: PendingPrompt) -> bool:
        """Make a spent prompt usable again: the tap that spent it decided nothing.

        False, and the nonce stays spent, once its request has left pending meanwhile
        (decided elsewhere, expired): its buttons are being cleared, a tap must be refused.
        """
        if prompt.share_id not in self._announced or prompt.nonce not in self._spent:
            return False
        del self._spent[prompt.nonce]
        self._prompts[prompt.nonce] = prompt
        self._save()
        return True

    @callback
    def announce(self, share_id: str) -> bool:
        """Note a new pending request; False when it was announced before."""
        if share_id in self._announced:
            return False
        self._announced.add(share_id)
        self._save()
        return True

    @callback
    def settle(self, share_id: str) -> list[PendingPrompt]:
        """A request left pending: spend its prompts, which are returned to be cleared."""
        if share_id not in self._announced:
            return []
        self._announced.discard(share_id)
        settled = [p for p in self._prompts.values() if p.share_id == share_id]
        for prompt in settled:
            del self._prompts[prompt.nonce]
            self._spent[prompt.nonce] = share_id
        self._save()
        return settled
