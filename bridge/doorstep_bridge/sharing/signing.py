"""Signed exports: the bridge's Ed25519 key, export manifests, and their offline check.

Each rendered export gets a detached signature file, ``<export>.doorstep-sig.json``:
a manifest (the file's SHA-256 and size, the share, cameras, window, the redactions
applied, recipient, approver, approval time, link expiry and the audit record that
holds the file's hash), signed with the bridge's own Ed25519 key, and the public key.
:func:`verify_export` checks a file against it with nothing but the two files.

The key is made once, on the bridge's first start with this feature, and kept in the
storage folder (``0600``); it is never replaced silently: a key file that cannot be
read stops the start. Its fingerprint (``SHA256:`` and the base64 SHA-256 of the raw
public key, as OpenSSH prints them) is in the bridge info, so an owner can compare it
with what :func:`verify_export` reports.

Why a detached file and not C2PA: ``c2pa-python`` installs here, but it signs only with
an X.509 certificate chain (a bare key is refused), and C2PA validators report a chain
that a household bridge issued to itself as untrusted anyway; its native library adds
about 50 MB to the add-on image. A detached Ed25519 signature proves the same thing —
these bytes, this manifest, this key — and can be checked offline with one command.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
import hashlib
import json
import os
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from doorstep_bridge.exceptions import StorageError
from doorstep_bridge.files import atomic_write

#: The format name written into every signature file.
SIGNATURE_FORMAT = "doorstep-export-signature/1"
#: A signature file's name is the export's name plus this.
SIGNATURE_SUFFIX = ".doorstep-sig.json"
#: The key file's name in the shares folder.
KEY_FILE = "export-signing-key.pem"
#: Largest signature file :func:`verify_export` reads.
MAX_SIGNATURE_BYTES = 64 * 1024


class VerifyError(Exception):
    """A signature file that cannot be read or is not a Doorstep signature."""


def fingerprint(public_key: Ed25519PublicKey) -> str:
    """``SHA256:<base64>`` of the raw public key (as OpenSSH shows key fingerprints)."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    digest = base64.b64encode(hashlib.sha256(raw).digest()).decode().rstrip("=")
    return f"SHA256:{digest}"


def canonical(manifest: Mapping[str, Any]) -> bytes:
    """The bytes that are signed: the manifest as canonical JSON (sorted keys, no spaces)."""
    return json.dumps(
        manifest, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8")


class ExportSigner:
    """The bridge's export signing key.

    Args:
        key: The private key (:meth:`load_or_create` reads or makes it).
    """

    def __init__(self, key: Ed25519PrivateKey) -> None:
        self._key = key
        self.public_key = key.public_key()
        self.fingerprint = fingerprint(self.public_key)

    @classmethod
    def load_or_create(cls, path: Path) -> ExportSigner:
        """The key in ``path``, made (``0600``) when there is none yet.

        Raises:
            StorageError: The file exists but cannot be read or is not an Ed25519
                key, or it cannot be written. A broken key is never replaced on its
                own: exports signed with it would no longer match what the owner
                noted down.
        """
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            key = Ed25519PrivateKey.generate()
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(pem)
                    handle.flush()
                    os.fsync(handle.fileno())
            except OSError as err:
                raise StorageError(f"cannot write the export signing key {path}: {err}") from err
            return cls(key)
        except OSError as err:
            raise StorageError(f"cannot read the export signing key {path}: {err}") from err
        try:
            loaded = serialization.load_pem_private_key(data, password=None)
        except ValueError as err:
            raise StorageError(
                f"{path} is not a readable export signing key ({err}); move it away to make a "
                "new one (exports signed with the old key then no longer match its fingerprint)"
            ) from None
        if not isinstance(loaded, Ed25519PrivateKey):
            raise StorageError(f"{path} is not an Ed25519 key")
        return cls(loaded)

    def sign(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """The signature document of ``manifest`` (JSON-ready)."""
        signature = self._key.sign(canonical(manifest))
        raw = self.public_key.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        return {
            "format": SIGNATURE_FORMAT,
            "manifest": dict(manifest),
            "algorithm": "Ed25519",
            "public_key": base64.b64encode(raw).decode(),
            "key_fingerprint": self.fingerprint,
            "signature": base64.b64encode(signature).decode(),
        }

    def write(self, export: Path, manifest: Mapping[str, Any]) -> Path:
        """Sign ``manifest`` and write it next to ``export``; the signature file's path."""
        path = signature_path(export)
        document = json.dumps(self.sign(manifest), indent=2, sort_keys=True) + "\n"
        atomic_write(path, document.encode("utf-8"))
        return path


def signature_path(export: Path) -> Path:
    """Where the signature of ``export`` is kept: ``<export>.doorstep-sig.json``."""
    return export.with_name(export.name + SIGNATURE_SUFFIX)


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Verification:
    """What checking an export against its signature found.

    Attributes:
        ok: The signature is valid, the file is the one it names, and the manifest has
            the shape a bridge writes.
        problems: What failed, when something did.
        manifest: The signed manifest (read even when a check failed, to say what was claimed).
        key_fingerprint: Fingerprint of the key that signed it.
        signature_valid: The manifest is signed by that key.
        file_matches: The file's SHA-256 and size are the manifest's.
    """

    ok: bool
    problems: tuple[str, ...]
    manifest: Mapping[str, Any]
    key_fingerprint: str
    signature_valid: bool
    file_matches: bool


def _read_signature(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_SIGNATURE_BYTES + 1)
    except OSError as err:
        raise VerifyError(f"cannot read the signature file {path}: {err.strerror or err}") from None
    if len(data) > MAX_SIGNATURE_BYTES:
        raise VerifyError(f"{path} is too large to be a Doorstep signature")
    try:
        document = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise VerifyError(f"{path} is not JSON: not a Doorstep signature file") from None
    if not isinstance(document, dict) or document.get("format") != SIGNATURE_FORMAT:
        raise VerifyError(f"{path} is not a Doorstep signature ({SIGNATURE_FORMAT})")
    for key in ("manifest", "public_key", "signature"):
        if key not in document:
            raise VerifyError(f"{path}: the signature has no {key}")
    if not isinstance(document["manifest"], dict):
        raise VerifyError(f"{path}: the manifest is not a JSON object")
    return document


def verify_export(export: Path, signature: Path | None = None) -> Verification:
    """Check ``export`` against its signature file, offline.

    Args:
        export: The video file.
        signature: Its signature file (default: ``<export>.doorstep-sig.json``).

    Raises:
        VerifyError: The signature file is missing, unreadable or not a Doorstep signature.
        OSError: The export cannot be read.
    """
    document = _read_signature(signature or signature_path(export))
    manifest: dict[str, Any] = document["manifest"]
    problems: list[str] = []
    try:
        raw_key = base64.b64decode(str(document["public_key"]), validate=True)
        public_key = Ed25519PublicKey.from_public_bytes(raw_key)
        signature_bytes = base64.b64decode(str(document["signature"]), validate=True)
    except ValueError:
        raise VerifyError("the signature's key or signature is not valid base64 Ed25519") from None
    key_print = fingerprint(public_key)
    try:
        public_key.verify(signature_bytes, canonical(manifest))
        signature_valid = True
    except (InvalidSignature, ValueError, TypeError, RecursionError):
        signature_valid = False
        problems.append("the manifest's signature does not verify: the manifest was changed")
    file_info = manifest.get("file")
    claimed_hash = file_info.get("sha256") if isinstance(file_info, dict) else None
    claimed_size = file_info.get("size") if isinstance(file_info, dict) else None
    actual_size = export.stat().st_size
    actual_hash = file_sha256(export)
    file_matches = actual_hash == claimed_hash and actual_size == claimed_size
    if not file_matches:
        problems.append(
            f"the file does not match the manifest: SHA-256 {actual_hash}, {actual_size} bytes; "
            f"signed: {claimed_hash}, {claimed_size} bytes"
        )
    malformed = _shape_problems(manifest)
    problems.extend(malformed)
    return Verification(
        ok=signature_valid and file_matches and not malformed,
        problems=tuple(problems),
        manifest=manifest,
        key_fingerprint=key_print,
        signature_valid=signature_valid,
        file_matches=file_matches,
    )


#: Manifest fields a bridge writes as JSON objects, and as lists of names. One that is
#: missing is not a problem (older bridges wrote fewer).
_OBJECTS = ("file", "redactions", "legal")
_NAME_LISTS = ("cameras", "approvers")


def _shape_problems(manifest: Mapping[str, Any]) -> list[str]:
    """What in ``manifest`` is not shaped as a bridge writes it.

    A changed manifest fails its signature anyway; one signed with another key can hold
    anything, and is not VALID unless it reads as a bridge wrote it.
    """
    problems: list[str] = []

    def check(value: Any, name: str, *, names: bool = False) -> None:
        if value is None:
            return
        if names and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            problems.append(f"the manifest is malformed: {name} is not a list of names")
        elif not names and not isinstance(value, dict):
            problems.append(f"the manifest is malformed: {name} is not an object")

    for name in _OBJECTS:
        check(manifest.get(name), name)
    for name in _NAME_LISTS:
        check(manifest.get(name), name, names=True)
    redactions = manifest.get("redactions")
    if isinstance(redactions, dict):
        check(redactions.get("privacy_masks"), "redactions.privacy_masks")
    legal = manifest.get("legal")
    if isinstance(legal, dict):
        scope = legal.get("scope")
        check(scope, "legal.scope")
        if isinstance(scope, dict):
            check(scope.get("cameras"), "legal.scope.cameras", names=True)
    return problems


def describe(result: Verification) -> str:
    """What a verification proves, in a few lines for people."""
    manifest = result.manifest
    lines: list[str] = []
    if result.ok:
        # Anyone can sign with a key of their own: only the fingerprint ties it to a bridge.
        lines.append("VALID: this file is, byte for byte, the file the key below signed.")
    else:
        lines.append("NOT VALID:")
        lines.extend(f"  - {_shown(problem)}" for problem in result.problems)
        lines.append("The claims below are what the signature file says, not proven:")
    lines.append(f"Signed by key {result.key_fingerprint}")
    lines.append(
        "  (it is your bridge's export only if this is the fingerprint the bridge shows in"
        " Home Assistant; --fingerprint checks that)"
    )
    redactions = manifest.get("redactions")
    redactions = redactions if isinstance(redactions, dict) else {}
    file_info = manifest.get("file")
    file_info = file_info if isinstance(file_info, dict) else {}
    rows = [
        ("share", manifest.get("share_id")),
        ("file SHA-256", file_info.get("sha256")),
        ("cameras", _names(manifest.get("cameras"))),
        ("window", f"{_shown(manifest.get('start'))} to {_shown(manifest.get('end'))}"),
        ("recipient", manifest.get("recipient")),
        ("reason", manifest.get("reason")),
        ("kind", manifest.get("kind")),
        ("approved by", _names(manifest.get("approvers"))),
        ("approved at", manifest.get("approved_at")),
        ("link expires", manifest.get("link_expires")),
        ("privacy masks", _masks(redactions.get("privacy_masks"))),
        ("faces", "blurred" if redactions.get("faces_blurred") is True else "NOT blurred"),
        ("audit record", manifest.get("audit_seq")),
        ("signed at", manifest.get("signed_at")),
    ]
    legal = manifest.get("legal")
    if isinstance(legal, dict):
        scope = legal.get("scope")
        scope = scope if isinstance(scope, dict) else {}
        rows.extend(
            [
                ("authority", legal.get("authority")),
                ("reference", legal.get("reference")),
                ("legal basis", legal.get("legal_basis")),
                ("scope", _scope(scope)),
            ]
        )
    lines.extend(f"  {name + ':':<16}{_shown(value)}" for name, value in rows if value is not None)
    return "\n".join(lines)


def _shown(value: Any) -> str:
    """``value`` as one line of plain text, whatever a forged manifest put there.

    Control characters (a terminal's escape sequences could rewrite the lines above),
    lone surrogates (which cannot be printed as UTF-8) and other invisible characters are
    written as escapes; anything but text is written as JSON.
    """
    try:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    except RecursionError:  # nested as deep as the parser allows, and one level more
        text = "(nested too deeply to show)"
    return "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text)


def _names(value: Any) -> Any:
    """A list of names as ``a, b``; anything else as it is (None: not shown)."""
    if isinstance(value, list) and value and all(isinstance(name, str) for name in value):
        return ", ".join(value)
    return value or None


def _scope(scope: Mapping[str, Any]) -> str:
    cameras = _shown(_names(scope.get("cameras")) or "")
    return f"{cameras}, {_shown(scope.get('start'))} to {_shown(scope.get('end'))}"


def _masks(masks: Any) -> str | None:
    if not isinstance(masks, dict):
        return None
    if not masks:
        return "none configured"
    return ", ".join(f"{camera}: {_shown(count)} filled" for camera, count in sorted(masks.items()))
