"""Signed exports: the key, the manifest of a real export, and the offline check."""

from __future__ import annotations

import json
from pathlib import Path
import stat

import pytest

from doorstep_bridge.__main__ import main
from doorstep_bridge.exceptions import StorageError
from doorstep_bridge.sharing.audit import verify
from doorstep_bridge.sharing.signing import (
    KEY_FILE,
    SIGNATURE_SUFFIX,
    ExportSigner,
    VerifyError,
    describe,
    file_sha256,
    signature_path,
    verify_export,
)

from .conftest import Harness


async def _ready_export(harness: Harness, **decision: object) -> tuple[dict[str, object], Path]:
    share = (
        await harness.service.create_request(
            harness.request(cameras=["front_door", "back_yard"]), "http"
        )
    ).payload()
    await harness.service.decide(share["id"], "approve", "Owner Ann", "phone", True, **decision)
    ready = await harness.wait_state(share["id"], "ready", "failed", "empty")
    assert ready["state"] == "ready", ready
    token = ready["link"].removeprefix("/share/")
    download = await harness.service.download(token, "192.0.2.50", "curl/8")
    return ready, download.path


def test_the_key_is_made_once_owner_only(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE
    first = ExportSigner.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = ExportSigner.load_or_create(path)
    assert again.fingerprint == first.fingerprint
    assert first.fingerprint.startswith("SHA256:")
    assert len(first.fingerprint) == len("SHA256:") + 43


def test_a_broken_key_stops_rather_than_being_replaced(tmp_path: Path) -> None:
    path = tmp_path / KEY_FILE
    path.write_bytes(b"not a key")
    with pytest.raises(StorageError, match="not a readable export signing key"):
        ExportSigner.load_or_create(path)
    assert path.read_bytes() == b"not a key"
    rsa = tmp_path / "rsa.pem"
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa as rsa_keys

    key = rsa_keys.generate_private_key(public_exponent=65537, key_size=1024)
    rsa.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    with pytest.raises(StorageError, match="not an Ed25519 key"):
        ExportSigner.load_or_create(rsa)
    with pytest.raises(StorageError, match="cannot write"):
        ExportSigner.load_or_create(tmp_path / "missing-folder" / KEY_FILE)
    (tmp_path / "folder.pem").mkdir()
    with pytest.raises(StorageError, match="cannot read"):
        ExportSigner.load_or_create(tmp_path / "folder.pem")


async def test_a_ready_export_is_signed_and_verifies(harness: Harness) -> None:
    ready, export = await _ready_export(harness)
    sig = signature_path(export)
    assert sig.name == export.name + SIGNATURE_SUFFIX
    assert stat.S_IMODE(sig.stat().st_mode) == 0o600
    result = verify_export(export)
    assert result.ok, result.problems
    manifest = result.manifest
    render = next(r for r in harness.audit.records() if r["kind"] == "render")
    assert manifest["file"] == {
        "name": f"doorstep-{ready['id']}.mp4",
        "sha256": render["sha256"],
        "size": export.stat().st_size,
    }
    assert manifest["audit_seq"] == render["seq"]
    assert manifest["share_id"] == ready["id"]
    assert manifest["cameras"] == ["front_door", "back_yard"]
    assert manifest["start"] == ready["start"]
    assert manifest["end"] == ready["end"]
    assert manifest["recipient"] == "Neighbour Alice"
    assert manifest["approver"] == "Owner Ann"
    assert manifest["approved_via"] == "phone"
    assert manifest["approved_at"] == ready["decision"]["at"]
    assert manifest["link_expires"] == ready["link_expires"]
    assert manifest["redactions"]["privacy_masks"] == {"front_door": 1, "back_yard": 0}
    assert manifest["redactions"]["faces_blurred"] is True
    assert result.key_fingerprint == harness.service.signing_fingerprint
    signed = next(r for r in harness.audit.records() if r["kind"] == "signed")
    assert signed["key"] == harness.service.signing_fingerprint
    assert signed["audit_seq"] == render["seq"]
    assert verify(harness.audit.path).ok
    text = describe(result)
    assert text.startswith("VALID")
    assert "front_door: 1 filled" in text
    assert "Owner Ann" in text


async def test_one_changed_byte_or_a_changed_manifest_fails(
    harness: Harness, tmp_path: Path
) -> None:
    _ready, export = await _ready_export(harness)
    copy = tmp_path / "copy.mp4"
    data = bytearray(export.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    result = verify_export(copy, signature_path(export))
    assert not result.ok
    assert result.signature_valid
    assert not result.file_matches
    assert "does not match the manifest" in result.problems[0]
    assert describe(result).startswith("NOT VALID")

    # The recipient's name changed in the signature file: the signature no longer holds.
    document = json.loads(signature_path(export).read_text())
    document["manifest"]["recipient"] = "Someone else"
    forged = tmp_path / "forged.json"
    forged.write_text(json.dumps(document))
    result = verify_export(export, forged)
    assert result.file_matches
    assert not result.signature_valid
    assert not result.ok


async def test_the_command_line_proves_and_refuses(
    harness: Harness, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _ready, export = await _ready_export(harness)
    assert main(["verify-export", str(export)]) == 0
    out = capsys.readouterr().out
    assert "VALID: this file is, byte for byte, the file the key below signed." in out
    assert "this is the export that bridge signed" not in out  # no key was expected
    assert harness.service.signing_fingerprint in out
    key = harness.service.signing_fingerprint
    assert key is not None
    assert main(["verify-export", str(export), "--fingerprint", key]) == 0
    assert "this is the export that bridge signed" in capsys.readouterr().out
    assert main(["verify-export", str(export), "--fingerprint", "SHA256:other"]) == 1
    out = capsys.readouterr().out
    assert "NOT the expected key" in out
    assert "this is the export that bridge signed" not in out

    copy = tmp_path / "changed.mp4"
    data = bytearray(export.read_bytes())
    data[-1] ^= 0xFF
    copy.write_bytes(bytes(data))
    assert main(["verify-export", str(copy), str(signature_path(export))]) == 1
    assert "NOT VALID" in capsys.readouterr().out

    assert main(["verify-export", str(copy)]) == 2
    assert "cannot verify" in capsys.readouterr().err
    assert main(["verify-export", str(tmp_path / "nothing.mp4"), str(signature_path(export))]) == 2
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"[]", "not a Doorstep signature"),
        (b'{"format": "doorstep-export-signature/1"}', "has no manifest"),
        (
            b'{"format": "doorstep-export-signature/1", "manifest": [], "public_key": "", "signature": ""}',
            "not a JSON object",
        ),
        (
            b'{"format": "doorstep-export-signature/1", "manifest": {}, "public_key": "!!", "signature": ""}',
            "not valid base64",
        ),
        (b"{" + b" " * 70_000 + b"}", "too large"),
    ],
)
def test_bad_signature_files_are_refused(tmp_path: Path, content: bytes, message: str) -> None:
    export = tmp_path / "x.mp4"
    export.write_bytes(b"video")
    sig = tmp_path / "x.json"
    sig.write_bytes(content)
    with pytest.raises(VerifyError, match=message):
        verify_export(export, sig)


def _signed_export(tmp_path: Path, **changes: object) -> tuple[Path, Path, dict[str, object]]:
    """A small export signed with a manifest shaped as a bridge writes it, then `changes`.

    Returns:
        The export, its signature file (the manifest changed after signing), and the
        manifest with `changes` (to sign it again with a key of one's own).
    """
    export = tmp_path / "doorstep-s_ABCDEFGHJK.mp4"
    export.write_bytes(b"the redacted video")
    manifest: dict[str, object] = {
        "file": {"name": export.name, "sha256": file_sha256(export), "size": 18},
        "share_id": "s_ABCDEFGHJK",
        "cameras": ["front_door"],
        "start": "2026-11-23T10:00:00.000+00:00",
        "end": "2026-11-23T10:20:00.000+00:00",
        "reason": "Parcel went missing",
        "recipient": "Neighbour Alice",
        "approver": "Ann",
        "approvers": ["Ann"],
        "redactions": {"privacy_masks": {"front_door": 2}, "faces_blurred": True},
        "audit_seq": 412,
        "kind": "legal",
        "legal": {"authority": "Police", "scope": {"cameras": ["front_door"]}},
    }
    signer = ExportSigner.load_or_create(tmp_path / KEY_FILE)
    sig = signer.write(export, manifest)
    document = json.loads(sig.read_text())
    document["manifest"].update(changes)
    sig.write_text(json.dumps(document))
    return export, sig, {**manifest, **changes}


@pytest.mark.parametrize("own_key", [False, True], ids=["tampered", "signed-by-another-key"])
@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"cameras": 5}, "cameras is not a list of names"),
        ({"cameras": "front_door"}, "cameras is not a list of names"),
        ({"approvers": 7}, "approvers is not a list of names"),
        ({"approvers": {"Ann": True}}, "approvers is not a list of names"),
        ({"legal": {"scope": {"cameras": 3}}}, "legal.scope.cameras is not a list of names"),
        ({"legal": {"scope": "everything"}}, "legal.scope is not an object"),
        ({"legal": "court order"}, "legal is not an object"),
        ({"redactions": {"privacy_masks": 2}}, "redactions.privacy_masks is not an object"),
        ({"redactions": ["masks"]}, "redactions is not an object"),
        ({"file": "video.mp4"}, "file is not an object"),
    ],
)
def test_a_manifest_of_the_wrong_shape_is_not_valid_and_says_why(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    changes: dict[str, object],
    problem: str,
    own_key: bool,
) -> None:
    # Before, describing such a manifest raised a TypeError: a traceback, no verdict.
    export, sig, changed = _signed_export(tmp_path, **changes)
    if own_key:
        (tmp_path / KEY_FILE).unlink()
        sig = ExportSigner.load_or_create(tmp_path / KEY_FILE).write(export, changed)
    assert main(["verify-export", str(export), str(sig)]) == 1
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = captured.out.splitlines()
    assert lines[0] == "NOT VALID:"
    assert f"  - the manifest is malformed: {problem}" in lines
    assert (
        "  - the manifest's signature does not verify: the manifest was changed" in lines
    ) != own_key


def test_what_a_manifest_says_cannot_rewrite_the_verdict_on_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # An escape sequence moving the cursor up and clearing the line, then a verdict of its
    # own; and a lone surrogate, which cannot be printed as UTF-8 at all.
    export, sig, _manifest = _signed_export(
        tmp_path, recipient="\x1b[2A\x1b[2KVALID", reason="\ud800 \u202e"
    )
    assert main(["verify-export", str(export), str(sig)]) == 1
    out = capsys.readouterr().out
    assert out.startswith("NOT VALID:")
    assert "\x1b" not in out
    assert "  recipient:      \\x1b[2A\\x1b[2KVALID\n" in out
    assert "  reason:         \\ud800 \\u202e\n" in out
    out.encode("utf-8")  # printable as it is


async def test_purge_removes_the_signature_with_the_export(harness: Harness) -> None:
    ready, export = await _ready_export(harness)
    sig = signature_path(export)
    assert sig.exists()
    await harness.service.decide(ready["id"], "revoke", "Owner Ann", "ui")
    assert not export.exists()
    assert not sig.exists()


async def test_a_leftover_signature_is_purged_at_start(harness: Harness) -> None:
    folder = harness.config.storage.path / "shares"
    leftover = folder / ("s_LEFTOVERAA.mp4" + SIGNATURE_SUFFIX)
    leftover.write_text("{}")
    ready, export = await _ready_export(harness)
    await harness.restart()
    assert not leftover.exists()
    assert export.exists()
    assert signature_path(export).exists()
    assert ready["state"] == "ready"


async def test_an_export_that_cannot_be_signed_is_not_released(harness: Harness) -> None:
    share = (await harness.service.create_request(harness.request(), "http")).payload()
    folder = harness.config.storage.path / "shares"
    # A folder where the signature must go: writing it fails as a full disk would.
    (folder / f"{share['id']}.mp4{SIGNATURE_SUFFIX}").mkdir()
    await harness.service.decide(share["id"], "approve", "Owner Ann", "phone", True)
    failed = await harness.wait_state(share["id"], "ready", "failed", "empty")
    assert failed["state"] == "failed"
    assert failed["error"].startswith("the export cannot be signed")
    assert failed["link"] is None
    assert not (folder / f"{share['id']}.mp4").exists()
    renders = [r for r in harness.audit.records() if r["kind"] == "render"]
    assert [r["result"] for r in renders] == ["ready", "failed"]
    assert "purge" in harness.kinds()
