"""Checks of the text and time fields people send: requests and decisions alike."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any
import unicodedata

from doorstep_bridge.exceptions import ShareError
from doorstep_bridge.text import clean_text, is_text

#: Longest text each field may hold.
MAX_TEXT = {
    "requester": 100,
    "reason": 500,
    "request_id": 100,
    "by": 100,
    "by_id": 100,
    "authority": 200,
    "reference": 100,
    "legal_basis": 500,
}
#: Longest text of a rejected value echoed in an error message.
MAX_ERROR_ECHO = 60
#: Fields that may run over several lines (line breaks and tabs allowed).
MULTILINE = frozenset({"reason", "legal_basis"})
#: Characters that change the direction text is shown in: a requester could make an
#: approver read their name, or a notification's wording, other than it is.
DIRECTION_MARKS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)


def echo(value: str) -> str:
    """`value` as it may appear in an error message: valid text, cut short."""
    text = clean_text(value)
    return text if len(text) <= MAX_ERROR_ECHO else text[:MAX_ERROR_ECHO] + "..."


def text_field(data: Mapping[str, Any], key: str, *, required: bool = True) -> str | None:
    """The stripped text of ``data[key]``.

    Raises:
        ShareError: Missing (when required), empty, not valid text, or too long.
    """
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ShareError(f"{key}: expected a non-empty string")
    if not is_text(value):
        raise ShareError(f"{key}: not valid text (a lone surrogate or invalid bytes)")
    value = value.strip()
    if len(value) > MAX_TEXT[key]:
        raise ShareError(f"{key}: at most {MAX_TEXT[key]} characters")
    allowed = "\n\t" if key in MULTILINE else ""
    for position, char in enumerate(value, start=1):
        if char in DIRECTION_MARKS or (unicodedata.category(char) == "Cc" and char not in allowed):
            raise ShareError(
                f"{key}: control and text-direction characters are not allowed"
                f" ({char!a} at character {position})"
            )
    return value


def moment_field(data: Mapping[str, Any], key: str) -> datetime:
    """``data[key]`` as an aware time.

    Raises:
        ShareError: Not an ISO 8601 time with a timezone.
    """
    value = data.get(key)
    if not isinstance(value, str):
        raise ShareError(f"{key}: expected an ISO 8601 time with a timezone")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ShareError(f"{key}: '{echo(value)}' is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise ShareError(f"{key}: the time needs a timezone (e.g. +00:00)")
    return moment
