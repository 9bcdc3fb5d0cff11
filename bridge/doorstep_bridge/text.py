"""Text that came from outside: whether it is valid Unicode, and a form that always is.

aiohttp keeps bytes that are not UTF-8 as lone surrogates, and JSON can escape half a
surrogate pair; such a string cannot be written to a UTF-8 file, log or MQTT message.
"""

from __future__ import annotations


def is_text(value: str) -> bool:
    """True when `value` is valid Unicode text (no lone surrogates)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def clean_text(text: str) -> str:
    """`text` with what UTF-8 cannot hold (lone surrogates) written as escapes."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
