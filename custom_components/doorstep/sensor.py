"""Last ring, last clip and stream status per camera; storage and share counters of the bridge."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from homeassistant.components.sensor import (
    RestoreSensor,
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import EntityCategory, UnitOfInformation
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from .coordinator import BridgeState, CameraState, DoorstepCoordinator
from .data import DoorstepConfigEntry
from .entity import DoorstepBridgeEntity, DoorstepCameraEntity, async_setup_camera_entities
from .protocol import CLIP_ATTRIBUTES, STREAM_STATUSES, Ring

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class BridgeSensorDescription(SensorEntityDescription):
    """A bridge counter read from its stats."""

    value_fn: Callable[[BridgeState], int | None]


BRIDGE_SENSORS = (
    BridgeSensorDescription(
        key="pending_shares",
        translation_key="pending_shares",
        state_class=SensorStateClass.MEASUREMENT,
        value_fn=lambda s: s.stats.pending_shares if s.stats else None,
    ),
    BridgeSensorDescription(
        key="storage_used",
        translation_key="storage_used",
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.MEGABYTES,
        suggested_display_precision=1,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda s: s.stats.storage_used_bytes if s.stats else None,
    ),
    BridgeSensorDescription(
        key="clips",
        translation_key="clips",
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,  # changes with every clip: noisy history
        value_fn=lambda s: s.stats.clips if s.stats else None,
    ),
)


@dataclass(frozen=True, kw_only=True)
class CameraSensorDescription(SensorEntityDescription):
    """A camera figure read from its state."""

    value_fn: Callable[[CameraState], str | None]
    attributes_fn: Callable[[CameraState], dict[str, Any] | None] = lambda _state: None


def _health_attributes(state: CameraState) -> dict[str, Any] | None:
    health = state.health
    if health is None:
        return None
    return {"detail": health.detail, "since": health.since.isoformat() if health.since else None}


#: Why a camera is down, while its other entities can only say "unavailable".
STREAM_STATUS = CameraSensorDescription(
    key="stream_status",
    translation_key="stream_status",
    device_class=SensorDeviceClass.ENUM,
    options=list(STREAM_STATUSES),
    entity_category=EntityCategory.DIAGNOSTIC,
    value_fn=lambda state: state.health.status if state.health else None,
    attributes_fn=_health_attributes,
)


async def async_setup_entry(
    hass: HomeAssistant,  # noqa: ARG001
    entry: DoorstepConfigEntry,
    async_add_entities: AddEntitiesCallback,
) -> None:
    """Add the bridge counters and each camera's last-ring and last-clip sensors."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities(BridgeSensor(coordinator, d) for d in BRIDGE_SENSORS)
    async_add_entities([BlockedConnections(coordinator)])
    async_setup_camera_entities(
        entry,
        async_add_entities,
        lambda coordinator, camera: [
            LastRing(coordinator, camera),
            LastClip(coordinator, camera),
            CameraSensor(coordinator, camera, STREAM_STATUS),
        ],
    )


class BridgeSensor(DoorstepBridgeEntity, SensorEntity):
    """A counter from ``<b>/bridge/stats``."""

    entity_description: BridgeSensorDescription

    def __init__(self, coordinator: DoorstepCoordinator, desc: BridgeSensorDescription) -> None:
        super().__init__(coordinator, desc.key)
        self.entity_description = desc

    @property
    def native_value(self) -> int | None:
        """Current value."""
        return self.entity_description.value_fn(self.coordinator.data)


class BlockedConnections(DoorstepBridgeEntity, SensorEntity):
    """Connections the bridge's egress guard refused (``<b>/bridge/egress``).

    The count starts from 0 with each start of the bridge; the coordinator raises the
    repair that names the last one.
    """

    _attr_state_class = SensorStateClass.TOTAL_INCREASING  # back to 0: the bridge restarted
    _attr_entity_category = EntityCategory.DIAGNOSTIC

    def __init__(self, coordinator: DoorstepCoordinator) -> None:
        super().__init__(coordinator, "blocked_connections")

    @property
    def native_value(self) -> int | None:
        """Refusals since the bridge started."""
        egress = self.coordinator.data.egress
        return egress.blocked if egress else None

    @property
    def extra_state_attributes(self) -> dict[str, str]:
        """The last refusal: ``last_action``, ``last_destination``, ``last_caller``, ..."""
        egress = self.coordinator.data.egress
        return {f"last_{key}": value for key, value in egress.last.items()} if egress else {}


class CameraSensor(DoorstepCameraEntity, SensorEntity):
    """A camera figure that stays readable while the camera is down: it says why."""

    entity_description: CameraSensorDescription

    def __init__(
        self, coordinator: DoorstepCoordinator, camera: str, desc: CameraSensorDescription
    ) -> None:
        super().__init__(coordinator, camera, desc.key)
        self.entity_description = desc

    @property
    def available(self) -> bool:
        """Available while the bridge is reachable and has the camera, up or down."""
        return self.bridge_has_camera

    @property
    def native_value(self) -> str | None:
        """Current value."""
        return self.entity_description.value_fn(self.coordinator.data.camera(self.camera))

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Details (why, since when)."""
        return self.entity_description.attributes_fn(self.coordinator.data.camera(self.camera))


class LastClip(DoorstepCameraEntity, RestoreSensor):
    """When the latest clip ended; the clip's details as attributes.

    Restored across restarts and reloads. The bridge's API says nothing of clips, so
    the clip comes from the broker's retained message, a moment after setup: a sensor
    that started empty would change to that same old clip, and every "a clip finished"
    automation would run for it. Restored, the same clip again is no change, while a
    clip that finished while Home Assistant was not listening still is one.
    """

    _attr_device_class = SensorDeviceClass.TIMESTAMP

    def __init__(self, coordinator: DoorstepCoordinator, camera: str) -> None:
        super().__init__(coordinator, camera, "last_clip")
        self._restored_end: datetime | None = None
        self._restored_attributes: dict[str, Any] | None = None

    async def async_added_to_hass(self) -> None:
        """Start from the clip shown before the restart or reload."""
        await super().async_added_to_hass()
        last = await self.async_get_last_sensor_data()
        state = await self.async_get_last_state()
        if last is None or state is None or not isinstance(last.native_value, datetime):
            return
        self._restored_end = last.native_value
        # Only the clip's own keys: the rest (friendly name, device class) is HA's.
        self._restored_attributes = {
            key: state.attributes[key] for key in CLIP_ATTRIBUTES if key in state.attributes
        }

    @property
    def native_value(self) -> datetime | None:
        """End of the latest clip."""
        state = self.coordinator.data.camera(self.camera)
        if not state.clip_heard:
            return self._restored_end
        return state.last_clip.end if state.last_clip else None

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Clip id, reason, duration, size..."""
        state = self.coordinator.data.camera(self.camera)
        if not state.clip_heard:
            return self._restored_attributes
        return state.last_clip.attributes() if state.last_clip else None


class LastRing(DoorstepCameraEntity, RestoreSensor):
    """When the doorbell last rang: HA's default dashboard shows it, not event entities."""

    _attr_device_class = SensorDeviceClass.TIMESTAMP

    def __init__(self, coordinator: DoorstepCoordinator, camera: str) -> None:
        super().__init__(coordinator, camera, "last_ring")
        self._attr_native_value: datetime | None = None

    async def async_added_to_hass(self) -> None:
        """Listen for presses; a press is not retained on the broker, so restore the last one."""
        await super().async_added_to_hass()
        if (last := await self.async_get_last_sensor_data()) is not None and isinstance(
            last.native_value, datetime
        ):
            self._attr_native_value = last.native_value
            # With its id: an automation that reads it after a restart finds the same press.
            state = await self.async_get_last_state()
            if state is not None and (ring_id := state.attributes.get("ring_id")) is not None:
                self._attr_extra_state_attributes = {"ring_id": ring_id}
        self.async_on_remove(
            self.coordinator.async_add_ring_listener(self.camera, self._handle_ring)
        )

    @callback
    def _handle_ring(self, ring: Ring) -> None:
        self._attr_native_value = ring.time
        self._attr_extra_state_attributes = {"ring_id": ring.id}
        self.async_write_ha_state()
