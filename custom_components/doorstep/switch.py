"""Motion detection and recording switches, set through the bridge's HTTP API.

Switching off lowers the doorbell's protection, so the bridge takes it only with
its API token: the integration sends both directions over HTTP (the bridge refuses
"off" on MQTT, where anyone on the broker could send it).
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import SwitchEntity
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from .api import DoorstepApiClient
from .coordinator import DoorstepCoordinator
from .data import DoorstepConfigEntry
from .entity import DoorstepCameraEntity, async_setup_camera_entities
from .errors import switch_errors
from .protocol import SWITCHES

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,  # noqa: ARG001
    entry: DoorstepConfigEntry,
    async_add_entities: AddEntitiesCallback,
) -> None:
    """Add the camera switches."""
    client = entry.runtime_data.client
    async_setup_camera_entities(
        entry,
        async_add_entities,
        lambda coordinator, camera: [
            CameraSwitch(coordinator, client, camera, switch) for switch in SWITCHES
        ],
    )


class CameraSwitch(DoorstepCameraEntity, SwitchEntity):
    """A camera setting; the state comes back from the bridge over MQTT, never assumed."""

    _attr_entity_category = EntityCategory.CONFIG

    def __init__(
        self,
        coordinator: DoorstepCoordinator,
        client: DoorstepApiClient,
        camera: str,
        switch: str,
    ) -> None:
        super().__init__(coordinator, camera, switch)
        self._client = client
        self._switch = switch

    @property
    def available(self) -> bool:
        """Available while the bridge is reachable, whether the camera's stream is up or not.

        The setting is the bridge's, and the bridge takes a change while the stream is
        down; an unavailable switch would drop it without a word (Home Assistant sends no
        action to an unavailable entity). While the bridge itself is offline nothing can
        set it, and its last state may no longer hold: unavailable, like every entity.
        """
        return self.bridge_has_camera

    @property
    def is_on(self) -> bool | None:
        """Reported by the bridge."""
        value: bool | None = getattr(self.coordinator.data.camera(self.camera), self._switch)
        return value

    async def async_turn_on(self, **kwargs: Any) -> None:  # noqa: ARG002
        """Ask the bridge to switch on."""
        await self._set(on=True)

    async def async_turn_off(self, **kwargs: Any) -> None:  # noqa: ARG002
        """Ask the bridge to switch off."""
        await self._set(on=False)

    async def _set(self, *, on: bool) -> None:
        # The bridge's answer is not applied here: the state follows from the
        # retained MQTT message it publishes, like every other change of the switch.
        with switch_errors(self.camera, self._switch):
            await self._client.set_switch(self.camera, self._switch, on=on)
