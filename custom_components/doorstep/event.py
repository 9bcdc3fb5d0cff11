"""Event entities: the doorbell (one event per press) and parcels at the door."""

from __future__ import annotations

from homeassistant.components.event import EventDeviceClass, EventEntity
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from .compat import RING
from .const import DOMAIN
from .coordinator import DoorstepCoordinator
from .data import DoorstepConfigEntry
from .entity import DoorstepCameraEntity, async_setup_camera_entities
from .protocol import PACKAGE_CHANGES, Package, Ring

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,  # noqa: ARG001
    entry: DoorstepConfigEntry,
    async_add_entities: AddEntitiesCallback,
) -> None:
    """Add a doorbell event entity per camera, and a parcel one where it has a doorstep zone."""
    async_setup_camera_entities(entry, async_add_entities, _camera_events)


def _camera_events(coordinator: DoorstepCoordinator, camera: str) -> list[EventEntity]:
    events: list[EventEntity] = [DoorbellEvent(coordinator, camera)]
    if (info := coordinator.built_cameras.get(camera)) is not None and info.package:
        events.append(PackageEvent(coordinator, camera))
    return events


class DoorbellEvent(DoorstepCameraEntity, EventEntity):
    """Fires ``ring`` on each press of the camera's doorbell."""

    _attr_device_class = EventDeviceClass.DOORBELL
    _attr_event_types = [RING]  # noqa: RUF012 - HA's attribute type is a list

    def __init__(self, coordinator: DoorstepCoordinator, camera: str) -> None:
        super().__init__(coordinator, camera, "doorbell")

    async def async_added_to_hass(self) -> None:
        """Listen for presses."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.coordinator.async_add_ring_listener(self.camera, self._handle_ring)
        )

    @callback
    def _handle_ring(self, ring: Ring) -> None:
        self._trigger_event(RING, {"ring_id": ring.id, "time": ring.time.isoformat()})
        self.async_write_ha_state()


class PackageEvent(DoorstepCameraEntity, EventEntity):
    """Fires ``delivered`` when a parcel is left at the door and ``removed`` when it goes."""

    _attr_event_types = list(PACKAGE_CHANGES)  # noqa: RUF012 - HA's attribute type is a list

    def __init__(self, coordinator: DoorstepCoordinator, camera: str) -> None:
        super().__init__(coordinator, camera, "package")

    async def async_added_to_hass(self) -> None:
        """Listen for parcels."""
        await super().async_added_to_hass()
        self.async_on_remove(
            self.coordinator.async_add_package_listener(self.camera, self._handle_package)
        )

    @callback
    def _handle_package(self, package: Package) -> None:
        attributes = {"time": package.time.isoformat()}
        # The bridge publishes the frame that saw the parcel as the camera's snapshot,
        # right after this message: its path through HA (a login fetches it).
        snapshot = er.async_get(self.hass).async_get_entity_id(
            "image", DOMAIN, f"{self.coordinator.bridge_id}_{self.camera}_snapshot"
        )
        if snapshot is not None:
            attributes["snapshot"] = f"/api/image_proxy/{snapshot}"
        self._trigger_event(package.type, attributes)
        self.async_write_ha_state()
