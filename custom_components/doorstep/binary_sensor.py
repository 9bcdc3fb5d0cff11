"""Per camera: motion, a person (where looked for), recording trouble; the bridge's connectivity."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from .coordinator import CameraState, DoorstepCoordinator
from .data import DoorstepConfigEntry
from .entity import DoorstepBridgeEntity, DoorstepCameraEntity, async_setup_camera_entities
from .protocol import CameraInfo

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class CameraBinarySensorDescription(BinarySensorEntityDescription):
    """An on/off state of a camera, on the cameras whose bridge info says they have it."""

    is_on_fn: Callable[[CameraState], bool | None]
    exists_fn: Callable[[CameraInfo], bool] = lambda _info: True
    attributes_fn: Callable[[CameraState], dict[str, Any] | None] = lambda _state: None


def _recording_problem_attributes(state: CameraState) -> dict[str, Any] | None:
    """What the bridge says is wrong, for a notification naming it."""
    problem = state.recording_problem
    if problem is None:
        return None
    return {"problem": problem.problem, "since": problem.since}


CAMERA_SENSORS = (
    CameraBinarySensorDescription(
        key="motion",
        translation_key="motion",
        device_class=BinarySensorDeviceClass.MOTION,
        is_on_fn=lambda state: state.motion,
    ),
    CameraBinarySensorDescription(
        key="person",
        translation_key="person",
        device_class=BinarySensorDeviceClass.OCCUPANCY,
        is_on_fn=lambda state: state.person,
        exists_fn=lambda info: info.person,
    ),
    CameraBinarySensorDescription(
        key="recording_problem",
        translation_key="recording_problem",
        device_class=BinarySensorDeviceClass.PROBLEM,
        entity_category=EntityCategory.DIAGNOSTIC,
        is_on_fn=lambda state: state.recording_problem is not None,
        attributes_fn=_recording_problem_attributes,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,  # noqa: ARG001
    entry: DoorstepConfigEntry,
    async_add_entities: AddEntitiesCallback,
) -> None:
    """Add the bridge's connectivity, each camera's motion and person sensors."""
    async_add_entities([BridgeConnectivity(entry.runtime_data.coordinator)])
    async_setup_camera_entities(entry, async_add_entities, _camera_sensors)


def _camera_sensors(coordinator: DoorstepCoordinator, camera: str) -> list[CameraBinarySensor]:
    info = coordinator.built_cameras.get(camera)
    return [
        CameraBinarySensor(coordinator, camera, desc)
        for desc in CAMERA_SENSORS
        if info is not None and desc.exists_fn(info)
    ]


class CameraBinarySensor(DoorstepCameraEntity, BinarySensorEntity):
    """On while the bridge sees motion, or a person (cameras with person detection)."""

    entity_description: CameraBinarySensorDescription

    def __init__(
        self, coordinator: DoorstepCoordinator, camera: str, desc: CameraBinarySensorDescription
    ) -> None:
        super().__init__(coordinator, camera, desc.key)
        self.entity_description = desc

    @property
    def is_on(self) -> bool | None:
        """Current state."""
        return self.entity_description.is_on_fn(self.coordinator.data.camera(self.camera))

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """The recording problem's text, for notifications."""
        return self.entity_description.attributes_fn(self.coordinator.data.camera(self.camera))


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
