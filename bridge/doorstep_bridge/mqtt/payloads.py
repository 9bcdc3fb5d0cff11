"""Parsing of incoming MQTT payloads that garbage cannot break.

Anyone who can write to the broker chooses these bytes: the size is capped by
the client (`MAX_INCOMING_PAYLOAD`), and JSON nesting is checked *before*
parsing, so a deeply nested document is refused instead of running the
decoder into Python's recursion limit.
"""

from __future__ import annotations

import json
import re
from typing import Any

#: Deeper than any button or command payload needs (zigbee2mqtt nests 2-3 levels).
MAX_JSON_DEPTH = 32

# A complete JSON string (the unrolled form matches in linear time); brackets
# inside strings do not nest anything.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# One innermost pair of brackets; removing all of them peels one level off.
_INNERMOST = re.compile(rb"[\[{][^\[\]{}]*[\]}]")
_BRACKETS = re.compile(rb"[\[\]{}]")


def nesting_within(document: bytes, max_depth: int = MAX_JSON_DEPTH) -> bool:
    """Is every bracket in `document` (outside strings) nested at most `max_depth` deep?

    Unbalanced brackets count as too deep: such a document is not JSON anyway.
    The work is at most `max_depth` regex passes over the payload, in C.
    """
    if document.count(b"[") + document.count(b"{") <= max_depth:
        return True
    rest = _JSON_STRING.sub(b"", document)
    for _ in range(max_depth):
        rest, peeled = _INNERMOST.subn(b"", rest)
        if not peeled:
            break
    return _BRACKETS.search(rest) is None


def loads_bounded(payload: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """Parse a JSON payload no deeper than `max_depth`.

    Raises:
        ValueError: Not UTF-8, not JSON, nested too deep, or a number Python
            refuses to convert (over 4,300 digits).
    """
    if not nesting_within(payload, max_depth):
        raise ValueError(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("not UTF-8") from None
