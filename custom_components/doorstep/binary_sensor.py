"""Motion and, where the camera looks for people, a person per camera; the bridge's connectivity."""

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
    """Add the bridge's connectivity, each camera's motion and person sensors."""
    async_add_entities([BridgeConnectivity(entry.runtime_data.coordinator)])
    async_setup_camera_entities(entry, async_add_entities, _camera_sensors)


def _camera_sensors(coordinator: DoorstepCoordinator, camera: str) -> list[BinarySensorEntity]:
    sensors: list[BinarySensorEntity] = [Motion(coordinator, camera)]
    if any(c.key == camera and c.person for c in coordinator.data.info.cameras):
        sensors.append(Person(coordinator, camera))
    return sensors


class Motion(DoorstepCameraEntity, BinarySensorEntity):
    """On while the bridge sees motion."""

    _attr_device_class = BinarySensorDeviceClass.MOTION

    def __init__(self, coordinator: DoorstepCoordinator, camera: str) -> None:
        super().__init__(coordinator, camera, "motion")

    @property
    def is_on(self) -> bool | None:
        """Motion state."""
        return self.coordinator.data.camera(self.camera).motion


class Person(DoorstepCameraEntity, BinarySensorEntity):
    """On while the bridge sees a person (cameras with person detection)."""

    _attr_device_class = BinarySensorDeviceClass.OCCUPANCY

    def __init__(self, coordinator: DoorstepCoordinator, camera: str) -> None:
        super().__init__(coordinator, camera, "person")

    @property
    def is_on(self) -> bool | None:
        """Person state."""
        return self.coordinator.data.camera(self.camera).person


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
