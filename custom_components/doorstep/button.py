"""Record-now button per camera."""

from __future__ import annotations

from homeassistant.components import mqtt
from homeassistant.components.button import ButtonEntity
from homeassistant.core import HomeAssistant
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
    """Add a record-now button per camera."""
    async_setup_camera_entities(
        entry, async_add_entities, lambda coordinator, camera: [RecordNow(coordinator, camera)]
    )


class RecordNow(DoorstepCameraEntity, ButtonEntity):
    """Start a manual clip (the bridge's default length)."""

    def __init__(self, coordinator: DoorstepCoordinator, camera: str) -> None:
        super().__init__(coordinator, camera, "record")

    async def async_press(self) -> None:
        """Publish the record-now command."""
        topic = self.coordinator.topics.record_set(self.camera)
        await mqtt.async_publish(self.hass, topic, "", qos=1, retain=False)
