"""HTTP views: clip media for HA users, share links for outside recipients.

Clip media needs HA authentication (a signed path from the media browser works).
The share link views need no login: the bridge checks the link token itself, so
a recipient only needs to reach HA, never the bridge. They relay what the bridge
serves on the link: the recipient's page to a browser, the video to a player, the
export's signature at ``<link>/signature``.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView

from .api import CLIP_MEDIA, DoorstepError, DoorstepNotFoundError
from .const import CLIP_URL, LOGGER, SHARE_URL
from .errors import http_error
from .helpers import SAFE_ID, entry_for_bridge

CHUNK = 64 * 1024
#: The bridge's refusals of a share link, as the recipient gets them (anything else: 404).
LINK_ERRORS: dict[int, type[web.HTTPError]] = {
    410: web.HTTPGone,  # expired or revoked
    416: web.HTTPRequestRangeNotSatisfiable,
    429: web.HTTPTooManyRequests,  # too many different clients this minute
    503: web.HTTPServiceUnavailable,  # the audit log cannot be written: nothing is served
}
#: Headers of the bridge's refusal of a share link that the recipient gets too.
REFUSAL_HEADERS = ("Retry-After", "Content-Range")
#: Upstream headers a player needs for seeking (Range) and display, the recipient's page
#: its own policy (no script, no frame, no referrer, no index), a refusal its Retry-After.
PASS_HEADERS = (
    "Content-Type", "Content-Length", "Content-Range", "Accept-Ranges",
    "Last-Modified", "ETag", "Content-Disposition",
    "Content-Security-Policy", "X-Frame-Options", "Referrer-Policy", "X-Robots-Tag",
    "X-Content-Type-Options", "Vary", "Retry-After",
)  # fmt: skip


@callback
def async_setup_views(hass: HomeAssistant) -> None:
    """Register the views once."""
    hass.http.register_view(ClipMediaView())
    hass.http.register_view(ShareLinkView())
    hass.http.register_view(ShareSignatureView())


async def _relay(
    request: web.Request,
    upstream: aiohttp.ClientResponse,
    what: str,
    *,
    status: int | None = None,
) -> web.StreamResponse:
    """Stream an upstream answer (status, Range headers, body) to the client.

    ``what`` names the file in log lines: never the path, which may carry a link token.
    ``status`` replaces the upstream's.
    """
    try:
        response = web.StreamResponse(status=status or upstream.status)
        for header in PASS_HEADERS:
            if header in upstream.headers:
                response.headers[header] = upstream.headers[header]
        response.headers["Cache-Control"] = "private, no-store"
        await response.prepare(request)
        if request.method != "HEAD" and not await _copy_body(upstream, response, what):
            return response
        await response.write_eof()
        return response
    finally:
        upstream.release()


async def _copy_body(
    upstream: aiohttp.ClientResponse, response: web.StreamResponse, what: str
) -> bool:
    """Copy the body; False when it stopped short (the connection is then closed).

    Once the headers are out, neither end going away is an error of this view: a
    player leaves mid-file at every seek and when its dialog closes. Raised, either
    would be logged by aiohttp as a failed request with a traceback.
    """
    try:
        async for chunk in upstream.content.iter_chunked(CHUNK):
            try:
                await response.write(chunk)
            except ConnectionResetError:
                LOGGER.debug("The client left before the end of %s", what)
                return False
    except (aiohttp.ClientError, TimeoutError) as err:
        # The player sees the file end early (the connection closes): it can retry.
        LOGGER.warning("The bridge stopped sending %s: %s", what, err or type(err).__name__)
        response.force_close()
        return False
    return True


class ClipMediaView(HomeAssistantView):
    """``video`` / ``snapshot`` / ``thumbnail`` of a clip, for logged-in users."""

    url = CLIP_URL
    name = "api:doorstep:clip"
    requires_auth = True

    async def get(
        self, request: web.Request, bridge_id: str, clip_id: str, kind: str
    ) -> web.StreamResponse:
        """Proxy one clip file from the bridge, with Range support."""
        hass = request.app[KEY_HASS]
        entry = entry_for_bridge(hass, bridge_id)
        if entry is None or kind not in CLIP_MEDIA or not SAFE_ID.match(clip_id):
            raise web.HTTPNotFound
        try:
            upstream = await entry.runtime_data.client.open_clip_media(
                clip_id,
                kind,
                range_header=request.headers.get("Range"),
                if_range=request.headers.get("If-Range"),
                method=request.method,
            )
        except DoorstepError as err:
            if not isinstance(err, DoorstepNotFoundError):  # a wrong id is no failure
                LOGGER.warning("Cannot fetch clip %s from the bridge: %s", clip_id, err)
            raise http_error(err) from err
        return await _relay(request, upstream, f"clip {clip_id}'s {kind}")

    async def head(
        self, request: web.Request, bridge_id: str, clip_id: str, kind: str
    ) -> web.StreamResponse:
        """The headers a GET would have (size, type, ranges): some players ask first."""
        return await self.get(request, bridge_id, clip_id, kind)


class ShareLinkView(HomeAssistantView):
    """An approved share, for a recipient outside the home (link token only)."""

    url = SHARE_URL
    name = "api:doorstep:share"
    requires_auth = False
    #: What the bridge serves here: the video (or, to a browser, the recipient's page).
    signature = False

    async def get(self, request: web.Request, bridge_id: str, token: str) -> web.StreamResponse:
        """Relay the bridge's ``/share/<token>``: it checks the token, expiry and revocation."""
        hass = request.app[KEY_HASS]
        entry = entry_for_bridge(hass, bridge_id)
        if entry is None or not SAFE_ID.match(token):
            raise web.HTTPNotFound
        page = not self.signature and "text/html" in request.headers.get("Accept", "")
        try:
            upstream = await entry.runtime_data.client.open_share_link(
                token,
                signature=self.signature,
                page=page,
                query=request.query,
                method=request.method,
                range_header=request.headers.get("Range"),
                if_range=request.headers.get("If-Range"),
                client_address=request.remote,
                client_agent=request.headers.get("User-Agent"),
            )
        except DoorstepError as err:
            LOGGER.warning("Cannot fetch a share link from the bridge: %s", type(err).__name__)
            raise http_error(err) from err
        if upstream.status >= 400:
            status = upstream.status if upstream.status in LINK_ERRORS else 404
            if page and upstream.content_type == "text/html":
                # The bridge's own plain page ("This link no longer works"), same status.
                return await _relay(request, upstream, "a share link's page", status=status)
            # When to try again (429), the file's size for a range beyond it (416).
            kept = {
                key: upstream.headers[key] for key in REFUSAL_HEADERS if key in upstream.headers
            }
            upstream.release()
            # The recipient learns what the bridge said (gone, try later), never more.
            error = LINK_ERRORS.get(status, web.HTTPNotFound)
            raise error(headers=kept or None)
        return await _relay(request, upstream, "a share link")

    async def head(self, request: web.Request, bridge_id: str, token: str) -> web.StreamResponse:
        """The headers a GET would have: a chat app previewing the link asks this way."""
        return await self.get(request, bridge_id, token)


class ShareSignatureView(ShareLinkView):
    """The signature file of an approved share's export (``<link>/signature``)."""

    url = SHARE_URL + "/signature"
    name = "api:doorstep:share:signature"
    signature = True
