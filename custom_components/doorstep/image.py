"""Latest snapshot of each camera (retained on the broker)."""

from __future__ import annotations

from homeassistant.components.image import ImageEntity
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from .coordinator import DoorstepCoordinator
from .data import DoorstepConfigEntry
from .entity import DoorstepCameraEntity, async_setup_camera_entities

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,  # noqa: ARG001
    entry: DoorstepConfigEntry,
    async_add_entities: AddEntitiesCallback,
) -> None:
    """Add a snapshot image per camera."""
    async_setup_camera_entities(
        entry, async_add_entities, lambda coordinator, camera: [Snapshot(coordinator, camera)]
    )


class Snapshot(DoorstepCameraEntity, ImageEntity):
    """The JPEG the bridge last published for this camera."""

    _attr_content_type = "image/jpeg"

    def __init__(self, coordinator: DoorstepCoordinator, camera: str) -> None:
        DoorstepCameraEntity.__init__(self, coordinator, camera, "snapshot")
        ImageEntity.__init__(self, coordinator.hass)
        self._attr_image_last_updated = coordinator.data.camera(camera).snapshot_at

    @callback
    def _handle_coordinator_update(self) -> None:
        snapshot_at = self.coordinator.data.camera(self.camera).snapshot_at
        if snapshot_at != self._attr_image_last_updated:
            self._attr_image_last_updated = snapshot_at
        super()._handle_coordinator_update()

    async def async_image(self) -> bytes | None:
        """The snapshot bytes."""
        return self.coordinator.data.camera(self.camera).snapshot
