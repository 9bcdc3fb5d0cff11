"""Clips in the media browser: Doorstep → camera → day → clips.

Playback URLs point at the authenticated clip view; HA signs them for the
player, so no footage is ever reachable without a login or a signed path.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from homeassistant.components.media_player.const import MediaClass
from homeassistant.components.media_player.errors import BrowseError
from homeassistant.components.media_source import (
    BrowseMediaSource,
    MediaSource,
    MediaSourceItem,
    PlayMedia,
    Unresolvable,
)
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util

from .api import DoorstepError, DoorstepNotFoundError
from .const import CLIP_URL, DOMAIN
from .data import DoorstepConfigEntry
from .errors import browse_error
from .helpers import clip_in_media_browser, entry_for_bridge, loaded_entries
from .protocol import Clip

#: Clips asked for at once (the bridge's largest page).
PAGE = 500
#: Pages asked for at most to find a camera's days, or to list one day's clips: a guard
#: against a bridge that never stops answering, far beyond any retention.
MAX_PAGES = 200


async def async_get_media_source(hass: HomeAssistant) -> DoorstepMediaSource:
    """The Doorstep media source."""
    return DoorstepMediaSource(hass)


class DoorstepMediaSource(MediaSource):
    """Browse and play the bridges' clips."""

    name = "Doorstep"

    def __init__(self, hass: HomeAssistant) -> None:
        super().__init__(DOMAIN)
        self.hass = hass

    async def async_resolve_media(self, item: MediaSourceItem) -> PlayMedia:
        """A clip's video URL (authenticated view)."""
        clip = clip_in_media_browser(self.hass, item.identifier)
        if clip is None:
            raise Unresolvable(
                translation_domain=DOMAIN,
                translation_key="unknown_clip",
                translation_placeholders={"identifier": item.identifier},
            )
        entry, clip_id = clip
        # The list may be older than the clip's deletion (retention, forget_clip): say so
        # here, where the media browser shows the message, rather than hand the player a
        # URL that is a 404 (an empty player at 0:00).
        try:
            await entry.runtime_data.client.clip(clip_id)
        except DoorstepNotFoundError as err:
            raise Unresolvable(
                translation_domain=DOMAIN,
                translation_key="clip_gone",
                translation_placeholders={"clip_id": clip_id},
            ) from err
        except DoorstepError as err:
            raise Unresolvable(
                translation_domain=DOMAIN,
                translation_key="clip_unavailable",
                translation_placeholders={"clip_id": clip_id, "error": str(err)},
            ) from err
        bridge_id = entry.runtime_data.coordinator.bridge_id
        url = CLIP_URL.format(bridge_id=bridge_id, clip_id=clip_id, kind="video")
        return PlayMedia(url, "video/mp4")

    async def async_browse_media(self, item: MediaSourceItem) -> BrowseMediaSource:
        """One level of the tree."""
        parts = item.identifier.split("/") if item.identifier else []
        if not parts:
            return self._root()
        entry = entry_for_bridge(self.hass, parts[0])
        if entry is None or len(parts) > 3:
            raise _unknown_item(item)
        try:
            if len(parts) == 1:
                return self._bridge(entry)
            if len(parts) == 2:
                return await self._camera(entry, parts[1])
            return await self._day(entry, parts[1], date.fromisoformat(parts[2]))
        except ValueError as err:  # not a day
            raise _unknown_item(item) from err
        except DoorstepError as err:
            raise browse_error(err) from err

    @staticmethod
    def _folder(
        identifier: str | None,
        title: str,
        children: list[BrowseMediaSource],
        thumbnail: str | None = None,
    ) -> BrowseMediaSource:
        return BrowseMediaSource(
            domain=DOMAIN,
            identifier=identifier,
            media_class=MediaClass.DIRECTORY,
            media_content_type="",
            title=title,
            can_play=False,
            can_expand=True,
            children=children,
            children_media_class=MediaClass.DIRECTORY,
            thumbnail=thumbnail,
        )

    def _root(self) -> BrowseMediaSource:
        entries = loaded_entries(self.hass)
        if not entries:
            raise self._nothing_to_browse()
        if len(entries) == 1:
            root = self._bridge(entries[0])
            root.identifier = None
            root.media_content_id = f"media-source://{DOMAIN}"
            root.title = "Doorstep"
            return root
        children = [
            self._folder(e.runtime_data.coordinator.bridge_id, e.title, []) for e in entries
        ]
        return self._folder(None, "Doorstep", children)

    def _nothing_to_browse(self) -> BrowseError:
        """Why there is no bridge to browse: an empty "Doorstep" folder would not say.

        A bridge that was down when Home Assistant started is retried in the background,
        one whose token was rejected waits for a new one: either entry is not loaded.
        """
        waiting = self.hass.config_entries.async_entries(
            DOMAIN, include_ignore=False, include_disabled=False
        )
        if not waiting:
            return BrowseError(translation_domain=DOMAIN, translation_key="not_loaded")
        return BrowseError(
            translation_domain=DOMAIN,
            translation_key="bridge_not_connected",
            translation_placeholders={"title": ", ".join(e.title for e in waiting)},
        )

    def _bridge(self, entry: DoorstepConfigEntry) -> BrowseMediaSource:
        coordinator = entry.runtime_data.coordinator
        children = []
        for camera in sorted(coordinator.cameras):
            # The latest clip's thumbnail shows which camera is which.
            clip = coordinator.data.camera(camera).last_clip
            children.append(
                self._folder(
                    f"{coordinator.bridge_id}/{camera}",
                    coordinator.data.camera_name(camera),
                    [],
                    _thumbnail(coordinator.bridge_id, clip),
                )
            )
        return self._folder(coordinator.bridge_id, entry.title, children)

    async def _camera(self, entry: DoorstepConfigEntry, camera: str) -> BrowseMediaSource:
        coordinator = entry.runtime_data.coordinator
        if camera not in coordinator.cameras:
            raise _unknown_camera(camera)
        pictured = await self._days(entry, camera)
        children = [
            self._folder(
                f"{coordinator.bridge_id}/{camera}/{day.isoformat()}",
                _day_title(day),
                [],
                _thumbnail(coordinator.bridge_id, clip),
            )
            for day, clip in sorted(pictured.items(), reverse=True)
        ]
        return self._folder(
            f"{coordinator.bridge_id}/{camera}", coordinator.data.camera_name(camera), children
        )

    @staticmethod
    async def _days(entry: DoorstepConfigEntry, camera: str) -> dict[date, Clip | None]:
        """The camera's days with clips (local time), each with its newest pictured clip.

        A page of clips covers the newest days; the next page starts before the
        oldest day seen, so a day with more clips than a page is skipped, not read
        through. That is one request per page of clips or per day, whichever is fewer
        (the first page alone showed only the days of the 500 newest clips).
        """
        client = entry.runtime_data.client
        zone = dt_util.get_default_time_zone()
        pictured: dict[date, Clip | None] = {}
        until: datetime | None = None
        for _ in range(MAX_PAGES):
            page = await client.clips(camera=camera, until=until, limit=PAGE)
            for clip in page.clips:  # newest first
                day = dt_util.as_local(clip.start).date()
                if pictured.get(day) is None:
                    pictured[day] = clip if clip.has_snapshot else None
            if len(page.clips) < PAGE:
                break
            oldest = dt_util.as_local(page.clips[-1].start).date()
            # The bridge lists clips that start at or before `until`: the day before `oldest`.
            until = datetime.combine(oldest, time.min, zone) - timedelta(microseconds=1)
        return pictured

    async def _day(self, entry: DoorstepConfigEntry, camera: str, day: date) -> BrowseMediaSource:
        coordinator = entry.runtime_data.coordinator
        if camera not in coordinator.cameras:
            raise _unknown_camera(camera)
        zone = dt_util.get_default_time_zone()
        since = datetime.combine(day, time.min, zone)
        until = since + timedelta(days=1)
        clips: dict[str, Clip] = {}  # a clip arriving meanwhile shifts the pages by one
        for number in range(MAX_PAGES):
            page = await entry.runtime_data.client.clips(
                camera=camera, since=since, until=until, limit=PAGE, offset=number * PAGE
            )
            clips.update((clip.id, clip) for clip in page.clips if clip.id not in clips)
            if len(page.clips) < PAGE or (number + 1) * PAGE >= page.total:
                break
        prefix = f"{coordinator.bridge_id}/{camera}/{day.isoformat()}"
        # The bridge answers the clips that overlap the day: one that started the evening
        # before belongs to that day, where its title's time is.
        children = [
            self._clip(coordinator.bridge_id, prefix, clip)
            for clip in clips.values()
            if dt_util.as_local(clip.start).date() == day
        ]
        folder = self._folder(prefix, _day_title(day), children)
        folder.children_media_class = MediaClass.VIDEO
        return folder

    @staticmethod
    def _clip(bridge_id: str, prefix: str, clip: Clip) -> BrowseMediaSource:
        start = dt_util.as_local(clip.start)
        return BrowseMediaSource(
            domain=DOMAIN,
            identifier=f"{prefix}/{clip.id}",
            media_class=MediaClass.VIDEO,
            media_content_type="video/mp4",
            title=f"{start:%H:%M:%S} · {clip.reason} · {round(clip.duration)} s",
            can_play=True,
            can_expand=False,
            thumbnail=_thumbnail(bridge_id, clip),
        )


def _unknown_item(item: MediaSourceItem) -> BrowseError:
    return BrowseError(
        translation_domain=DOMAIN,
        translation_key="unknown_media_item",
        translation_placeholders={"identifier": item.identifier},
    )


def _unknown_camera(camera: str) -> BrowseError:
    return BrowseError(
        translation_domain=DOMAIN,
        translation_key="unknown_camera",
        translation_placeholders={"camera": camera},
    )


def _thumbnail(bridge_id: str, clip: Clip | None) -> str | None:
    """The clip's thumbnail through the authenticated view, None when it has none.

    A clip can lack one (finished after a full disk, repaired after a crash): its URL
    would be a 404 the media browser shows as a blank tile instead of its video icon.
    """
    if clip is None or not clip.has_snapshot:
        return None
    return CLIP_URL.format(bridge_id=bridge_id, clip_id=clip.id, kind="thumbnail")


def _day_title(day: date) -> str:
    return day.isoformat()
