"""Counts for the attack and fault suite: a quick run by default, a soak on request.

``DOORSTEP_SOAK=1`` makes the attack tests run their long versions (`scaled` picks the
count); ``DOORSTEP_SOAK_FIGURES=FILE`` makes each of them append what it measured to
FILE, one JSON object a line (`record`). `bench/soak.py` sets both and prints the table.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

#: True when the long (soak) versions of the attacks run.
SOAK = os.environ.get("DOORSTEP_SOAK") == "1"
#: The environment variable naming the file the figures are appended to.
FIGURES_ENV = "DOORSTEP_SOAK_FIGURES"


def scaled(quick: int, soak: int) -> int:
    """`soak` in a soak run, `quick` otherwise."""
    return soak if SOAK else quick


def record(attack: str, **figures: object) -> None:
    """Append ``{"attack", "soak", "test", **figures}`` as one line to the figures file, if any.

    ``test`` is the pytest node id of the test recording it (so a test that records its
    figures and then fails an assertion is not read as a pass).
    """
    path = os.environ.get(FIGURES_ENV)
    if not path:
        return
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
    line = json.dumps(
        {"attack": attack, "soak": SOAK, "test": test, **figures}, sort_keys=True, default=str
    )
    with Path(path).open("a", encoding="utf-8") as file:
        file.write(line + "\n")
