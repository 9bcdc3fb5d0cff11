"""Doorstep: a local, privacy-first doorbell bridge in Home Assistant."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from homeassistant.components import mqtt
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_API_TOKEN, CONF_URL, Platform
from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from .api import DoorstepApiClient, DoorstepAuthError, DoorstepError, health_url
from .approvals import ApprovalManager
from .backlog import async_remove_backlog
from .compat import NEEDS_UPDATE_LISTENER, find_device
from .const import DOMAIN, ISSUE_UNREACHABLE, UNREACHABLE_ISSUE_DELAY
from .coordinator import DoorstepCoordinator
from .data import DoorstepConfigEntry, DoorstepData
from .decisions import ShareDecisions
from .device_trigger import async_setup_camera_events
from .entity import bridge_device_fields, camera_identifier
from .helpers import loaded_entries
from .panel import async_register_panel, async_remove_panel
from .prompts import async_remove_prompts
from .rung import async_remove_rung_rings, async_rung_rings
from .services import async_setup_services
from .views import async_setup_views
from .websocket import async_follow_for_panels, async_setup_websocket

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)
#: When each entry's setup started failing to reach its bridge.
UNREACHABLE_SINCE: HassKey[dict[str, datetime]] = HassKey(f"{DOMAIN}_unreachable_since")

PLATFORMS = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.CAMERA,
    Platform.EVENT,
    Platform.IMAGE,
    Platform.SENSOR,
    Platform.SWITCH,
]


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:  # noqa: ARG001
    """Register the services and HTTP views once, whatever the number of bridges."""
    async_setup_services(hass)
    async_setup_views(hass)
    async_setup_websocket(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: DoorstepConfigEntry) -> bool:
    """Connect to one bridge."""
    # First, whether the bridge answers or not: a Home Assistant started before its bridge (a
    # power cut) still has the panel, which says the bridge is not connected, and the card,
    # which says "Camera offline", rather than a 404 and "Custom element doesn't exist".
    await async_register_panel(hass)
    if not await mqtt.async_wait_for_mqtt_client(hass):
        raise ConfigEntryNotReady(translation_domain=DOMAIN, translation_key="mqtt_unavailable")
    client = DoorstepApiClient(
        async_get_clientsession(hass),
        entry.data[CONF_URL],
        entry.data[CONF_API_TOKEN],
        # A token rotated on the bridge while running: ask the user for the new one.
        on_auth_error=lambda: entry.async_start_reauth(hass),
    )
    try:
        snapshot = await client.info()
    except DoorstepAuthError as err:
        raise ConfigEntryAuthFailed(translation_domain=DOMAIN, translation_key="auth") from err
    except DoorstepError as err:
        _note_unreachable(hass, entry)
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN, translation_key="cannot_connect"
        ) from err
    hass.data.get(UNREACHABLE_SINCE, {}).pop(entry.entry_id, None)
    ir.async_delete_issue(hass, DOMAIN, f"{ISSUE_UNREACHABLE}_{entry.unique_id}")

    rung = await async_rung_rings(hass, entry.entry_id)
    coordinator = DoorstepCoordinator(hass, entry, snapshot, client, rung)
    # The bridge device must exist before camera devices point at it.
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id,
        **bridge_device_fields(coordinator),
    )
    decisions = ShareDecisions(hass, entry, client, coordinator)
    approvals = ApprovalManager(hass, entry, client, coordinator, decisions)
    entry.runtime_data = DoorstepData(
        client=client,
        coordinator=coordinator,
        decisions=decisions,
        approvals=approvals,
        bridge_device_id=device.id,
        options=dict(entry.options),
    )
    await coordinator.async_start()
    await approvals.async_start()
    async_setup_camera_events(hass, entry)
    entry.async_on_unload(
        coordinator.async_add_camera_listener(
            lambda _added: None, lambda gone: _remove_cameras(hass, entry, gone)
        )
    )
    entry.async_on_unload(_follow_names_and_version(hass, coordinator))
    entry.async_on_unload(async_follow_for_panels(hass, coordinator))
    _remove_stale_devices(hass, entry, coordinator.cameras)
    _remove_stale_feature_entities(hass, entry)
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    if NEEDS_UPDATE_LISTENER:
        entry.async_on_unload(entry.add_update_listener(_async_options_updated))
    return True


def _note_unreachable(hass: HomeAssistant, entry: DoorstepConfigEntry) -> None:
    """Raise a repair issue once setup has failed for longer than a blip."""
    now = dt_util.utcnow()
    since = hass.data.setdefault(UNREACHABLE_SINCE, {}).setdefault(entry.entry_id, now)
    if (now - since).total_seconds() >= UNREACHABLE_ISSUE_DELAY:
        ir.async_create_issue(
            hass,
            DOMAIN,
            f"{ISSUE_UNREACHABLE}_{entry.unique_id}",
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_UNREACHABLE,
            translation_placeholders={
                "name": entry.title,
                "health": health_url(entry.data[CONF_URL]),
            },
        )


async def _async_options_updated(hass: HomeAssistant, entry: DoorstepConfigEntry) -> None:
    if dict(entry.options) != dict(entry.runtime_data.options):
        hass.config_entries.async_schedule_reload(entry.entry_id)


def _follow_names_and_version(
    hass: HomeAssistant, coordinator: DoorstepCoordinator
) -> Callable[[], None]:
    """Keep the devices' names and the bridge's version as the bridge announces them.

    A name the user gave a device in Home Assistant stays: it is kept apart (name_by_user).
    """
    seen = coordinator.data.info
    entry_id = coordinator.config_entry.entry_id

    @callback
    def update_devices() -> None:
        nonlocal seen
        info = coordinator.data.info
        if info is seen:
            return  # another kind of update (motion, a clip, ...)
        before, seen = seen, info
        registry = dr.async_get(hass)
        if (info.name, info.version) != (before.name, before.version) and (
            device := find_device(registry, (DOMAIN, info.id), entry_id)
        ):
            registry.async_update_device(device.id, name=info.name, sw_version=str(info.version))
        for camera in info.cameras:
            old = before.camera(camera.key)
            if old is None or old.name == camera.name:
                continue
            identifier = camera_identifier(info.id, camera.key)
            if device := find_device(registry, identifier, entry_id):
                registry.async_update_device(device.id, name=camera.name)

    return coordinator.async_add_listener(update_devices)


def _remove_cameras(hass: HomeAssistant, entry: DoorstepConfigEntry, cameras: Any) -> None:
    """Remove the devices (and so the entities) of cameras the bridge dropped."""
    registry = dr.async_get(hass)
    bridge_id = entry.runtime_data.coordinator.bridge_id
    for camera in cameras:
        for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
            if camera_identifier(bridge_id, camera) in device.identifiers:
                registry.async_remove_device(device.id)


def _remove_stale_devices(
    hass: HomeAssistant, entry: DoorstepConfigEntry, cameras: frozenset[str]
) -> None:
    """Devices of cameras removed while HA was not running."""
    registry = dr.async_get(hass)
    coordinator = entry.runtime_data.coordinator
    keep = {(DOMAIN, coordinator.bridge_id)} | {
        camera_identifier(coordinator.bridge_id, camera) for camera in cameras
    }
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        if not device.identifiers & keep:
            registry.async_remove_device(device.id)


def _remove_stale_feature_entities(hass: HomeAssistant, entry: DoorstepConfigEntry) -> None:
    """Person sensors and parcel events of cameras that no longer have them.

    They are made only for cameras with person detection or a ``doorstep`` zone; once the
    bridge turns one off, the entity would stay as "no longer provided".
    """
    coordinator = entry.runtime_data.coordinator
    registry = er.async_get(hass)
    # The cameras as the platforms make their entities, whatever MQTT said meanwhile.
    for camera in coordinator.built_cameras.values():
        for platform, key, on in (
            (Platform.BINARY_SENSOR, "person", camera.person),
            (Platform.EVENT, "package", camera.package),
        ):
            unique_id = f"{coordinator.bridge_id}_{camera.key}_{key}"
            if not on and (entity_id := registry.async_get_entity_id(platform, DOMAIN, unique_id)):
                registry.async_remove(entity_id)


async def async_remove_entry(hass: HomeAssistant, entry: DoorstepConfigEntry) -> None:
    """What the bridge left in Home Assistant goes; the panel with the last bridge.

    Its repairs, prompts, waiting audit records and the presses it rang. The panel goes
    even when the last bridge was never set up (it came with its first try).
    """
    _async_delete_issues(hass, entry)
    await async_remove_prompts(hass, entry.entry_id)
    await async_remove_backlog(hass, entry.entry_id)
    await async_remove_rung_rings(hass, entry.entry_id)
    if not [e for e in hass.config_entries.async_entries(DOMAIN) if e.entry_id != entry.entry_id]:
        async_remove_panel(hass)


async def async_unload_entry(hass: HomeAssistant, entry: DoorstepConfigEntry) -> bool:
    """Unload platforms; subscriptions and listeners go with ``async_on_unload``."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded and not [e for e in loaded_entries(hass) if e.entry_id != entry.entry_id]:
        async_remove_panel(hass)  # the last bridge: nothing left to show
    if unloaded and entry.disabled_by is not None:
        # Disabled: nothing watches the bridge any more, so nothing would clear them. A
        # reload keeps them: what they report is still so until the bridge says otherwise.
        _async_delete_issues(hass, entry)
    return unloaded


@callback
def _async_delete_issues(hass: HomeAssistant, entry: DoorstepConfigEntry) -> None:
    """Delete the repair issues of the entry's bridge (their ids carry the bridge id)."""
    bridge_id = entry.unique_id
    if not bridge_id:
        return
    for domain, issue_id in list(ir.async_get(hass).issues):
        if domain == DOMAIN and (
            issue_id.endswith(f"_{bridge_id}") or f"_{bridge_id}_" in issue_id
        ):
            ir.async_delete_issue(hass, DOMAIN, issue_id)


async def async_remove_config_entry_device(
    hass: HomeAssistant,  # noqa: ARG001
    entry: DoorstepConfigEntry,
    device: dr.DeviceEntry,
) -> bool:
    """Let the user delete a camera device the bridge no longer has.

    While the bridge is not connected, which cameras it has is unknown: any camera
    device may go (one the bridge still has comes back when it connects), never the
    bridge's own.
    """
    if entry.state is not ConfigEntryState.LOADED:
        return (DOMAIN, entry.unique_id) not in device.identifiers
    coordinator = entry.runtime_data.coordinator
    if (DOMAIN, coordinator.bridge_id) in device.identifiers:
        return False
    return not any(
        camera_identifier(coordinator.bridge_id, camera) in device.identifiers
        for camera in coordinator.cameras
    )
