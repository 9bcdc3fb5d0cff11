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
        has_login = parts.username is not None or parts.password is not None
    except ValueError:
        return "<invalid url>"
    netloc = parts.netloc
    if has_login:
        netloc = f"***@{netloc.rpartition('@')[2]}"
    rest = urlunsplit(("", "", parts.path, parts.query, parts.fragment))
    return f"{parts.scheme}://{netloc}{_CREDENTIAL.sub(_MASKED, rest)}"
