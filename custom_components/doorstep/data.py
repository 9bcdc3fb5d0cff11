"""Runtime data of one config entry: what setup builds, typed for every reader."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from homeassistant.config_entries import ConfigEntry

from .api import DoorstepApiClient
from .approvals import ApprovalManager
from .coordinator import DoorstepCoordinator
from .decisions import ShareDecisions

type DoorstepConfigEntry = ConfigEntry[DoorstepData]


@dataclass(frozen=True, slots=True)
class DoorstepData:
    """Runtime objects of one config entry."""

    client: DoorstepApiClient
    coordinator: DoorstepCoordinator
    decisions: ShareDecisions
    approvals: ApprovalManager
    bridge_device_id: str
    #: Options the entry was set up with (HA < 2025.8 reloads on change).
    options: Mapping[str, Any]
