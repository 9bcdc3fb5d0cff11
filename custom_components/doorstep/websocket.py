"""Websocket commands of the Doorstep panel: shares, decisions, clips and the audit log.

``doorstep/subscribe`` tells an open panel when what it shows changes (a share request,
a bridge's cameras or reachability, a camera's newest clip, a bridge set up or removed),
so that a panel left open on a wall tablet follows the bridges without a reload.

Decisions go through ``ShareDecisions`` with the same rule on who decides as the
service actions (``via`` is ``ui``), so the bridge's audit log cannot tell a panel
click from a service call by the same user. Share links are secrets: only the users
whose decisions count see them. The audit log (who asked, decided and downloaded
what) is for administrators only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime
from typing import Any

from homeassistant.components.websocket_api import async_register_command
from homeassistant.components.websocket_api.connection import ActiveConnection
from homeassistant.components.websocket_api.const import ERR_NOT_ALLOWED, ERR_NOT_SUPPORTED
from homeassistant.components.websocket_api.decorators import (
    async_response,
    require_admin,
    websocket_command,
)
from homeassistant.components.websocket_api.messages import event_message
from homeassistant.config_entries import (
    SIGNAL_CONFIG_ENTRY_CHANGED,
    ConfigEntry,
    ConfigEntryChange,
)
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.dispatcher import async_dispatcher_connect, async_dispatcher_send
from homeassistant.helpers.network import NoURLAvailableError, get_url
from homeassistant.util import dt as dt_util
import voluptuous as vol

from .api import (
    MAX_AUDIT_RECORDS,
    AuditPage,
    DoorstepAuthError,
    DoorstepConnectionError,
    DoorstepError,
    DoorstepNotFoundError,
)
from .const import CONF_OFFER_UNREDACTED, DOMAIN, SHARE_URL
from .coordinator import DoorstepCoordinator
from .data import DoorstepConfigEntry
from .decisions import async_decider_name
from .errors import bridge_failure, browse_error
from .helpers import SAFE_ID, entry_for_bridge, loaded_entries
from .protocol import Clip, Share

#: Clips one panel request lists; the bridge caps a page at 500.
MAX_CLIPS = 200
DECISIONS = ("approve", "deny", "revoke")
#: The field that says who acted, per kind of audit record (docs/sharing.md).
_AUDIT_WHO = {
    "request": ("requester",),
    "request_rejected": ("requester", "source"),
    "notification": ("to",),
    "decision": ("by",),
    "revoke": ("by",),
    "decision_refused": ("user",),
    "download": ("client",),
    "download_refused": ("client",),
    "clip_erased": ("by",),
    "connection_blocked": ("destination",),
}
#: The field that says how it ended, per kind of audit record.
_AUDIT_OUTCOME = {"decision": "decision", "render": "result", "expiry": "was"}
#: Waiting for a decision first, then the newest.
_STATE_ORDER = {"pending": 0, "approved": 1, "rendering": 1, "ready": 1}
#: Sent when what the panel shows of a bridge changed: the subscribed panels are told.
SIGNAL_PANEL = f"{DOMAIN}_panel_changed"


@callback
def async_setup_websocket(hass: HomeAssistant) -> None:
    """Register the commands once, whatever the number of bridges."""
    async_register_command(hass, ws_shares)
    async_register_command(hass, ws_decide)
    async_register_command(hass, ws_clips)
    async_register_command(hass, ws_audit)
    async_register_command(hass, ws_subscribe)


def _last_clips(coordinator: DoorstepCoordinator) -> dict[str, str | None]:
    """Each camera's newest clip, by id (None: none, or none heard of yet)."""
    return {
        camera: clip.id if (clip := coordinator.data.camera(camera).last_clip) else None
        for camera in sorted(coordinator.cameras)
    }


def _clip_count(coordinator: DoorstepCoordinator) -> int | None:
    """How many clips the bridge keeps (None: not heard of yet)."""
    stats = coordinator.data.stats
    return None if stats is None else stats.clips


def _panel_view(coordinator: DoorstepCoordinator) -> tuple[object, ...]:
    """What the panel shows of one bridge; motion, snapshots and other stats are not in it.

    The number of clips is: a clip deleted below the newest (by retention, or forgotten
    from another page) changes no camera's newest clip.
    """
    data = coordinator.data
    return (
        data.reachable,
        [(camera, data.camera_name(camera)) for camera in sorted(coordinator.cameras)],
        dict(data.shares),
        _last_clips(coordinator),
        _clip_count(coordinator),
    )


@callback
def async_follow_for_panels(hass: HomeAssistant, coordinator: DoorstepCoordinator) -> CALLBACK_TYPE:
    """Tell the subscribed panels when what they show of this bridge changes.

    The coordinator updates on every motion and snapshot: the panels are told only of
    what they show, not asked to fetch the same list again every few seconds.
    """
    shown = _panel_view(coordinator)

    @callback
    def changed() -> None:
        nonlocal shown
        view = _panel_view(coordinator)
        if view != shown:
            shown = view
            async_dispatcher_send(hass, SIGNAL_PANEL)

    return coordinator.async_add_listener(changed)


def _invalid(key: str, **placeholders: str) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
    )


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _entry(hass: HomeAssistant, bridge_id: str) -> DoorstepConfigEntry:
    entry = entry_for_bridge(hass, bridge_id)
    if entry is None:
        raise _invalid("not_loaded")
    return entry


def _outside_url(hass: HomeAssistant, path: str) -> str | None:
    """``path`` on Home Assistant's address for the internet; None when it has none."""
    try:
        return get_url(hass, allow_internal=False) + path
    except NoURLAvailableError:
        return None


def _share_json(
    entry: DoorstepConfigEntry,
    share: Share,
    *,
    with_link: bool,
    user: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """One share as the panel shows it; ``user`` is the asking user's id and audit-log name."""
    coordinator = entry.runtime_data.coordinator
    link = None
    if with_link and share.state == "ready" and share.link:
        # HA's own link view: the recipient reaches HA, never the bridge.
        token = share.link.rpartition("/")[2]
        link = SHARE_URL.format(bridge_id=coordinator.bridge_id, token=token)
    return {
        # What the owner sends to someone outside: the address Home Assistant has for the
        # internet (its external URL, or Home Assistant Cloud's), not the one this browser
        # used (a LAN address at home). None when it has none.
        "link_url": _outside_url(coordinator.hass, link) if link else None,
        "bridge_id": coordinator.bridge_id,
        "share_id": share.id,
        "state": share.state,
        "requester": share.requester,
        "reason": share.reason,
        "cameras": [coordinator.data.camera_name(camera) for camera in share.cameras],
        "start": _iso(share.start),
        "end": _iso(share.end),
        "created": _iso(share.created),
        "deadline": _iso(share.deadline),
        "decided_by": share.decision.by if share.decision else None,
        "revoked_by": share.revoked_by.by if share.revoked_by else None,
        "decided_via": share.decision.via if share.decision else None,
        "redact": share.decision.redact if share.decision else None,
        "link": link,
        "link_expires": _iso(share.link_expires) if link else None,
        "error": share.error,
        # A legal request names its authority, and waits for a second approver after the
        # first: the panel says so rather than offering the first approver a second click
        # the bridge refuses.
        "kind": share.kind,
        "legal": (
            {
                "authority": share.legal.authority,
                "reference": share.legal.reference,
                "legal_basis": share.legal.legal_basis,
            }
            if share.legal
            else None
        ),
        "approved_by": [approval.by for approval in share.approvals],
        "you_approved": user is not None
        and any(approval.made_by(*user) for approval in share.approvals),
    }


def _clip_json(bridge_id: str, clip: Clip) -> dict[str, Any]:
    day = dt_util.as_local(clip.start).date().isoformat()
    return {
        "clip_id": clip.id,
        "camera": clip.camera,
        "start": clip.start.isoformat(),
        "end": clip.end.isoformat(),
        "reason": clip.reason,
        "duration": clip.duration,
        # The media source path: the frontend resolves it to a signed URL.
        "media_content_id": f"media-source://{DOMAIN}/{bridge_id}/{clip.camera}/{day}/{clip.id}",
    }


@websocket_command({vol.Required("type"): "doorstep/shares"})
@async_response
async def ws_shares(hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]) -> None:
    """Every bridge with its cameras, and every share request it published."""
    bridges: list[dict[str, Any]] = []
    shares: list[dict[str, Any]] = []
    user = (connection.user.id, await async_decider_name(hass, connection.user.id))
    for entry in loaded_entries(hass):
        runtime = entry.runtime_data
        coordinator = runtime.coordinator
        can_decide = await runtime.decisions.async_may_decide(connection.user.id)
        bridges.append(
            {
                "bridge_id": coordinator.bridge_id,
                "title": entry.title,
                "can_decide": can_decide,
                # The panel asks for the audit log again when this changes: a bridge gone
                # down is not left showing "Verified".
                "reachable": coordinator.data.reachable,
                "offer_unredacted": bool(entry.options.get(CONF_OFFER_UNREDACTED, False)),
                "cameras": [
                    {"key": camera, "name": coordinator.data.camera_name(camera)}
                    for camera in sorted(coordinator.cameras)
                ],
            }
        )
        shares.extend(
            _share_json(entry, share, with_link=can_decide, user=user)
            for share in coordinator.data.shares.values()
        )
    shares.sort(key=lambda s: s["created"] or "", reverse=True)
    shares.sort(key=lambda s: _STATE_ORDER.get(s["state"], 2))
    # Bridges Home Assistant is still trying to reach (set up, not loaded, not disabled).
    loaded = {entry.entry_id for entry in loaded_entries(hass)}
    not_connected = [
        entry.title
        for entry in hass.config_entries.async_entries(DOMAIN)
        if entry.entry_id not in loaded and entry.disabled_by is None
    ]
    connection.send_result(
        msg["id"], {"bridges": bridges, "shares": shares, "not_connected": not_connected}
    )


@websocket_command(
    {
        vol.Required("type"): "doorstep/decide",
        vol.Required("bridge_id"): str,
        vol.Required("share_id"): vol.All(str, vol.Match(SAFE_ID)),
        vol.Required("decision"): vol.In(DECISIONS),
        vol.Optional("redact", default=True): bool,
    }
)
@async_response
async def ws_decide(hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]) -> None:
    """Approve, deny or revoke one share: who may decide is checked as for the services."""
    entry = _entry(hass, msg["bridge_id"])
    runtime = entry.runtime_data
    share_id: str = msg["share_id"]
    if share_id not in runtime.coordinator.data.shares:
        raise _invalid("unknown_share", share_id=share_id)
    user_id = connection.user.id
    if not await runtime.decisions.async_may_decide(user_id):
        raise _invalid("not_an_approver")
    redact: bool = msg["redact"]
    if not redact and (
        msg["decision"] != "approve" or not entry.options.get(CONF_OFFER_UNREDACTED, False)
    ):
        # The owner's choice: footage leaves unredacted only when they offered it.
        connection.send_error(
            msg["id"], ERR_NOT_ALLOWED, "Approving without redaction is not offered"
        )
        return
    share = await runtime.decisions.async_decide(
        share_id, msg["decision"], user_id=user_id, via="ui", redact=redact
    )
    user = (user_id, await async_decider_name(hass, user_id))
    connection.send_result(msg["id"], _share_json(entry, share, with_link=True, user=user))


@websocket_command(
    {
        vol.Required("type"): "doorstep/clips",
        vol.Required("bridge_id"): str,
        vol.Required("camera"): str,
        vol.Optional("reason"): vol.All(str, vol.Match(SAFE_ID)),
        vol.Optional("limit", default=50): vol.All(int, vol.Range(min=1, max=MAX_CLIPS)),
        # The next page: how many of the newest clips the panel already shows...
        vol.Optional("offset", default=0): vol.All(int, vol.Range(min=0)),
        # ... or the clips that started by then (the oldest shown): clips recorded or
        # forgotten meanwhile move no page.
        vol.Optional("until"): cv.datetime,
    }
)
@async_response
async def ws_clips(hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]) -> None:
    """One camera's clips, newest first, of one reason when asked (the media browser's)."""
    entry = _entry(hass, msg["bridge_id"])
    runtime = entry.runtime_data
    camera: str = msg["camera"]
    if camera not in runtime.coordinator.cameras:
        raise _invalid("unknown_camera", camera=camera)
    try:
        page = await runtime.client.clips(
            camera=camera,
            reason=msg.get("reason"),
            until=msg.get("until"),
            limit=msg["limit"],
            offset=msg["offset"],
        )
    except (DoorstepAuthError, DoorstepConnectionError) as err:
        # Told in words an owner acts on (a rejected token, a bridge that is down), not as
        # the connection's exception.
        raise bridge_failure(err) from err
    except DoorstepError as err:
        raise browse_error(err) from err
    bridge_id = runtime.coordinator.bridge_id
    connection.send_result(
        msg["id"],
        {"clips": [_clip_json(bridge_id, clip) for clip in page.clips], "total": page.total},
    )


@websocket_command({vol.Required("type"): "doorstep/subscribe"})
@callback
def ws_subscribe(hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]) -> None:
    """An event now and whenever what the panel shows changes, with each camera's newest clip.

    The event says that something changed (the panel asks ``doorstep/shares`` again) and,
    in ``last_clips`` (bridge id: camera: clip id) and ``clip_counts`` (bridge id: clips
    kept), whether the clips it lists did.
    """

    @callback
    def send() -> None:
        coordinators = [entry.runtime_data.coordinator for entry in loaded_entries(hass)]
        last_clips = {c.bridge_id: _last_clips(c) for c in coordinators}
        clip_counts = {c.bridge_id: _clip_count(c) for c in coordinators}
        connection.send_message(
            event_message(msg["id"], {"last_clips": last_clips, "clip_counts": clip_counts})
        )

    @callback
    def entry_changed(_change: ConfigEntryChange, entry: ConfigEntry) -> None:
        # A bridge set up (connected at last), unloaded or removed: in the list or out.
        if entry.domain == DOMAIN:
            send()

    unsubscribes = [
        async_dispatcher_connect(hass, SIGNAL_PANEL, send),
        async_dispatcher_connect(hass, SIGNAL_CONFIG_ENTRY_CHANGED, entry_changed),
    ]

    @callback
    def unsubscribe() -> None:
        for unsub in unsubscribes:
            unsub()

    connection.subscriptions[msg["id"]] = unsubscribe
    connection.send_result(msg["id"])
    send()


def _short(value: Any) -> str | None:
    """A record's field as one short line of text, for a person."""
    if value is None or value in ([], ""):
        return None
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)[:200]
    return str(value)[:200]


def _audit_record_json(record: Mapping[str, Any]) -> dict[str, Any]:
    kind = str(record["kind"])
    who = next(
        (text for key in _AUDIT_WHO.get(kind, ()) if (text := _short(record.get(key)))), None
    )
    outcome = _AUDIT_OUTCOME.get(kind)
    return {
        "seq": record["seq"],
        "time": _short(record.get("time")),
        "kind": kind,
        "share_id": _short(record.get("share_id")),
        "who": who,
        "outcome": _short(record.get(outcome)) if outcome else None,
        "camera": _short(record.get("camera")),
    }


def _audit_json(bridge_id: str, page: AuditPage) -> dict[str, Any]:
    return {
        "bridge_id": bridge_id,
        "verification": asdict(page.check),
        "records": [_audit_record_json(record) for record in page.records],
    }


@websocket_command(
    {
        vol.Required("type"): "doorstep/audit",
        vol.Required("bridge_id"): str,
        vol.Optional("limit", default=20): vol.All(int, vol.Range(min=1, max=MAX_AUDIT_RECORDS)),
    }
)
@require_admin
@async_response
async def ws_audit(hass: HomeAssistant, connection: ActiveConnection, msg: dict[str, Any]) -> None:
    """The bridge's audit log: whether it verifies, and its newest records (administrators)."""
    runtime = _entry(hass, msg["bridge_id"]).runtime_data
    try:
        page = await runtime.client.audit_log(limit=msg["limit"])
    except DoorstepNotFoundError:
        connection.send_error(
            msg["id"], ERR_NOT_SUPPORTED, "This bridge has no audit log API: update the bridge"
        )
        return
    except DoorstepError as err:
        raise bridge_failure(err) from err
    connection.send_result(msg["id"], _audit_json(runtime.coordinator.bridge_id, page))
