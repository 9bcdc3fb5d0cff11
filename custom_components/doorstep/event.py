"""Doorbell event entity: one event per press."""

from __future__ import annotations

from homeassistant.components.event import EventDeviceClass, EventEntity
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from .compat import RING
from .coordinator import DoorstepCoordinator
from .data import DoorstepConfigEntry
from .entity import DoorstepCameraEntity, async_setup_camera_entities
from .protocol import Ring

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,  # noqa: ARG001
    entry: DoorstepConfigEntry,
    async_add_entities: AddEntitiesCallback,
) -> None:
    """Add a doorbell event entity per camera."""
    async_setup_camera_entities(
        entry, async_add_entities, lambda coordinator, camera: [DoorbellEvent(coordinator, camera)]
    )


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
