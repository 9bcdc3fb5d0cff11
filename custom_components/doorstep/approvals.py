"""Share requests in HA: bus events, phone approvals with one-time nonces.

A tap on a notification comes back as ``mobile_app_notification_action`` with
the phone owner's user in the event context. Anything on the HA bus can fire
that event type, so a decision counts only when it names a live nonce we sent,
comes from a configured approver, and arrives before the request's deadline.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
import secrets
from typing import TYPE_CHECKING, Any

from homeassistant.core import Context, Event, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from .api import DoorstepApiClient, DoorstepError, DoorstepNotFoundError, DoorstepRequestError
from .const import (
    ACTION_APPROVE,
    ACTION_APPROVE_UNREDACTED,
    ACTION_DENY,
    ACTION_PREFIX,
    CONF_APPROVERS,
    CONF_LINK_TTL_HOURS,
    CONF_NOTIFICATION_DETAIL,
    CONF_NOTIFICATION_TITLE,
    CONF_NOTIFY_SERVICES,
    CONF_OFFER_UNREDACTED,
    DEFAULT_LINK_TTL_HOURS,
    DEFAULT_NOTIFICATION_DETAIL,
    DOMAIN,
    EVENT_DECISION_REJECTED,
    EVENT_SHARE_REQUESTED,
    EVENT_SHARE_UPDATED,
    LOGGER,
    SHARE_URL,
)

if TYPE_CHECKING:
    from .coordinator import DoorstepConfigEntry, DoorstepCoordinator
    from .protocol import Share

MOBILE_APP_ACTION_EVENT = "mobile_app_notification_action"
STORAGE_VERSION = 1
#: Spent nonces remembered, so late replays are told apart from forgeries.
MAX_SPENT_NONCES = 500
#: Every manager, to find who owns a nonce (one listener for all bridges).
MANAGERS: HassKey[dict[str, ApprovalManager]] = HassKey(f"{DOMAIN}_approvals")

# Phone notifications travel through HA's push relay: short, and only as detailed
# as the owner chose. Kept here because HA has no translation category for them.
TEXTS: dict[str, dict[str, str]] = {
    "en": {
        "title": "Footage share request",
        "minimal": "A request to share doorbell footage is waiting for your decision.",
        "cameras": "A request to share footage of {cameras} is waiting for your decision.",
        "full": "{requester} asks for footage of {cameras}, {start} to {end}: {reason}",
        "approve": "Approve (redacted)",
        "approve_full": "Approve without redaction",
        "deny": "Deny",
    },
    "fr": {
        "title": "Demande de partage d'images",
        "minimal": "Une demande de partage d'images de la sonnette attend votre décision.",
        "cameras": "Une demande de partage d'images de {cameras} attend votre décision.",
        "full": "{requester} demande les images de {cameras}, de {start} à {end} : {reason}",
        "approve": "Approuver (floutées)",
        "approve_full": "Approuver sans floutage",
        "deny": "Refuser",
    },
}


@dataclass(frozen=True, slots=True)
class PendingPrompt:
    """A notification round for one share request."""

    share_id: str
    nonce: str
    services: tuple[str, ...]


class ApprovalManager:
    """Share-request side of one bridge."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: DoorstepConfigEntry,
        client: DoorstepApiClient,
        coordinator: DoorstepCoordinator,
    ) -> None:
        self.hass = hass
        self.entry = entry
        self.client = client
        self.coordinator = coordinator
        self._prompts: dict[str, PendingPrompt] = {}  # nonce -> prompt
        self._used: dict[str, str] = {}  # spent nonce -> share id
        #: Pending requests already announced (event + notifications), so a restart
        #: or reload neither announces them again nor orphans the phones' buttons.
        self._announced: set[str] = set()
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, f"{DOMAIN}.{entry.entry_id}.approvals"
        )
        # HA service calls whose request is on its way, by request_id (= context id):
        # the bridge's MQTT state may arrive before its HTTP answer.
        self._requested_in: dict[str, Context] = {}

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
        stored = await self._store.async_load() or {}
        self._prompts = {
            nonce: PendingPrompt(item["share_id"], nonce, tuple(item["services"]))
            for nonce, item in stored.get("prompts", {}).items()
        }
        self._used = dict(stored.get("used", {}))
        self._announced = set(stored.get("announced", []))
        managers = self.hass.data.setdefault(MANAGERS, {})
        managers[self.entry.entry_id] = self

        def forget() -> None:
            managers.pop(self.entry.entry_id, None)

        self.entry.async_on_unload(forget)
        self.entry.async_on_unload(self.coordinator.async_add_share_listener(self._on_share))

    @callback
    def _save(self) -> None:
        """Persist prompts, announced requests and the latest spent nonces."""
        self._used = dict(list(self._used.items())[-MAX_SPENT_NONCES:])
        data = {
            "prompts": {
                nonce: {"share_id": p.share_id, "services": list(p.services)}
                for nonce, p in self._prompts.items()
            },
            "used": self._used,
            "announced": sorted(self._announced),
        }
        self.hass.async_create_task(self._store.async_save(data), eager_start=True)

    def diagnostics(self) -> dict[str, int]:
        """Counts only: nonces are secrets."""
        return {
            "live_prompts": len(self._prompts),
            "spent_nonces": len(self._used),
            "announced_requests": len(self._announced),
        }

    @property
    def approvers(self) -> list[str]:
        """User ids whose decisions count."""
        return list(self.entry.options.get(CONF_APPROVERS, []))

    def owns(self, nonce: str) -> bool:
        """Did this manager send (or consume) ``nonce``."""
        return nonce in self._prompts or nonce in self._used

    # Share state changes ------------------------------------------------------

    @callback
    def _on_share(self, old: Share | None, new: Share) -> None:
        data = {"bridge_id": self.coordinator.bridge_id, **new.event_data()}
        if new.state == "ready" and new.link:
            token = new.link.rpartition("/")[2]
            data["link"] = SHARE_URL.format(bridge_id=self.coordinator.bridge_id, token=token)
        if old is None and new.state == "pending":
            if new.id in self._announced:  # seen before a restart or reload
                return
            self._announced.add(new.id)
            self._save()
            context = self._requested_in.pop(new.request_id or "", None)
            data["user_id"] = context.user_id if context else None
            self.hass.bus.async_fire(EVENT_SHARE_REQUESTED, data, context=context)
            if new.deadline is None or new.deadline > dt_util.utcnow():
                self.entry.async_create_background_task(
                    self.hass, self._async_prompt(new), f"{DOMAIN} notify {new.id}"
                )
            return
        if new.state != "pending" and new.id in self._announced:
            self._announced.discard(new.id)
            self._drop_prompts(new.id)
            self._save()
        # A state first seen in another state is history (retained after a restart).
        if old is None or old.state == new.state:
            return
        self.hass.bus.async_fire(EVENT_SHARE_UPDATED, data)

    def _drop_prompts(self, share_id: str) -> None:
        for nonce, prompt in list(self._prompts.items()):
            if prompt.share_id == share_id:
                del self._prompts[nonce]
                self._used[nonce] = prompt.share_id
                self.entry.async_create_background_task(
                    self.hass, self._async_clear(prompt), f"{DOMAIN} clear {share_id}"
                )

    def _texts(self) -> dict[str, str]:
        return TEXTS.get(self.hass.config.language.split("-")[0], TEXTS["en"])

    def notification(self, share: Share, nonce: str) -> dict[str, Any]:
        """Service data of the actionable notification (no footage, no link)."""
        texts = self._texts()
        detail = self.entry.options.get(CONF_NOTIFICATION_DETAIL, DEFAULT_NOTIFICATION_DETAIL)
        cameras = ", ".join(self.coordinator.data.camera_name(c) for c in share.cameras)
        zone = dt_util.get_default_time_zone()

        def hhmm(moment: Any) -> str:
            return moment.astimezone(zone).strftime("%d/%m %H:%M") if moment else "?"

        message = texts[detail].format(
            cameras=cameras,
            requester=share.requester,
            reason=share.reason or "-",
            start=hhmm(share.start),
            end=hhmm(share.end),
        )
        approve = {"action": f"{ACTION_PREFIX}{ACTION_APPROVE}_{nonce}", "title": texts["approve"]}
        actions = [approve]
        if self.entry.options.get(CONF_OFFER_UNREDACTED, False):
            actions.append(
                {
                    "action": f"{ACTION_PREFIX}{ACTION_APPROVE_UNREDACTED}_{nonce}",
                    "title": texts["approve_full"],
                }
            )
        actions.append({"action": f"{ACTION_PREFIX}{ACTION_DENY}_{nonce}", "title": texts["deny"]})
        return {
            "title": self.entry.options.get(CONF_NOTIFICATION_TITLE) or texts["title"],
            "message": message,
            "data": {"tag": f"doorstep_{share.id}", "actions": actions},
        }

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
        nonce = secrets.token_urlsafe(16)
        self._prompts[nonce] = PendingPrompt(share.id, nonce, services)
        self._save()
        payload = self.notification(share, nonce)
        delivered: list[str] = []
        for service in services:
            domain, _, name = service.partition(".")
            try:
                await self.hass.services.async_call(domain, name, payload, blocking=True)
            except HomeAssistantError as err:
                LOGGER.warning("Could not notify %s about share %s: %s", service, share.id, err)
            else:
                delivered.append(service)
        await self._async_audit(
            share.id,
            "notification",
            {
                "to": delivered,
                "failed": [s for s in services if s not in delivered],
                "detail": self.entry.options.get(
                    CONF_NOTIFICATION_DETAIL, DEFAULT_NOTIFICATION_DETAIL
                ),
                "actions": [a["action"].split("_")[1] for a in payload["data"]["actions"]],
            },
        )

    async def _async_audit(self, share_id: str, kind: str, fields: dict[str, Any]) -> None:
        """Write to the bridge's audit log; a failure is logged, never raised."""
        try:
            await self.client.audit(share_id, kind, fields)
        except DoorstepError as err:
            LOGGER.warning("Could not audit %s for share %s: %s", kind, share_id, err)

    async def _async_clear(self, prompt: PendingPrompt) -> None:
        data = {"message": "clear_notification", "data": {"tag": f"doorstep_{prompt.share_id}"}}
        for service in prompt.services:
            domain, _, name = service.partition(".")
            try:
                await self.hass.services.async_call(domain, name, data, blocking=True)
            except HomeAssistantError as err:
                LOGGER.debug("Could not clear the notification on %s: %s", service, err)

    # Phone decisions -----------------------------------------------------------

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
        self.hass.bus.async_fire(
            EVENT_DECISION_REJECTED,
            {
                "bridge_id": self.coordinator.bridge_id,
                "share_id": share_id,
                "reason": reason,
                "user_id": event.context.user_id,
                "action": str(event.data.get("action", ""))[:64],
            },
        )

    async def _async_audit_refusal(self, reason: str, event: Event[Any], share_id: str) -> None:
        user_id = event.context.user_id
        user = await self.hass.auth.async_get_user(user_id) if user_id else None
        parts = str(event.data.get("action", "")).split("_")
        fields = {
            "reason": reason,
            "user_id": user_id,
            "user": user.name if user else None,
            "action": parts[1][:20] if len(parts) > 2 else None,
        }
        await self._async_audit(share_id, "decision_refused", fields)

    async def async_handle_action(self, event: Event[Any], verb: str, nonce: str) -> None:
        """A tap on Approve / Deny for one of our nonces."""
        prompt = self._prompts.get(nonce)
        if prompt is None:
            self._reject("already_used", event, self._used.get(nonce))
            return
        share = self.coordinator.data.shares.get(prompt.share_id)
        user_id = event.context.user_id
        if user_id is None or user_id not in self.approvers:
            self._reject("not_an_approver", event, prompt.share_id)
            return
        if share is None or share.state != "pending":
            self._reject("not_pending", event, prompt.share_id)
            return
        if share.deadline is not None and share.deadline <= dt_util.utcnow():
            self._reject("too_late", event, prompt.share_id)
            return
        if verb == ACTION_APPROVE_UNREDACTED and not self.entry.options.get(
            CONF_OFFER_UNREDACTED, False
        ):
            self._reject("unredacted_not_offered", event, prompt.share_id)
            return
        # One use only, even if the bridge call below fails.
        del self._prompts[nonce]
        self._used[nonce] = prompt.share_id
        self._save()
        decision = "deny" if verb == ACTION_DENY else "approve"
        try:
            await self.async_decide(
                prompt.share_id, decision, user_id=user_id, via="phone",
                redact=verb != ACTION_APPROVE_UNREDACTED,
            )  # fmt: skip
        except HomeAssistantError as err:
            LOGGER.error("The bridge did not take the decision on %s: %s", prompt.share_id, err)
            return
        await self._async_clear(prompt)  # the other approvers' phones

    async def async_decide(
        self, share_id: str, decision: str, *, user_id: str | None, via: str, redact: bool = True
    ) -> Share:
        """Send a decision to the bridge (the only way one reaches it)."""
        by = "automation"
        if user_id is not None:
            user = await self.hass.auth.async_get_user(user_id)
            by = user.name if user and user.name else user_id
        try:
            share = await self.client.decide(
                share_id,
                decision=decision,
                by=by,
                via=via,
                redact=redact,
                link_ttl_hours=float(
                    self.entry.options.get(CONF_LINK_TTL_HOURS, DEFAULT_LINK_TTL_HOURS)
                )
                if decision == "approve"
                else None,
            )
        except DoorstepNotFoundError as err:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="unknown_share",
                translation_placeholders={"share_id": share_id},
            ) from err
        except DoorstepRequestError as err:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="share_refused",
                translation_placeholders={"share_id": share_id, "error": str(err)},
            ) from err
        except DoorstepError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN, translation_key="bridge_error"
            ) from err
        self.coordinator.async_share_update(share)
        return share


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
        if verb not in (ACTION_APPROVE, ACTION_APPROVE_UNREDACTED, ACTION_DENY) or owner is None:
            LOGGER.warning(
                "Rejected a share decision with an unknown nonce from user %s",
                event.context.user_id,
            )
            hass.bus.async_fire(
                EVENT_DECISION_REJECTED,
                {"bridge_id": None, "share_id": None, "reason": "unknown_nonce",
                 "user_id": event.context.user_id, "action": action[:64]},
            )  # fmt: skip
            return
        await owner.async_handle_action(event, verb, nonce)

    hass.bus.async_listen(MOBILE_APP_ACTION_EVENT, handle)
