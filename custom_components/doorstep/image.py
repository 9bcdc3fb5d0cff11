"""Latest snapshot of each camera (retained on the broker), or a placeholder picture.

The bridge clears a camera's retained snapshot (an empty message) when the clip it
showed was erased and no clip with a picture is left: the entity then shows the
placeholder, never the erased picture, until the bridge sends a new one.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path

from homeassistant.components.image import ImageEntity
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddEntitiesCallback
from homeassistant.util import dt as dt_util

from .coordinator import DoorstepCoordinator
from .data import DoorstepConfigEntry
from .entity import DoorstepCameraEntity, async_setup_camera_entities

PARALLEL_UPDATES = 0
#: Shown while a camera is down or has sent no snapshot yet, instead of a broken image.
PLACEHOLDER = Path(__file__).with_name("placeholder.jpg")


@cache
def placeholder_picture() -> bytes:
    """The placeholder's bytes (read once, in the executor: it is a file)."""
    return PLACEHOLDER.read_bytes()


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
    """The JPEG the bridge last published for this camera, while the camera is up."""

    _attr_content_type = "image/jpeg"

    def __init__(self, coordinator: DoorstepCoordinator, camera: str) -> None:
        DoorstepCameraEntity.__init__(self, coordinator, camera, "snapshot")
        ImageEntity.__init__(self, coordinator.hass)
        self._showing_placeholder = self._placeholder_due()
        self._attr_image_last_updated = self._picture_time()

    def _placeholder_due(self) -> bool:
        state = self.coordinator.data.camera(self.camera)
        return state.online is False or state.snapshot is None

    def _picture_time(self) -> datetime | None:
        snapshot_at = self.coordinator.data.camera(self.camera).snapshot_at
        # Unknown until a first snapshot; from then on, the time the picture changed.
        if self._showing_placeholder and snapshot_at is not None:
            return dt_util.utcnow()
        return snapshot_at

    @property
    def available(self) -> bool:
        """Available with the bridge: a camera that is down shows the placeholder."""
        return self.coordinator.data.reachable and self.camera in self.coordinator.cameras

    @callback
    def _handle_coordinator_update(self) -> None:
        placeholder_due = self._placeholder_due()
        snapshot_at = self.coordinator.data.camera(self.camera).snapshot_at
        # A new time tells the frontend to fetch the picture again.
        if placeholder_due != self._showing_placeholder or (
            not placeholder_due and snapshot_at != self._attr_image_last_updated
        ):
            self._showing_placeholder = placeholder_due
            self._attr_image_last_updated = self._picture_time()
        super()._handle_coordinator_update()

    async def async_image(self) -> bytes | None:
        """The snapshot bytes, or the placeholder's."""
        if self._placeholder_due():
            return await self.hass.async_add_executor_job(placeholder_picture)
        return self.coordinator.data.camera(self.camera).snapshot
