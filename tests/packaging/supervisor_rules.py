"""The Home Assistant Supervisor's add-on rules that Doorstep's add-on relies on.

Our own small check, written from the Supervisor's source (home-assistant/supervisor,
read at commit 090ef31ec024952c2469ed5a7c9f3ce8c1a5499e):

- ``supervisor/apps/validate.py`` (``supervisor/addons/validate.py`` in older releases):
  the add-on config's required keys and value rules (``_SCHEMA_APP_CONFIG``), ``RE_SERVICE``,
  the ``map`` entries (``RE_VOLUME`` strings or ``{type, read_only, path}``), the ``schema``
  nesting (``SCHEMA_ELEMENT``: no list directly inside a list), ``SCHEMA_BUILD_CONFIG``
  (``RE_DOCKER_IMAGE_BUILD``) and ``SCHEMA_APP_TRANSLATIONS``;
- ``supervisor/apps/options.py``: the option type strings (``RE_SCHEMA_ELEMENT``), how a
  value is checked against its type, and which missing options are errors;
- ``supervisor/validate.py``: ``docker_ports`` (``"5080/tcp": 5080``) and ``network_port``;
- ``supervisor/const.py``: the architectures (``ARCH_ALL`` and the deprecated ones).

Each function returns a list of problems, empty when all is well.
"""

from __future__ import annotations

from collections.abc import Mapping
import re
from typing import Any
from urllib.parse import urlsplit

ARCHITECTURES = frozenset({"aarch64", "amd64"})
DEPRECATED_ARCHITECTURES = frozenset({"armhf", "armv7", "i386"})
REQUIRED_KEYS = ("name", "version", "slug", "description", "arch")
SLUG = re.compile(r"^[-_.A-Za-z0-9]+$")
SERVICE = re.compile(r"^(mqtt|mysql):(provide|want|need)$")
MAP_TYPES = frozenset(
    {
        "data", "config", "ssl", "local_apps", "addons", "backup", "share", "media",
        "homeassistant_config", "all_app_configs", "all_addon_configs", "app_config",
        "addon_config",
    }
)  # fmt: skip
MAP_STRING = re.compile(r"^(" + "|".join(sorted(MAP_TYPES)) + r")(?::(rw|ro))?$")
PORT_KEY = re.compile(r"^\d+(?:/tcp|/udp)?$")
STARTUP = frozenset({"initialize", "system", "services", "application", "once"})
BOOT = frozenset({"auto", "manual", "manual_only"})
WATCHDOG = re.compile(r"^(?:https?|\[PROTO:\w+\]|tcp):\/\/\[HOST\]:(\[PORT:\d+\]|\d+).*$")
OPTION_TYPE = re.compile(
    r"^(?:"
    r"bool|email|url|port"
    r"|device(?:\(subsystem=[a-z]+\))?"
    r"|(?P<text>str|password)(?:\((?P<s_min>\d+)?,(?P<s_max>\d+)?\))?"
    r"|int(?:\((?P<i_min>-?\d+)?,(?P<i_max>-?\d+)?\))?"
    r"|float(?:\((?P<f_min>-?\d*\.?\d+)?,(?P<f_max>-?\d*\.?\d+)?\))?"
    r"|match\((?P<match>.*)\)"
    r"|list\((?P<list>.+)\)"
    r")(?P<optional>\?)?$"
)
BUILD_IMAGE = re.compile(r"^([a-zA-Z\-\.:\d{}]+/)*?([\-\w{}]+)/([\-\w{}]+)(:[\.\-\w{}]+)?$")
BOOLEAN_KEYS = (
    "init", "advanced", "ingress", "host_network", "hassio_api", "homeassistant_api",
    "auth_api", "docker_api", "apparmor", "full_access", "udev", "journald", "stdin",
)  # fmt: skip


def _port(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535


def check_config(config: Any) -> list[str]:
    """Problems of an add-on ``config.yaml`` against the Supervisor's rules."""
    if not isinstance(config, dict):
        return ["config: expected a mapping"]
    problems = _check_keys(config)
    problems += _check_services(config.get("services", []))
    problems += _check_map(config.get("map", []))
    for key in ("ports", "ports_description"):
        problems += _check_ports(key, config.get(key, {}))
    schema = config.get("schema", {})
    if schema is False:
        return problems
    if not isinstance(schema, dict):
        return [*problems, "schema: expected a mapping or false"]
    schema_problems = check_schema(schema)
    if schema_problems:
        return problems + schema_problems
    return problems + check_options(schema, config.get("options", {}))


def _check_keys(config: dict[str, Any]) -> list[str]:
    problems = [f"{key}: required" for key in REQUIRED_KEYS if key not in config]
    problems += [
        f"{key}: expected a string (quote versions)"
        for key in ("name", "version", "description")
        if key in config and not isinstance(config[key], str)
    ]
    if "slug" in config and not SLUG.match(str(config["slug"])):
        problems.append("slug: expected letters, digits, '-', '_' or '.'")
    problems += _check_arch(config.get("arch", []))
    problems += [
        f"{key}: expected true or false"
        for key in BOOLEAN_KEYS
        if key in config and not isinstance(config[key], bool)
    ]
    if "startup" in config and config["startup"] not in STARTUP:
        problems.append(f"startup: expected one of {sorted(STARTUP)}")
    if "boot" in config and config["boot"] not in BOOT:
        problems.append(f"boot: expected one of {sorted(BOOT)}")
    if "watchdog" in config and not WATCHDOG.match(str(config["watchdog"])):
        problems.append("watchdog: expected http://[HOST]:[PORT:n]/path or tcp://[HOST]:n")
    timeout = config.get("timeout", 10)
    if not (isinstance(timeout, int) and 10 <= timeout <= 300):
        problems.append("timeout: expected 10 to 300 seconds")
    return problems


def _check_arch(arch: Any) -> list[str]:
    if not isinstance(arch, list) or not arch:
        return ["arch: expected a non-empty list"]
    problems = []
    for value in arch:
        if value in DEPRECATED_ARCHITECTURES:
            problems.append(f"arch: {value} is deprecated by the Supervisor")
        elif value not in ARCHITECTURES:
            problems.append(f"arch: unknown architecture {value!r}")
    return problems


def _check_services(services: Any) -> list[str]:
    if not isinstance(services, list):
        return ["services: expected a list"]
    return [
        f"services.{i}: expected mqtt|mysql:provide|want|need, not {value!r}"
        for i, value in enumerate(services)
        if not isinstance(value, str) or not SERVICE.match(value)
    ]


def _check_map(entries: Any) -> list[str]:
    if not isinstance(entries, list):
        return ["map: expected a list"]
    problems = []
    for i, entry in enumerate(entries):
        if isinstance(entry, str):
            if not MAP_STRING.match(entry):
                problems.append(f"map.{i}: unknown folder {entry!r}")
        elif isinstance(entry, dict):
            if entry.get("type") not in MAP_TYPES:
                problems.append(f"map.{i}.type: expected one of {sorted(MAP_TYPES)}")
            if "read_only" in entry and not isinstance(entry["read_only"], bool):
                problems.append(f"map.{i}.read_only: expected true or false")
            if "path" in entry and not isinstance(entry["path"], str):
                problems.append(f"map.{i}.path: expected a string")
            problems += [
                f"map.{i}.{key}: unknown key"
                for key in entry
                if key not in {"type", "read_only", "path"}
            ]
        else:
            problems.append(f"map.{i}: expected a folder name or a mapping")
    return problems


def _check_ports(key: str, ports: Any) -> list[str]:
    if not isinstance(ports, dict):
        return [f"{key}: expected a mapping such as {{'5080/tcp': 5080}}"]
    problems = []
    for port, value in ports.items():
        if not isinstance(port, str) or not PORT_KEY.match(port):
            problems.append(f"{key}: {port!r} is not '<port>/tcp' or '<port>/udp'")
        if key == "ports" and value is not None and not _port(value):
            problems.append(f"{key}.{port}: expected a port (1 to 65535) or null")
        if key == "ports_description" and not isinstance(value, str):
            problems.append(f"{key}.{port}: expected a string")
    return problems


def check_schema(schema: Mapping[str, Any], path: str = "schema") -> list[str]:
    """Problems of an option ``schema``: type strings, and lists never directly in lists."""
    problems = []
    for key, element in schema.items():
        where = f"{path}.{key}"
        if isinstance(element, str):
            if not OPTION_TYPE.match(element):
                problems.append(f"{where}: unknown option type {element!r}")
        elif isinstance(element, list):
            if len(element) != 1:
                problems.append(f"{where}: a list schema holds exactly one element")
            elif isinstance(element[0], list):
                problems.append(f"{where}: a list may not directly contain another list")
            elif isinstance(element[0], dict):
                problems += check_schema(element[0], f"{where}.0")
            elif not isinstance(element[0], str) or not OPTION_TYPE.match(element[0]):
                problems.append(f"{where}.0: unknown option type {element[0]!r}")
        elif isinstance(element, dict):
            problems += check_schema(element, where)
        else:
            problems.append(f"{where}: expected a type string, a list or a mapping")
    return problems


def _check_value(typ: str, value: Any, where: str) -> list[str]:
    match = OPTION_TYPE.match(typ)
    assert match is not None
    base = typ.split("(", 1)[0].rstrip("?")
    limits = {
        name[2:]: float(match.group(name))
        for name in ("s_min", "s_max", "i_min", "i_max", "f_min", "f_max")
        if match.group(name)
    }
    ok = True
    if base in {"str", "password"}:
        ok = isinstance(value, str) and limits.get("min", 0) <= len(value) <= limits.get(
            "max", float("inf")
        )
    elif base in {"int", "float"}:
        number_ok = isinstance(value, int | float) and not isinstance(value, bool)
        if base == "int":
            number_ok = number_ok and float(value).is_integer()
        ok = number_ok and limits.get("min", -float("inf")) <= value <= limits.get(
            "max", float("inf")
        )
    elif base == "bool":
        ok = isinstance(value, bool)
    elif base == "port":
        ok = _port(value)
    elif base == "url":
        ok = isinstance(value, str) and bool(urlsplit(value).scheme and urlsplit(value).netloc)
    elif base == "match":
        ok = isinstance(value, str) and re.match(match.group("match"), value) is not None
    elif base == "list":
        ok = str(value) in match.group("list").split("|")
    return [] if ok else [f"{where}: {value!r} does not match {typ!r}"]


def _optional(element: Any) -> bool:
    if isinstance(element, str):
        return element.endswith("?")
    if isinstance(element, list):
        return bool(element) and isinstance(element[0], str) and element[0].endswith("?")
    return False


def check_options(schema: Mapping[str, Any], options: Any, path: str = "options") -> list[str]:
    """Problems of ``options`` (the defaults, or a user's) against the ``schema``.

    As the Supervisor does: an option the schema does not know is an error, and so is a
    missing option unless its type ends in ``?`` (for a list, its element's type).
    """
    if not isinstance(options, dict):
        return [f"{path}: expected a mapping"]
    problems = [f"{path}.{key}: unknown option" for key in options if key not in schema]
    for key, element in schema.items():
        where = f"{path}.{key}"
        if key not in options:
            if not _optional(element) and not (isinstance(element, list) and element == []):
                problems.append(f"{where}: missing required option")
            continue
        value = options[key]
        if isinstance(element, str):
            problems += _check_value(element, value, where)
        elif isinstance(element, list):
            if not isinstance(value, list):
                problems.append(f"{where}: expected a list")
                continue
            for i, item in enumerate(value):
                if isinstance(element[0], dict):
                    problems += check_options(element[0], item, f"{where}.{i}")
                else:
                    problems += _check_value(element[0], item, f"{where}.{i}")
        else:
            problems += check_options(element, value, where)
    return problems


def check_build(build: Any, architectures: list[str]) -> list[str]:
    """Problems of a ``build.yaml``: one image per architecture, each with an exact tag."""
    if not isinstance(build, dict):
        return ["build: expected a mapping"]
    images = build.get("build_from", {})
    if not isinstance(images, dict):
        return ["build_from: expected one image per architecture"]
    problems = [f"build_from: no image for {arch}" for arch in architectures if arch not in images]
    for arch, image in images.items():
        if arch not in ARCHITECTURES | DEPRECATED_ARCHITECTURES:
            problems.append(f"build_from.{arch}: unknown architecture")
        if not isinstance(image, str) or not BUILD_IMAGE.match(image):
            problems.append(f"build_from.{arch}: {image!r} is not an image name")
        elif ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest"):
            problems.append(f"build_from.{arch}: {image!r} needs an exact tag")
    return problems


def check_translations(translations: Any, schema: Mapping[str, Any], ports: Any) -> list[str]:
    """Problems of ``translations/<lang>.yaml``: names for known options and ports only."""
    if not isinstance(translations, dict):
        return ["translations: expected a mapping"]
    problems = [
        f"translations.{key}: unknown section"
        for key in translations
        if key not in {"configuration", "network"}
    ]
    problems += _check_fields(translations.get("configuration", {}), schema, "configuration")
    problems += [
        f"network.{port}: not a port of the add-on"
        for port in translations.get("network", {})
        if port not in (ports or {})
    ]
    return problems


def _check_fields(fields: Any, schema: Mapping[str, Any], path: str) -> list[str]:
    if not isinstance(fields, dict):
        return [f"{path}: expected a mapping"]
    problems = []
    for key, entry in fields.items():
        where = f"{path}.{key}"
        if key not in schema:
            problems.append(f"{where}: not an option")
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            problems.append(f"{where}.name: required")
            continue
        element = schema[key]
        if isinstance(element, list) and element and isinstance(element[0], dict):
            element = element[0]
        if "fields" in entry:
            if isinstance(element, dict):
                problems += _check_fields(entry["fields"], element, f"{where}.fields")
            else:
                problems.append(f"{where}.fields: the option has no fields")
    return problems
