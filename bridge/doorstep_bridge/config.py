"""Configuration: YAML → voluptuous → frozen dataclasses.

Everything the bridge reads from its config file is validated here, at the edge,
so the rest of the code works with typed, immutable settings. Each feature
package owns the schema of its own section (`motion.settings`, ...); this module
composes them and turns voluptuous errors into one line per problem, each naming
the key path (``cameras.front_door.record.pre_roll: expected a number``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
import re
import ssl
from typing import Any
from urllib.parse import urlsplit

import paho.mqtt.client as paho
import voluptuous as vol
import yaml

from doorstep_bridge.detect.settings import PERSON_SCHEMA, PersonSettings, person_settings
from doorstep_bridge.exceptions import ConfigError
from doorstep_bridge.identity import MIN_TOKEN_LENGTH
from doorstep_bridge.live.settings import LIVE_SCHEMA, LiveSettings, live_settings
from doorstep_bridge.motion.settings import MOTION_SCHEMA, MotionSettings, motion_settings
from doorstep_bridge.mqtt.topics import Topics
from doorstep_bridge.recording.settings import (
    MAX_RETENTION_DAYS,
    RECORD_SCHEMA,
    RETENTION_SCHEMA,
    RecordSettings,
    StorageSettings,
    record_settings,
    retention_periods,
)
from doorstep_bridge.sharing.settings import SHARING_SCHEMA, SharingSettings, sharing_settings
from doorstep_bridge.urls import NETWORK_SCHEMES, address_problem, redact_url
from doorstep_bridge.validation import Polygon, boolean, integer, number, polygons, text

#: Words that cannot name a camera: topics of their own under the base topic, or names
#: the bridge uses in the storage folder (cameras get a folder each there).
RESERVED_CAMERA_NAMES = frozenset(
    {"available", "bridge", "share", "discovery", "shares", "audit", "api_token", "bridge_id"}
)
_CAMERA_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,62}$")
_TOPIC_LEVELS = re.compile(r"^[^#+\s]+$")
DEFAULT_BASE_TOPIC = "doorstep"
#: MQTT's limit on a topic or filter, in bytes of UTF-8 (a two-byte length prefix).
MAX_TOPIC_BYTES = 65535
#: Room the bridge needs under its base topic: ``/<camera>/<switch>/set`` at most.
_BASE_TOPIC_ROOM = 256


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """TLS towards the broker."""

    ca_certs: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    insecure: bool = False


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """Broker connection and the base topic every bridge topic lives under."""

    host: str = "127.0.0.1"
    port: int = 1883
    base_topic: str = DEFAULT_BASE_TOPIC
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str | None = None
    keepalive: int = 30
    tls: TlsSettings | None = None


@dataclass(frozen=True, slots=True)
class HttpSettings:
    """The bridge's HTTP API listener."""

    host: str = "127.0.0.1"
    port: int = 5080
    token: str | None = field(default=None, repr=False)
    public_url: str | None = None

    @property
    def announced_url(self) -> str:
        """The API URL Home Assistant is told to use (discovery, bridge info)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        return f"http://{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class DoorbellSettings:
    """An outside MQTT button that rings this camera's doorbell.

    Attributes:
        topic: Topic the button publishes on (e.g. ``zigbee2mqtt/front_button``).
        payload: When set, only messages matching it count as a press: a string
            compared with the whole payload, or a mapping whose items must all be
            present in the JSON payload (``{"action": "single"}``).
        debounce: Presses closer together than this many seconds are one press.
    """

    topic: str | None = None
    payload: str | tuple[tuple[str, Any], ...] | None = None
    debounce: float = 2.0


@dataclass(frozen=True, slots=True)
class CameraSettings:
    """One camera: where its video comes from and what the bridge does with it."""

    name: str
    friendly_name: str
    source: str = field(repr=False)
    detect_source: str | None = field(default=None, repr=False)
    detect_fps: float = 5.0
    doorbell: DoorbellSettings = field(default_factory=DoorbellSettings)
    motion: MotionSettings = field(default_factory=MotionSettings)
    person: PersonSettings = field(default_factory=PersonSettings)
    record: RecordSettings = field(default_factory=RecordSettings)
    privacy_masks: tuple[Polygon, ...] = ()
    live: LiveSettings = field(default_factory=LiveSettings)

    @property
    def safe_source(self) -> str:
        """The source with any password removed, fit for logs and diagnostics."""
        return redact_url(self.source)


@dataclass(frozen=True, slots=True)
class Config:
    """The whole validated configuration."""

    mqtt: MqttSettings
    http: HttpSettings
    storage: StorageSettings
    cameras: dict[str, CameraSettings]
    sharing: SharingSettings
    name: str = "Doorstep"
    log_level: str = "INFO"


def _source(value: Any) -> str:
    """A camera source: rtsp://, http(s):// (MJPEG), demo:// or a file path."""
    source: str = text(value)
    scheme = urlsplit(source).scheme.lower() if "://" in source else ""
    if scheme not in {"rtsp", "rtsps", "http", "https", "demo", "file", ""}:
        raise vol.Invalid(
            "expected rtsp://..., http(s)://... (MJPEG), demo:// or a file path,"
            f" not a {scheme}:// URL"
        )
    if scheme in NETWORK_SCHEMES:
        problem = address_problem(source)
        if problem is not None:
            raise vol.Invalid(problem)
    if scheme == "file":
        _check_file_url(source)
    if not scheme:
        _expanded_path(source)
    return source


def _expanded_path(value: str) -> Path:
    """``value`` as a path, a leading ``~`` or ``~user`` made that home folder.

    Raises:
        vol.Invalid: The user does not exist, ``~`` has no home folder to stand for,
            or the path holds a NUL (no file can have it, and Python raises on it).
    """
    if "\0" in value:
        raise vol.Invalid("must not contain a NUL character")
    try:
        return Path(value).expanduser()
    except RuntimeError:  # pathlib's "Could not determine home directory."
        head = value.split("/", 1)[0]
        if head == "~":
            raise vol.Invalid(
                "cannot tell the home folder for ~ (HOME is not set): write the path in full"
            ) from None
        raise vol.Invalid(f"no such user {head[1:]!r} for {head}") from None


def _path_setting(value: Any) -> str:
    """A file or folder path: a ``~user`` in it must name a user of this machine."""
    path: str = text(value)
    _expanded_path(path)
    return path


def _check_file_url(source: str) -> None:
    """Refuse a file:// URL whose path is not the one the user meant."""
    parts = urlsplit(source)
    # file://front.mp4 reads front.mp4 as a host and opened the path "" (the working
    # directory); RFC 8089 allows no host but localhost.
    if parts.netloc.lower() not in {"", "localhost"} or not parts.path:
        raise vol.Invalid(
            "expected file:///absolute/path (three slashes) or a plain file path,"
            " relative to this config file"
        )
    # A ? or # as itself ends the path: file:///srv/a#1.mp4 would open /srv/a.
    if "?" in source or "#" in source:
        raise vol.Invalid(
            "write ? and # in a file:// URL percent-encoded (? as %3F, # as %23),"
            " or use a plain file path"
        )


def _topic_encoding_problem(topic: str, limit: int) -> str | None:
    """What makes `topic` unfit for the wire whatever its levels: NUL, bad UTF-8, length."""
    # A broker drops a client that sends NUL in a topic (MQTT 3.1.1 section 1.5.3), and
    # paho raises on a topic it cannot encode or that is over the limit.
    if "\0" in topic:
        return "must not contain a NUL character"
    try:
        size = len(topic.encode("utf-8"))
    except UnicodeEncodeError:
        return "must be valid UTF-8 (it contains an unpaired surrogate)"
    if size > limit:
        return f"must be at most {limit} bytes long (UTF-8)"
    return None


def _topic_filter(value: Any) -> str:
    """An MQTT subscription filter, checked as brokers and paho check it.

    paho raises on a malformed filter inside its network thread when it
    (re)subscribes, which ends the broker connection for good: a typo in a button's
    topic would silence the whole bridge. So the rules are enforced here, where the
    user can be told which key is wrong.
    """
    topic: str = text(value)
    problem = _topic_encoding_problem(topic, MAX_TOPIC_BYTES)
    if problem:
        raise vol.Invalid(problem)
    if topic.startswith("$"):
        # `$SYS/...` is the broker's own; `$share/<group>/...` is a shared subscription,
        # whose messages arrive under the plain topic and would never ring.
        raise vol.Invalid(
            "must not start with '$': the broker keeps those topics for itself, and a shared "
            "subscription ($share/...) would never ring"
        )
    levels = topic.split("/")
    for index, level in enumerate(levels):
        if "#" in level and level != "#":
            raise vol.Invalid("'#' must be a whole level (as in zigbee2mqtt/#)")
        if level == "#" and index != len(levels) - 1:
            raise vol.Invalid("'#' must be the last level (as in zigbee2mqtt/#)")
        if "+" in level and level != "+":
            raise vol.Invalid("'+' must be a whole level (as in zigbee2mqtt/+/action)")
    return topic


def _base_topic(value: Any) -> str:
    topic: str = text(value)
    if not _TOPIC_LEVELS.match(topic) or topic.startswith("/") or topic.endswith("/"):
        raise vol.Invalid("expected an MQTT topic without wildcards or leading/trailing '/'")
    # Every topic the bridge publishes or subscribes to starts with it.
    problem = _topic_encoding_problem(topic, MAX_TOPIC_BYTES - _BASE_TOPIC_ROOM)
    if problem:
        raise vol.Invalid(problem)
    if topic.startswith("$"):
        # Brokers keep `$...` topics to themselves: nothing the bridge sends would arrive.
        raise vol.Invalid("must not start with '$' (the broker keeps those topics for itself)")
    return topic


def _buttons_outside_own_topics(config: dict[str, Any]) -> dict[str, Any]:
    """A doorbell topic must not match what the bridge itself publishes.

    Every motion, clip or availability message the bridge sends would ring; a button
    publishing under the base topic on a topic of its own is fine.
    """
    base = config.get("mqtt", {}).get("base_topic", DEFAULT_BASE_TOPIC)
    own = Topics(base).published(config["cameras"])
    problems = []
    for name, camera in config["cameras"].items():
        topic = camera.get("doorbell", {}).get("topic")
        matched = next((t for t in own if topic and paho.topic_matches_sub(topic, t)), None)
        if matched is not None:
            problems.append(
                vol.Invalid(
                    f"matches the bridge's own topic {matched}: every message the bridge sends "
                    "there would ring; use the button's own topic "
                    "(e.g. zigbee2mqtt/front_button/action)",
                    path=["cameras", name, "doorbell", "topic"],
                )
            )
    if problems:
        raise vol.MultipleInvalid(problems)
    return config


LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def _log_level(value: Any) -> str:
    """``debug``, ``info``, ``warning`` or ``error`` (any case)."""
    level = text(value).upper()
    if level not in LOG_LEVELS:
        raise vol.Invalid("expected debug, info, warning or error")
    return level


def _port(value: Any) -> int:
    result: int = integer(1, 65535)(value)
    return result


def _password(value: Any) -> str:
    """Any string, even empty or with spaces: it is the broker's to judge, not ours."""
    if not isinstance(value, str):
        # YAML reads `password: 1234` as a number: say how to keep it a string.
        raise vol.Invalid('expected a string (quote a password YAML reads otherwise: "1234")')
    return value


def _doorbell_payload(value: Any) -> Any:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and value:
        return value
    raise vol.Invalid("expected a string or a mapping such as {action: single}")


_TLS_SCHEMA = vol.Schema(
    {
        vol.Optional("ca_certs"): _path_setting,
        vol.Optional("certfile"): _path_setting,
        vol.Optional("keyfile"): _path_setting,
        vol.Optional("insecure"): boolean,
    }
)

_MQTT_SCHEMA = vol.Schema(
    {
        vol.Optional("host"): text,
        vol.Optional("port"): _port,
        vol.Optional("base_topic"): _base_topic,
        vol.Optional("username"): text,
        vol.Optional("password"): _password,
        vol.Optional("client_id"): text,
        vol.Optional("keepalive"): integer(5, 3600),
        vol.Optional("tls"): vol.Any(boolean, _TLS_SCHEMA),
    }
)


def _http_url(value: Any) -> str:
    url: str = text(value)
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise vol.Invalid("expected an http(s):// URL such as http://192.168.1.20:5080")
    return url


_HTTP_SCHEMA = vol.Schema(
    {
        vol.Optional("host"): text,
        vol.Optional("port"): _port,
        vol.Optional("public_url"): _http_url,
        vol.Optional("token"): vol.All(
            text,
            vol.Length(
                min=MIN_TOKEN_LENGTH, msg=f"expected at least {MIN_TOKEN_LENGTH} characters"
            ),
        ),
    }
)

_STORAGE_SCHEMA = vol.Schema(
    {
        vol.Optional("path"): _path_setting,
        vol.Optional("retention_days"): number(0.0, MAX_RETENTION_DAYS),
        vol.Optional("retention"): RETENTION_SCHEMA,
        vol.Optional("max_size_gb"): number(0.01),
    }
)


def _payload_needs_topic(doorbell: dict[str, Any]) -> dict[str, Any]:
    """A payload filters the messages of ``topic``; alone it would match nothing, silently."""
    if "payload" in doorbell and "topic" not in doorbell:
        raise vol.Invalid(
            "a payload only filters the messages of the doorbell topic: set the topic too",
            path=["payload"],
        )
    return doorbell


_DOORBELL_SCHEMA = vol.All(
    vol.Schema(
        {
            vol.Optional("topic"): _topic_filter,
            vol.Optional("payload"): _doorbell_payload,
            vol.Optional("debounce"): number(0.0, 60.0),
        }
    ),
    _payload_needs_topic,
)


def _people_need_person_detection(camera: dict[str, Any]) -> dict[str, Any]:
    """``record.motion: people`` would record nothing without person detection."""
    wants_people = camera.get("record", {}).get("motion") == "people"
    if wants_people and not camera.get("person", {}).get("enabled", False):
        raise vol.Invalid(
            "'people' records only when person detection sees someone: "
            "turn person detection on for this camera, or record all motion",
            path=["record", "motion"],
        )
    return camera


_CAMERA_FIELDS = vol.Schema(
    {
        vol.Required("source"): _source,
        vol.Optional("name"): text,
        vol.Optional("detect_source"): _source,
        vol.Optional("detect_fps"): number(0.5, 30.0),
        vol.Optional("doorbell"): _DOORBELL_SCHEMA,
        vol.Optional("motion"): MOTION_SCHEMA,
        vol.Optional("person"): PERSON_SCHEMA,
        vol.Optional("record"): RECORD_SCHEMA,
        vol.Optional("privacy_masks"): polygons,
        vol.Optional("live"): LIVE_SCHEMA,
    }
)
_CAMERA_SCHEMA = vol.All(_CAMERA_FIELDS, _people_need_person_detection)


def _camera_name(value: Any) -> str:
    if not isinstance(value, str) or not _CAMERA_NAME.match(value):
        raise vol.Invalid("camera names use lowercase letters, digits and '_' (e.g. front_door)")
    if value in RESERVED_CAMERA_NAMES:
        raise vol.Invalid(f"'{value}' is reserved; choose another camera name")
    return value


_SCHEMA = vol.All(
    vol.Schema(
        {
            vol.Optional("name"): text,
            vol.Optional("log_level"): _log_level,
            vol.Optional("mqtt"): _MQTT_SCHEMA,
            vol.Optional("http"): _HTTP_SCHEMA,
            vol.Optional("storage"): _STORAGE_SCHEMA,
            vol.Required("cameras"): vol.All(
                {_camera_name: _CAMERA_SCHEMA},
                vol.Length(min=1, msg="expected at least one camera"),
            ),
            vol.Optional("sharing"): SHARING_SCHEMA,
        }
    ),
    _buttons_outside_own_topics,
)


def _format_error(error: vol.Invalid) -> str:
    path = ".".join(str(part) for part in error.path)
    message = error.error_message
    if message == "extra keys not allowed":
        message = "unknown key"
    elif message == "required key not provided":
        message = "required key is missing"
    elif isinstance(error, vol.DictInvalid) or message.startswith("expected dict"):
        # voluptuous says "expected a dictionary" (a schema) or "expected dict" (the type).
        message = "expected a mapping"
    return f"{path}: {message}" if path else message


def _friendly_name(camera: str) -> str:
    return camera.replace("_", " ").capitalize()


def _local_path(value: str, base_dir: Path) -> Path:
    """A path from the config file: a relative one is relative to the file's folder.

    Not to the working directory, which is ``/`` under systemd and another folder
    than the config's in the container.
    """
    path = _expanded_path(value)  # validated by the schema: a ~user named exists
    return path if path.is_absolute() else base_dir / path


def _local_source(source: str, base_dir: Path) -> str:
    """A camera source with a plain file path resolved; URLs as written.

    A ``file://`` URL is absolute by its form (RFC 8089), so only plain paths move.
    """
    if "://" in source:
        return source
    return str(_local_path(source, base_dir))


def _build(data: dict[str, Any], base_dir: Path) -> Config:
    mqtt_data = dict(data.get("mqtt", {}))
    tls = mqtt_data.pop("tls", None)
    tls_settings = None
    if tls is True:
        tls_settings = TlsSettings()
    elif isinstance(tls, dict):
        files = {
            key: str(_local_path(tls[key], base_dir))
            for key in ("ca_certs", "certfile", "keyfile")
            if key in tls
        }
        tls_settings = TlsSettings(**{**tls, **files})

    storage_data = dict(data.get("storage", {}))
    storage_path = _local_path(storage_data.pop("path", "./doorstep-data"), base_dir)
    storage_data["retention"] = retention_periods(
        storage_data.get("retention_days"), storage_data.get("retention", {})
    )

    cameras: dict[str, CameraSettings] = {}
    for name, cam in data["cameras"].items():
        doorbell = dict(cam.get("doorbell", {}))
        if isinstance(doorbell.get("payload"), dict):
            doorbell["payload"] = tuple(sorted(doorbell["payload"].items()))
        cameras[name] = CameraSettings(
            name=name,
            friendly_name=cam.get("name", _friendly_name(name)),
            source=_local_source(cam["source"], base_dir),
            detect_source=(
                _local_source(cam["detect_source"], base_dir) if "detect_source" in cam else None
            ),
            detect_fps=cam.get("detect_fps", 5.0),
            doorbell=DoorbellSettings(**doorbell),
            motion=motion_settings(cam.get("motion", {})),
            person=person_settings(cam.get("person", {})),
            record=record_settings(cam.get("record", {})),
            privacy_masks=cam.get("privacy_masks", ()),
            live=live_settings(cam.get("live", {})),
        )

    return Config(
        name=data.get("name", "Doorstep"),
        log_level=data.get("log_level", "INFO"),
        mqtt=MqttSettings(**mqtt_data, tls=tls_settings),
        http=HttpSettings(**data.get("http", {})),
        storage=StorageSettings(path=storage_path, **storage_data),
        cameras=cameras,
        sharing=sharing_settings(data.get("sharing", {})),
    )


def parse_config(raw: Any, base_dir: Path | None = None) -> Config:
    """Validate already-loaded YAML data.

    Args:
        raw: The parsed YAML document.
        base_dir: The config file's folder, that relative paths (``storage.path``,
            file sources, the TLS files) are resolved against; the working
            directory when not given.

    Raises:
        ConfigError: With one line per problem.
    """
    if not isinstance(raw, dict):
        raise ConfigError(["expected a mapping at the top level (mqtt:, http:, cameras:, ...)"])
    try:
        data = _SCHEMA(raw)
    except vol.MultipleInvalid as err:
        raise ConfigError(sorted({_format_error(e) for e in err.errors})) from None
    except vol.Invalid as err:
        raise ConfigError([_format_error(err)]) from None
    return _build(data, base_dir or Path.cwd())


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping.

    PyYAML keeps the last of two equal keys without a word: a second ``record:``
    under a camera, or two cameras of the same name, would silently replace the
    first, which is just what rejecting unknown keys is meant to prevent. Each one
    found is a problem in :attr:`duplicates`, so all are reported at once.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.duplicates: list[str] = []

    def construct_document(self, node: yaml.Node) -> Any:
        # Checked on the node tree as written, before construction: merging (``<<``)
        # rewrites the merged mappings' nodes in place.
        self._find_duplicates(node)
        return super().construct_document(node)

    def _find_duplicates(self, root: yaml.Node) -> None:
        stack: list[tuple[yaml.Node, list[str]]] = [(root, [])]
        seen: set[int] = set()
        while stack:
            node, path = stack.pop()
            if id(node) in seen:  # an alias: the anchored node was checked already
                continue
            seen.add(id(node))
            if isinstance(node, yaml.SequenceNode):
                stack.extend((item, [*path, str(i)]) for i, item in enumerate(node.value))
            if not isinstance(node, yaml.MappingNode):
                continue
            lines: dict[Any, int] = {}
            for key_node, value_node in node.value:
                stack.append((value_node, [*path, str(key_node.value)]))
                # Keys merged in with ``<<`` may be overridden: that is what merging is for.
                if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(
                    key_node, yaml.ScalarNode
                ):
                    continue
                # Compared as constructed, as the mapping would: `1` and `0x1` are one key.
                key = self.construct_object(key_node)
                line = key_node.start_mark.line + 1
                if key in lines:
                    self.duplicates.append(
                        f"{'.'.join([*path, str(key_node.value)])}: duplicate key "
                        f"(lines {lines[key]} and {line}); "
                        "give it once, or the second would replace the first"
                    )
                else:
                    lines[key] = line


def config_warnings(config: Config) -> list[str]:
    """Settings that are valid but most likely not what the owner meant; one line each."""
    found = []
    for name, camera in config.cameras.items():
        doorbell = camera.doorbell
        if doorbell.topic is None or doorbell.payload is not None:
            continue
        levels = doorbell.topic.split("/")
        if levels[0] == "zigbee2mqtt" and levels[-1] not in ("action", "#"):
            # zigbee2mqtt publishes a device's whole state there: every battery, voltage or
            # link-quality report would ring as well as a press.
            # The value is JSON, which is YAML too: the add-on's option takes it as it is.
            found.append(
                f"cameras.{name}.doorbell.payload: not set, so every message on"
                f" {doorbell.topic} rings, and zigbee2mqtt also sends the button's battery"
                ' and link-quality reports there; set it to {"action": "single"} (the action'
                " your button sends when pressed)"
            )
    return found


def load_config(path: Path) -> Config:
    """Read and validate a YAML config file.

    Raises:
        ConfigError: The file is missing, not YAML, or invalid; one line per problem.
    """
    try:
        text_data = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError([f"{path}: cannot read: {err}"]) from None
    loader = _StrictLoader(text_data)
    try:
        raw = loader.get_single_data()
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(err, "problem", None) or "invalid YAML"
        raise ConfigError([f"{path}: not valid YAML{where}: {problem}"]) from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise ConfigError(sorted(loader.duplicates))
    config = parse_config(raw, path.resolve().parent)
    if config.mqtt.tls is not None and (problems := tls_problems(config.mqtt.tls)):
        raise ConfigError(problems)
    return config


def tls_problems(tls: TlsSettings) -> list[str]:
    """Why the TLS files towards the broker cannot be used, one line each; none when they can.

    Checked with the config rather than when connecting: a certificate file that is
    missing or not PEM would otherwise stop the bridge at start with an SSL error that
    names neither the key nor the file.
    """
    context = ssl.create_default_context()
    if tls.ca_certs is not None:
        try:
            context.load_verify_locations(cafile=tls.ca_certs)
        except (OSError, ssl.SSLError) as err:
            return [f"mqtt.tls.ca_certs: cannot use {tls.ca_certs}: {_tls_reason(err)}"]
    if tls.certfile is None:
        if tls.keyfile is not None:
            return ["mqtt.tls.keyfile: a key needs its certificate: set mqtt.tls.certfile too"]
        return []
    try:
        context.load_cert_chain(tls.certfile, tls.keyfile)
    except (OSError, ssl.SSLError) as err:
        files = tls.certfile if tls.keyfile is None else f"{tls.certfile} and {tls.keyfile}"
        key = "certfile" if tls.keyfile is None else "certfile/keyfile"
        return [f"mqtt.tls.{key}: cannot use {files}: {_tls_reason(err)}"]
    return []


def _tls_reason(err: OSError) -> str:
    """An SSL or file error in words: what OpenSSL found wrong, or the system's reason."""
    if isinstance(err, ssl.SSLError):
        if err.reason == "NO_CERTIFICATE_OR_CRL_FOUND":
            return "no PEM certificate in it"
        if err.reason == "KEY_VALUES_MISMATCH":
            return "the key is not the certificate's"
        if "PEM lib" in str(err):  # OpenSSL gives no reason of its own for these
            return (
                "not a PEM certificate with its private key (a key in a file of its own"
                " goes in mqtt.tls.keyfile; a key locked with a password cannot be used)"
            )
        return err.reason or str(err)
    return err.strerror or str(err)
