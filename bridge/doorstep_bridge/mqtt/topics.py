"""The only place MQTT topic strings are built.

Topic layout (``<b>`` = base topic, ``<cam>`` = camera name); docs/mqtt.md
describes payloads, QoS and retain flags for each.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

#: Fixed prefix for discovery, independent of the base topic, so Home Assistant
#: finds every bridge on the broker with one subscription (see manifest.json).
DISCOVERY_PREFIX = "doorstep/discovery"

ONLINE = "online"
OFFLINE = "offline"
ON = "ON"
OFF = "OFF"


@dataclass(frozen=True, slots=True)
class Topics:
    """Topic names for one bridge."""

    base: str

    @property
    def available(self) -> str:
        """Bridge availability, retained, also the last will."""
        return f"{self.base}/available"

    @property
    def bridge_info(self) -> str:
        """Retained JSON describing the bridge and its cameras."""
        return f"{self.base}/bridge/info"

    @property
    def bridge_stats(self) -> str:
        """Retained JSON with storage used and pending share requests."""
        return f"{self.base}/bridge/stats"

    @property
    def bridge_egress(self) -> str:
        """Retained JSON: connections the egress guard refused (how many, the last one)."""
        return f"{self.base}/bridge/egress"

    @property
    def bridge_retained(self) -> list[str]:
        """The bridge's own retained topics under the base topic (shares aside)."""
        return [self.available, self.bridge_info, self.bridge_stats, self.bridge_egress]

    def discovery(self, bridge_id: str) -> str:
        """Retained discovery message that Home Assistant's config flow listens for."""
        return f"{DISCOVERY_PREFIX}/{bridge_id}"

    def camera_available(self, camera: str) -> str:
        """Retained ``online``/``offline`` of one camera's stream."""
        return f"{self.base}/{camera}/available"

    def camera_status(self, camera: str) -> str:
        """Retained JSON: the stream's status (``online``, ``auth_failed``...) and why."""
        return f"{self.base}/{camera}/status"

    def recording_problem(self, camera: str) -> str:
        """Retained JSON: why recording fails or is at risk; empty while it works."""
        return f"{self.base}/{camera}/recording_problem"

    def mask_problem(self, camera: str) -> str:
        """Retained JSON: why the privacy masks do not fit the frames; empty when they do."""
        return f"{self.base}/{camera}/mask_problem"

    def motion(self, camera: str) -> str:
        """Retained ``ON``/``OFF``."""
        return f"{self.base}/{camera}/motion"

    def person(self, camera: str) -> str:
        """Retained ``ON``/``OFF``: a person in view (cameras with person detection)."""
        return f"{self.base}/{camera}/person"

    def package(self, camera: str) -> str:
        """JSON per parcel left or taken (``delivered``/``removed``), QoS 1, not retained."""
        return f"{self.base}/{camera}/package"

    def ring(self, camera: str) -> str:
        """One JSON message per press, QoS 1, not retained."""
        return f"{self.base}/{camera}/ring"

    def ring_set(self, camera: str) -> str:
        """Any payload = one press."""
        return f"{self.base}/{camera}/ring/set"

    def clip(self, camera: str) -> str:
        """Retained JSON of the latest finished clip."""
        return f"{self.base}/{camera}/clip"

    def snapshot(self, camera: str) -> str:
        """Retained JPEG bytes."""
        return f"{self.base}/{camera}/snapshot"

    def record_set(self, camera: str) -> str:
        """Record now: empty payload or JSON ``{"duration": seconds}``."""
        return f"{self.base}/{camera}/record/set"

    def switch(self, camera: str, switch: str) -> str:
        """Retained ``ON``/``OFF`` of ``motion_detection`` or ``recording``."""
        return f"{self.base}/{camera}/{switch}"

    def switch_set(self, camera: str, switch: str) -> str:
        """``ON``/``OFF`` command for ``motion_detection`` or ``recording``."""
        return f"{self.base}/{camera}/{switch}/set"

    def camera_retained(self, camera: str) -> list[str]:
        """Every topic the bridge keeps retained for one camera."""
        return [
            self.camera_available(camera),
            self.camera_status(camera),
            self.recording_problem(camera),
            self.mask_problem(camera),
            self.motion(camera),
            self.person(camera),
            self.clip(camera),
            self.snapshot(camera),
            *(self.switch(camera, switch) for switch in SWITCHES),
        ]

    @property
    def camera_lookups(self) -> list[str]:
        """Filters for retained topics every camera the bridge ever ran has on the broker.

        The bridge publishes them for each camera at every start. ``<b>/+/available``
        is not one: it also matches ``<b>/<x>/available``, the availability of another
        bridge whose base topic is ``<b>/<x>``. Nothing of such a bridge is one level
        below its base topic but that, so these filters only find cameras.
        """
        return [
            self.camera_status("+"),
            self.motion("+"),
            *(self.switch("+", switch) for switch in SWITCHES),
        ]

    def camera_of(self, topic: str) -> str | None:
        """The camera of a per-camera topic (``<b>/<cam>/<leaf>``), None for another topic."""
        prefix = f"{self.base}/"
        if not topic.startswith(prefix):
            return None
        camera, slash, leaf = topic[len(prefix) :].partition("/")
        if not camera or not slash or not leaf or "/" in leaf:
            return None
        return camera

    @property
    def share_request(self) -> str:
        """Incoming share requests (JSON). Can never approve anything."""
        return f"{self.base}/share/request"

    def share(self, share_id: str) -> str:
        """Retained JSON state of one share request."""
        return f"{self.base}/share/{share_id}"

    def published(self, cameras: Iterable[str]) -> list[str]:
        """Every topic the bridge publishes on (a share's with a sample id, any bridge id)."""
        own = [
            self.available,
            self.bridge_info,
            self.bridge_stats,
            self.bridge_egress,
            self.discovery("+"),
            self.share("s_0"),
        ]
        for camera in cameras:
            own += [*self.camera_retained(camera), self.package(camera), self.ring(camera)]
        return own


#: Camera switches controllable over MQTT.
SWITCHES = ("motion_detection", "recording")
