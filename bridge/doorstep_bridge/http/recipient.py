"""The recipient's page: what a share link shows in a browser.

A small HTML page, made here from the export's signed manifest: the player, who
released it to whom and why, until when, what was redacted, the downloads, and how
to check the file. No script at all, nothing from elsewhere, no tracking: the
Content-Security-Policy allows only the page's own style (by hash) and media from
the bridge itself. Expired, revoked and unknown links get a plain page saying so.

A browser asks for HTML (``Accept: text/html``; Home Assistant's proxy passes that on);
``curl`` and players do not, and get the MP4 as before (``?raw=1`` forces it).
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
import hashlib
from html import escape
from typing import Any

from aiohttp import web

STYLE = """
body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f4f2;color:#1c1c1c}
main{max-width:860px;margin:0 auto;padding:24px 16px 48px}
h1{font-size:1.5rem;margin:0 0 4px}
p.lead{margin:0 0 16px;color:#444}
video{width:100%;background:#000;border-radius:8px;display:block}
section{background:#fff;border:1px solid #ddd;border-radius:8px;padding:12px 16px;margin-top:16px}
h2{font-size:1.05rem;margin:0 0 8px}
dl{display:grid;grid-template-columns:max-content 1fr;gap:4px 16px;margin:0}
dt{color:#555}dd{margin:0;overflow-wrap:anywhere}
a.button{display:inline-block;margin:4px 8px 4px 0;padding:8px 14px;border-radius:6px;
background:#1f5fa8;color:#fff;text-decoration:none}
a.button.secondary{background:#e8eef6;color:#1f5fa8}
code{font:13px ui-monospace,monospace;background:#f0f0f0;padding:1px 4px;border-radius:4px;
overflow-wrap:anywhere}
.legal{border-color:#b26b00;background:#fff8ec}
.gone{text-align:center;margin-top:15vh}
"""
_STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
#: Only the page's own style and the bridge's own video; no script, frame or form.
CSP = (
    "default-src 'none'; "
    f"style-src 'sha256-{_STYLE_HASH}'; "
    "media-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
#: Headers of every answer on a share link: kept by no cache, indexed by no one.
LINK_HEADERS = {
    "Cache-Control": "no-store, private",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Robots-Tag": "noindex, nofollow",
}
#: The page's: those, and its own policy (the same link also answers with the MP4).
PAGE_HEADERS = {
    **LINK_HEADERS,
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "Vary": "Accept",
}


def wants_page(request: web.Request) -> bool:
    """A browser asking for the link (not ``curl``, a player, or ``?raw=1``)."""
    if request.query.get("raw") not in (None, "", "0"):
        return False
    return "text/html" in request.headers.get("Accept", "")


def _document(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="robots" content="noindex, nofollow">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head>"
        f"<body><main>{body}</main></body></html>\n"
    )


def _when(value: Any) -> str:
    """An ISO time as people read it (``2026-11-23 10:00 UTC+01:00``)."""
    text = str(value or "?")
    date, _, rest = text.partition("T")
    if not rest:
        return text
    clock, zone = rest[:5], rest[12:] or ""
    return f"{date} {clock} (UTC{zone})" if zone else f"{date} {clock}"


def _rows(rows: list[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows) + "</dl>"


def share_page(manifest: Mapping[str, Any], fingerprint: str, token: str) -> str:
    """The recipient's page of a ready share, from its signed manifest."""
    redactions = manifest.get("redactions") or {}
    masks = redactions.get("privacy_masks") or {}
    approvers = ", ".join(map(str, manifest.get("approvers") or [manifest.get("approver")]))
    file_info = manifest.get("file") or {}
    name = str(file_info.get("name") or "doorstep.mp4")
    signature_name = name + ".doorstep-sig.json"
    masked = [f"{camera}: {count} area(s) blacked out" for camera, count in masks.items() if count]
    faces = (
        "faces blurred (automatic detection: it can miss some)"
        if redactions.get("faces_blurred")
        else "faces NOT blurred (the approver chose so)"
    )
    cameras = ", ".join(map(str, manifest.get("cameras") or []))
    parts = [
        "<h1>Footage shared with you</h1>",
        (
            f'<p class="lead">{escape(str(manifest.get("recipient")))}, this video was released '
            f"to you from a Doorstep doorbell. The link stops working on "
            f"{escape(_when(manifest.get('link_expires')))}.</p>"
        ),
        (
            '<video controls preload="metadata" playsinline src="?raw=1">'
            '<a href="?raw=1">Open the video</a></video>'
        ),
        "<section><h2>What this is</h2>"
        + _rows(
            [
                ("Requested by", str(manifest.get("recipient"))),
                ("Reason given", str(manifest.get("reason"))),
                ("Approved by", f"{approvers}, {_when(manifest.get('approved_at'))}"),
                ("Cameras", cameras),
                (
                    "Footage from",
                    f"{_when(manifest.get('start'))} to {_when(manifest.get('end'))}",
                ),
                ("Link expires", _when(manifest.get("link_expires"))),
                ("Share", str(manifest.get("share_id"))),
            ]
        )
        + "</section>",
    ]
    legal = manifest.get("legal")
    if isinstance(legal, Mapping):
        scope = legal.get("scope") or {}
        parts.append(
            '<section class="legal"><h2>Released under legal authority</h2>'
            + _rows(
                [
                    ("Authority", str(legal.get("authority"))),
                    ("Reference", str(legal.get("reference"))),
                    ("Legal basis", str(legal.get("legal_basis"))),
                    (
                        "Scope",
                        (
                            f"{', '.join(map(str, scope.get('cameras') or []))}, "
                            f"{_when(scope.get('start'))} to {_when(scope.get('end'))}"
                        ),
                    ),
                ]
            )
            + "</section>"
        )
    parts.append(
        "<section><h2>What was redacted</h2>"
        + _rows(
            [
                ("Privacy masks", "; ".join(masked) or "none configured for these cameras"),
                ("Faces", faces),
                ("Watermark", "share, camera, time, your name and the link's expiry, at the top"),
            ]
        )
        + "</section>"
    )
    parts.append(
        "<section><h2>Download</h2>"
        f'<a class="button" href="?raw=1&amp;download=1" download="{escape(name)}">'
        f"Video ({escape(name)})</a>"
        f'<a class="button secondary" href="{escape(token)}/signature" '
        f'download="{escape(signature_name)}">Signature</a>'
        "</section>"
    )
    parts.append(
        "<section><h2>How to check the file</h2>"
        "<p>The video is signed by the bridge that released it. Keep both files together and "
        "run, on any computer with Doorstep installed (no network needed):</p>"
        f"<p><code>doorstep-bridge verify-export {escape(name)} {escape(signature_name)}</code></p>"
        "<p>It says <em>VALID</em> only if not one byte of the video or of the details above "
        "was changed. It names the signing key: it should be</p>"
        f"<p><code>{escape(fingerprint)}</code></p>"
        "<p>the fingerprint the owner of the camera can confirm. Without Doorstep, "
        f"<code>sha256sum {escape(name)}</code> must print "
        f"<code>{escape(str(file_info.get('sha256')))}</code>. A signature proves what was "
        "released, not what happened in front of the camera.</p></section>"
    )
    return _document("Footage shared with you", "".join(parts))


GONE_TEXT = {
    404: ("This link does not work", "There is no footage at this address. Check the link."),
    410: (
        "This link no longer works",
        "The footage behind it was removed: the link expired or the owner withdrew it.",
    ),
    429: (
        "Too many visits right now",
        (
            "Every visitor is written to the owner's audit log by name, and this link had "
            "more different visitors in the last minute than that log takes. Please try "
            "again in a minute."
        ),
    ),
    503: (
        "This link cannot be served right now",
        (
            "Every visit is written to the owner's audit log, and it cannot be written at the "
            "moment, so nothing is shown. Please try again later."
        ),
    ),
}


def gone_page(status: int, detail: str) -> web.Response:
    """A plain page for a link that does not (or no longer, or not now) work, with ``status``."""
    title, text = GONE_TEXT.get(status, ("This link does not work", "The footage is not here."))
    body = (
        f'<div class="gone"><h1>{escape(title)}</h1><p>{escape(text)}</p>'
        f"<p><small>{escape(detail)}</small></p></div>"
    )
    return web.Response(
        status=status,
        text=_document(title, body),
        content_type="text/html",
        charset="utf-8",
        headers=PAGE_HEADERS,
    )


def page_response(html: str) -> web.Response:
    """The recipient's page with its headers."""
    return web.Response(text=html, content_type="text/html", charset="utf-8", headers=PAGE_HEADERS)
