"""Soak: the attack and fault suite at full length, with one summary row per attack.

Runs ``pytest tests/security`` (the HTTP and MQTT fuzz, descriptor exhaustion, broker
restarts, kill -9 during recording/render/audit, a full disk, audit tampering, and the
rest of the attack tests) with ``DOORSTEP_SOAK=1``, so each attack runs its long
version, and reads the figures the tests record (``tests/security/soak.py``). Each row
is judged against the bars of the hardening issue:

* HTTP fuzz over every route: >= 10,000 requests, 0 x 5xx, 0 secrets in the log
* MQTT fuzz: >= 10,000 messages, 0 tracebacks, the doorbell still rings
* descriptor exhaustion at 1,024: API, ring and recording go on
* broker restarts: >= 20, 0 presses lost
* kill -9 during recording, render and audit: 0 broken clips listed, audit verifies
* full disk: no recorded frame deleted
* audit tampering: every named case caught (and every random byte flip)

A row whose test failed after recording its figures fails too; so does an attack that
recorded nothing. Exits 1 when any row fails. Takes a few minutes (3 on 2 shared cores).

Usage: ``.venv/bin/python bench/soak.py [--keep FOLDER]`` (``--keep`` leaves the
figures and the JUnit report there).
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
import json
import os
from pathlib import Path
import resource
import subprocess
import sys
import tempfile
import time
from typing import Any
import xml.etree.ElementTree as ET

ROOT = Path(__file__).resolve().parent.parent

type Figures = list[dict[str, Any]]


@dataclass(frozen=True)
class Row:
    """One line of the table: what ran, what it counted, whether it met its bar."""

    attack: str
    ran: str
    counts: str
    passed: bool
    why: str = ""


def _n(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _latest(figures: Figures) -> dict[str, Any]:
    """The last figures recorded for an attack (a rerun replaces an earlier one)."""
    return figures[-1]


def _http(figures: Figures) -> tuple[str, str, list[str]]:
    f = _latest(figures)
    fails = []
    if f["requests"] < 10_000:
        fails.append("fewer than 10,000 requests")
    if f["server_errors"] or f["no_answer"] or f["not_json"]:
        fails.append("a 5xx, a silence or a non-JSON error")
    if f["secrets_in_log"] or f["tracebacks"]:
        fails.append("a secret or a traceback in the log")
    return (
        f"{_n(f['requests'])} requests, {f['routes']} routes",
        (
            f"{f['server_errors']} x 5xx, {f['secrets_in_log']} secrets in log, "
            f"{f['tracebacks']} tracebacks, {f['log_lines']} log lines"
        ),
        fails,
    )


def _mqtt(figures: Figures) -> tuple[str, str, list[str]]:
    f = _latest(figures)
    fails = []
    if f["messages"] < 10_000:
        fails.append("fewer than 10,000 messages")
    if f["tracebacks"] or f["logging_errors"]:
        fails.append("a traceback in the log")
    if not f["rang_afterwards"]:
        fails.append("the doorbell did not ring afterwards")
    rang = "yes" if f["rang_afterwards"] else "no"
    return (
        f"{_n(f['messages'])} messages",
        f"{f['tracebacks']} tracebacks, {f['log_lines']} log lines, rang afterwards: {rang}",
        fails,
    )


def _descriptors(figures: Figures) -> tuple[str, str, list[str]]:
    f = _latest(figures)
    fails = []
    if f["limit"] > 1024 or f["idle_sockets"] < 1000:
        fails.append("not at the 1,024 limit")
    if f["api_status"] != 200 or not f["rang"] or f["clips_recorded"] < 1:
        fails.append("the API, the ring or recording stopped")
    if f["too_many_open_files"] or f["tracebacks"]:
        fails.append("'Too many open files' or a traceback in the log")
    return (
        f"{_n(f['idle_sockets'])} idle sockets at {_n(f['limit'])} descriptors",
        (
            f"API {f['api_status']}, rang: {'yes' if f['rang'] else 'no'}, "
            f"{f['clips_recorded']} clip recorded, {f['too_many_open_files']} x EMFILE"
        ),
        fails,
    )


def _broker(figures: Figures) -> tuple[str, str, list[str]]:
    f = _latest(figures)
    fails = []
    if f["restarts"] < 20:
        fails.append("fewer than 20 restarts")
    if f["presses_lost"] or not f["in_order"] or f["published_twice"]:
        fails.append("a press lost, doubled or out of order")
    return (
        (
            f"{f['restarts']} restarts, {f['presses']} presses "
            f"({f['presses_http']} HTTP, {f['presses_mqtt']} MQTT)"
        ),
        (
            f"{f['presses_lost']} lost, in order: {'yes' if f['in_order'] else 'no'}, "
            f"{f['published_twice']} published twice, "
            f"{f['redelivered_dup']} QoS 1 redeliveries (DUP)"
        ),
        fails,
    )


def _kill(figures: Figures) -> tuple[str, str, list[str]]:
    f = _latest(figures)
    fails = []
    if f["broken_clips_listed"] or f["partial_clips_listed"]:
        fails.append("a broken or partial clip listed")
    if f["audit_verified"] != f["audit_checks"]:
        fails.append("audit verify failed")
    if f["shares_stuck"]:
        fails.append("a share stuck")
    moments = ", ".join(f["moments"])
    states = ", ".join(f["share_states"])
    return (
        f"{f['kills']} kills ({moments})",
        (
            f"{f['broken_clips_listed']} broken of {f['clips_listed']} clips listed, "
            f"audit verified {f['audit_verified']}/{f['audit_checks']} "
            f"({f['crash_window_reports']} crash-window reports), shares: {states}"
        ),
        fails,
    )


def _disk(figures: Figures) -> tuple[str, str, list[str]]:
    f = _latest(figures)
    fails = []
    if f["frames_deleted"] or not f["frames_on_disk"]:
        fails.append("recorded frames deleted (or none recorded)")
    return (
        f"kill -9 on a full 4 MB disk, {f['partial_clips']} partial clip(s)",
        (
            f"{f['frames_on_disk']} frames on disk, {f['frames_in_clips']} in clips, "
            f"{f['frames_deleted']} deleted"
        ),
        fails,
    )


def _flips(figures: Figures) -> tuple[str, str, list[str]]:
    f = _latest(figures)
    fails = []
    if f["caught"] != f["flips"]:
        fails.append("a byte flip passed")
    return f"{_n(f['flips'])} random byte flips", f"{_n(f['caught'])} caught", fails


JUDGES: dict[str, tuple[str, Callable[[Figures], tuple[str, str, list[str]]]]] = {
    "http fuzz": ("HTTP fuzz", _http),
    "mqtt fuzz": ("MQTT fuzz", _mqtt),
    "descriptor exhaustion": ("Descriptor exhaustion", _descriptors),
    "broker restarts": ("Broker restarts", _broker),
    "kill -9": ("kill -9", _kill),
    "full disk": ("Full disk", _disk),
    "audit byte flips": ("Audit byte flips", _flips),
}


def outcomes(junit: Path) -> dict[str, str]:
    """pytest node id → passed / failed / skipped, from a JUnit XML report."""
    results: dict[str, str] = {}
    if not junit.exists():
        return results
    for case in ET.parse(junit).getroot().iter("testcase"):
        node = case.get("classname", "").replace(".", "/") + ".py::" + case.get("name", "")
        if case.find("failure") is not None or case.find("error") is not None:
            results[node] = "failed"
        elif case.find("skipped") is not None:
            results[node] = "skipped"
        else:
            results[node] = "passed"
    return results


def rows(figures: Figures, results: dict[str, str]) -> list[Row]:
    by_attack: dict[str, Figures] = {}
    for line in figures:
        by_attack.setdefault(line["attack"], []).append(line)
    table = []

    def failed_tests(lines: Figures) -> list[str]:
        return sorted({ln["test"] for ln in lines if results.get(ln["test"]) == "failed"})

    for attack, (title, judge) in JUDGES.items():
        lines = by_attack.get(attack, [])
        if not lines:
            table.append(
                Row(title, "-", "no figures recorded", passed=False, why="its test failed")
            )
            continue
        ran, counts, fails = judge(lines)
        if broke := failed_tests(lines):
            fails.append(f"test failed: {', '.join(broke)}")
        table.append(Row(title, ran, counts, not fails, "; ".join(fails)))

    cases = by_attack.get("audit tampering", [])
    caught = sum(1 for ln in cases if ln["caught"] and results.get(ln["test"]) != "failed")
    silent = [
        node
        for node, outcome in results.items()
        if node.startswith("tests/security/test_audit.py::")
        and outcome == "failed"
        and node not in {ln["test"] for ln in cases}
        and "byte_flips" not in node
    ]
    total = len(cases) + len(silent)
    table.append(
        Row(
            "Audit tampering",
            f"{total} named cases",
            f"{caught}/{total} caught",
            bool(total) and caught == total,
            "" if caught == total else "a case was not caught",
        )
    )
    counted = {
        outcome: sum(1 for v in results.values() if v == outcome) for outcome in results.values()
    }
    failed = counted.get("failed", 0)
    table.append(
        Row(
            "All of tests/security",
            f"{len(results)} tests",
            ", ".join(f"{count} {outcome}" for outcome, count in sorted(counted.items())),
            bool(results) and not failed,
            "" if results and not failed else "see the pytest output above",
        )
    )
    return table


def print_table(table: list[Row]) -> None:
    header = ("attack", "ran", "counts", "verdict")
    cells = [
        (row.attack, row.ran, row.counts, "pass" if row.passed else f"FAIL: {row.why}")
        for row in table
    ]
    widths = [max(len(str(c[i])) for c in [header, *cells]) for i in range(4)]
    line = "| " + " | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)) + " |"
    print(line)
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for cell in cells:
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(cell, widths, strict=True)) + " |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keep", type=Path, help="folder to keep the figures and JUnit report in")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="doorstep-soak-") as tmp:
        folder = args.keep or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        figures_path = folder / "figures.jsonl"
        junit = folder / "junit.xml"
        figures_path.unlink(missing_ok=True)
        env = {**os.environ, "DOORSTEP_SOAK": "1", "DOORSTEP_SOAK_FIGURES": str(figures_path)}
        command = [
            sys.executable, "-m", "pytest", "-p", "no:homeassistant", "-p", "no:cacheprovider",
            "--timeout=900", "-q", "-rfE", f"--junitxml={junit}", "tests/security",
        ]  # fmt: skip
        started = time.monotonic()
        pytest = subprocess.run(command, cwd=ROOT, env=env, check=False)
        wall = time.monotonic() - started
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        figures: Figures = []
        if figures_path.exists():
            figures = [json.loads(line) for line in figures_path.read_text().splitlines() if line]
        table = rows(figures, outcomes(junit))
    print()
    print(
        f"Soak of tests/security: {wall / 60:.1f} min wall, "
        f"{(usage.ru_utime + usage.ru_stime) / 60:.1f} min CPU (tests, bridges, brokers)"
    )
    print_table(table)
    ok = pytest.returncode == 0 and all(row.passed for row in table)
    print("\nAll bars met." if ok else "\nSome bars were not met.")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
