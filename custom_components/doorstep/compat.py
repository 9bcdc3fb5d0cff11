"""Every difference between the Home Assistant versions Doorstep supports.

The supported range starts at 2025.4 (``hacs.json``) and runs to current HA.
Each difference is decided once here, from what HA itself offers rather than
from its version number, so the rest of the integration has no version branch.
Each choice is a single expression, so the lane of each HA version runs the
side it takes; tests/components/doorstep/test_compat.py states which side that is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from homeassistant import config_entries
from homeassistant.components import event
from homeassistant.helpers import device_registry as dr

if TYPE_CHECKING:
    # Never runs: mypy needs a class it knows to subclass.
    OptionsFlowBase = config_entries.OptionsFlow  # pragma: no cover
else:
    # HA >= 2025.8 reloads the entry itself after the options flow, and from 2026.6
    # deprecates an update listener next to a reloading flow. HA 2025.4 has no such
    # base class: there an update listener in __init__ reloads instead.
    OptionsFlowBase = getattr(config_entries, "OptionsFlowWithReload", config_entries.OptionsFlow)

#: HA does not reload after the options flow by itself (HA < 2025.8).
NEEDS_UPDATE_LISTENER: Final[bool] = OptionsFlowBase is config_entries.OptionsFlow

# HA >= 2026.5 names the standard doorbell event type (a StrEnum) and warns when a
# doorbell event entity does not list it; HA 2025.4 has the same value as a string.
_DOORBELL_EVENT_TYPE: Any = getattr(event, "DoorbellEventType", None)
RING: Final[str] = "ring" if _DOORBELL_EVENT_TYPE is None else _DOORBELL_EVENT_TYPE.RING

#: HA >= 2026.8 ties each device to one config entry and deprecates ``via_device``
#: (an identifier) for ``via_device_id`` (a device registry id).
HAS_VIA_DEVICE_ID: Final[bool] = hasattr(dr.DeviceEntry, "config_entry_id")


def find_device(
    registry: dr.DeviceRegistry, identifier: tuple[str, str], entry_id: str
) -> dr.DeviceEntry | None:
    """The entry's device with this identifier.

    HA >= 2026.8 makes identifiers unique per config entry only, and deprecates
    ``async_get_device`` (a warning in the log until it goes in 2027.8) for
    ``async_get_device_by_identifier``, which HA 2025.4 does not have.
    """
    by_identifier = getattr(registry, "async_get_device_by_identifier", None)
    if by_identifier is None:
        return registry.async_get_device(identifiers={identifier})
    device: dr.DeviceEntry | None = by_identifier(identifier, entry_id)
    return device


def via_device_fields(parent: tuple[str, str], parent_device_id: str) -> dict[str, Any]:
    """Device registry fields that attach a device to its parent device.

    ``parent`` is the parent's identifier, ``parent_device_id`` its registry id;
    either way the parent must already be registered.
    """
    return {"via_device_id": parent_device_id} if HAS_VIA_DEVICE_ID else {"via_device": parent}
