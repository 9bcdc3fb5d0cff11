"""The bridge's persistent identity, kept in the storage folder, and its hold on that folder.

Its id, its API token and the random part of its MQTT client id; and the lock that
keeps a second bridge off the folder while one runs.

The storage folder holds footage: it is kept owner-only, folders 0700 and files
0600, whatever created them (the command line also sets a ``077`` umask).
"""

from __future__ import annotations

import fcntl
import logging
import os
from pathlib import Path
import secrets
import stat

from doorstep_bridge.exceptions import StorageError

_LOGGER = logging.getLogger(__name__)

BRIDGE_ID_FILE = "bridge_id"
#: Permission bits other users must not have on anything in the storage folder.
_OTHERS = stat.S_IRWXG | stat.S_IRWXO
API_TOKEN_FILE = "api_token"  # noqa: S105 - a file name, not a secret
#: The shortest API token accepted, in the config (http.token) and in the file alike.
MIN_TOKEN_LENGTH = 16
#: The random part of the MQTT client id. No camera can have this name (a hyphen):
#: cameras get a folder each in the storage folder.
MQTT_CLIENT_KEY_FILE = "mqtt-client-key"
#: Locked by the running bridge. A dot: no camera folder, and the clip store only
#: looks into camera folders, so it is never swept, adopted or counted.
LOCK_FILE = ".lock"


def lock_storage(path: Path) -> int | None:
    """Hold the storage folder for this process alone, until it closes the lock or exits.

    A second bridge started on the folder would take the clip the first is
    recording for one cut off by a crash, finish it and delete its file.
    The lock goes with the process (``flock``): a crash or ``kill -9`` never
    leaves a stale one. Its descriptor is not inherited (PEP 446), so a child
    process left behind does not hold it either.

    Returns:
        The lock file's descriptor, to close at shutdown; None when the file
        system cannot lock (then nothing keeps a second bridge off, as before).

    Raises:
        StorageError: Another bridge holds the folder, or the folder or its lock
            file cannot be created.
    """
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as err:
        raise StorageError(f"cannot create storage folder {path}: {err}") from err
    try:
        fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as err:
        raise StorageError(f"cannot open {path / LOCK_FILE}: {err.strerror}") from err
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise StorageError(
            f"Cannot start: another doorstep-bridge is already using the storage folder {path}"
            " (storage.path): stop it first (installed twice, e.g. as a service and in a"
            " container, or started by hand while the service runs?)"
        ) from None
    except OSError as err:
        os.close(fd)
        # Some network file systems cannot lock: starting without it beats not starting.
        _LOGGER.warning(
            "Cannot lock the storage folder %s (%s): make sure no other bridge uses it",
            path,
            err.strerror,
        )
        return None
    return fd


#: What to do about each file when it is not UTF-8 text, and what deleting it costs.
_NOT_TEXT_ADVICE = {
    BRIDGE_ID_FILE: (
        "save it again as UTF-8; deleting it gives the bridge a new id: Home Assistant then"
        " makes new devices and entities for it, and share links already sent stop working"
    ),
    API_TOKEN_FILE: (
        "save it again as UTF-8, or delete it to have a new token made"
        " (Home Assistant then asks for it)"
    ),
    MQTT_CLIENT_KEY_FILE: (
        "delete it to have a new one made (the bridge then has a new MQTT client id; presses"
        " the broker kept for the old one while the bridge was stopped are not delivered)"
    ),
}


def _read_or_create(path: Path, make: str, mode: int) -> tuple[str, bool]:
    """The value kept in ``path``, or ``make`` written there; and whether it was written."""
    try:
        # utf-8-sig: Notepad's "UTF-8 with BOM" would otherwise put U+FEFF in the value.
        value = path.read_text(encoding="utf-8-sig").strip()
    except FileNotFoundError:
        value = ""
    except UnicodeDecodeError:
        # Saved as UTF-16 by a Windows editor over a share, say.
        advice = _NOT_TEXT_ADVICE.get(path.name, "delete it to have a new one made")
        raise StorageError(f"{path} is not UTF-8 text: {advice}") from None
    except OSError as err:
        raise StorageError(f"cannot read {path}: {err}") from err
    if value:
        return value, False
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
    return make, True


def ensure_storage(path: Path) -> None:
    """Create the storage folder (owner-only) if needed, and tighten what is already there.

    Raises:
        StorageError: The folder cannot be created.
    """
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as err:
        raise StorageError(f"cannot create storage folder {path}: {err}") from err
    tighten_storage(path)


def tighten_storage(root: Path) -> tuple[int, int]:
    """Take group and other permissions off every folder and file under ``root``.

    An existing folder may be open to other users (``useradd --create-home`` makes
    home folders 0755 on Debian; an older bridge made clips 0644). Symbolic links
    are left alone. Logs one line when something had to be tightened, one when
    something could not be.

    Returns:
        How many folders and files were tightened.
    """
    folders = files = 0
    failed: list[str] = []

    def tighten(entry: Path, mode: int) -> bool:
        if not mode & _OTHERS:
            return False
        try:
            entry.chmod(stat.S_IMODE(mode) & ~_OTHERS)
        except OSError as err:
            failed.append(f"{entry}: {err.strerror}")
            return False
        return True

    try:
        folders += tighten(root, root.stat().st_mode)
    except OSError as err:
        failed.append(f"{root}: {err.strerror}")
    for folder, subfolders, names in os.walk(root, onerror=lambda err: failed.append(str(err))):
        for name in [*subfolders, *names]:
            entry = Path(folder, name)
            try:
                mode = entry.lstat().st_mode
            except OSError:
                continue  # gone meanwhile
            if stat.S_ISDIR(mode):
                folders += tighten(entry, mode)
            elif stat.S_ISREG(mode):
                files += tighten(entry, mode)
    if folders or files:
        _LOGGER.warning(
            "Storage folder %s was open to other users: tightened %d folder(s) to 0700"
            " and %d file(s) to 0600",
            root,
            folders,
            files,
        )
    if failed:
        _LOGGER.error(
            "Cannot make %d item(s) in the storage folder owner-only (first: %s)",
            len(failed),
            failed[0],
        )
    return folders, files


def bridge_id(storage: Path) -> tuple[str, bool]:
    """The bridge's stable id, generated on first start; and whether it was generated now."""
    return _read_or_create(storage / BRIDGE_ID_FILE, secrets.token_hex(8), 0o600)


def api_token(storage: Path, configured: str | None) -> str:
    """The API token: from the config, else generated on first start (file mode 0600)."""
    if configured:
        return configured
    path = storage / API_TOKEN_FILE
    token, created = _read_or_create(path, secrets.token_urlsafe(32), 0o600)
    if len(token) < MIN_TOKEN_LENGTH:
        # A hand-written token: refused, not replaced, as Home Assistant has it. The
        # message never holds the token itself.
        raise StorageError(
            f"{path} holds an API token of {len(token)} characters; it needs at least"
            f" {MIN_TOKEN_LENGTH}, as http.token does: write a longer one there (and give it"
            " to Home Assistant), or delete the file to have a new one made"
            " (Home Assistant then asks for it)"
        )
    if created:
        # Never the token itself: logs travel further than the storage folder.
        _LOGGER.info(
            "Generated the API token in %s: Home Assistant asks for it once (or set "
            "http.token in the config; in the add-on, its api_token option)",
            path,
        )
    # An older or hand-made file may be too open: the token guards the footage.
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    return token


def mqtt_client_id(storage: Path, bridge: str, *, new_bridge: bool) -> tuple[str, str | None]:
    """The default MQTT client id, and on its first start the one the bridge used before.

    The bridge id is published (discovery, bridge info): a client id made of it alone
    let any client of the broker take over the bridge's persistent session, and with
    it the doorbell's presses, by connecting under it. A random part, generated once
    and kept owner-only like the API token, makes the id unguessable and keeps the
    session across restarts.

    Args:
        storage: The storage folder.
        bridge: The bridge id.
        new_bridge: The bridge id was generated at this start: no earlier version of
            the bridge ever connected, so there is no session of its to end.

    Returns:
        ``doorstep-<bridge id>-<random part>``, and ``doorstep-<bridge id>`` when the
        random part was generated now for a bridge that ran before (whose session the
        bridge then ends), else None.
    """
    path = storage / MQTT_CLIENT_KEY_FILE
    key, created = _read_or_create(path, secrets.token_hex(16), 0o600)
    # An older or hand-made file may be too open: the id guards the doorbell's session.
    if path.stat().st_mode & 0o077:
        path.chmod(0o600)
    earlier = f"doorstep-{bridge}"
    return f"{earlier}-{key}", earlier if created and not new_bridge else None
