"""Camera URLs fit for logs, errors, status and diagnostics: credentials removed.

One function for the whole bridge, so that a source shown anywhere (a log line,
``/api/cameras``, the config's ``safe_source``) hides the same things.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

#: Names of URL parameters that carry a credential (case-insensitive): ``pwd``, ``pass``,
#: ``password``, ``passwd``, ``token``, ``access_token``, ``secret``, ``apikey``,
#: ``api_key``, ``key``, ``auth``, ``sig``, ``signature`` and the like. The name starts
#: after ``/``, ``?``, ``&``, ``;`` or ``_`` (XMEye cameras write
#: ``/user=admin_password=…_channel=1``); the value ends at the next separator.
_CREDENTIAL = re.compile(
    r"(?i)(?<=[/?&;_])"
    r"((?:[a-z0-9-]*(?:pass|pwd|token|secret|api_?key)[a-z0-9_-]*|key|auth|sig|signature)=)"
    r"(.*?)(?=[&;/#]|_[a-z]+=|$)"
)
# The parameter name stays, its value is masked.
_MASKED = r"\1***"
#: Schemes of cameras reached over the network (an address with a host, maybe a login).
NETWORK_SCHEMES = frozenset({"rtsp", "rtsps", "http", "https"})


def address_problem(url: str) -> str | None:
    """What makes a camera's network address unusable, or None when it can be used.

    A password with ``/``, ``?`` or ``#`` written as itself is the usual cause: the
    address then reads as ``user`` for the host and the start of the password for the
    port. The answer names the fix and never repeats the address (it holds the password).
    """
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 (parsing it is the check)
    except ValueError:
        if "@" in url.partition("://")[2] and "@" not in parts.netloc:
            return (
                "the user name or password contains /, ? or #: write each of them"
                " percent-encoded (/ as %2F, ? as %3F, # as %23)"
            )
        return "the port after the host is not a number from 0 to 65535"
    if not parts.hostname:
        return "expected a host after :// (such as rtsp://192.168.1.30/stream)"
    return None


def redact_url(url: str) -> str:
    """A camera URL fit for logs, errors and status: every credential replaced by ``***``.

    The user and password before the host become ``***@``; credential-like
    parameters (in the query, or in the path as some cameras have them) keep their
    name and lose their value. Other parameters, ``user`` and ``username`` stay.
    """
    if "://" not in url:
        return _CREDENTIAL.sub(_MASKED, url)  # a file path
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<invalid url>"
    scheme, _, after = url.partition("://")
    if "@" in after and "@" not in parts.netloc:
        # A login with /, ? or # written as itself (see `address_problem`): the
        # password runs on past where the address seems to end, so whatever comes
        # before the last "@" may be part of it.
        return f"{scheme}://***@{_CREDENTIAL.sub(_MASKED, after.rpartition('@')[2])}"
    has_login = parts.username is not None or parts.password is not None
    netloc = parts.netloc
    if has_login:
        netloc = f"***@{netloc.rpartition('@')[2]}"
    rest = urlunsplit(("", "", parts.path, parts.query, parts.fragment))
    return f"{parts.scheme}://{netloc}{_CREDENTIAL.sub(_MASKED, rest)}"
