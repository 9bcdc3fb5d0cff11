"""Audit records the bridge could not take yet, kept across restarts.

What the integration writes to the bridge's audit log (a notification round, a refused
tap) waits here while the bridge does not answer, with the time it happened (``at``).
It is saved in Home Assistant's storage, so a restart or reload before the bridge is
back loses nothing the log must show; it is written, in order, once the bridge answers.
"""

from __future__ import annotations

from typing import Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.storage import Store

from .const import DOMAIN, LOGGER

STORAGE_VERSION = 1
#: Records kept per share request; beyond, the oldest go. A request collects one record
#: per tap and per notification round, and the bridge allows 20 pending requests per
#: source: 20 covers many more taps than an outage of a few hours brings.
MAX_PER_SHARE = 20
#: Records kept in all: a few hundred bytes each, so the stored file stays small (well
#: under 200 kB) even when late taps on many old requests pile up during a long outage.
MAX_RECORDS = 200

#: An audit record: its kind (``notification``, ``decision_refused``) and its fields.
type Record = tuple[str, dict[str, Any]]


def _store(hass: HomeAssistant, entry_id: str) -> Store[dict[str, Any]]:
    return Store(hass, STORAGE_VERSION, f"{DOMAIN}.{entry_id}.audit_backlog")


async def async_remove_backlog(hass: HomeAssistant, entry_id: str) -> None:
    """Delete a removed bridge's waiting audit records from HA's storage."""
    await _store(hass, entry_id).async_remove()


class AuditBacklog:
    """Audit records of one bridge on their way or waiting for it, oldest first per share."""

    def __init__(self, hass: HomeAssistant, entry_id: str) -> None:
        self.hass = hass
        self._records: dict[str, list[Record]] = {}  # share id -> records, oldest first
        self._saved: list[dict[str, Any]] = []
        self._store = _store(hass, entry_id)

    async def async_load(self) -> None:
        """Restore the records that waited when Home Assistant stopped."""
        stored = await self._store.async_load() or {}
        self._saved = list(stored.get("records", []))
        self._records = {}
        for item in self._saved:
            self._records.setdefault(item["share_id"], []).append((item["kind"], item["fields"]))

    def __contains__(self, share_id: object) -> bool:
        return share_id in self._records

    def __len__(self) -> int:
        return sum(len(records) for records in self._records.values())

    def share_ids(self) -> list[str]:
        """Shares with records waiting, in the order their first record waited."""
        return list(self._records)

    def add(self, share_id: str, kind: str, fields: dict[str, Any]) -> None:
        """A new record, on its way: saved only if the bridge does not take it."""
        self._records.setdefault(share_id, []).append((kind, fields))

    def next(self, share_id: str) -> Record | None:
        """The oldest record of a share still to write."""
        records = self._records.get(share_id)
        return records[0] if records else None

    def taken(self, share_id: str) -> None:
        """The oldest record of a share is written (or refused for good): it goes."""
        records = self._records[share_id]
        records.pop(0)
        if not records:
            del self._records[share_id]

    @callback
    def keep(self, share_id: str, at: str) -> list[str]:
        """The bridge did not answer: a share's records wait, and are saved.

        Each record is stamped with ``at``, when it first failed, that is when it
        happened; the kinds stamped now are returned (to log each record once).
        """
        stamped = []
        records = self._records.get(share_id, [])
        for index, (kind, fields) in enumerate(records):
            if "at" not in fields:
                stamped.append(kind)
                records[index] = (kind, {**fields, "at": at})
        if len(records) > MAX_PER_SHARE:
            self._drop(share_id, len(records) - MAX_PER_SHARE)
        while len(self) > MAX_RECORDS:
            # The share whose oldest record is the oldest of all (``at`` is ISO 8601, UTC).
            oldest = min(self._records, key=lambda s: str(self._records[s][0][1].get("at")))
            self._drop(oldest, 1)
        self.save()
        return stamped

    def _drop(self, share_id: str, count: int) -> None:
        LOGGER.warning(
            "Dropped %d audit record(s) of share %s that the bridge could not take: at "
            "most %d are kept per request and %d in all",
            count, share_id, MAX_PER_SHARE, MAX_RECORDS,
        )  # fmt: skip
        for _ in range(count):
            self.taken(share_id)

    @callback
    def save(self) -> None:
        """Save the waiting records, if they changed since the last save."""
        data = [
            {"share_id": share_id, "kind": kind, "fields": fields}
            for share_id, records in self._records.items()
            for kind, fields in records
        ]
        if data == self._saved:
            return  # the usual case: nothing waited, nothing waits
        self._saved = data
        self.hass.async_create_task(self._store.async_save({"records": data}), eager_start=True)
