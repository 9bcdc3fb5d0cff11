"""Push coordinator: the bridge's MQTT state, parsed in one place."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from homeassistant.components import mqtt
from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_URL
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator
from homeassistant.util import dt as dt_util

from .api import DoorstepApiClient, DoorstepError, DoorstepNotFoundError, health_url
from .const import (
    CAMERA_ISSUE_DELAY,
    CAMERA_SETUP_PROBLEMS,
    DOMAIN,
    ISSUE_CAMERA_DOWN,
    ISSUE_EGRESS,
    ISSUE_MASKS,
    ISSUE_NOT_HEARD,
    ISSUE_PROTOCOL,
    ISSUE_RECORDING,
    ISSUE_TOPIC_SHARED,
    ISSUE_UNREACHABLE,
    LOGGER,
    UNREACHABLE_ISSUE_DELAY,
)
from .protocol import (
    DISCOVERY_PREFIX,
    PROTOCOL_VERSION,
    SWITCHES,
    BridgeInfo,
    BridgeStats,
    CameraHealth,
    CameraInfo,
    Clip,
    EgressReport,
    Package,
    Payload,
    ProtocolError,
    RecordingProblem,
    Ring,
    Share,
    Topics,
    parse_bridge_info,
    parse_camera_health,
    parse_clip,
    parse_egress,
    parse_on_off,
    parse_online,
    parse_package,
    parse_recording_problem,
    parse_ring,
    parse_share,
    parse_stats,
)

#: A camera's problem topics (``<b>/<cam>/<leaf>``, one form): the repair each raises. The
#: leaf is also the :class:`CameraState` field that holds the problem.
PROBLEM_ISSUES = {"recording_problem": ISSUE_RECORDING, "mask_problem": ISSUE_MASKS}

#: Presses made this long before Home Assistant lost the broker still count as missed
#: (it notices the loss a little late).
MISSED_RINGS_MARGIN = timedelta(seconds=5)
#: Older presses are not rung late, however long the broker or Home Assistant was away.
MISSED_RINGS_WINDOW = timedelta(minutes=10)

if TYPE_CHECKING:
    from homeassistant.components.mqtt import ReceiveMessage

    from .api import BridgeSnapshot
    from .rung import RungRings

type RingListener = Callable[[Ring], None]
type PackageListener = Callable[[Package], None]
type CamerasListener = Callable[[Iterable[str]], None]
type ShareListener = Callable[[Share | None, Share], None]


@dataclass(frozen=True, slots=True)
class CameraState:
    """Everything known about one camera."""

    online: bool | None = None
    motion: bool | None = None
    person: bool | None = None
    motion_detection: bool | None = None
    recording: bool | None = None
    last_clip: Clip | None = None
    #: The bridge's clip topic arrived since setup: only then does ``last_clip`` None
    #: mean that no clip is left (before, it means nothing was heard yet).
    clip_heard: bool = False
    snapshot: bytes | None = None
    snapshot_at: datetime | None = None
    health: CameraHealth | None = None
    #: Why recording fails or is at risk (a full disk); None while it works.
    recording_problem: RecordingProblem | None = None
    #: Why the privacy masks do not fit the camera's frames; None while they do.
    mask_problem: RecordingProblem | None = None


@dataclass(frozen=True, slots=True)
class BridgeState:
    """Everything known about the bridge."""

    info: BridgeInfo
    online: bool
    stats: BridgeStats | None = None
    #: What the egress guard refused since the bridge started (None: not heard yet).
    egress: EgressReport | None = None
    cameras: Mapping[str, CameraState] = field(default_factory=dict)
    shares: Mapping[str, Share] = field(default_factory=dict)

    @property
    def reachable(self) -> bool:
        """The bridge is up and speaks our protocol."""
        return self.online and self.info.compatible

    def camera(self, key: str) -> CameraState:
        """State of one camera (empty when nothing was heard yet)."""
        return self.cameras.get(key) or CameraState()

    def camera_name(self, key: str) -> str:
        """Display name of a camera."""
        info = self.info.camera(key)
        return info.name if info else key


type Features = dict[str, tuple[bool, bool]]


def _features(cameras: Iterable[CameraInfo]) -> Features:
    """Which cameras have entities of their own: person detection, parcels."""
    return {camera.key: (camera.person, camera.package) for camera in cameras}


class DoorstepCoordinator(DataUpdateCoordinator[BridgeState]):
    """Holds the bridge state; fed by MQTT, never polls."""

    # A plain entry: the runtime data (data.py) bundles this coordinator, so the
    # coordinator does not know that bundle's type.
    config_entry: ConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: ConfigEntry,
        snapshot: BridgeSnapshot,
        client: DoorstepApiClient,
        rung: RungRings,
    ) -> None:
        super().__init__(hass, LOGGER, config_entry=entry, name=f"{DOMAIN} {entry.title}")
        self._client = client
        info = snapshot.info
        self.bridge_id = info.id
        self.topics = Topics(info.base_topic)
        cameras = {
            key: CameraState(
                online=status.online,
                motion=status.motion,
                motion_detection=status.motion_detection,
                recording=status.recording,
                health=status.health,
            )
            for key, status in snapshot.cameras.items()
        }
        self.data = BridgeState(info=info, online=True, stats=snapshot.stats, cameras=cameras)
        self._known_cameras: set[str] = set()
        #: Each camera as its entities were made (person sensor, parcel event or not).
        self._built_cameras: dict[str, CameraInfo] = {}
        self._reload_scheduled = False
        self._ring_listeners: dict[str, list[RingListener]] = {}
        self._package_listeners: dict[str, list[PackageListener]] = {}
        # MQTT QoS 1 is "at least once": after a broker restart a press can arrive again
        # with the same id, and a press asked of the bridge may have rung before a restart
        # or a reload. The last few ids per camera, kept across both, ring it once.
        self._rung = rung
        # When Home Assistant lost the broker: presses made since then are asked of the
        # bridge once it is back (see `_ring_missed`).
        self._mqtt_lost_at: datetime | None = None
        self._add_listeners: list[CamerasListener] = []
        self._remove_listeners: list[CamerasListener] = []
        self._share_listeners: list[ShareListener] = []
        self._unreachable_timer: CALLBACK_TYPE | None = None
        # Online above comes from the bridge's HTTP answer alone, which says nothing of
        # whether what it publishes reaches this broker: its availability must arrive too.
        self._heard = False
        self._not_heard_timer: CALLBACK_TYPE | None = None
        self._logged_offline = False
        self._offline_cameras: set[str] = set()
        #: Cameras down, waiting to be down long enough for a repair issue.
        self._camera_timers: dict[str, CALLBACK_TYPE] = {}
        # Per camera down: its status's ``since`` (the bridge's clock) and when that status
        # began on this clock, which may differ from the bridge's by hours.
        self._down_began: dict[str, tuple[datetime | None, datetime]] = {}
        #: Other bridges heard under this bridge's base topic: id -> name.
        self._foreign_bridges: dict[str, str] = {}
        #: Share ids asked of the bridge (is it ours?): True when MQTT spoke of it again since.
        self._verifying: dict[str, bool] = {}

    async def async_start(self) -> None:
        """Subscribe to the bridge's topics (MQTT must be ready)."""
        topics = self.topics
        entry = self.config_entry
        subscriptions: list[tuple[str, Callable[[ReceiveMessage], None], str | None]] = [
            # First: every bridge's retained announcement says which base topic it uses, so
            # another bridge under this one's is known before its retained shares arrive.
            (f"{DISCOVERY_PREFIX}/+", self._on_discovery, "utf-8"),
            (topics.available, self._on_available, "utf-8"),
            (topics.bridge_info, self._on_info, "utf-8"),
            (topics.bridge_stats, self._on_stats, "utf-8"),
            (topics.bridge_egress, self._on_egress, "utf-8"),
            (topics.share_wildcard, self._on_share, "utf-8"),
            (f"{topics.base}/+/snapshot", self._on_snapshot, None),
        ]
        subscriptions.extend((t, self._on_camera, "utf-8") for t in topics.camera_wildcards)
        entry.async_on_unload(self._cancel_unreachable_timer)
        entry.async_on_unload(self._cancel_not_heard_timer)
        entry.async_on_unload(self._cancel_camera_timers)
        # Before the topics: a connection lost while subscribing must not go unnoticed.
        entry.async_on_unload(
            mqtt.async_subscribe_connection_status(self.hass, self._on_mqtt_connection)
        )
        if not mqtt.is_connected(self.hass):
            # The bridge answered over HTTP, but nothing it publishes can arrive yet: HA is
            # still connecting (its MQTT entry loads before the broker answers) or the
            # broker is down. Usual at start-up, so not worth a log line.
            self._set_online(online=False, why=None)
        elif ir.async_get(self.hass).async_get_issue(DOMAIN, self._not_heard_issue_id):
            # Not heard before this reload either: offline until it is, rather than
            # healthy-looking for another wait.
            self._set_online(online=False, why=None)
        # Raised again below if the other bridge is still there: its announcement and its
        # info are retained.
        ir.async_delete_issue(self.hass, DOMAIN, self._topic_issue_id)
        # The retained availability arrives right after subscribing when all is well.
        self._not_heard_timer = async_call_later(
            self.hass, UNREACHABLE_ISSUE_DELAY, self._not_heard_in_time
        )
        for topic, handler, encoding in subscriptions:
            entry.async_on_unload(
                await mqtt.async_subscribe(self.hass, topic, handler, qos=1, encoding=encoding)
            )
        self._check_protocol(self.data.info)
        self._sync_cameras()
        for camera, state in self.data.cameras.items():
            if state.health is not None:
                self._check_camera_issue(camera, state.health)

    # Listener registration -------------------------------------------------

    @callback
    def async_add_ring_listener(self, camera: str, listener: RingListener) -> CALLBACK_TYPE:
        """Call ``listener`` on each press of ``camera``'s doorbell."""
        listeners = self._ring_listeners.setdefault(camera, [])
        listeners.append(listener)
        return lambda: listeners.remove(listener)

    @callback
    def async_add_package_listener(self, camera: str, listener: PackageListener) -> CALLBACK_TYPE:
        """Call ``listener`` on each parcel left at or taken from ``camera``'s door."""
        listeners = self._package_listeners.setdefault(camera, [])
        listeners.append(listener)
        return lambda: listeners.remove(listener)

    @callback
    def async_add_camera_listener(
        self, added: CamerasListener, removed: CamerasListener | None = None
    ) -> CALLBACK_TYPE:
        """Tell ``added`` about every camera, now and when the bridge adds one."""
        self._add_listeners.append(added)
        if removed:
            self._remove_listeners.append(removed)
        if self._known_cameras:
            added(sorted(self._known_cameras))

        def unsubscribe() -> None:
            self._add_listeners.remove(added)
            if removed:
                self._remove_listeners.remove(removed)

        return unsubscribe

    @callback
    def async_add_share_listener(self, listener: ShareListener) -> CALLBACK_TYPE:
        """Call ``listener(old, new)`` whenever a share request changes."""
        self._share_listeners.append(listener)
        return lambda: self._share_listeners.remove(listener)

    @property
    def cameras(self) -> frozenset[str]:
        """Cameras the bridge has now."""
        return frozenset(self._known_cameras)

    @property
    def built_cameras(self) -> Mapping[str, CameraInfo]:
        """Each camera as its entities are made: with a person sensor, parcel event or not."""
        return MappingProxyType(self._built_cameras)

    @property
    def heard(self) -> bool:
        """The bridge's availability has arrived on MQTT since setup."""
        return self._heard

    # MQTT handlers ---------------------------------------------------------

    @callback
    def _on_available(self, msg: ReceiveMessage) -> None:
        try:
            online = parse_online(msg.payload)
        except ProtocolError as err:
            LOGGER.debug("Ignoring %s: %s", msg.topic, err)
            return
        if not self._heard:
            self._heard = True
            self._cancel_not_heard_timer()
            ir.async_delete_issue(self.hass, DOMAIN, self._not_heard_issue_id)
            if online:
                # The subscriptions are live (the retained availability came through). They
                # reach the broker a moment after the entry is set up (Home Assistant sends
                # them in batches), and nothing listened while Home Assistant restarted or
                # the entry reloaded: presses since the entry was first set up (at most the
                # window) may have come before.
                self.config_entry.async_create_background_task(
                    self.hass,
                    self._ring_missed(self._rung.since, at_start=True),
                    f"{DOMAIN} missed rings",
                )
            if not online and not self.data.online and self._unreachable_timer is None:
                # Heard at last, saying offline, after the whole wait without a word: its
                # repair says so now (no timer runs: the not-heard one stood in for it).
                self._raise_unreachable(dt_util.utcnow())
        self._set_online(online=online, why="went offline")
        # Its info may have come first, while it did not count as online yet.
        self._reload_for_features()

    @callback
    def _on_mqtt_connection(self, connected: bool) -> None:
        """Home Assistant's own connection to the broker.

        Without it nothing the bridge publishes arrives, not even its last will, so
        what Home Assistant shows would go stale: the bridge counts as offline. Once
        HA is connected again it subscribes again and the broker hands over the
        retained messages, so the bridge's ``available`` says whether it is up; until
        that arrives it stays offline.
        """
        if not connected:
            if self._mqtt_lost_at is None:
                self._mqtt_lost_at = dt_util.utcnow()
            self._set_online(
                online=False, why="is unavailable: Home Assistant lost its MQTT connection"
            )

    async def _ring_missed(self, lost_at: datetime, *, at_start: bool = False) -> None:
        """Ring for the presses made while Home Assistant was away from the broker.

        Home Assistant connects to the broker with a new session each time, so a ring
        the bridge sent meanwhile (it queues them while the broker restarts and sends
        them at once) reached no subscriber here. The bridge lists its latest presses:
        those since the connection was lost ring now, once (ids already rung are
        skipped, and so is a ring MQTT delivers after this). Asked once the bridge's
        availability is heard again: until then the doorbell entities are unavailable,
        and a ring would not show on them.

        ``at_start``: the entry has just begun to listen (Home Assistant starting, the
        entry set up or reloaded), and ``lost_at`` is when it was first set up: the
        presses since then, up to the window, count without the margin before (ids rung
        are kept across restarts and reloads, so each rings once).
        """
        try:
            rings = await self._client.rings()
        except DoorstepNotFoundError:
            return  # a bridge from before the list: nothing to ask
        except DoorstepError as err:
            LOGGER.warning(
                "Could not ask Doorstep bridge %s for doorbell presses made while Home "
                "Assistant %s: %s",
                self.bridge_id,
                "began to listen to it" if at_start else "was away from the broker",
                err,
            )
            return
        now = dt_util.utcnow()
        # How far back to look, on this clock; each press's age is on the bridge's steady
        # clock. Both are durations, so a bridge clock hours off from this one changes
        # nothing. An older bridge gives only the press's time, on its own clock.
        margin = timedelta(0) if at_start else MISSED_RINGS_MARGIN
        away = min(now - lost_at + margin, MISSED_RINGS_WINDOW)
        for ring in rings:
            if ring.age is not None:
                missed = timedelta(seconds=ring.age) <= away
            else:
                # An older bridge: its press's time, on its own clock. Not at start, where
                # a few seconds of difference between the clocks would ring an old press.
                missed = not at_start and ring.time >= now - away
            if missed and ring.camera in self._known_cameras:
                self._dispatch_ring(ring)

    @callback
    def _set_online(self, *, online: bool, why: str | None) -> None:
        """Follow the bridge going offline or coming back.

        ``why`` ends the line logged when it goes offline; None logs nothing.
        """
        if online == self.data.online:
            return
        if online:
            if self._mqtt_lost_at is not None:
                lost_at, self._mqtt_lost_at = self._mqtt_lost_at, None
                self.config_entry.async_create_background_task(
                    self.hass, self._ring_missed(lost_at), f"{DOMAIN} missed rings"
                )
            if self._logged_offline:
                LOGGER.info("Doorstep bridge %s is back online", self.bridge_id)
                self._logged_offline = False
            self._cancel_unreachable_timer()
            ir.async_delete_issue(self.hass, DOMAIN, f"{ISSUE_UNREACHABLE}_{self.bridge_id}")
        else:
            if why is not None:
                # Info, once each way (log-when-unavailable): the entities already show it.
                LOGGER.info("Doorstep bridge %s %s", self.bridge_id, why)
                self._logged_offline = True
            self._cancel_unreachable_timer()
            self._unreachable_timer = async_call_later(
                self.hass, UNREACHABLE_ISSUE_DELAY, self._raise_unreachable
            )
        self.async_set_updated_data(replace(self.data, online=online))

    @property
    def _not_heard_issue_id(self) -> str:
        return f"{ISSUE_NOT_HEARD}_{self.bridge_id}"

    @callback
    def _not_heard_in_time(self, now: datetime) -> None:
        """Setup was a while ago and the bridge has said nothing on this broker.

        Everything would look healthy while no ring or motion can arrive. Not while Home
        Assistant itself is not connected to the broker: nothing can be heard then, and
        the loss of that connection has its own timer and repair.
        """
        self._not_heard_timer = None
        if self._heard or not mqtt.is_connected(self.hass):
            return
        self._set_online(online=False, why="has said nothing on MQTT since it was set up")
        self._cancel_unreachable_timer()
        self._raise_unreachable(now)

    @callback
    def _cancel_not_heard_timer(self) -> None:
        if self._not_heard_timer:
            self._not_heard_timer()
            self._not_heard_timer = None

    @callback
    def _raise_unreachable(self, _now: datetime) -> None:
        self._unreachable_timer = None
        if not self._heard and mqtt.is_connected(self.hass):
            # Home Assistant is connected to its broker and the bridge never spoke there:
            # no bridge gone, one that publishes where Home Assistant does not listen.
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                self._not_heard_issue_id,
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key=ISSUE_NOT_HEARD,
                translation_placeholders={
                    "name": self.config_entry.title,
                    "topic": self.topics.available,
                    "health": health_url(self.config_entry.data[CONF_URL]),
                },
            )
            return
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            f"{ISSUE_UNREACHABLE}_{self.bridge_id}",
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_UNREACHABLE,
            translation_placeholders={
                "name": self.config_entry.title,
                "health": health_url(self.config_entry.data[CONF_URL]),
            },
        )

    @callback
    def _cancel_unreachable_timer(self) -> None:
        if self._unreachable_timer:
            self._unreachable_timer()
            self._unreachable_timer = None

    @callback
    def _on_info(self, msg: ReceiveMessage) -> None:
        try:
            info = parse_bridge_info(msg.payload)
        except ProtocolError as err:
            LOGGER.warning("Ignoring malformed bridge info on %s: %s", msg.topic, err)
            return
        if info.id != self.bridge_id:
            self._foreign_bridge(info.id, info.name)
            return
        self._check_protocol(info)
        self.async_set_updated_data(replace(self.data, info=info))
        self._sync_cameras()
        self._reload_for_features()

    # Another bridge under this base topic ------------------------------------

    @property
    def _topic_issue_id(self) -> str:
        return f"{ISSUE_TOPIC_SHARED}_{self.bridge_id}"

    @property
    def foreign_bridges(self) -> Mapping[str, str]:
        """Other bridges heard under this bridge's base topic (id -> name)."""
        return MappingProxyType(self._foreign_bridges)

    @callback
    def _on_discovery(self, msg: ReceiveMessage) -> None:
        """Any bridge's announcement: is it (still) under this bridge's base topic?"""
        other = msg.topic.rpartition("/")[2]
        if other == self.bridge_id:
            return
        if not msg.payload:
            self._foreign_bridge_gone(other)
            return
        try:
            info = parse_bridge_info(msg.payload)
        except ProtocolError:
            return  # the config flow says so, for a bridge not set up yet
        if info.id != other:
            return
        if info.base_topic == self.topics.base:
            self._foreign_bridge(info.id, info.name)
        else:
            self._foreign_bridge_gone(info.id)

    @callback
    def _foreign_bridge(self, bridge_id: str, name: str) -> None:
        """Another bridge publishes under this one's base topic.

        Its messages cannot be told from this bridge's: its cameras' motion turns on the
        sensors of cameras of the same name here, and its share requests would prompt
        here too. A repair names both bridges. Its share states are not taken: each one
        is taken from this bridge's API (see `_on_share`), which does not have them.
        """
        new = bridge_id not in self._foreign_bridges
        self._foreign_bridges[bridge_id] = name
        if not new:
            return
        LOGGER.warning(
            "Doorstep bridge %s (%s) and bridge %s (%s) both publish under the base topic %s",
            self.config_entry.title, self.bridge_id, name, bridge_id, self.topics.base,
        )  # fmt: skip
        self._raise_topic_issue()

    @callback
    def _foreign_bridge_gone(self, bridge_id: str) -> None:
        """The other bridge moved to another base topic (or stopped announcing itself)."""
        if self._foreign_bridges.pop(bridge_id, None) is None:
            return
        if self._foreign_bridges:
            self._raise_topic_issue()
        else:
            LOGGER.info("Doorstep bridge %s has its base topic to itself again", self.bridge_id)
            ir.async_delete_issue(self.hass, DOMAIN, self._topic_issue_id)

    @callback
    def _raise_topic_issue(self) -> None:
        titles = {
            entry.unique_id: entry.title
            for entry in self.hass.config_entries.async_entries(DOMAIN)
            if entry.unique_id
        }
        others = ", ".join(
            f"{titles.get(bridge_id, name)} ({bridge_id})"
            for bridge_id, name in sorted(self._foreign_bridges.items())
        )
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            self._topic_issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_TOPIC_SHARED,
            translation_placeholders={
                "name": self.config_entry.title,
                "bridge_id": self.bridge_id,
                "others": others,
                "topic": self.topics.base,
            },
        )

    @callback
    def _verify_share(self, share_id: str) -> None:
        """Take a share's state from the bridge's API (see `_on_share`), one ask at a time."""
        if share_id in self._verifying:
            self._verifying[share_id] = True  # ask again once the answer is in
            return
        self._verifying[share_id] = False
        # Tracked, not background: one short request, which an unload waits for.
        self.config_entry.async_create_task(
            self.hass, self._async_verify_share(share_id), f"{DOMAIN} share {share_id}"
        )

    async def _async_verify_share(self, share_id: str) -> None:
        try:
            while True:
                try:
                    share = await self._client.share(share_id)
                except DoorstepNotFoundError:
                    LOGGER.debug(
                        "Share %s is not this bridge's (another bridge's, or a state someone"
                        " else published): ignored",
                        share_id,
                    )
                    if share_id in self.data.shares:
                        shares = {k: v for k, v in self.data.shares.items() if k != share_id}
                        self.async_set_updated_data(replace(self.data, shares=shares))
                    return
                except DoorstepError as err:
                    LOGGER.warning(
                        "Could not ask Doorstep bridge %s for the state of share %s: %s",
                        self.bridge_id, share_id, err,
                    )  # fmt: skip
                    return
                if not self._verifying.get(share_id):
                    break
                self._verifying[share_id] = False
        finally:
            self._verifying.pop(share_id, None)
        self.async_share_update(share)

    @callback
    def _reload_for_features(self) -> None:
        """Reload when the cameras' features differ from those their entities were made with.

        Person sensors and parcel events exist only for the cameras that have them: the
        bridge restarted with one turned on or off. Retained or not: after the bridge and
        the broker restarted together, the new info comes retained. After the reload the
        entities are made from the bridge's answer, which matches, so it happens once.
        """
        if self._reload_scheduled or not (self._heard and self.data.online):
            # Only the info of a bridge that says it is online is surely its own: the
            # broker keeps the last one of a bridge that is not connected, and that one,
            # unlike the bridge's HTTP answer, would reload at every setup. Checked again
            # when the bridge's "online" arrives.
            return
        built = _features(self._built_cameras.values())
        if _features(self.data.info.cameras) == built:
            return
        self._reload_scheduled = True
        LOGGER.info("Doorstep bridge %s changed its cameras' detection", self.bridge_id)
        self.hass.config_entries.async_schedule_reload(self.config_entry.entry_id)

    def _check_protocol(self, info: BridgeInfo) -> None:
        issue_id = f"{ISSUE_PROTOCOL}_{self.bridge_id}"
        if info.compatible:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        LOGGER.error(
            "Doorstep bridge %s speaks protocol %s, this integration speaks %s",
            self.bridge_id, info.protocol, PROTOCOL_VERSION,
        )  # fmt: skip
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=ISSUE_PROTOCOL,
            translation_placeholders={
                "name": self.config_entry.title,
                "bridge_protocol": str(info.protocol),
                "protocol": str(PROTOCOL_VERSION),
            },
        )

    @callback
    def _sync_cameras(self) -> None:
        current = {camera.key: camera for camera in self.data.info.cameras}
        added = sorted(current.keys() - self._known_cameras)
        removed = sorted(self._known_cameras - current.keys())
        self._known_cameras = set(current)
        for camera in added:
            # The listeners below make its entities from this info.
            self._built_cameras[camera] = current[camera]
        for camera in removed:
            self._built_cameras.pop(camera, None)
            self._clear_camera_issue(camera)
            for leaf in PROBLEM_ISSUES:
                ir.async_delete_issue(self.hass, DOMAIN, self._problem_issue_id(leaf, camera))
        if added:
            for listener in list(self._add_listeners):
                listener(added)
        if removed:
            for listener in list(self._remove_listeners):
                listener(removed)

    @callback
    def _on_stats(self, msg: ReceiveMessage) -> None:
        try:
            stats = parse_stats(msg.payload)
        except ProtocolError as err:
            LOGGER.debug("Ignoring %s: %s", msg.topic, err)
            return
        if self.data.stats is not None:
            stats = self.data.stats.merged(stats)
        self.async_set_updated_data(replace(self.data, stats=stats))

    @callback
    def _on_egress(self, msg: ReceiveMessage) -> None:
        """Refused connections: the count, and a repair naming the last one while above 0.

        The repair is the coordinator's, not the sensor's: a user who disables the
        sensor still learns that something tried to leave the home.
        """
        try:
            report = parse_egress(msg.payload)
        except ProtocolError as err:
            LOGGER.warning("Ignoring malformed message on %s: %s", msg.topic, err)
            return
        issue_id = f"{ISSUE_EGRESS}_{self.bridge_id}"
        if report.blocked == 0:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
        else:
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                issue_id,
                is_fixable=False,
                is_persistent=False,
                severity=ir.IssueSeverity.WARNING,
                translation_key=ISSUE_EGRESS,
                translation_placeholders={
                    "name": self.config_entry.title,
                    "count": str(report.blocked),
                    "caller": report.last.get("caller", "?"),
                    "destination": report.last.get("destination", "?"),
                },
            )
        self.async_set_updated_data(replace(self.data, egress=report))

    @callback
    def _update_camera(self, camera: str, **changes: Any) -> None:
        state = replace(self.data.camera(camera), **changes)
        cameras = {**self.data.cameras, camera: state}
        self.async_set_updated_data(replace(self.data, cameras=cameras))

    @callback
    def _on_camera(self, msg: ReceiveMessage) -> None:
        parts = self.topics.split_camera_topic(msg.topic)
        if (
            parts is None
            # Rings and parcels are events the bridge never retains: a retained one (a
            # test with mosquitto_pub -r) would happen again at every start and reload.
            or (msg.retain and parts[1] in ("ring", "package"))
            # The bridge clearing what a camera taken out of its config left retained.
            or (not msg.payload and parts[0] not in self._known_cameras)
        ):
            return
        camera, leaf = parts
        try:
            if leaf == "ring":
                self._dispatch_ring(parse_ring(msg.payload))
            elif leaf == "available":
                self._camera_online(camera, parse_online(msg.payload))
            elif leaf == "motion":
                self._update_camera(camera, motion=parse_on_off(msg.payload))
            elif leaf == "person":
                # Empty: person detection is off, the bridge cleared an earlier run's state.
                person = parse_on_off(msg.payload) if msg.payload else None
                self._update_camera(camera, person=person)
            elif leaf == "package":
                package = parse_package(msg.payload)
                for listener in list(self._package_listeners.get(package.camera, ())):
                    listener(package)
            elif leaf in SWITCHES:
                self._update_camera(camera, **{leaf: parse_on_off(msg.payload)})
            elif leaf == "clip":
                # Empty: the last clip was deleted (forgotten, retention) and none is left.
                clip = parse_clip(msg.payload) if msg.payload else None
                self._update_camera(camera, last_clip=clip, clip_heard=True)
            elif leaf == "status" and msg.payload:
                # Not marked retained: the bridge has just published a change.
                self._camera_health(camera, parse_camera_health(msg.payload), live=not msg.retain)
            elif leaf in PROBLEM_ISSUES:
                self._camera_problem(camera, leaf, msg.payload)
        except ProtocolError as err:
            LOGGER.warning("Ignoring malformed message on %s: %s", msg.topic, err)

    @callback
    def _camera_online(self, camera: str, online: bool) -> None:
        # Log once per change, not on every retained repeat.
        if not online and camera not in self._offline_cameras:
            self._offline_cameras.add(camera)
            LOGGER.info("Doorstep camera %s is down", camera)
        elif online and camera in self._offline_cameras:
            self._offline_cameras.discard(camera)
            LOGGER.info("Doorstep camera %s is back", camera)
        self._update_camera(camera, online=online)

    @callback
    def _camera_health(self, camera: str, health: CameraHealth, *, live: bool) -> None:
        if health == self.data.camera(camera).health:
            return  # a retained repeat
        if health.down:
            LOGGER.info("Doorstep camera %s: %s (%s)", camera, health.status, health.detail)
        self._update_camera(camera, health=health)
        self._check_camera_issue(camera, health, live=live)

    @callback
    def _camera_problem(self, camera: str, leaf: str, payload: Payload) -> None:
        """A repair naming the problem while there is one (empty ``payload``: none).

        ``recording_problem``: recording fails or is at risk (a full disk).
        ``mask_problem``: the privacy masks were drawn for another picture size, so they
        cover another part of the picture. The coordinator's, not an entity's: an owner
        who disables the recording problem sensor must still learn of it.
        """
        problem = parse_recording_problem(payload) if payload else None
        if problem == getattr(self.data.camera(camera), leaf):
            return  # a retained repeat
        self._update_camera(camera, **{leaf: problem})
        issue_id = self._problem_issue_id(leaf, camera)
        if problem is None:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id)
            return
        LOGGER.warning(
            "Doorstep camera %s: %s: %s", camera, leaf.replace("_", " "), problem.problem
        )
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=PROBLEM_ISSUES[leaf],
            translation_placeholders={
                "camera": self.data.camera_name(camera),
                "camera_key": camera,
                "bridge": self.config_entry.title,
                "problem": problem.problem,
            },
        )

    def _problem_issue_id(self, leaf: str, camera: str) -> str:
        return f"{PROBLEM_ISSUES[leaf]}_{self.bridge_id}_{camera}"

    # Camera repair issues ----------------------------------------------------

    def _camera_issue_id(self, camera: str) -> str:
        return f"{ISSUE_CAMERA_DOWN}_{self.bridge_id}_{camera}"

    @callback
    def _check_camera_issue(self, camera: str, health: CameraHealth, *, live: bool = False) -> None:
        """Raise the camera's repair issue once it has been down long enough; clear it when up.

        A wrong user, password or path never heals: raised at once. Other reasons
        (a camera rebooting refuses or does not answer for a minute) wait for
        :data:`CAMERA_ISSUE_DELAY`, counted from when the status began (see
        :meth:`_down_since`). ``live``: the status was just published, not handed over.
        """
        self._cancel_camera_timer(camera)
        if health.status == "online":
            self._clear_camera_issue(camera)
            return
        if not health.down:
            return  # connecting: nothing known yet, an existing issue stays
        delay = 0.0
        if health.status not in CAMERA_SETUP_PROBLEMS:
            down_for = (
                dt_util.utcnow() - self._down_since(camera, health, live=live)
            ).total_seconds()
            delay = max(0.0, CAMERA_ISSUE_DELAY - down_for)
        if delay <= 0:
            self._raise_camera_issue(camera, health)
            return

        @callback
        def down_long_enough(_now: datetime) -> None:
            self._camera_timers.pop(camera, None)
            if self.data.camera(camera).health == health:
                self._raise_camera_issue(camera, health)

        self._camera_timers[camera] = async_call_later(self.hass, delay, down_long_enough)

    def _down_since(self, camera: str, health: CameraHealth, *, live: bool) -> datetime:
        """When the camera's current status began, on this clock.

        The bridge's ``since`` is on its own clock, which may be hours off from this one
        (another host, no NTP yet). A status just published began now, here; the same
        status again (a new detail, the message repeated) began when it first did. Only a
        status handed over from before (at setup, a retained message) is taken at the
        bridge's word, never later than now.
        """
        now = dt_util.utcnow()
        known = self._down_began.get(camera)
        if known is not None and known[0] == health.since:
            return known[1]
        began = now if live or health.since is None else min(health.since, now)
        self._down_began[camera] = (health.since, began)
        return began

    @callback
    def _raise_camera_issue(self, camera: str, health: CameraHealth) -> None:
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            self._camera_issue_id(camera),
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=f"camera_{health.status}",
            translation_placeholders={
                "camera": self.data.camera_name(camera),
                "bridge": self.config_entry.title,
                "detail": health.detail or "-",
            },
        )

    @callback
    def _clear_camera_issue(self, camera: str) -> None:
        self._cancel_camera_timer(camera)
        self._down_began.pop(camera, None)
        ir.async_delete_issue(self.hass, DOMAIN, self._camera_issue_id(camera))

    @callback
    def _cancel_camera_timer(self, camera: str) -> None:
        if (cancel := self._camera_timers.pop(camera, None)) is not None:
            cancel()

    @callback
    def _cancel_camera_timers(self) -> None:
        for camera in list(self._camera_timers):
            self._cancel_camera_timer(camera)

    @callback
    def _dispatch_ring(self, ring: Ring) -> None:
        if (ring.camera, ring.id) in self._rung:
            LOGGER.debug("Ring %s of camera %s delivered again; rung once", ring.id, ring.camera)
            return
        self._rung.add(ring.camera, ring.id)
        for listener in list(self._ring_listeners.get(ring.camera, ())):
            listener(ring)

    @callback
    def _on_snapshot(self, msg: ReceiveMessage) -> None:
        parts = self.topics.split_camera_topic(msg.topic)
        if parts is None or not isinstance(msg.payload, bytes):
            return
        camera, snapshot = parts[0], msg.payload or None
        # The same picture again is no new picture: the broker hands the retained one over
        # at each (re)subscription, after Home Assistant or the broker restarted.
        if snapshot == self.data.camera(camera).snapshot:
            return
        # An empty message is the bridge clearing the picture: the clip it showed is gone.
        self._update_camera(camera, snapshot=snapshot, snapshot_at=dt_util.utcnow())

    @callback
    def _on_share(self, msg: ReceiveMessage) -> None:
        share_id = msg.topic.rpartition("/")[2]
        if share_id == "request":  # incoming requests for the bridge, not states
            return
        if not msg.payload:
            if share_id in self.data.shares:  # retained state cleared by the bridge
                shares = {k: v for k, v in self.data.shares.items() if k != share_id}
                self.async_set_updated_data(replace(self.data, shares=shares))
            return
        try:
            share = parse_share(msg.payload)
        except ProtocolError as err:
            LOGGER.warning("Ignoring malformed share state on %s: %s", msg.topic, err)
            return
        if share == self.data.shares.get(share.id):
            return  # the same state again (retained, at each subscription)
        # Anyone who can write to the broker can publish a share state, and what the
        # approvers see (and are asked on their phones) must be what the bridge would
        # release: the state is only a sign to ask the bridge over its API. The same
        # answers whose share it is when another bridge publishes here too.
        self._verify_share(share.id)

    @callback
    def async_share_update(self, share: Share) -> None:
        """Record a share state (from MQTT or an API answer) and tell listeners."""
        old = self.data.shares.get(share.id)
        if old == share:
            return
        shares = {**self.data.shares, share.id: share}
        self.async_set_updated_data(replace(self.data, shares=shares))
        for listener in list(self._share_listeners):
            listener(old, share)
