"""Motion detection and recording switches (MQTT ``/set`` commands)."""

from __future__ import annotations

from typing import Any

from homeassistant.components import mqtt
from homeassistant.components.switch import SwitchEntity
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from .coordinator import DoorstepCoordinator
from .data import DoorstepConfigEntry
from .entity import DoorstepCameraEntity, async_setup_camera_entities
from .protocol import OFF, ON, SWITCHES

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,  # noqa: ARG001
    entry: DoorstepConfigEntry,
    async_add_entities: AddEntitiesCallback,
) -> None:
    """Add the camera switches."""
    async_setup_camera_entities(
        entry,
        async_add_entities,
        lambda coordinator, camera: [CameraSwitch(coordinator, camera, s) for s in SWITCHES],
    )


class CameraSwitch(DoorstepCameraEntity, SwitchEntity):
    """A camera setting; the state comes back from the bridge, never assumed."""

    _attr_entity_category = EntityCategory.CONFIG

    def __init__(self, coordinator: DoorstepCoordinator, camera: str, switch: str) -> None:
        super().__init__(coordinator, camera, switch)
        self._switch = switch

    @property
    def is_on(self) -> bool | None:
        """Reported by the bridge."""
        value: bool | None = getattr(self.coordinator.data.camera(self.camera), self._switch)
        return value

    async def async_turn_on(self, **kwargs: Any) -> None:  # noqa: ARG002
        """Ask the bridge to switch on."""
        await self._publish(ON)

    async def async_turn_off(self, **kwargs: Any) -> None:  # noqa: ARG002
        """Ask the bridge to switch off."""
        await self._publish(OFF)

    async def _publish(self, payload: str) -> None:
        topic = self.coordinator.topics.switch_set(self.camera, self._switch)
        await mqtt.async_publish(self.hass, topic, payload, qos=1, retain=False)
