"""The wheel and sdist: built with ``python -m build``, installed in a clean venv, run.

The build runs on a copy of what the container image's Dockerfile copies (pyproject.toml,
README.md, LICENSE, bridge/), so the image builds from the same files.
"""

from __future__ import annotations

from pathlib import Path
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile

import pytest

from doorstep_bridge import __version__

ROOT = Path(__file__).resolve().parents[2]
FENCE = re.compile(r"^```yaml\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _run(*command: str | Path, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel and sdist of a copy of the checkout."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "bridge",
        source / "bridge",
        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
    )
    out = tmp_path_factory.mktemp("dist")
    result = _run(sys.executable, "-m", "build", "--outdir", out, source)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out


@pytest.mark.slow
def test_build_gives_a_wheel_and_an_sdist(dist: Path) -> None:
    wheel = dist / f"doorstep_bridge-{__version__}-py3-none-any.whl"
    sdist = dist / f"doorstep_bridge-{__version__}.tar.gz"
    assert sorted(p.name for p in dist.iterdir()) == sorted([wheel.name, sdist.name])
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(
            f"doorstep_bridge-{__version__}.dist-info/entry_points.txt"
        ).decode()
        metadata = archive.read(f"doorstep_bridge-{__version__}.dist-info/METADATA").decode()
    assert {"doorstep_bridge/__main__.py", "doorstep_bridge/addon.py"} <= names
    assert "doorstep_bridge/py.typed" in names
    assert not [name for name in names if name.startswith(("tests/", "custom_components/"))]
    assert "doorstep-bridge = doorstep_bridge.__main__:main" in entry_points
    assert f"Version: {__version__}\n" in metadata
    with tarfile.open(sdist) as archive:
        assert (
            f"doorstep_bridge-{__version__}/bridge/doorstep_bridge/__init__.py"
            in archive.getnames()
        )


def _documented_examples(tmp_path: Path) -> list[Path]:
    examples = []
    for document in ("installation.md", "configuration.md"):
        text = (ROOT / "docs" / document).read_text(encoding="utf-8")
        for index, block in enumerate(FENCE.findall(text)):
            path = tmp_path / f"{Path(document).stem}-{index}.yaml"
            path.write_text(block, encoding="utf-8")
            examples.append(path)
    return examples


@pytest.mark.slow
def test_wheel_installs_in_a_clean_venv_and_runs(dist: Path, tmp_path: Path) -> None:
    python = Path(sys.base_prefix) / "bin" / "python3"
    venv = tmp_path / "venv"
    result = _run(python, "-m", "venv", venv)
    assert result.returncode == 0, result.stderr
    wheel = dist / f"doorstep_bridge-{__version__}-py3-none-any.whl"
    result = _run(venv / "bin" / "python", "-m", "pip", "install", "--quiet", wheel)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    bridge = venv / "bin" / "doorstep-bridge"

    result = _run(bridge, "--version")
    assert (result.returncode, result.stdout) == (0, f"doorstep-bridge {__version__}\n")

    examples = _documented_examples(tmp_path)
    assert len(examples) >= 2, "docs/installation.md and docs/configuration.md have examples"
    for example in examples:
        result = _run(bridge, "check", "--config", example)
        assert result.returncode == 0, f"{example.name}: {result.stderr}"
        assert "valid" in result.stdout

    broken = tmp_path / "broken.yaml"
    broken.write_text("cameras:\n  front_door:\n    source: demo://\n    record: {pre_roll: x}\n")
    result = _run(bridge, "check", "--config", broken)
    assert result.returncode == 2
    assert result.stderr.startswith("cameras.front_door.record.pre_roll: ")
