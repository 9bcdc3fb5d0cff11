"""Service actions: request, approve, deny and revoke footage shares; forget a clip."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from homeassistant.const import (
    ATTR_AREA_ID,
    ATTR_DEVICE_ID,
    ATTR_ENTITY_ID,
    ATTR_FLOOR_ID,
    ATTR_LABEL_ID,
)
from homeassistant.core import (
    HomeAssistant,
    ServiceCall,
    ServiceResponse,
    SupportsResponse,
    callback,
)
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import (
    area_registry as ar,
)
from homeassistant.helpers import (
    config_validation as cv,
)
from homeassistant.helpers import (
    device_registry as dr,
)
from homeassistant.helpers import (
    entity_registry as er,
)
from homeassistant.helpers import (
    floor_registry as fr,
)
from homeassistant.helpers import (
    label_registry as lr,
)
from homeassistant.util import dt as dt_util
import voluptuous as vol

from .api import DoorstepError, DoorstepNotFoundError
from .approvals import async_setup_action_listener
from .const import (
    CONF_OFFER_UNREDACTED,
    DOMAIN,
    SERVICE_APPROVE_SHARE,
    SERVICE_DENY_SHARE,
    SERVICE_FORGET_CLIP,
    SERVICE_REQUEST_SHARE,
    SERVICE_REVOKE_SHARE,
)
from .decisions import async_decider_name
from .entity import camera_identifier
from .errors import action_errors, forget_error
from .helpers import SAFE_ID, clip_in_media_browser, loaded_entries
from .protocol import LegalRequest, share_request_body

if TYPE_CHECKING:
    from .data import DoorstepConfigEntry

ATTR_START = "start"
ATTR_END = "end"
ATTR_LAST_MINUTES = "last_minutes"
ATTR_REQUESTER = "requester"
ATTR_REASON = "reason"
ATTR_SHARE_ID = "share_id"
ATTR_REDACT = "redact"
ATTR_CLIP_ID = "clip_id"
#: A clip's id in the media browser: ``media-source://doorstep/<bridge>/<cam>/<day>/<clip>``.
MEDIA_PREFIX = f"media-source://{DOMAIN}/"

ATTR_AUTHORITY = "authority"
ATTR_REFERENCE = "reference"
ATTR_LEGAL_BASIS = "legal_basis"
ATTR_SCOPE_CAMERAS = "scope_cameras"
ATTR_SCOPE_START = "scope_start"
ATTR_SCOPE_END = "scope_end"
LEGAL_ATTRS = (ATTR_AUTHORITY, ATTR_REFERENCE, ATTR_LEGAL_BASIS)
SCOPE_ATTRS = (ATTR_SCOPE_CAMERAS, ATTR_SCOPE_START, ATTR_SCOPE_END)


REQUEST_SCHEMA = vol.Schema(
    {
        vol.Optional(ATTR_ENTITY_ID): cv.entity_ids,
        vol.Optional(ATTR_DEVICE_ID): vol.All(cv.ensure_list, [cv.string]),
        vol.Optional(ATTR_AREA_ID): vol.All(cv.ensure_list, [cv.string]),
        vol.Optional(ATTR_FLOOR_ID): vol.All(cv.ensure_list, [cv.string]),
        vol.Optional(ATTR_LABEL_ID): vol.All(cv.ensure_list, [cv.string]),
        vol.Optional(ATTR_START): cv.datetime,
        vol.Optional(ATTR_END): cv.datetime,
        vol.Optional(ATTR_LAST_MINUTES): vol.All(
            vol.Coerce(int), vol.Range(min=1, max=7 * 24 * 60)
        ),
        # Limits of the bridge (docs/mqtt.md share request).
        vol.Optional(ATTR_REQUESTER): vol.All(cv.string, vol.Length(max=100)),
        vol.Required(ATTR_REASON): vol.All(cv.string, vol.Strip, vol.Length(min=1, max=500)),
        # A request under legal authority (docs/sharing.md, "Legal requests").
        vol.Optional(ATTR_AUTHORITY): vol.All(cv.string, vol.Strip, vol.Length(min=1, max=200)),
        vol.Optional(ATTR_REFERENCE): vol.All(cv.string, vol.Strip, vol.Length(min=1, max=100)),
        vol.Optional(ATTR_LEGAL_BASIS): vol.All(cv.string, vol.Strip, vol.Length(min=1, max=500)),
        vol.Optional(ATTR_SCOPE_CAMERAS): vol.All(cv.ensure_list, [cv.string]),
        vol.Optional(ATTR_SCOPE_START): cv.datetime,
        vol.Optional(ATTR_SCOPE_END): cv.datetime,
    }
)
DECISION_SCHEMA = vol.Schema({vol.Required(ATTR_SHARE_ID): cv.string})
APPROVE_SCHEMA = DECISION_SCHEMA.extend({vol.Optional(ATTR_REDACT, default=True): cv.boolean})
FORGET_SCHEMA = vol.Schema({vol.Required(ATTR_CLIP_ID): vol.All(cv.string, vol.Strip)})


def _legal(
    data: dict[str, Any], cameras: list[str], start: datetime, end: datetime
) -> LegalRequest | None:
    """The authority and scope of a legal request; the scope defaults to what is asked."""
    if not any(key in data for key in (*LEGAL_ATTRS, *SCOPE_ATTRS)):
        return None
    missing = [key for key in LEGAL_ATTRS if not data.get(key)]
    if missing:
        raise _invalid("legal_incomplete", missing=", ".join(missing))
    scope_start = data.get(ATTR_SCOPE_START)
    scope_end = data.get(ATTR_SCOPE_END)
    return LegalRequest(
        authority=data[ATTR_AUTHORITY],
        reference=data[ATTR_REFERENCE],
        legal_basis=data[ATTR_LEGAL_BASIS],
        scope_cameras=tuple(data.get(ATTR_SCOPE_CAMERAS) or cameras),
        scope_start=_aware(scope_start) if scope_start else start,
        scope_end=_aware(scope_end) if scope_end else end,
    )


def _invalid(key: str, **placeholders: str) -> ServiceValidationError:
    return ServiceValidationError(
        translation_domain=DOMAIN, translation_key=key, translation_placeholders=placeholders
    )


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt_util.get_default_time_zone())


def _window(data: dict[str, Any]) -> tuple[datetime, datetime]:
    start, end, minutes = data.get(ATTR_START), data.get(ATTR_END), data.get(ATTR_LAST_MINUTES)
    if minutes is not None:
        if start is not None or end is not None:
            raise _invalid("window_ambiguous")
        end = dt_util.now()
        return end - timedelta(minutes=minutes), end
    if start is None or end is None:
        raise _invalid("window_missing")
    start, end = _aware(start), _aware(end)
    if end <= start:
        raise _invalid("window_reversed")
    return start, end


def _device_label(registry: dr.DeviceRegistry, device_id: str) -> str:
    """A device as the user knows it: the name they gave it, else its own; else the id."""
    device = registry.async_get(device_id)
    if device is None:
        return device_id
    return device.name_by_user or device.name or device_id


def _cameras(hass: HomeAssistant, data: dict[str, Any]) -> tuple[DoorstepConfigEntry, list[str]]:
    """The bridge and camera keys behind the targeted entities/devices."""
    by_identifier = {
        camera_identifier(entry.runtime_data.coordinator.bridge_id, camera): (entry, camera)
        for entry in loaded_entries(hass)
        for camera in entry.runtime_data.coordinator.cameras
    }
    dev_reg = dr.async_get(hass)
    # Each device with what the user picked to reach it: errors name that, not a registry id.
    picked = [
        (device_id, _device_label(dev_reg, device_id)) for device_id in data.get(ATTR_DEVICE_ID, [])
    ]
    ent_reg = er.async_get(hass)
    for entity_id in data.get(ATTR_ENTITY_ID, []):
        entity = ent_reg.async_get(entity_id)
        if entity is None or entity.platform != DOMAIN or entity.device_id is None:
            raise _invalid("not_a_camera", target=entity_id)
        picked.append((entity.device_id, entity_id))
    # An area picked in the target selector means the Doorstep cameras in it.
    for area_id in data.get(ATTR_AREA_ID, []):
        in_area = [
            device.id
            # Not dev_reg.devices as a mapping: deprecated since Home Assistant 2026.
            for device in dr.async_entries_for_area(dev_reg, area_id)
            if any(identifier in by_identifier for identifier in device.identifiers)
        ]
        if not in_area:
            area = ar.async_get(hass).async_get_area(area_id)
            raise _invalid("not_a_camera", target=area.name if area else area_id)
        picked.extend((device_id, area_id) for device_id in in_area)
    # Floors and labels are not offered (a share names its cameras); named, if typed in.
    if floors := data.get(ATTR_FLOOR_ID):
        registry = fr.async_get(hass)
        names = [(f.name if (f := registry.async_get_floor(i)) else i) for i in floors]
        raise _invalid("not_a_camera", target=", ".join(names))
    if labels := data.get(ATTR_LABEL_ID):
        registry_l = lr.async_get(hass)
        names = [(lb.name if (lb := registry_l.async_get_label(i)) else i) for i in labels]
        raise _invalid("not_a_camera", target=", ".join(names))
    found: dict[str, tuple[DoorstepConfigEntry, str]] = {}
    for device_id, label in picked:
        device = dev_reg.async_get(device_id)
        identifiers = device.identifiers if device else set()
        match = next((by_identifier[i] for i in identifiers if i in by_identifier), None)
        if match is None:
            raise _invalid("not_a_camera", target=label)
        found[f"{match[0].entry_id}/{match[1]}"] = match
    if not found:
        raise _invalid("no_camera")
    entries = {entry.entry_id: entry for entry, _ in found.values()}
    if len(entries) > 1:
        raise _invalid("several_bridges")
    return next(iter(entries.values())), sorted({camera for _, camera in found.values()})


def _entry_for_share(hass: HomeAssistant, share_id: str) -> DoorstepConfigEntry:
    if not SAFE_ID.match(share_id):
        raise _invalid("unknown_share", share_id=share_id)
    entries = loaded_entries(hass)
    for entry in entries:
        if share_id in entry.runtime_data.coordinator.data.shares:
            return entry
    if len(entries) == 1:  # not seen on MQTT (yet): the bridge will say if it exists
        return entries[0]
    if not entries:
        raise _invalid("not_loaded")
    raise _invalid("unknown_share", share_id=share_id)


async def _check_decider(entry: DoorstepConfigEntry, call: ServiceCall) -> str:
    """``via`` of the decision; raises when a logged-in user may not decide."""
    user_id = call.context.user_id
    if user_id is None:
        return "automation"  # an automation or script the owner wrote
    if not await entry.runtime_data.decisions.async_may_decide(user_id):
        raise _invalid("not_an_approver")
    return "ui"


def _clip_target(hass: HomeAssistant, value: str) -> tuple[str, list[DoorstepConfigEntry]]:
    """The clip id and the bridges that may have it.

    ``value`` is a clip id (``c_…``) or the clip's media browser id; the latter names
    its bridge.
    """
    if not loaded_entries(hass):
        raise _invalid("not_loaded")
    if value.startswith(MEDIA_PREFIX):
        clip = clip_in_media_browser(hass, value)
        if clip is None:
            raise _invalid("unknown_clip", identifier=value)
        entry, clip_id = clip
        return clip_id, [entry]
    if not SAFE_ID.match(value):
        raise _invalid("unknown_clip", identifier=value)
    return value, loaded_entries(hass)


async def _forget(
    hass: HomeAssistant, entries: list[DoorstepConfigEntry], clip_id: str, user_id: str | None
) -> None:
    """Ask the bridges the caller may forget on, in turn, to erase the clip, until one had it."""
    if user_id is not None:
        entries = [e for e in entries if await e.runtime_data.decisions.async_may_decide(user_id)]
        if not entries:
            raise _invalid("forget_not_allowed")
    by = await async_decider_name(hass, user_id)
    for entry in entries:
        try:
            await entry.runtime_data.client.forget_clip(clip_id, by=by)
        except DoorstepNotFoundError:
            continue  # another bridge's clip
        except DoorstepError as err:
            raise forget_error(err, clip_id) from err
        return
    raise _invalid("unknown_clip", identifier=clip_id)


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the services (once, in async_setup)."""

    async def request_share(call: ServiceCall) -> ServiceResponse:
        if not loaded_entries(hass):
            raise _invalid("not_loaded")
        entry, cameras = _cameras(hass, dict(call.data))
        start, end = _window(dict(call.data))
        requester = call.data.get(ATTR_REQUESTER)
        if not requester:
            user = await hass.auth.async_get_user(call.context.user_id or "")
            requester = user.name if user and user.name else "Home Assistant"
        body = share_request_body(
            requester=requester, cameras=cameras, start=start, end=end,
            reason=call.data[ATTR_REASON], request_id=call.context.id,
            legal=_legal(dict(call.data), cameras, start, end),
        )  # fmt: skip
        runtime = entry.runtime_data
        with action_errors(), runtime.approvals.expect_request(call.context):
            share = await runtime.client.create_share(body)
            runtime.coordinator.async_share_update(share)
        if share.state == "rejected":
            raise _invalid("share_refused", share_id=share.id, error=share.error or "")
        return {"share_id": share.id, "state": share.state}

    def decision(verb: str) -> Any:
        async def handle(call: ServiceCall) -> ServiceResponse:
            share_id = call.data[ATTR_SHARE_ID]
            entry = _entry_for_share(hass, share_id)
            via = await _check_decider(entry, call)
            redact = call.data.get(ATTR_REDACT, True)
            if not redact and via == "ui" and not entry.options.get(CONF_OFFER_UNREDACTED, False):
                # The owner's choice binds a person as on the phone and in the panel; the
                # owner's own automations (no user) decide as they were written.
                raise _invalid("unredacted_not_offered")
            share = await entry.runtime_data.decisions.async_decide(
                share_id, verb, user_id=call.context.user_id, via=via, redact=redact
            )
            return {"share_id": share.id, "state": share.state}

        return handle

    async def forget_clip(call: ServiceCall) -> ServiceResponse:
        clip_id, entries = _clip_target(hass, call.data[ATTR_CLIP_ID])
        await _forget(hass, entries, clip_id, call.context.user_id)
        return {"clip_id": clip_id, "erased": True}

    hass.services.async_register(
        DOMAIN, SERVICE_FORGET_CLIP, forget_clip, schema=FORGET_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )  # fmt: skip
    hass.services.async_register(
        DOMAIN, SERVICE_REQUEST_SHARE, request_share, schema=REQUEST_SCHEMA,
        supports_response=SupportsResponse.OPTIONAL,
    )  # fmt: skip
    for name, verb, schema in (
        (SERVICE_APPROVE_SHARE, "approve", APPROVE_SCHEMA),
        (SERVICE_DENY_SHARE, "deny", DECISION_SCHEMA),
        (SERVICE_REVOKE_SHARE, "revoke", DECISION_SCHEMA),
    ):
        hass.services.async_register(
            DOMAIN, name, decision(verb), schema=schema,
            supports_response=SupportsResponse.OPTIONAL,
        )  # fmt: skip
    async_setup_action_listener(hass)
