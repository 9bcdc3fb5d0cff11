"""Storage attacks, re-run: other users reading footage; a full disk costing recorded frames."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
import json
import logging
import os
from pathlib import Path
import shutil
import signal
import stat
import subprocess
import tempfile
from typing import Any

import pytest

from doorstep_bridge.identity import ensure_storage
from tests.security.bridge_process import broker_at
from tests.security.soak import record
from tests.security.storage_bridge import bridge, request, wait_for, write_config
from tests.support.disk import fill, small_disk
from tests.support.media import decodable_frames

CAMERA = {
    "front_door": {
        "source": "demo://?period=3600&fps=10&width=320&height=180",
        "record": {"pre_roll": 1, "post_roll": 1},
    }
}


def _modes(root: Path) -> dict[str, str]:
    """``folder 0o755`` or ``file 0o644`` for every entry under ``root`` (root included)."""
    found = {".": f"folder {oct(stat.S_IMODE(root.stat().st_mode))}"}
    for path in root.rglob("*"):
        try:
            mode = path.lstat().st_mode
        except FileNotFoundError:
            continue  # a journal file gone meanwhile
        if not stat.S_ISLNK(mode):
            kind = "folder" if stat.S_ISDIR(mode) else "file"
            found[str(path.relative_to(root))] = f"{kind} {oct(stat.S_IMODE(mode))}"
    return found


def _owner_only(modes: dict[str, str]) -> dict[str, str]:
    """What the modes must be: folders 0700, files 0600."""
    return {
        name: "folder 0o700" if mode.startswith("folder") else "file 0o600"
        for name, mode in modes.items()
    }


def _open_tree(storage: Path) -> Path:
    """A storage folder as ``useradd --create-home`` and an older bridge left it: 0755/0644."""
    day = storage / "front_door" / "2026-11-23"
    day.mkdir(parents=True)
    clip = day / "c_20261123T101500_front_door_3a1f.jpg"
    clip.write_bytes(b"jpeg")
    (storage / "bridge_id").write_text("0123456789abcdef\n", encoding="utf-8")
    for folder in (storage, storage / "front_door", day):
        folder.chmod(0o755)
    for file in (clip, storage / "bridge_id"):
        file.chmod(0o644)
    return clip


def test_an_open_storage_folder_is_tightened_at_start_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    storage = tmp_path / "data"
    _open_tree(storage)
    outside = tmp_path / "elsewhere.txt"
    outside.write_text("not the bridge's", encoding="utf-8")
    outside.chmod(0o644)
    (storage / "link").symlink_to(outside)

    with caplog.at_level(logging.INFO, logger="doorstep_bridge"):
        ensure_storage(storage)
    assert _modes(storage) == _owner_only(_modes(storage))
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644  # links are not followed
    [line] = [r.getMessage() for r in caplog.records if "open to other users" in r.getMessage()]
    assert "tightened 3 folder(s) to 0700 and 2 file(s) to 0600" in line

    caplog.clear()
    ensure_storage(storage)  # nothing to do: nothing said
    assert not [r for r in caplog.records if "open to other users" in r.getMessage()]


@pytest.fixture
def reachable_folder() -> Iterator[Path]:
    """A folder every user can reach (pytest's own temporary folders are 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="doorstep-storage-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _as_nobody(*command: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["runuser", "-u", "nobody", "--", *command], capture_output=True, check=False
    )


@pytest.mark.slow
def test_a_running_bridge_keeps_the_footage_from_other_users(
    reachable_folder: Path, tmp_path: Path
) -> None:
    """Start on an open storage folder, record a clip, open a share request: all owner-only."""
    storage = reachable_folder / "data"
    _open_tree(storage)
    log = tmp_path / "bridge.log"
    with broker_at(tmp_path) as broker:
        config, port = write_config(tmp_path, broker, storage, CAMERA, token=False)
        base = f"http://127.0.0.1:{port}"
        with bridge(config, log, port):
            token = (storage / "api_token").read_text(encoding="utf-8").strip()
            auth = {"Authorization": f"Bearer {token}"}

            def online() -> bool:
                info = json.loads(request(f"{base}/api/info", headers=auth)[1])
                return bool(info["cameras"]["front_door"]["online"])

            wait_for("the camera to come online", online)
            status, _ = request(
                f"{base}/api/cameras/front_door/record", {"duration": 1}, headers=auth
            )
            assert status == 202
            clips = wait_for(
                "a clip",
                lambda: json.loads(request(f"{base}/api/clips", headers=auth)[1])["clips"],
            )
            now = datetime.now(UTC)
            share: dict[str, Any] = {
                "requester": "the police",
                "cameras": ["front_door"],
                "start": (now - timedelta(minutes=5)).isoformat(),
                "end": now.isoformat(),
                "reason": "a parcel went missing",
            }
            status, body = request(f"{base}/api/share-requests", share, headers=auth)
            assert status < 300, body
            modes = _modes(storage)
            clip = next(storage.rglob(f"{clips[0]['id']}.mp4"))
    text = log.read_text(encoding="utf-8", errors="replace")
    assert "tightened 3 folder(s) to 0700 and 2 file(s) to 0600" in text
    for made in (clip, clip.with_suffix(".jpg"), storage / "clips.db", storage / "api_token"):
        assert str(made.relative_to(storage)) in modes
    assert any(name.startswith("audit/") for name in modes), modes
    assert modes == _owner_only(modes)

    if os.geteuid() != 0 or shutil.which("runuser") is None:
        pytest.skip("reading as user nobody needs root and runuser")
    readable = reachable_folder / "public.txt"  # the control: nobody can read this one
    readable.write_text("hello", encoding="utf-8")
    readable.chmod(0o644)
    assert _as_nobody("cat", str(readable)).stdout == b"hello"
    refused = _as_nobody("cat", str(clip))
    assert refused.returncode != 0
    assert b"Permission denied" in refused.stderr
    assert _as_nobody("ls", str(storage)).returncode != 0


@pytest.mark.slow
def test_a_crash_on_a_full_disk_loses_no_recorded_frame(tmp_path: Path) -> None:
    """kill -9 while a real (tmpfs) disk is full, start on the full disk, then free it.

    The partial clips are kept through the start on the full disk, and once there
    is room every frame that reached the disk is in a listed, repaired clip.
    """
    log = tmp_path / "bridge.log"
    with small_disk(tmp_path, "4m") as disk, broker_at(tmp_path) as broker:
        storage = disk / "data"
        config, port = write_config(tmp_path, broker, storage, CAMERA)
        base = f"http://127.0.0.1:{port}"

        def listed() -> list[dict[str, Any]]:
            clips: list[dict[str, Any]] = json.loads(request(f"{base}/api/clips")[1])["clips"]
            return clips

        with bridge(config, log, port) as process:
            wait_for(
                "the camera to come online",
                lambda: json.loads(request(f"{base}/api/info")[1])["cameras"]["front_door"][
                    "online"
                ],
            )
            filler = fill(disk, leave=96 * 1024)
            assert request(f"{base}/api/cameras/front_door/record", {"duration": 120})[0] == 202
            wait_for(
                "the disk to fill up",
                lambda: "No space left on device" in log.read_text(errors="replace"),
            )
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
        partials = {p.name: decodable_frames(p) for p in storage.rglob("*.partial.mp4")}
        assert sum(partials.values()) > 0, partials

        # The disk is still full at the next start: nothing recorded may go.
        filler.unlink()
        filler = fill(disk, leave=48 * 1024)
        with bridge(config, log, port):
            wait_for(
                "the start-up reconciliation",
                lambda: "cannot be repaired now" in log.read_text(errors="replace"),
            )
            for name, frames in partials.items():
                if frames:
                    kept = next(storage.rglob(name))
                    assert decodable_frames(kept) == frames
        filler.unlink()  # space returns

        with bridge(config, log, port):
            clips = wait_for("the repaired clips", listed)
            wanted = {name.split(".")[0]: frames for name, frames in partials.items() if frames}
            repaired = {c["id"]: c for c in clips if c["id"] in wanted}
            assert set(repaired) == set(wanted), log.read_text(errors="replace")[-3000:]
            served = 0
            for clip_id, frames in wanted.items():
                status, video = request(f"{base}/api/clips/{clip_id}/video")
                assert status == 200
                saved = tmp_path / f"{clip_id}.mp4"
                saved.write_bytes(video)
                assert decodable_frames(saved) == frames
                served += frames
        left = list(storage.rglob("*.partial.mp4"))
        record(
            "full disk",
            partial_clips=len(wanted),
            frames_on_disk=sum(partials.values()),
            frames_in_clips=served,
            frames_deleted=sum(partials.values()) - served,
            partials_left=len(left),
        )
        assert not left
