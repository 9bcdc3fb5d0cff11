"""Device triggers of a camera: the automation editor's first choices for a doorbell.

Each happening at a camera is fired on HA's bus as ``doorstep_event`` with the
camera's device id and the trigger type (docs/automations.md), and a device
trigger is an event trigger on it. Going through the bus, rather than holding
on to the coordinator, keeps automations working across reloads of the entry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Final

from homeassistant.components.device_automation import DEVICE_TRIGGER_BASE_SCHEMA
from homeassistant.components.homeassistant.triggers import event as event_trigger
from homeassistant.const import (
    ATTR_DEVICE_ID,
    CONF_DEVICE_ID,
    CONF_DOMAIN,
    CONF_EVENT_DATA,
    CONF_PLATFORM,
    CONF_TYPE,
)
from homeassistant.core import CALLBACK_TYPE, Event, HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.trigger import TriggerActionType, TriggerInfo
from homeassistant.helpers.typing import ConfigType
from homeassistant.util import dt as dt_util
import voluptuous as vol

from .const import DOMAIN, EVENT_CAMERA, EVENT_SHARE_REQUESTED
from .data import DoorstepConfigEntry
from .entity import camera_identifier
from .protocol import Ring

DOORBELL_PRESSED: Final = "doorbell_pressed"
MOTION_STARTED: Final = "motion_started"
MOTION_STOPPED: Final = "motion_stopped"
CLIP_SAVED: Final = "clip_saved"
SHARE_REQUESTED: Final = "share_requested"
#: In the order the automation editor lists them: the doorbell first.
TRIGGER_TYPES: Final = (
    DOORBELL_PRESSED,
    MOTION_STARTED,
    MOTION_STOPPED,
    CLIP_SAVED,
    SHARE_REQUESTED,
)

TRIGGER_SCHEMA: Final = DEVICE_TRIGGER_BASE_SCHEMA.extend(
    {vol.Required(CONF_TYPE): vol.In(TRIGGER_TYPES)}
)


def _is_camera_device(hass: HomeAssistant, device: dr.DeviceEntry) -> bool:
    """A Doorstep device that is not a bridge (whose identifier is its entry's unique id)."""
    bridges = {entry.unique_id for entry in hass.config_entries.async_entries(DOMAIN)}
    return any(domain == DOMAIN and key not in bridges for domain, key in device.identifiers)


async def async_get_triggers(hass: HomeAssistant, device_id: str) -> list[dict[str, str]]:
    """The triggers of a camera device; a bridge device has none."""
    device = dr.async_get(hass).async_get(device_id)
    if device is None or not _is_camera_device(hass, device):
        return []
    return [
        {
            CONF_PLATFORM: "device",
            CONF_DOMAIN: DOMAIN,
            CONF_DEVICE_ID: device_id,
            CONF_TYPE: trigger_type,
        }
        for trigger_type in TRIGGER_TYPES
    ]


async def async_attach_trigger(
    hass: HomeAssistant,
    config: ConfigType,
    action: TriggerActionType,
    trigger_info: TriggerInfo,
) -> CALLBACK_TYPE:
    """Listen for the camera's ``doorstep_event`` of this type."""
    event_config = event_trigger.TRIGGER_SCHEMA(
        {
            CONF_PLATFORM: "event",
            event_trigger.CONF_EVENT_TYPE: EVENT_CAMERA,
            CONF_EVENT_DATA: {
                ATTR_DEVICE_ID: config[CONF_DEVICE_ID],
                CONF_TYPE: config[CONF_TYPE],
            },
        }
    )
    return await event_trigger.async_attach_trigger(
        hass, event_config, action, trigger_info, platform_type="device"
    )


@callback
def async_setup_camera_events(hass: HomeAssistant, entry: DoorstepConfigEntry) -> None:
    """Fire ``doorstep_event`` for what happens at the entry's cameras, until it unloads."""
    _CameraEvents(hass, entry).start()


class _CameraEvents:
    """Turns the coordinator's state changes into one bus event per happening."""

    def __init__(self, hass: HomeAssistant, entry: DoorstepConfigEntry) -> None:
        self.hass = hass
        self.entry = entry
        self.coordinator = entry.runtime_data.coordinator
        # The broker repeats the last clip (retained) to every new subscriber: a clip
        # that ended before we listened is history, not a clip just saved.
        self.listening_since = dt_util.utcnow()
        self.motion = {key: state.motion for key, state in self.coordinator.data.cameras.items()}
        #: The newest clip seen per camera: its id and when it ended.
        self.clips: dict[str, tuple[str, datetime]] = {}
        self.ring_listeners: set[str] = set()

    def start(self) -> None:
        coordinator = self.coordinator
        self.entry.async_on_unload(coordinator.async_add_camera_listener(self._cameras_added))
        self.entry.async_on_unload(coordinator.async_add_listener(self._state_changed))
        self.entry.async_on_unload(
            self.hass.bus.async_listen(EVENT_SHARE_REQUESTED, self._share_requested)
        )

    @callback
    def _cameras_added(self, cameras: Iterable[str]) -> None:
        for camera in cameras:
            # A camera removed and added again keeps its first listener.
            if camera in self.ring_listeners:
                continue
            self.ring_listeners.add(camera)
            self.entry.async_on_unload(
                self.coordinator.async_add_ring_listener(camera, self._ring_handler(camera))
            )

    def _ring_handler(self, camera: str) -> Callable[[Ring], None]:
        @callback
        def rang(ring: Ring) -> None:
            self._fire(
                camera, DOORBELL_PRESSED, {"ring_id": ring.id, "time": ring.time.isoformat()}
            )

        return rang

    @callback
    def _state_changed(self) -> None:
        for camera, state in self.coordinator.data.cameras.items():
            was_moving = self.motion.get(camera)
            self.motion[camera] = state.motion
            # From unknown to a value is news of the state, not of a motion.
            if was_moving is not None and state.motion is not None and was_moving != state.motion:
                self._fire(camera, MOTION_STARTED if state.motion else MOTION_STOPPED, {})
            clip = state.last_clip
            seen = self.clips.get(camera)
            # An older clip shown again (the newest was deleted) is no clip just saved.
            if clip is None or (seen is not None and (seen[0] == clip.id or clip.end <= seen[1])):
                continue
            self.clips[camera] = (clip.id, clip.end)
            if clip.end >= self.listening_since:
                self._fire(camera, CLIP_SAVED, {"clip_id": clip.id, "reason": clip.reason})

    @callback
    def _share_requested(self, event: Event[dict[str, Any]]) -> None:
        data = event.data
        if data.get("bridge_id") != self.coordinator.bridge_id:
            return
        details = {key: data.get(key) for key in ("share_id", "requester", "reason")}
        for camera in data.get("cameras", ()):
            self._fire(camera, SHARE_REQUESTED, details, event)

    @callback
    def _fire(
        self,
        camera: str,
        trigger_type: str,
        details: dict[str, Any],
        cause: Event[Any] | None = None,
    ) -> None:
        identifier = camera_identifier(self.coordinator.bridge_id, camera)
        registry = dr.async_get(self.hass)
        device = next(
            (
                device
                for device in dr.async_entries_for_config_entry(registry, self.entry.entry_id)
                if identifier in device.identifiers
            ),
            None,
        )
        if device is None:  # a camera whose entities are not added yet
            return
        self.hass.bus.async_fire(
            EVENT_CAMERA,
            {
                ATTR_DEVICE_ID: device.id,
                "bridge_id": self.coordinator.bridge_id,
                "camera": camera,
                CONF_TYPE: trigger_type,
                **details,
            },
            context=cause.context if cause else None,
        )
