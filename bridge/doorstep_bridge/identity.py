"""The bridge's persistent identity: its id and its API token, kept in the storage folder."""

from __future__ import annotations

import os
from pathlib import Path
import secrets

from doorstep_bridge.exceptions import StorageError

BRIDGE_ID_FILE = "bridge_id"
API_TOKEN_FILE = "api_token"  # noqa: S105 - a file name, not a secret


def _read_or_create(path: Path, make: str, mode: int) -> str:
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        value = ""
    except OSError as err:
        raise StorageError(f"cannot read {path}: {err}") from err
    if value:
        return value
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(make + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        tmp.replace(path)
    except OSError as err:
        raise StorageError(f"cannot write {path}: {err}") from err
    return make


def ensure_storage(path: Path) -> None:
    """Create the storage folder (owner-only) if needed."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as err:
        raise StorageError(f"cannot create storage folder {path}: {err}") from err


def bridge_id(storage: Path) -> str:
    """The bridge's stable id, generated on first start."""
    return _read_or_create(storage / BRIDGE_ID_FILE, secrets.token_hex(8), 0o644)


def api_token(storage: Path, configured: str | None) -> str:
    """The API token: from the config, else generated on first start (file mode 0600)."""
    if configured:
        return configured
    path = storage / API_TOKEN_FILE
    token = _read_or_create(path, secrets.token_urlsafe(32), 0o600)
    # An older or hand-made file may be too open: the token guards the footage.
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return token
