"""Base entities: one bridge device, one device per camera."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, cast

from homeassistant.const import CONF_URL
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import Entity
from homeassistant.helpers.entity_platform import AddEntitiesCallback
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import DoorstepConfigEntry, DoorstepCoordinator


def camera_identifier(bridge_id: str, camera: str) -> tuple[str, str]:
    """Device registry identifier of a camera."""
    return (DOMAIN, f"{bridge_id}_{camera}")


def bridge_device_info(coordinator: DoorstepCoordinator) -> DeviceInfo:
    """Device of the bridge itself."""
    info = coordinator.data.info
    return DeviceInfo(
        identifiers={(DOMAIN, info.id)},
        name=info.name,
        manufacturer="Doorstep",
        model="Doorstep bridge",
        sw_version=str(info.version),
        configuration_url=coordinator.config_entry.data[CONF_URL],
    )


def camera_device_info(coordinator: DoorstepCoordinator, camera: str) -> DeviceInfo:
    """Device of one camera, attached to the bridge device."""
    entry = coordinator.config_entry
    info: dict[str, Any] = {
        "identifiers": {camera_identifier(coordinator.bridge_id, camera)},
        "name": coordinator.data.camera_name(camera),
        "manufacturer": "Doorstep",
        "model": "Doorbell camera",
    }
    # HA 2026.8 deprecates via_device (a tuple) for via_device_id; both need the
    # bridge device to exist already, which async_setup_entry guarantees.
    if hasattr(dr.DeviceEntry, "config_entry_id"):
        info["via_device_id"] = entry.runtime_data.bridge_device_id
    else:
        info["via_device"] = (DOMAIN, coordinator.bridge_id)
    return cast("DeviceInfo", info)


class DoorstepEntity(CoordinatorEntity[DoorstepCoordinator]):
    """Common base: names from translations, device from the subclass."""

    _attr_has_entity_name = True


class DoorstepBridgeEntity(DoorstepEntity):
    """An entity of the bridge device."""

    def __init__(self, coordinator: DoorstepCoordinator, key: str) -> None:
        super().__init__(coordinator)
        self._attr_unique_id = f"{coordinator.bridge_id}_{key}"
        self._attr_translation_key = key
        self._attr_device_info = bridge_device_info(coordinator)

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
        self._attr_device_info = camera_device_info(coordinator, camera)

    @property
    def available(self) -> bool:
        """Unavailable while the bridge is offline or the camera is down."""
        data = self.coordinator.data
        return (
            data.reachable
            and self.camera in self.coordinator.cameras
            and data.camera(self.camera).online is not False
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
