"""Every module of the integration covered above a floor, by the HA lanes together.

HA's ``test-coverage`` quality rule asks more than 95 % for *each* module, not the
total. A version branch (compat code) runs on one lane only, so the data of every lane
that ran is combined first: each line counts when some supported HA version runs it.

    python -m tests.support.coverage_check DATA_DIR [--fail-under 95]

``DATA_DIR`` holds one ``.coverage.<lane>`` file per lane (``COVERAGE_FILE``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
import sys

from coverage import Coverage

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "custom_components" / "doorstep"


def per_module(data_dir: Path) -> dict[str, tuple[int, int]]:
    """Statements and covered statements of each integration module, lanes combined."""
    lanes = sorted(str(path) for path in data_dir.glob(".coverage.*"))
    if not lanes:
        raise SystemExit(f"coverage_check: no .coverage.* files in {data_dir}")
    cov = Coverage(data_file=str(data_dir / ".coverage"), source=[str(PACKAGE)])
    cov.combine(lanes, keep=True)
    cov.load()
    results: dict[str, tuple[int, int]] = {}
    for path in sorted(PACKAGE.glob("*.py")):
        _name, statements, _excluded, missing, _text = cov.analysis2(str(path))
        results[path.name] = (len(statements), len(statements) - len(missing))
    return results


def main() -> int:
    """Print each module's coverage; exit 1 when one is under the floor."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data_dir", type=Path)
    parser.add_argument("--fail-under", type=float, default=95.0)
    args = parser.parse_args()
    lanes = ", ".join(
        path.name.removeprefix(".coverage.") for path in sorted(args.data_dir.glob(".coverage.*"))
    )
    print(f"coverage per module, lanes combined: {lanes}")
    low = []
    for name, (statements, covered) in per_module(args.data_dir).items():
        percent = 100.0 * covered / statements if statements else 100.0
        flag = "" if percent >= args.fail_under else f"  < {args.fail_under:g} %"
        print(f"  {name:<22} {covered:>4}/{statements:<4} {percent:6.1f} %{flag}")
        if flag:
            low.append(name)
    if low:
        print(f"coverage_check: under {args.fail_under:g} %: {', '.join(low)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
