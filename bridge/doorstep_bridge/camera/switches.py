"""The cameras' switches (motion detection, recording) survive a restart.

A switch turned off in Home Assistant must stay off after the bridge restarts:
the states are kept in ``<storage>/camera_switches.json``, written atomically
(temporary file, fsync, rename) on every change and read at start-up. A camera
missing from the file starts with its configured defaults.

The file also notes the configured ``record.enabled`` at the time of the save
(``config_recording``): when the configuration has been edited since, the
configuration wins — turning recording off in the config file always works.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, TypeAlias

from doorstep_bridge.files import atomic_write
from doorstep_bridge.mqtt.topics import SWITCHES

if TYPE_CHECKING:
    from pathlib import Path

_LOGGER = logging.getLogger(__name__)

FILE_NAME = "camera_switches.json"
#: Key of the configured ``record.enabled`` when the states were saved.
CONFIG_RECORDING = "config_recording"
_KEYS = frozenset({*SWITCHES, CONFIG_RECORDING})

SwitchStates: TypeAlias = dict[str, dict[str, bool]]


def load_switches(path: Path) -> SwitchStates:
    """The saved states, ``{camera: {switch: on}}``; empty when absent or unreadable."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as err:
        _LOGGER.error("Cannot read the camera switches from %s (%s); using defaults", path, err)  # noqa: TRY400
        return {}
    if not isinstance(data, dict):
        return {}
    states: SwitchStates = {}
    for camera, switches in data.items():
        if isinstance(camera, str) and isinstance(switches, dict):
            states[camera] = {
                name: value
                for name, value in switches.items()
                if name in _KEYS and isinstance(value, bool)
            }
    return states


def initial_recording(saved: dict[str, bool], configured: bool) -> bool:
    """The recording switch at start: the saved state unless the config changed since."""
    if saved.get(CONFIG_RECORDING, configured) != configured:
        return configured  # record.enabled was edited after the switch was saved
    return saved.get("recording", configured)


def save_switches(path: Path, states: SwitchStates) -> None:
    """Write the states atomically (blocking: call off the event loop).

    Raises:
        OSError: The file cannot be written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, json.dumps(states, indent=2, sort_keys=True).encode())
