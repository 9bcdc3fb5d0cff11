"""Phone approvals: announce share requests, send actionable notifications, take taps.

A tap on a notification comes back as ``mobile_app_notification_action`` with
the phone owner's user in the event context. Anything on the HA bus can fire
that event type, so a decision counts only when it names a live nonce we sent,
comes from a configured approver, and the bridge takes it while the request is
pending.

The bridge is the one clock for its requests: it expires them with its own timers
and publishes the state. Its clock may differ from Home Assistant's (another host,
no NTP yet), so a request it says is pending is pending here, whatever its
``deadline`` looks like on this clock.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from homeassistant.config_entries import ConfigEntry, ConfigEntryState
from homeassistant.core import Context, Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from .api import (
    DoorstepApiClient,
    DoorstepConnectionError,
    DoorstepError,
    DoorstepNotFoundError,
    DoorstepRequestError,
)
from .backlog import AuditBacklog
from .const import (
    ACTION_APPROVE,
    ACTION_APPROVE_UNREDACTED,
    ACTION_DENY,
    ACTION_PREFIX,
    CONF_APPROVERS,
    CONF_NOTIFICATION_DETAIL,
    CONF_NOTIFICATION_TITLE,
    CONF_NOTIFY_SERVICES,
    CONF_OFFER_UNREDACTED,
    DEFAULT_NOTIFICATION_DETAIL,
    DOMAIN,
    EVENT_DECISION_REJECTED,
    EVENT_SHARE_REQUESTED,
    EVENT_SHARE_UPDATED,
    LOGGER,
    SHARE_URL,
)
from .coordinator import DoorstepCoordinator
from .decisions import ShareDecisions, async_decider_name
from .notifications import approval_notification, clear_notification
from .prompts import PendingPrompt, PromptBook
from .protocol import Share

MOBILE_APP_ACTION_EVENT = "mobile_app_notification_action"
#: Seconds a tap waits for its notification round to be audited before deciding.
NOTIFIED_WAIT = 30.0
#: Every manager, to find who owns a nonce (one listener for all bridges).
MANAGERS: HassKey[dict[str, ApprovalManager]] = HassKey(f"{DOMAIN}_approvals")
#: Characters of an error passed on to the audit log (the bridge takes 300 at most).
MAX_AUDIT_ERROR = 300
#: Taps kept while a bridge's entry is not set up yet (after a restart), and for how long.
MAX_HELD_TAPS = 5
HELD_TAP_TIME = timedelta(minutes=10)
#: Entry states that may still end in a manager taking the taps on its nonces.
STARTING = (
    ConfigEntryState.NOT_LOADED,
    ConfigEntryState.SETUP_IN_PROGRESS,
    ConfigEntryState.SETUP_RETRY,
)


@dataclass(frozen=True, slots=True)
class HeldTap:
    """A tap no manager owns while a Doorstep entry is not set up: maybe its nonce."""

    event: Event[Any]
    verb: str
    nonce: str
    at: datetime


HELD_TAPS: HassKey[list[HeldTap]] = HassKey(f"{DOMAIN}_held_taps")


def _unanswered(err: DoorstepError) -> bool:
    """The bridge did not answer, or failed itself (a restart, a 503): worth trying again.

    Not a token it rejects (re-authentication is asked for) or a request it refuses
    (4xx): the same call would fail the same way.
    """
    return isinstance(err, DoorstepConnectionError) or (
        isinstance(err, DoorstepRequestError) and err.status >= 500
    )


class ApprovalManager:
    """Share requests of one bridge on the HA bus and on the approvers' phones."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        client: DoorstepApiClient,
        coordinator: DoorstepCoordinator,
        decisions: ShareDecisions,
    ) -> None:
        self.hass = hass
        # Options are read when used: the owner's current choice.
        self.entry = entry
        self.client = client
        self.coordinator = coordinator
        self.decisions = decisions
        self.prompts = PromptBook(hass, entry.entry_id)
        # Audit records the bridge could not take yet, saved across restarts.
        self.backlog = AuditBacklog(hass, entry.entry_id)
        # HA service calls whose request is on its way, by request_id (= context id):
        # the bridge's MQTT state may arrive before its HTTP answer.
        self._requested_in: dict[str, Context] = {}
        # Notification rounds still sending or being audited, by share id: a tap
        # answering one waits for its audit record, so the log reads in the order
        # things happened (a phone can answer before the last phone was notified).
        self._notifying: dict[str, asyncio.Event] = {}
        # One writer at a time, so the records of a share reach the log in order.
        self._audit_lock = asyncio.Lock()
        self._online = coordinator.data.online

    @contextmanager
    def expect_request(self, context: Context) -> Iterator[None]:
        """Around a request made through HA: its event names the HA user who asked."""
        self._requested_in[context.id] = context
        try:
            yield
        finally:
            self._requested_in.pop(context.id, None)

    async def async_start(self) -> None:
        """Restore live prompts, follow share states, be reachable by nonce."""
        await self.prompts.async_load()
        await self.backlog.async_load()
        managers = self.hass.data.setdefault(MANAGERS, {})
        managers[self.entry.entry_id] = self

        def forget() -> None:
            managers.pop(self.entry.entry_id, None)

        self.entry.async_on_unload(forget)
        self.entry.async_on_unload(self.coordinator.async_add_share_listener(self._on_share))
        self.entry.async_on_unload(self.coordinator.async_add_listener(self._on_bridge))
        # The bridge has just answered (setup asks it first): what waited for it before
        # Home Assistant stopped goes now.
        self._write_backlog()
        self._take_held_taps()

    @callback
    def _take_held_taps(self) -> None:
        """Decide the taps on this bridge's nonces kept while it was not set up."""
        held = self.hass.data.get(HELD_TAPS, [])
        mine = [t for t in held if self.owns(t.nonce)]
        held[:] = [t for t in held if t not in mine]
        for kept in mine:
            if dt_util.utcnow() - kept.at > HELD_TAP_TIME:
                # Too old to act on: the approver has long moved on.
                self._reject("bridge_unavailable", kept.event, self._share_of(kept.nonce))
                continue
            self.entry.async_create_background_task(
                self.hass,
                self.async_handle_action(kept.event, kept.verb, kept.nonce),
                f"{DOMAIN} held tap",
            )
        if not _starting(self.hass, but=self.entry):
            # Every bridge is set up: a tap none of them sent was never a decision.
            for kept in held:
                _reject_unknown(self.hass, kept.event)
            held.clear()

    def _share_of(self, nonce: str) -> str | None:
        prompt = self.prompts.live(nonce)
        return prompt.share_id if prompt else self.prompts.spent_on(nonce)

    @callback
    def _on_bridge(self) -> None:
        """The bridge back online: the audit records that waited for it go."""
        was_online, self._online = self._online, self.coordinator.data.online
        if self._online and not was_online:
            self._write_backlog()

    @callback
    def _write_backlog(self) -> None:
        if len(self.backlog):
            self.entry.async_create_background_task(
                self.hass, self._async_write_backlog(), f"{DOMAIN} audit backlog"
            )

    async def _async_write_backlog(self) -> None:
        """Write every share's waiting records; stop at the first the bridge does not take."""
        for share_id in self.backlog.share_ids():
            async with self._audit_lock:
                if not await self._async_write_records(share_id):
                    return

    def diagnostics(self) -> dict[str, int]:
        """Counts only: nonces are secrets."""
        return {**self.prompts.diagnostics(), "waiting_audit_records": len(self.backlog)}

    @property
    def approvers(self) -> list[str]:
        """User ids whose decisions count."""
        return list(self.entry.options.get(CONF_APPROVERS, []))

    def owns(self, nonce: str) -> bool:
        """Did this manager send (or consume) ``nonce``."""
        return self.prompts.owns(nonce)

    # Share state changes ------------------------------------------------------

    @callback
    def _on_share(self, old: Share | None, new: Share) -> None:
        data = {"bridge_id": self.coordinator.bridge_id, **new.event_data()}
        if new.state == "ready" and new.link:
            token = new.link.rpartition("/")[2]
            data["link"] = SHARE_URL.format(bridge_id=self.coordinator.bridge_id, token=token)
        if old is None and new.state == "pending":
            if not self.prompts.announce(new.id):  # seen before a restart or reload
                return
            context = self._requested_in.pop(new.request_id or "", None)
            data["user_id"] = context.user_id if context else None
            self.hass.bus.async_fire(EVENT_SHARE_REQUESTED, data, context=context)
            # Its deadline is on the bridge's clock: pending says there is time to answer.
            self.entry.async_create_background_task(
                self.hass, self._async_prompt(new), f"{DOMAIN} notify {new.id}"
            )
            return
        if (
            old is not None
            and new.state == old.state == "pending"
            and len(new.approvals) > len(old.approvals)
        ):
            # The first of two approvals: the others are asked again, saying who gave it.
            self.entry.async_create_background_task(
                self.hass, self._async_prompt(new), f"{DOMAIN} notify {new.id}"
            )
        if new.state != "pending":
            for prompt in self.prompts.settle(new.id):
                self.entry.async_create_background_task(
                    self.hass, self._async_clear(prompt), f"{DOMAIN} clear {new.id}"
                )
            if new.id in self.backlog:
                # Decided elsewhere (the panel, an action) while a record still waited.
                self.entry.async_create_background_task(
                    self.hass, self._async_write_kept(new.id), f"{DOMAIN} audit {new.id}"
                )
        # A state first seen in another state is history (retained after a restart).
        if old is None or old.state == new.state:
            return
        self.hass.bus.async_fire(EVENT_SHARE_UPDATED, data)

    def notification(self, share: Share, nonce: str, *, again: bool = False) -> dict[str, Any]:
        """Service data of the actionable notification, worded as the owner chose."""
        options = self.entry.options
        return approval_notification(
            share,
            nonce,
            language=self.hass.config.language,
            detail=options.get(CONF_NOTIFICATION_DETAIL, DEFAULT_NOTIFICATION_DETAIL),
            title=options.get(CONF_NOTIFICATION_TITLE),
            offer_unredacted=options.get(CONF_OFFER_UNREDACTED, False),
            camera_names=[self.coordinator.data.camera_name(c) for c in share.cameras],
            zone=dt_util.get_default_time_zone(),
            again=again,
        )

    async def _async_prompt(self, share: Share) -> None:
        services = tuple(self.entry.options.get(CONF_NOTIFY_SERVICES, []))
        # Name exactly what is missing: the owner fixes it in the options.
        missing = [
            what
            for what, present in (("approvers", self.approvers), ("approver phones", services))
            if not present
        ]
        if missing:
            LOGGER.info(
                "Share request %s waits for a decision; no %s set",
                share.id,
                " and no ".join(missing),
            )
            return
        await self._async_round(share, services)

    async def _async_round(
        self,
        share: Share,
        services: tuple[str, ...],
        *,
        prompt: PendingPrompt | None = None,
        again: str | None = None,
    ) -> None:
        """Notify the phones, marked under way until the round is audited."""
        notified = self._notifying[share.id] = asyncio.Event()
        try:
            await self._async_notify(share, services, prompt=prompt, again=again)
        finally:
            notified.set()
            if self._notifying.get(share.id) is notified:
                del self._notifying[share.id]

    async def _async_notify(
        self,
        share: Share,
        services: tuple[str, ...],
        *,
        prompt: PendingPrompt | None = None,
        again: str | None = None,
    ) -> None:
        """Send a new prompt, or ``prompt`` again because of ``again`` (a refusal reason)."""
        if prompt is None:
            prompt = self.prompts.issue(share.id, services)
        payload = self.notification(share, prompt.nonce, again=again is not None)
        delivered: list[str] = []
        for service in services:
            if self._settled(share.id):
                # Decided while a push before this one was slow: its clear is sent once
                # this round ends, and this phone must not get the buttons after it.
                break
            domain, _, name = service.partition(".")
            try:
                await self.hass.services.async_call(domain, name, payload, blocking=True)
            except HomeAssistantError as err:
                LOGGER.warning("Could not notify %s about share %s: %s", service, share.id, err)
            else:
                delivered.append(service)
        fields: dict[str, Any] = {
            "to": delivered,
            "failed": [s for s in services if s not in delivered],
            "detail": self.entry.options.get(CONF_NOTIFICATION_DETAIL, DEFAULT_NOTIFICATION_DETAIL),
            "actions": [a["action"].split("_")[1] for a in payload["data"]["actions"]],
        }
        if again is not None:
            fields["again"] = again
        await self._async_audit(share.id, "notification", fields)

    async def _async_audit(self, share_id: str, kind: str, fields: dict[str, Any]) -> None:
        """Write to the bridge's audit log; a failure is logged, never raised.

        A record the bridge could not take because it did not answer (a restart, a
        503) is kept, with the time it happened (``at``), saved across Home Assistant
        restarts, and written before the next record or phone decision on its share,
        once the request is settled, or once the bridge is back (online again, or
        answering when this entry is set up): the log still shows what happened while
        the bridge was down, in order.
        """
        async with self._audit_lock:
            self.backlog.add(share_id, kind, fields)
            await self._async_write_records(share_id)

    async def _async_write_kept(self, share_id: str) -> None:
        """Write the records kept for a share, if any (see ``_async_audit``)."""
        if share_id in self.backlog:
            async with self._audit_lock:
                await self._async_write_records(share_id)

    async def _async_write_records(self, share_id: str) -> bool:
        """Write a share's waiting records in order; the caller holds the audit lock.

        False when the bridge did not answer: the records wait (and are saved).
        """
        while (record := self.backlog.next(share_id)) is not None:
            kind, fields = record
            try:
                await self.client.audit(share_id, kind, fields)
            except DoorstepError as err:
                if not _unanswered(err):
                    LOGGER.warning("Could not audit %s for share %s: %s", kind, share_id, err)
                    self.backlog.taken(share_id)
                    continue
                # Logged once per record, not at each try.
                for waiting in self.backlog.keep(share_id, dt_util.utcnow().isoformat()):
                    LOGGER.warning(
                        "Could not audit %s for share %s: %s; it is written once the "
                        "bridge answers", waiting, share_id, err,
                    )  # fmt: skip
                return False
            self.backlog.taken(share_id)
        self.backlog.save()
        return True

    def _settled(self, share_id: str) -> bool:
        """Whether the request is known here to have left pending."""
        share = self.coordinator.data.shares.get(share_id)
        return share is not None and share.state != "pending"

    async def _async_clear(self, prompt: PendingPrompt) -> None:
        """Clear the prompt's phones, after the round still notifying them, if any.

        A clear sent first would be overtaken by the prompt, leaving a decided request
        on a phone. The wait is bounded, so a hanging push holds no phone's clear back;
        the phones are cleared again once that round ends, for the push that hung.
        """
        await self._async_notified(prompt.share_id)
        await self._async_send_clear(prompt)
        if notifying := self._notifying.get(prompt.share_id):
            await notifying.wait()
            await self._async_send_clear(prompt)

    async def _async_send_clear(self, prompt: PendingPrompt) -> None:
        data = clear_notification(prompt.share_id)
        for service in prompt.services:
            domain, _, name = service.partition(".")
            try:
                await self.hass.services.async_call(domain, name, data, blocking=True)
            except HomeAssistantError as err:
                LOGGER.debug("Could not clear the notification on %s: %s", service, err)

    # Phone decisions -----------------------------------------------------------

    async def _async_ask_bridge(self, share_id: str) -> Share | str:
        """A request not heard of since Home Assistant started, as the bridge has it.

        Its retained state is on its way; a tap right after a restart may come first. A
        refusal reason when the bridge does not know it or does not answer.
        """
        try:
            share = await self.client.share(share_id)
        except DoorstepNotFoundError:
            return "not_pending"
        except DoorstepError:
            return "bridge_unavailable"
        self.coordinator.async_share_update(share)
        return share

    async def _refusal(self, prompt: PendingPrompt, user_id: str | None, verb: str) -> str | None:
        """Why a tap on a live prompt does not count, or None when it does."""
        if user_id is None or user_id not in self.approvers:
            return "not_an_approver"
        share = self.coordinator.data.shares.get(prompt.share_id) or await self._async_ask_bridge(
            prompt.share_id
        )
        if isinstance(share, str):
            return share
        if share.state != "pending":
            return "not_pending"
        # No deadline check here: it is on the bridge's clock, and the bridge refuses a
        # decision past it (``too_late``, see ``_async_not_taken``).
        if verb == ACTION_APPROVE_UNREDACTED and not self.entry.options.get(
            CONF_OFFER_UNREDACTED, False
        ):
            return "unredacted_not_offered"
        if share.approvals and verb != ACTION_DENY:
            name = await async_decider_name(self.hass, user_id)
            if any(approval.made_by(user_id, name) for approval in share.approvals):
                # A legal request needs a second approver: not the first one again.
                return "already_approved"
        return None

    def _reject(self, reason: str, event: Event[Any], share_id: str | None) -> None:
        if share_id is not None:
            self.entry.async_create_background_task(
                self.hass,
                self._async_audit_refusal(reason, event, share_id),
                f"{DOMAIN} audit {share_id}",
            )
        LOGGER.warning(
            "Rejected a share decision from a notification (%s): share %s, user %s",
            reason, share_id, event.context.user_id,
        )  # fmt: skip
        self._fire_rejected(reason, event, share_id)

    @callback
    def _fire_rejected(self, reason: str, event: Event[Any], share_id: str | None) -> None:
        _fire_rejected(self.hass, reason, event, self.coordinator.bridge_id, share_id)

    async def _async_notified(self, share_id: str) -> None:
        """Until the notification round on `share_id` is audited, if one is under way."""
        if notifying := self._notifying.get(share_id):
            # Bounded: a phone's push that hangs must not hold an answer back.
            with suppress(TimeoutError):
                await asyncio.wait_for(notifying.wait(), NOTIFIED_WAIT)

    async def _async_audit_refusal(
        self, reason: str, event: Event[Any], share_id: str, error: str | None = None
    ) -> None:
        await self._async_notified(share_id)
        user_id = event.context.user_id
        user = await self.hass.auth.async_get_user(user_id) if user_id else None
        parts = str(event.data.get("action", "")).split("_")
        fields = {
            "reason": reason,
            "user_id": user_id,
            "user": user.name if user else None,
            "action": parts[1][:20] if len(parts) > 2 else None,
        }
        if error is not None:
            fields["error"] = error[:MAX_AUDIT_ERROR]
        await self._async_audit(share_id, "decision_refused", fields)

    @callback
    def _not_taken(
        self, prompt: PendingPrompt, event: Event[Any], err: HomeAssistantError, *, expired: bool
    ) -> None:
        """A tap whose decision the bridge did not take: its buttons keep working.

        Spent, the nonce would refuse every later tap on every phone as already used,
        and the request would wait for its deadline. The phone that tapped no longer
        shows the notification, so the phones get it again, saying why. Not when the
        bridge refused it because the request had expired (``expired``): it is over.
        """
        cause = err.__cause__ if isinstance(err.__cause__, DoorstepError) else None
        # The bridge answered and refused the decision (a 4xx: decided meanwhile, unknown):
        # it would refuse the same tap again. Anything else (no answer, a 5xx, a token to
        # renew) says nothing of the request, and a later tap may well be taken.
        refused = isinstance(cause, DoorstepNotFoundError) or (
            isinstance(cause, DoorstepRequestError) and cause.status < 500
        )
        if expired:
            reason, restored = "too_late", False
        else:
            reason = "bridge_refused" if refused else "bridge_unavailable"
            restored = self.prompts.restore(prompt)
            if not restored:
                # Decided elsewhere while this tap was on its way: that state found the
                # nonce spent, so nothing cleared this prompt's phones. It goes now.
                self.entry.async_create_background_task(
                    self.hass, self._async_clear(prompt), f"{DOMAIN} clear {prompt.share_id}"
                )
        LOGGER.warning(
            "The bridge did not take the decision on %s from a notification (%s), user %s: %s",
            prompt.share_id, reason, event.context.user_id, cause or err,
        )  # fmt: skip
        self._fire_rejected(reason, event, prompt.share_id)
        self.entry.async_create_background_task(
            self.hass,
            self._async_after_not_taken(
                prompt, event, reason, str(cause or err), again=restored and not refused
            ),
            f"{DOMAIN} audit {prompt.share_id}",
        )

    async def _async_expired(self, share_id: str, err: HomeAssistantError) -> Share | None:
        """The request as the bridge has it now, when it refused a decision as expired.

        The bridge expires a request at its deadline on its own clock, which may differ
        from this one, and refuses a late decision with a conflict: only its state says
        whether the tap came too late (its ``expired`` message may still be on its way).
        """
        cause = err.__cause__
        if not isinstance(cause, DoorstepRequestError) or cause.status != 409:
            return None
        try:
            share = await self.client.share(share_id)
        except DoorstepError:
            return None
        return share if share.state == "expired" else None

    async def _async_after_not_taken(
        self, prompt: PendingPrompt, event: Event[Any], reason: str, error: str, *, again: bool
    ) -> None:
        """Audit the tap that decided nothing, then put the buttons back on the phones."""
        await self._async_audit_refusal(reason, event, prompt.share_id, error)
        share = self.coordinator.data.shares.get(prompt.share_id)
        # Not once another tap decided meanwhile: its state settled the prompt.
        if again and share is not None and self.prompts.live(prompt.nonce) is not None:
            await self._async_round(share, prompt.services, prompt=prompt, again=reason)

    async def async_handle_action(self, event: Event[Any], verb: str, nonce: str) -> None:
        """A tap on Approve / Deny for one of our nonces."""
        prompt = self.prompts.live(nonce)
        if prompt is None:
            self._reject("already_used", event, self.prompts.spent_on(nonce))
            return
        reason = await self._refusal(prompt, event.context.user_id, verb)
        if reason is not None:
            self._reject(reason, event, prompt.share_id)
            return
        user_id = event.context.user_id
        # Spent before the bridge call: a second tap meanwhile (another phone, a replay)
        # is refused rather than sent as a second decision. Restored if this one fails.
        self.prompts.spend(prompt)
        await self._async_notified(prompt.share_id)
        # What the log could not take while the bridge was down goes before the decision.
        await self._async_write_kept(prompt.share_id)
        decision = "deny" if verb == ACTION_DENY else "approve"
        try:
            decided = await self.decisions.async_decide(
                prompt.share_id, decision, user_id=user_id, via="phone",
                redact=verb != ACTION_APPROVE_UNREDACTED,
            )  # fmt: skip
        except HomeAssistantError as err:
            expired = await self._async_expired(prompt.share_id, err)
            self._not_taken(prompt, event, err, expired=expired is not None)
            if expired is not None:
                # Known here now, not only once its message arrives; the nonce is spent,
                # so its notification goes from the other phones as after a decision.
                self.coordinator.async_share_update(expired)
                await self._async_clear(prompt)
            return
        if decided.state != "pending":
            # The other approvers' phones; a first of two approvals is replaced instead
            # (same tag) by the prompt for the second.
            await self._async_clear(prompt)


@callback
def _fire_rejected(
    hass: HomeAssistant,
    reason: str,
    event: Event[Any],
    bridge_id: str | None = None,
    share_id: str | None = None,
) -> None:
    """Tell automations a tap decided nothing (``doorstep_share_decision_rejected``)."""
    hass.bus.async_fire(
        EVENT_DECISION_REJECTED,
        {
            "bridge_id": bridge_id,
            "share_id": share_id,
            "reason": reason,
            "user_id": event.context.user_id,
            "action": str(event.data.get("action", ""))[:64],
        },
    )


def _starting(hass: HomeAssistant, *, but: ConfigEntry | None = None) -> bool:
    """Whether a Doorstep entry (other than ``but``) is not set up yet, but may be."""
    return any(
        entry.state in STARTING and not entry.disabled_by and entry is not but
        for entry in hass.config_entries.async_entries(DOMAIN)
    )


@callback
def _reject_unknown(hass: HomeAssistant, event: Event[Any]) -> None:
    LOGGER.warning(
        "Rejected a share decision with an unknown nonce from user %s", event.context.user_id
    )
    _fire_rejected(hass, "unknown_nonce", event)


@callback
def _hold(hass: HomeAssistant, tap: HeldTap) -> None:
    """Keep a tap until its bridge's entry is set up (after a restart, the bridge late)."""
    held = hass.data.setdefault(HELD_TAPS, [])
    held.append(tap)
    for dropped in held[:-MAX_HELD_TAPS]:
        LOGGER.warning(
            "A share decision from a notification waited for Doorstep to be set up and was "
            "dropped for newer ones; user %s", dropped.event.context.user_id,
        )  # fmt: skip
        _fire_rejected(hass, "bridge_unavailable", dropped.event)
    del held[:-MAX_HELD_TAPS]
    LOGGER.info(
        "A share decision from a notification waits for Doorstep to be set up (at most %s)",
        HELD_TAP_TIME,
    )


@callback
def async_setup_action_listener(hass: HomeAssistant) -> None:
    """One listener for taps on Doorstep notifications, whatever the bridge."""

    async def handle(event: Event[Any]) -> None:
        action = event.data.get("action")
        if not isinstance(action, str) or not action.startswith(ACTION_PREFIX):
            return
        verb, _, nonce = action[len(ACTION_PREFIX) :].partition("_")
        managers = list(hass.data.get(MANAGERS, {}).values())
        owner = next((m for m in managers if m.owns(nonce)), None)
        known = verb in (ACTION_APPROVE, ACTION_APPROVE_UNREDACTED, ACTION_DENY)
        if known and owner is None and _starting(hass):
            # Maybe the nonce of a bridge whose entry is not set up yet (Home Assistant
            # just started, the bridge is late): its stored prompts are not loaded.
            _hold(hass, HeldTap(event, verb, nonce, dt_util.utcnow()))
            return
        if not known or owner is None:
            _reject_unknown(hass, event)
            return
        await owner.async_handle_action(event, verb, nonce)

    hass.bus.async_listen(MOBILE_APP_ACTION_EVENT, handle)
