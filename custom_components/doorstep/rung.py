"""The doorbell presses already rung, kept across restarts and reloads.

A press is a momentary MQTT message, not retained: one made while Home Assistant
restarted, or while the entry reloaded, reached no subscriber here. Once the bridge is
heard again the integration asks it for its latest presses (``GET /api/rings``) and rings
those it has not rung. Which ones it has rung is kept here, in Home Assistant's storage,
so that a press rung before a restart or a reload is not rung again after it.

One memory per entry lives for as long as Home Assistant runs (a reload finds it as the
unloaded entry left it); it is saved at each press rung, and read at the first set-up.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util
from homeassistant.util.hass_dict import HassKey

from .const import DOMAIN

STORAGE_VERSION = 1
#: Ring ids remembered per camera: more presses than a camera makes while Home Assistant
#: restarts, or than MQTT delivers again after a broker restart.
RECENT_RINGS = 32

MEMORIES: HassKey[dict[str, RungRings]] = HassKey(f"{DOMAIN}_rung")


def _store(hass: HomeAssistant, entry_id: str) -> Store[dict[str, Any]]:
    return Store(hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}.rung")


async def async_rung_rings(hass: HomeAssistant, entry_id: str) -> RungRings:
    """The entry's memory: the one an earlier set-up of this run left, or the stored one."""
    memories = hass.data.setdefault(MEMORIES, {})
    memory = memories.get(entry_id)
    if memory is None:
        memory = RungRings(hass, entry_id)
        await memory.async_load()
        memories[entry_id] = memory
    return memory


async def async_remove_rung_rings(hass: HomeAssistant, entry_id: str) -> None:
    """Forget a removed bridge's presses, in memory and in HA's storage."""
    hass.data.get(MEMORIES, {}).pop(entry_id, None)
    await _store(hass, entry_id).async_remove()


class RungRings:
    """The ids of the presses rung lately, per camera.

    Attributes:
        since: When the entry was first set up (Home Assistant's clock). A press made
            since that did not ring was missed (Home Assistant restarting, a reload);
            presses from before it existed are none of its business.
    """

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        self.hass = hass
        self._store = _store(hass, entry_id)
        self._rings: dict[str, deque[str]] = {}
        self.since = dt_util.utcnow()

    async def async_load(self) -> None:
        """Read what an earlier run kept; the first set-up is saved at once."""
        stored = await self._store.async_load()
        if stored is None:
            self._save()  # the next start knows the entry listened before, and since when
            return
        self.since = dt_util.parse_datetime(str(stored.get("since"))) or self.since
        for camera, ids in stored.get("rings", {}).items():
            self._rings[camera] = deque(ids, maxlen=RECENT_RINGS)

    def __contains__(self, ring: tuple[str, str]) -> bool:
        """Whether (camera, ring id) was rung."""
        camera, ring_id = ring
        return ring_id in self._rings.get(camera, ())

    @callback
    def add(self, camera: str, ring_id: str) -> None:
        """A press is rung: remember it, and save."""
        self._rings.setdefault(camera, deque(maxlen=RECENT_RINGS)).append(ring_id)
        self._save()

    @callback
    def _save(self) -> None:
        data = {
            "since": self.since.isoformat(),
            "rings": {camera: list(ids) for camera, ids in self._rings.items()},
        }
        # After the press has rung: its listeners run first, in the same callback.
        self.hass.async_create_task(self._store.async_save(data), eager_start=False)
