"""Share link tokens: 256 random bits, handed out once, stored only as SHA-256.

A token is as strong as a 256-bit key, so a fast hash is enough to make the
stored value useless to someone reading the database (no salt or slow hash is
needed for secrets that were never guessable).
"""

from __future__ import annotations

import hashlib
import re
import secrets

#: URL-safe base64 of 32 random bytes is 43 characters.
TOKEN_BYTES = 32
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")
_SHARE_ID = re.compile(r"^s_[A-Z2-7]{10}$")
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def new_token() -> str:
    """A fresh link token (256 bits from the OS's CSPRNG)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def token_hash(token: str) -> str:
    """What the bridge stores instead of the token."""
    return hashlib.sha256(token.encode()).hexdigest()


def valid_token(token: str) -> bool:
    """True when `token` has the shape of a link token (anything else is a 404)."""
    return bool(_TOKEN.match(token))


def new_share_id() -> str:
    """A share id such as ``s_7Q2M9X4KLA`` (50 random bits: unique, not secret)."""
    return "s_" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(10))


def valid_share_id(share_id: str) -> bool:
    """True when `share_id` has the shape of a share id."""
    return bool(_SHARE_ID.match(share_id))


def link_path(token: str) -> str:
    """The path of a share link on the bridge."""
    return f"/share/{token}"
