"""Live view of each camera: the bridge's masked MJPEG stream, behind Home Assistant's login.

The browser (dashboard cards, the more-info dialog, the companion app) only ever
talks to Home Assistant's camera proxy, which checks the user's login or the
entity's rotating access token; Home Assistant fetches the stream from the bridge
with the bridge's API token, which never leaves it. MJPEG rather than HLS: HLS
adds seconds of delay, MJPEG shows the porch as it is now.
"""

from __future__ import annotations

from aiohttp import hdrs, web
from homeassistant.components.camera import Camera
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_aiohttp_proxy_stream
from homeassistant.helpers.entity_platform import AddEntitiesCallback

from .api import DoorstepApiClient, DoorstepError
from .const import LOGGER
from .coordinator import DoorstepCoordinator
from .data import DoorstepConfigEntry
from .entity import DoorstepCameraEntity, async_setup_camera_entities

PARALLEL_UPDATES = 0


async def async_setup_entry(
    hass: HomeAssistant,  # noqa: ARG001
    entry: DoorstepConfigEntry,
    async_add_entities: AddEntitiesCallback,
) -> None:
    """Add a live camera per camera."""
    client = entry.runtime_data.client
    async_setup_camera_entities(
        entry,
        async_add_entities,
        lambda coordinator, camera: [LiveCamera(coordinator, camera, client)],
    )


class LiveCamera(DoorstepCameraEntity, Camera):
    """The camera's live view, privacy masks already applied by the bridge.

    The device's main feature, so it takes the device's name: ``camera.front_door``.
    """

    _attr_name = None
    _attr_is_streaming = True

    def __init__(
        self, coordinator: DoorstepCoordinator, camera: str, client: DoorstepApiClient
    ) -> None:
        DoorstepCameraEntity.__init__(self, coordinator, camera, "live")
        Camera.__init__(self)
        self._client = client
        self.content_type = "image/jpeg"
        #: Why the bridge refused the live stream last, until a stream opens again.
        self._refused: str | None = None

    async def async_camera_image(
        self,
        width: int | None = None,  # noqa: ARG002 - the bridge sends the camera's own size
        height: int | None = None,  # noqa: ARG002
    ) -> bytes | None:
        """The latest masked frame; the last snapshot when the bridge has none.

        The bridge makes the still from a frame it decoded already (for motion, or for a
        viewer): a dashboard refreshing its picture never opens the camera again. With
        motion detection off and nobody watching there is no recent frame: the snapshot.
        """
        try:
            return await self._client.live_image(self.camera)
        except DoorstepError as err:
            LOGGER.debug("No live image of %s (%s): the snapshot instead", self.camera, err)
            return self.coordinator.data.camera(self.camera).snapshot

    async def handle_async_mjpeg_stream(self, request: web.Request) -> web.StreamResponse | None:
        """Relay the bridge's MJPEG stream to the (already authenticated) client."""
        try:
            upstream = await self._client.open_live_stream(self.camera)
        except DoorstepError as err:
            # The browser only shows a broken picture (502): the log says why, once
            # per reason, so a dashboard that keeps trying does not flood it.
            reason = str(err)
            if reason != self._refused:
                LOGGER.warning("Live view of %s unavailable: %s", self.camera, reason)
            else:
                LOGGER.debug("Live view of %s unavailable: %s", self.camera, reason)
            self._refused = reason
            return None  # the camera view answers 502
        if self._refused is not None:
            LOGGER.info("Live view of %s is available again", self.camera)
            self._refused = None
        try:
            return await async_aiohttp_proxy_stream(
                self.hass, request, upstream.content, upstream.headers.get(hdrs.CONTENT_TYPE)
            )
        finally:
            upstream.close()
