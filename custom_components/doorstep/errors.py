"""Bridge errors as what Home Assistant shows for them: one table for every caller.

Service actions raise translated HA errors (a validation error when the user can
fix the call, an HA error when the bridge failed), the switches translated HA errors,
the media browser a translated ``BrowseError``, and the HTTP views a status for the
player or the recipient.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus
import re

from aiohttp import web
from homeassistant.components.media_player.errors import BrowseError
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from .api import DoorstepAuthError, DoorstepError, DoorstepNotFoundError, DoorstepRequestError
from .const import DOMAIN


def bridge_failure(err: DoorstepError) -> HomeAssistantError:
    """The bridge did not do it: it rejected the token, or did not answer.

    A rejected token is told apart: trying again later will not help, the token
    must be renewed (the client has already asked Home Assistant to re-authenticate).
    """
    if isinstance(err, DoorstepAuthError):
        return HomeAssistantError(translation_domain=DOMAIN, translation_key="auth")
    return HomeAssistantError(translation_domain=DOMAIN, translation_key="bridge_error")


def action_error(err: DoorstepError, share_id: str | None = None) -> HomeAssistantError:
    """The error a share service action raises when the bridge did not do it.

    ``share_id`` names the share the action is about; None for a new request,
    where "not found" is the bridge's failure rather than a wrong id.
    """
    if isinstance(err, DoorstepNotFoundError) and share_id is not None:
        return ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="unknown_share",
            translation_placeholders={"share_id": share_id},
        )
    if isinstance(err, DoorstepRequestError):
        placeholders = {"share_id": share_id or "-", "error": str(err)}
        if err.status >= HTTPStatus.INTERNAL_SERVER_ERROR:
            # The bridge's failure (503: its audit log cannot be written), not the call's.
            return HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="share_failed" if share_id else "request_failed",
                translation_placeholders=placeholders,
            )
        return ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="share_refused",
            translation_placeholders=placeholders,
        )
    return bridge_failure(err)


@contextmanager
def action_errors(share_id: str | None = None) -> Iterator[None]:
    """Around a bridge call of a service action: see ``action_error``."""
    try:
        yield
    except DoorstepError as err:
        raise action_error(err, share_id) from err


#: The shares the bridge names when it refuses to forget a clip (docs/http-api.md).
_HELD_BY = re.compile(r"\(([A-Za-z0-9_, -]+)\)")


def forget_error(err: DoorstepError, clip_id: str) -> HomeAssistantError:
    """The error ``doorstep.forget_clip`` raises when the bridge did not erase the clip."""
    if isinstance(err, DoorstepRequestError):
        placeholders = {"clip_id": clip_id, "error": str(err)}
        if err.status == HTTPStatus.CONFLICT:
            held = _HELD_BY.search(str(err))
            return ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="clip_held",
                translation_placeholders={"clip_id": clip_id, "shares": held[1] if held else "?"},
            )
        # A 4xx is the call's; a 5xx (503: its audit log) the bridge's.
        error = (
            ServiceValidationError
            if err.status < HTTPStatus.INTERNAL_SERVER_ERROR
            else HomeAssistantError
        )
        return error(
            translation_domain=DOMAIN,
            translation_key="forget_refused",
            translation_placeholders=placeholders,
        )
    return bridge_failure(err)


def switch_error(err: DoorstepError, camera: str, switch: str) -> HomeAssistantError:
    """The error a camera switch raises when the bridge did not switch it."""
    placeholders = {"camera": camera, "switch": switch}
    if isinstance(err, DoorstepNotFoundError):
        # The switch's camera came from the bridge itself, so a 404 almost always
        # means a bridge older than its switch route (the two ship together).
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="switch_unsupported",
            translation_placeholders=placeholders,
        )
    if isinstance(err, DoorstepRequestError):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="switch_refused",
            translation_placeholders={**placeholders, "error": str(err)},
        )
    return bridge_failure(err)


@contextmanager
def switch_errors(camera: str, switch: str) -> Iterator[None]:
    """Around a bridge call of a camera switch: see ``switch_error``."""
    try:
        yield
    except DoorstepError as err:
        raise switch_error(err, camera, switch) from err


def browse_error(err: DoorstepError) -> BrowseError:
    """The media browser's error when the bridge cannot list clips."""
    return BrowseError(
        translation_domain=DOMAIN,
        translation_key="clips_unavailable",
        translation_placeholders={"error": str(err)},
    )


def http_error(err: DoorstepError) -> web.HTTPException:
    """The status a view answers when the bridge cannot serve a file."""
    if isinstance(err, DoorstepNotFoundError):
        return web.HTTPNotFound()
    return web.HTTPBadGateway()
