"""doorstep.forget_clip through Home Assistant's service, against the bridge's own route.

The fake bridge serves everything else; ``DELETE /api/clips/<id>`` is the bridge's real
handler over a real clip store and audit log, so the files really go and the audit
record is really written.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from homeassistant.core import Context, HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
import pytest
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser

from custom_components.doorstep.const import CONF_APPROVERS, DOMAIN
from doorstep_bridge.events import EventBus
from doorstep_bridge.files import atomic_write
from doorstep_bridge.http.clips import forget_clip
from doorstep_bridge.keys import AUDIT, BUS, CLIP_STORE
from doorstep_bridge.recording.masks import MaskSet
from doorstep_bridge.recording.store import ClipStore
from doorstep_bridge.recording.writer import ClipWriter, finalize
from doorstep_bridge.sharing.audit import AuditLog, audit_dir
from tests.support.media import file_packets

from .conftest import BRIDGE_ID, FakeBridge

T0 = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


class ForgettingBridge(FakeBridge):
    """The fake bridge with the real forget route, store and audit log."""

    store: ClipStore
    audit: AuditLog

    def app(self) -> web.Application:
        app = super().app()
        app[AUDIT] = self.audit
        app[CLIP_STORE] = self.store
        app[BUS] = EventBus()
        app.router.add_delete("/api/clips/{clip_id}", forget_clip)
        return app


def _clip(store: ClipStore, video: Path, start: datetime) -> str:
    packets = file_packets(video)
    pending = store.new_clip("front_door", start, "ring")
    writer = ClipWriter(pending.partial, packets[0].stream, MaskSet(()))
    for packet in packets:
        writer.write(packet)
    writer.close()
    done = finalize(pending.partial, pending.final)
    atomic_write(pending.snapshot, b"\xff\xd8snapshot\xff\xd9")
    atomic_write(pending.thumbnail, b"\xff\xd8thumb\xff\xd9")
    store.complete(pending, duration=done.duration, size=done.size, snapshot=True)
    return pending.id


@pytest.fixture
async def bridge(
    socket_enabled: None, video_file: Path, tmp_path: Path
) -> AsyncIterator[ForgettingBridge]:
    fake = ForgettingBridge(video=video_file)
    storage = tmp_path / "bridge-data"
    fake.audit = AuditLog(audit_dir(storage))
    fake.store = ClipStore(storage)
    fake.store.open()
    for minutes in (0, 5):
        _clip(fake.store, video_file, T0 + timedelta(minutes=minutes))
    await fake.start()
    yield fake
    await fake.stop()
    fake.store.close()


def _erased(bridge: ForgettingBridge) -> list[dict[str, Any]]:
    return [
        {k: record[k] for k in ("clip", "camera", "by")}
        for record in bridge.audit.records()
        if record["kind"] == "clip_erased"
    ]


async def _forget(hass: HomeAssistant, clip_id: str, user: MockUser | None = None) -> Any:
    return await hass.services.async_call(
        DOMAIN, "forget_clip", {"clip_id": clip_id}, blocking=True, return_response=True,
        context=Context(user_id=user.id if user else None),
    )  # fmt: skip


@pytest.mark.usefixtures("setup_entry")
async def test_forget_erases_the_clip_and_audits_who(
    hass: HomeAssistant, bridge: ForgettingBridge, hass_admin_user: MockUser
) -> None:
    clips, _ = bridge.store.list()
    files = [clips[0].path, clips[0].snapshot_path, clips[0].thumbnail_path]
    assert all(path is not None and path.is_file() for path in files)

    response = await _forget(hass, clips[0].id, hass_admin_user)

    assert response == {"clip_id": clips[0].id, "erased": True}
    assert not any(path is not None and path.exists() for path in files)
    assert [c.id for c in bridge.store.list()[0]] == [clips[1].id]
    assert _erased(bridge) == [
        {"clip": clips[0].id, "camera": "front_door", "by": hass_admin_user.name}
    ]
    # An automation (no user), by the clip's media browser id.
    media_id = f"media-source://doorstep/{BRIDGE_ID}/front_door/2026-11-23/{clips[1].id}"
    assert (await _forget(hass, media_id))["erased"] is True
    assert bridge.store.list()[0] == []
    assert _erased(bridge)[-1]["by"] == "automation"


@pytest.mark.usefixtures("setup_entry")
async def test_a_clip_a_share_holds_is_refused_with_the_reason(
    hass: HomeAssistant, bridge: ForgettingBridge
) -> None:
    clip_id = bridge.store.list()[0][0].id
    bridge.store.hold("s_7Q2M9X4K", [clip_id])
    with pytest.raises(ServiceValidationError) as err:
        await _forget(hass, clip_id)
    assert err.value.translation_key == "clip_held"
    assert err.value.translation_placeholders == {"clip_id": clip_id, "shares": "s_7Q2M9X4K"}
    assert "Deny or revoke the share first" in str(err.value)
    assert bridge.store.get(clip_id) is not None
    assert _erased(bridge) == []


@pytest.mark.usefixtures("setup_entry")
@pytest.mark.parametrize(
    "clip_id",
    [
        "c_20261123T100000_front_door_dead",
        "../clips.db",
        "media-source://doorstep/other_bridge/front_door/2026-11-23/c_1",
        "media-source://doorstep/front_door/c_1",
    ],
)
async def test_unknown_clips_are_refused(
    hass: HomeAssistant, bridge: ForgettingBridge, clip_id: str
) -> None:
    with pytest.raises(ServiceValidationError) as err:
        await _forget(hass, clip_id)
    assert err.value.translation_key == "unknown_clip"
    assert len(bridge.store.list()[0]) == 2


async def test_only_approvers_forget(
    hass: HomeAssistant,
    setup_entry: MockConfigEntry,
    bridge: ForgettingBridge,
    hass_admin_user: MockUser,
    hass_read_only_user: MockUser,
) -> None:
    clip_id = bridge.store.list()[0][0].id
    # No approvers configured: administrators only.
    with pytest.raises(ServiceValidationError) as err:
        await _forget(hass, clip_id, hass_read_only_user)
    assert err.value.translation_key == "forget_not_allowed"
    hass.config_entries.async_update_entry(
        setup_entry, options={CONF_APPROVERS: [hass_read_only_user.id]}
    )
    await hass.async_block_till_done()
    with pytest.raises(ServiceValidationError):
        await _forget(hass, clip_id, hass_admin_user)
    assert (await _forget(hass, clip_id, hass_read_only_user))["erased"] is True


@pytest.mark.usefixtures("setup_entry")
async def test_bridge_failures_are_translated(
    hass: HomeAssistant, bridge: ForgettingBridge
) -> None:
    clip_id = bridge.store.list()[0][0].id
    bridge.canned[f"/api/clips/{clip_id}"] = (400, '{"error": "by: expected text"}')
    with pytest.raises(ServiceValidationError) as err:
        await _forget(hass, clip_id)
    assert err.value.translation_key == "forget_refused"
    assert err.value.translation_placeholders == {"clip_id": clip_id, "error": "by: expected text"}
    # The bridge failed (503 when its audit log cannot be written): not the call's fault.
    bridge.broken = True
    with pytest.raises(HomeAssistantError) as failed:
        await _forget(hass, clip_id)
    assert not isinstance(failed.value, ServiceValidationError)
    assert failed.value.translation_key == "forget_refused"
    await bridge.stop()
    with pytest.raises(HomeAssistantError) as failed:
        await _forget(hass, clip_id)
    assert failed.value.translation_key == "bridge_error"
    assert bridge.store.get(clip_id) is not None


@pytest.mark.usefixtures("setup_entry")
async def test_a_rejected_token_is_named(hass: HomeAssistant, bridge: ForgettingBridge) -> None:
    """A 401 is not "try again later": the user must renew the token."""
    clip_id = bridge.store.list()[0][0].id
    bridge.token = "rotated"
    with pytest.raises(HomeAssistantError) as err:
        await _forget(hass, clip_id)
    assert err.value.translation_key == "auth"
    assert "bridge rejected the API token" in str(err.value)
    assert bridge.store.get(clip_id) is not None


async def test_forget_without_a_bridge(hass: HomeAssistant, setup_entry: MockConfigEntry) -> None:
    await hass.config_entries.async_unload(setup_entry.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await _forget(hass, "c_1")
    assert err.value.translation_key == "not_loaded"
