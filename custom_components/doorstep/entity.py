"""Base entities: one bridge device, one device per camera."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .compat import via_device_fields
from .const import DOMAIN
from .coordinator import DoorstepCoordinator
from .data import DoorstepConfigEntry
from .panel import PANEL_URL_PATH


def camera_identifier(bridge_id: str, camera: str) -> tuple[str, str]:
    """Device registry identifier of a camera."""
    return (DOMAIN, f"{bridge_id}_{camera}")


def bridge_device_fields(coordinator: DoorstepCoordinator) -> dict[str, Any]:
    """Device registry fields of the bridge itself."""
    info = coordinator.data.info
    return {
        "identifiers": {(DOMAIN, info.id)},
        "name": info.name,
        "manufacturer": "Doorstep",
        "model": "Doorstep bridge",
        "sw_version": str(info.version),
        # The bridge has no pages of its own (its address answers the API only): "Visit"
        # opens the Doorstep panel.
        "configuration_url": f"homeassistant://{PANEL_URL_PATH}",
    }


def camera_device_fields(coordinator: DoorstepCoordinator, camera: str) -> dict[str, Any]:
    """Device registry fields of one camera, attached to the bridge device."""
    fields: dict[str, Any] = {
        "identifiers": {camera_identifier(coordinator.bridge_id, camera)},
        "name": coordinator.data.camera_name(camera),
        "manufacturer": "Doorstep",
        "model": "Doorbell camera",
    }
    # The coordinator sees a plain entry; its runtime data is Doorstep's.
    entry: DoorstepConfigEntry = coordinator.config_entry
    # The bridge device exists already: async_setup_entry registers it first.
    fields.update(
        via_device_fields((DOMAIN, coordinator.bridge_id), entry.runtime_data.bridge_device_id)
    )
    return fields


class DoorstepEntity(CoordinatorEntity[DoorstepCoordinator]):
    """Common base: names from translations, device from the subclass."""

    _attr_has_entity_name = True


class DoorstepBridgeEntity(DoorstepEntity):
    """An entity of the bridge device."""

    def __init__(self, coordinator: DoorstepCoordinator, key: str) -> None:
        super().__init__(coordinator)
        self._attr_unique_id = f"{coordinator.bridge_id}_{key}"
        self._attr_translation_key = key
        # DeviceInfo is a TypedDict on HA 2025.4 and a dataclass on 2026.8+: build it
        # from keywords, which both accept.
        self._attr_device_info = DeviceInfo(**bridge_device_fields(coordinator))  # type: ignore[typeddict-item]

    @property
    def available(self) -> bool:
        """Unavailable while the bridge is offline or incompatible."""
        return self.coordinator.data.reachable


class DoorstepCameraEntity(DoorstepEntity):
    """An entity of one camera's device."""

    def __init__(self, coordinator: DoorstepCoordinator, camera: str, key: str) -> None:
        super().__init__(coordinator)
        self.camera = camera
        self._attr_unique_id = f"{coordinator.bridge_id}_{camera}_{key}"
        self._attr_translation_key = key
        self._attr_device_info = DeviceInfo(**camera_device_fields(coordinator, camera))  # type: ignore[typeddict-item]

    @property
    def bridge_has_camera(self) -> bool:
        """The bridge is reachable and has this camera, its stream up or down."""
        return self.coordinator.data.reachable and self.camera in self.coordinator.cameras

    @property
    def available(self) -> bool:
        """Unavailable while the bridge is offline or the camera is down."""
        return (
            self.bridge_has_camera and self.coordinator.data.camera(self.camera).online is not False
        )


def async_setup_camera_entities(
    entry: DoorstepConfigEntry,
    async_add_entities: AddEntitiesCallback,
    factory: Callable[[DoorstepCoordinator, str], Iterable[Entity]],
) -> None:
    """Add a camera's entities now and whenever the bridge gains a camera."""
    coordinator = entry.runtime_data.coordinator

    def add(cameras: Iterable[str]) -> None:
        async_add_entities([e for camera in cameras for e in factory(coordinator, camera)])

    entry.async_on_unload(coordinator.async_add_camera_listener(add))
