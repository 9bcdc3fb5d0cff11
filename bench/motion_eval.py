"""Score the bridge's motion detector on the labelled views in ../shared/data/motion.

Runs the shared scoring tool (score.py, views.json) on
`doorstep_bridge.motion:create_for_scoring` (default settings, no per-sequence tuning)
at every frame and at every third frame, and prints its tables. Without the shared data
folder it says so and exits 0.

    .venv/bin/python bench/motion_eval.py [--stride 1 3] [--manifest views.json] [--json DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path
import subprocess
import sys

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "motion"
DETECTOR = "doorstep_bridge.motion:create_for_scoring"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DATA, help=f"data folder (default {DATA})")
    parser.add_argument("--manifest", default="views.json", help="views file in the data folder")
    parser.add_argument("--stride", type=int, nargs="+", default=[1, 3])
    parser.add_argument("--json", type=Path, default=None, help="write score.py JSON here")
    args = parser.parse_args()
    score = args.data / "score.py"
    manifest = args.data / args.manifest
    if not score.is_file() or not manifest.is_file():
        print(f"skipped: no labelled motion data at {args.data} (score.py + {args.manifest})")
        return 0
    status = 0
    for stride in args.stride:
        fed = "every frame" if stride == 1 else f"one frame in {stride}"
        print(f"\n##### stride {stride}: {fed} fed to the detector")
        cmd = [
            sys.executable,
            str(score),
            "--root",
            str(args.data),
            "--manifest",
            str(manifest),
            "--detector",
            DETECTOR,
            "--stride",
            str(stride),
        ]
        if args.json:
            args.json.mkdir(parents=True, exist_ok=True)
            cmd += ["--json", str(args.json / f"motion_stride{stride}.json")]
        status |= subprocess.run(cmd, check=False).returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
