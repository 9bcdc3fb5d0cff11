"""Motion per camera; connectivity of the bridge."""

from __future__ import annotations

from homeassistant.components.binary_sensor import BinarySensorDeviceClass, BinarySensorEntity
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from .coordinator import DoorstepCoordinator
from .data import DoorstepConfigEntry
from .entity import DoorstepBridgeEntity, DoorstepCameraEntity, async_setup_camera_entities

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,  # noqa: ARG001
    entry: DoorstepConfigEntry,
    async_add_entities: AddEntitiesCallback,
) -> None:
    """Add the bridge's connectivity and each camera's motion sensor."""
    async_add_entities([BridgeConnectivity(entry.runtime_data.coordinator)])
    async_setup_camera_entities(
        entry, async_add_entities, lambda coordinator, camera: [Motion(coordinator, camera)]
    )


class Motion(DoorstepCameraEntity, BinarySensorEntity):
    """On while the bridge sees motion."""

    _attr_device_class = BinarySensorDeviceClass.MOTION

    def __init__(self, coordinator: DoorstepCoordinator, camera: str) -> None:
        super().__init__(coordinator, camera, "motion")

    @property
    def is_on(self) -> bool | None:
        """Motion state."""
        return self.coordinator.data.camera(self.camera).motion


class BridgeConnectivity(DoorstepBridgeEntity, BinarySensorEntity):
    """Is the bridge connected to the broker (its last will says when not)."""

    _attr_device_class = BinarySensorDeviceClass.CONNECTIVITY
    _attr_entity_category = EntityCategory.DIAGNOSTIC

    def __init__(self, coordinator: DoorstepCoordinator) -> None:
        super().__init__(coordinator, "connectivity")

    @property
    def available(self) -> bool:
        """Always available: being offline is its state."""
        return True

    @property
    def is_on(self) -> bool:
        """Connected and speaking our protocol."""
        return self.coordinator.data.reachable
