"""The Home Assistant OS add-on: its options turned into a bridge config.

The Supervisor hands the add-on its options as ``/data/options.json`` (the shape
declared in ``addon/doorstep/config.yaml``) and the broker of the ``mqtt``
service at ``http://supervisor/services/mqtt``. :func:`addon_config` turns both
into the same mapping a YAML config file holds, then validates it with the
bridge's own schema, so the add-on runs exactly the config ``check`` accepts.

Every problem names the option path (``cameras.0.privacy_masks.1: ...``), the
index being the camera's place in the add-on's list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
import json
from pathlib import Path
import re
from typing import Any
import urllib.error
import urllib.request

import voluptuous as vol
import yaml

from doorstep_bridge.config import Config, config_warnings, parse_config
from doorstep_bridge.exceptions import ConfigError
from doorstep_bridge.files import atomic_write
from doorstep_bridge.recording.settings import CLIP_KINDS

#: Port the API listens on inside the add-on container (config.yaml's ``ports``).
ADDON_HTTP_PORT = 5080
#: Where the storage choices live inside the add-on container.
STORAGE_ROOTS = {"media": Path("/media"), "data": Path("/data")}
_POINT = re.compile(r"^\s*(-?\d+)\s*,\s*(-?\d+)\s*$")


@dataclass(frozen=True, slots=True)
class Broker:
    """The broker the Supervisor's ``mqtt`` service names."""

    host: str
    port: int
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ssl: bool = False


@dataclass(frozen=True, slots=True)
class AddonEnvironment:
    """What the add-on's container decides, rather than its options.

    Attributes:
        hostname: The add-on's host name on the Supervisor network; announced to
            Home Assistant as the API's address.
        listen_host: Address the API listens on.
        listen_port: Port the API listens on (and is announced with).
        storage_roots: Folder of each ``storage`` choice (``media``, ``data``).
    """

    hostname: str
    listen_host: str = "0.0.0.0"  # noqa: S104 - the container's own network namespace
    listen_port: int = ADDON_HTTP_PORT
    storage_roots: Mapping[str, Path] = field(default_factory=lambda: dict(STORAGE_ROOTS))


def _polygon(value: Any, what: str = "a mask") -> list[list[int]]:
    """``"0,0 300,0 300,200"`` → ``[[0, 0], [300, 0], [300, 200]]``."""
    if not isinstance(value, str):
        raise vol.Invalid("expected points as text, e.g. '0,0 300,0 300,200 0,200'")
    points = []
    for part in value.replace(";", " ").split():
        match = _POINT.match(part)
        if match is None:
            raise vol.Invalid(f"'{part}' is not a point; expected x,y pairs such as '0,0 300,0'")
        points.append([int(match.group(1)), int(match.group(2))])
    if len(points) < 3:
        raise vol.Invalid(f"{what} needs at least 3 points, e.g. '0,0 300,0 300,200 0,200'")
    return points


def _zone(value: Any) -> tuple[str, list[list[int]]]:
    """``"doorstep: 200,300 440,300 440,360"`` → ``("doorstep", [[200, 300], ...])``."""
    if not isinstance(value, str) or ":" not in value:
        raise vol.Invalid("expected a name, a colon and points, e.g. 'doorstep: 0,0 300,0 300,200'")
    name, _, points = value.partition(":")
    if not name.strip():
        raise vol.Invalid("the zone has no name before the colon, e.g. 'path: 0,0 300,0 300,200'")
    return name.strip(), _polygon(points, "a zone")


def _zones(value: Any) -> dict[str, list[list[int]]]:
    """The ``motion_zones`` list as the bridge's ``motion.zones`` mapping."""
    if not isinstance(value, list):
        raise vol.Invalid("expected a list of zones, one per line")
    zones: dict[str, list[list[int]]] = {}
    for index, item in enumerate(value):
        try:
            name, polygon = _zone(item)
        except vol.Invalid as err:
            raise vol.Invalid(err.msg, path=[index]) from None
        if name in zones:
            raise vol.Invalid(f"the zone '{name}' is named twice", path=[index])
        zones[name] = polygon
    return zones


def _payload(value: Any) -> Any:
    """A doorbell payload: plain text, or a JSON object such as ``{"action": "single"}``."""
    if not isinstance(value, str) or not value.strip():
        raise vol.Invalid('expected text, or a JSON object such as {"action": "single"}')
    if value.lstrip().startswith("{"):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as err:
            raise vol.Invalid(f"not a valid JSON object: {err.msg}") from None
        if not isinstance(parsed, dict) or not parsed:
            raise vol.Invalid("expected a non-empty JSON object")
        return parsed
    return value


#: Bridge ``storage.retention.<kind>`` → add-on option.
_RETENTION_OPTIONS = {kind: f"retention_{kind}_days" for kind in CLIP_KINDS}

_RETENTION_SCHEMA: dict[Any, Any] = {
    vol.Optional(option): vol.Any(int, float) for option in _RETENTION_OPTIONS.values()
}

_CAMERA = vol.Schema(
    {
        vol.Required("name"): str,
        vol.Required("source"): str,
        vol.Optional("friendly_name"): str,
        vol.Optional("detect_source"): str,
        vol.Optional("doorbell_topic"): str,
        vol.Optional("doorbell_payload"): _payload,
        vol.Optional("privacy_masks"): [_polygon],
        vol.Optional("motion_masks"): [_polygon],
        vol.Optional("motion_zones"): _zones,
        vol.Optional("pre_roll"): vol.Any(int, float),
        vol.Optional("post_roll"): vol.Any(int, float),
        vol.Optional("person_detection"): bool,
        vol.Optional("record_motion"): str,
    }
)

_OPTIONS = vol.Schema(
    {
        vol.Required("cameras"): vol.All(
            [_CAMERA], vol.Length(min=1, msg="expected at least one camera")
        ),
        vol.Optional("storage", default="media"): vol.In(
            sorted(STORAGE_ROOTS), msg="expected media or data"
        ),
        vol.Optional("retention_days"): vol.Any(int, float),
        vol.Optional("max_size_gb"): vol.Any(int, float),
        vol.Optional("base_topic"): str,
        vol.Optional("api_token"): str,
        vol.Optional("public_url"): str,
        vol.Optional("link_ttl_hours"): vol.Any(int, float),
        vol.Optional("max_window_hours"): vol.Any(int, float),
        vol.Optional("redact_faces"): bool,
        vol.Optional("decision_timeout_minutes"): vol.Any(int, float),
        vol.Optional("log_level"): str,
    }
).extend(_RETENTION_SCHEMA)

#: Add-on option → bridge key, per section.
_SHARING_KEYS = ("link_ttl_hours", "max_window_hours", "redact_faces", "decision_timeout_minutes")


def _option_path(path: list[Any]) -> str:
    return ".".join(str(part) for part in path)


def _validate_options(options: Any) -> dict[str, Any]:
    if not isinstance(options, dict):
        raise ConfigError(["options: expected a mapping (the add-on's options.json)"])
    try:
        data: dict[str, Any] = _OPTIONS(options)
    except vol.MultipleInvalid as err:
        problems = []
        for error in err.errors:
            message = error.error_message
            if message == "extra keys not allowed":
                message = "unknown option"
            elif message == "required key not provided":
                message = "required option is missing"
            path = _option_path(error.path)
            problems.append(f"{path}: {message}" if path else message)
        raise ConfigError(sorted(set(problems))) from None
    return data


def _camera(camera: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"source": camera["source"]}
    for option, key in (("friendly_name", "name"), ("detect_source", "detect_source")):
        if option in camera:
            result[key] = camera[option]
    doorbell = {}
    if "doorbell_topic" in camera:
        doorbell["topic"] = camera["doorbell_topic"]
    if "doorbell_payload" in camera:
        doorbell["payload"] = camera["doorbell_payload"]
    if doorbell:
        result["doorbell"] = doorbell
    record: dict[str, Any] = {k: camera[k] for k in ("pre_roll", "post_roll") if k in camera}
    if "record_motion" in camera:
        record["motion"] = camera["record_motion"]
    if "person_detection" in camera:
        result["person"] = {"enabled": camera["person_detection"]}
    if record:
        result["record"] = record
    if camera.get("privacy_masks"):
        result["privacy_masks"] = camera["privacy_masks"]
    motion: dict[str, Any] = {}
    if camera.get("motion_masks"):
        motion["masks"] = camera["motion_masks"]
    if camera.get("motion_zones"):
        motion["zones"] = camera["motion_zones"]
    if motion:
        result["motion"] = motion
    return result


def _storage(data: dict[str, Any], environment: AddonEnvironment) -> dict[str, Any]:
    """The ``storage`` section: the folder, the retention periods and the size cap."""
    storage: dict[str, Any] = {
        "path": str(environment.storage_roots[data["storage"]] / "doorstep"),
    }
    for key in ("retention_days", "max_size_gb"):
        if key in data:
            storage[key] = data[key]
    # A kind's own option, else retention_days (kept from installs made before the
    # per-kind options), else the bridge's default for that kind.
    retention = {
        kind: data[option] for kind, option in _RETENTION_OPTIONS.items() if option in data
    }
    if retention:
        storage["retention"] = retention
    return storage


def addon_config_data(
    options: Any, broker: Broker | None, environment: AddonEnvironment
) -> dict[str, Any]:
    """The bridge config (as YAML data) for the add-on's options and broker.

    Args:
        options: The parsed ``options.json``.
        broker: The Supervisor's MQTT service, or ``None`` to keep the bridge's
            default broker (``127.0.0.1:1883``).
        environment: Host name, listener and storage folders of the container.

    Raises:
        ConfigError: One line per problem, each naming the option path.
    """
    data = _validate_options(options)
    cameras: dict[str, Any] = {}
    duplicates = []
    index_of: dict[str, int] = {}
    for index, camera in enumerate(data["cameras"]):
        name = camera["name"]
        if name in cameras:
            duplicates.append(f"cameras.{index}.name: '{name}' is already used by another camera")
            continue
        index_of[name] = index
        cameras[name] = _camera(camera)
    if duplicates:
        raise ConfigError(duplicates)

    mqtt: dict[str, Any] = {}
    if broker is not None:
        mqtt = {"host": broker.host, "port": broker.port}
        if broker.username:
            mqtt["username"] = broker.username
        if broker.password:
            mqtt["password"] = broker.password
        if broker.ssl:
            mqtt["tls"] = True
    if "base_topic" in data:
        mqtt["base_topic"] = data["base_topic"]

    http: dict[str, Any] = {
        "host": environment.listen_host,
        "port": environment.listen_port,
        # Home Assistant reaches the add-on by its host name on the Supervisor network.
        "public_url": data.get(
            "public_url", f"http://{environment.hostname}:{environment.listen_port}"
        ),
    }
    if "api_token" in data:
        http["token"] = data["api_token"]

    storage = _storage(data, environment)

    result: dict[str, Any] = {"mqtt": mqtt, "http": http, "storage": storage, "cameras": cameras}
    if "log_level" in data:
        result["log_level"] = data["log_level"]
    sharing = {key: data[key] for key in _SHARING_KEYS if key in data}
    if sharing:
        result["sharing"] = sharing
    _check(result, index_of)
    return result


_BRIDGE_TO_OPTION = {
    "http.token": "api_token",
    "http.public_url": "public_url",
    "mqtt.base_topic": "base_topic",
    "storage.retention_days": "retention_days",
    **{f"storage.retention.{kind}": option for kind, option in _RETENTION_OPTIONS.items()},
    "storage.max_size_gb": "max_size_gb",
}
_CAMERA_TO_OPTION = {
    "name": "friendly_name",
    "detect_source": "detect_source",
    "doorbell.topic": "doorbell_topic",
    "doorbell.payload": "doorbell_payload",
    "record.pre_roll": "pre_roll",
    "record.post_roll": "post_roll",
    "record.motion": "record_motion",
    "person.enabled": "person_detection",
    "privacy_masks": "privacy_masks",
    "motion.masks": "motion_masks",
    # The bridge names a zone by its name, which is how the option's line starts.
    "motion.zones": "motion_zones",
    "source": "source",
}


def _to_option_path(problem: str, index_of: Mapping[str, int]) -> str:
    """``cameras.front_door.record.pre_roll: …`` → ``cameras.0.pre_roll: …``."""
    path, sep, message = problem.partition(": ")
    if not sep:
        return problem
    parts = path.split(".")
    if parts[0] == "cameras" and len(parts) > 2 and parts[1] in index_of:
        rest = ".".join(parts[2:])
        for key, option in _CAMERA_TO_OPTION.items():
            if rest == key or rest.startswith(key + "."):
                rest = option + rest[len(key) :]
                break
        return f"cameras.{index_of[parts[1]]}.{rest}: {message}"
    if parts[0] == "cameras" and len(parts) == 2 and parts[1] in index_of:
        return f"cameras.{index_of[parts[1]]}.name: {message}"
    if parts[0] == "sharing" and len(parts) == 2:
        return f"{parts[1]}: {message}"
    return f"{_BRIDGE_TO_OPTION.get(path, path)}: {message}"


def option_warnings(config: Config) -> list[str]:
    """`config_warnings` of an add-on's config, each naming the option to change.

    The config's cameras are in the order of the ``cameras`` option.
    """
    index_of = {name: index for index, name in enumerate(config.cameras)}
    return [_to_option_path(warning, index_of) for warning in config_warnings(config)]


def _check(data: dict[str, Any], index_of: Mapping[str, int]) -> Config:
    try:
        return parse_config(data)
    except ConfigError as err:
        raise ConfigError([_to_option_path(p, index_of) for p in err.problems]) from None


def supervisor_broker(url: str, token: str, timeout: float = 10.0) -> Broker:
    """Ask the Supervisor for the ``mqtt`` service (``GET <url>/services/mqtt``).

    Raises:
        ConfigError: The Supervisor cannot be reached, refused the token, or no
            MQTT service is installed (install the Mosquitto broker add-on).
    """
    if not url.startswith(("http://", "https://")):
        raise ConfigError([f"supervisor: expected an http(s):// URL, not {url!r}"])
    request = urllib.request.Request(  # noqa: S310 - the URL is the Supervisor's, http(s) only
        url.rstrip("/") + "/services/mqtt",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            answer = json.loads(response.read())
    except urllib.error.HTTPError as err:
        raise ConfigError(
            [f"supervisor: no MQTT service ({err.code}); install the Mosquitto broker add-on"]
        ) from None
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise ConfigError([f"supervisor: cannot read the MQTT service: {err}"]) from None
    service = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(service, dict) or "host" not in service or "port" not in service:
        raise ConfigError(["supervisor: the MQTT service answer has no host and port"])
    return Broker(
        host=str(service["host"]),
        port=int(service["port"]),
        username=service.get("username") or None,
        password=service.get("password") or None,
        ssl=bool(service.get("ssl", False)),
    )


def write_addon_config(
    options_path: Path, out: Path, broker: Broker | None, environment: AddonEnvironment
) -> Config:
    """Read ``options.json``, write the bridge's YAML to `out` (mode 0600, atomically).

    Raises:
        ConfigError: The options file is unreadable or invalid, or the storage
            folder or the config cannot be written (a full or read-only disk).
    """
    try:
        options = json.loads(options_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{options_path}: file not found"]) from None
    except (OSError, ValueError) as err:
        raise ConfigError([f"{options_path}: cannot read: {err}"]) from None
    data = addon_config_data(options, broker, environment)
    storage = Path(data["storage"]["path"])
    try:
        storage.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(
            [f"{storage}: cannot create the storage folder: {err.strerror}"]
        ) from None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(out, yaml.safe_dump(data, sort_keys=False).encode())
    except OSError as err:
        raise ConfigError([f"{out}: cannot write the config: {err.strerror}"]) from None
    return parse_config(data, out.parent)
