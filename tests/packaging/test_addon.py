"""The HA OS add-on: its files against the Supervisor's rules, and its options → config."""

from __future__ import annotations

import copy
from pathlib import Path, PurePosixPath
import re
import subprocess
from typing import Any

from PIL import Image
import pytest
import yaml

from doorstep_bridge import __version__
from doorstep_bridge.addon import (
    AddonEnvironment,
    Broker,
    addon_config_data,
    option_warnings,
    supervisor_broker,
    write_addon_config,
)
from doorstep_bridge.config import parse_config
from doorstep_bridge.exceptions import ConfigError
from doorstep_bridge.recording.settings import RetentionPeriods
from doorstep_bridge.sharing.service import share_files_dir
from doorstep_bridge.sharing.signing import signature_path
from tests.packaging import supervisor_rules as rules

ROOT = Path(__file__).resolve().parents[2]
ADDON = ROOT / "addon" / "doorstep"


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def addon_config() -> dict[str, Any]:
    config: dict[str, Any] = _yaml(ADDON / "config.yaml")
    return config


ENV = AddonEnvironment(
    hostname="local-doorstep",
    storage_roots={"media": Path("/media"), "data": Path("/data")},
)
BROKER = Broker(host="core-mosquitto", port=1883, username="addons", password="s3cret")


# --- the add-on's files ---------------------------------------------------------------


def test_repository_layout() -> None:
    repository = _yaml(ROOT / "repository.yaml")
    assert isinstance(repository["name"], str)
    assert repository["url"].startswith("https://")
    for name in (
        "config.yaml", "build.yaml", "Dockerfile", "run", "DOCS.md", "CHANGELOG.md",
        "apparmor.txt", "icon.png", "logo.png", "translations/en.yaml", "translations/fr.yaml",
    ):  # fmt: skip
        assert (ADDON / name).is_file(), name
    assert (ADDON / "run").stat().st_mode & 0o111, "run must be executable"


def test_config_follows_the_supervisor_rules(addon_config: dict[str, Any]) -> None:
    assert rules.check_config(addon_config) == []


def test_config_declares_what_doorstep_relies_on(addon_config: dict[str, Any]) -> None:
    assert addon_config["version"] == __version__
    assert addon_config["init"] is False  # the run script is PID 1's only child, no s6
    assert "mqtt:need" in addon_config["services"]
    assert {"type": "media", "read_only": False} in addon_config["map"]
    assert addon_config["ports"] == {"5080/tcp": 5080}
    assert addon_config["watchdog"].endswith("/api/health")
    assert set(addon_config["arch"]) == rules.ARCHITECTURES


def test_apparmor_profile_is_named_after_the_slug(addon_config: dict[str, Any]) -> None:
    profile = (ADDON / "apparmor.txt").read_text(encoding="utf-8")
    assert f"profile {addon_config['slug']} flags=" in profile
    assert profile.count("{") == profile.count("}")
    assert "/media/doorstep/** rwk," in profile


def test_backups_leave_out_the_share_exports(addon_config: dict[str, Any]) -> None:
    # The Supervisor leaves out of a backup every file of /data whose path matches a
    # pattern (PurePath.match); `storage: data` keeps everything in /data/doorstep.
    def excluded(path: PurePosixPath) -> bool:
        return any(path.match(pattern) for pattern in addon_config["backup_exclude"])

    shares = PurePosixPath(share_files_dir(Path("/data/doorstep")))
    export = shares / "s_4f2a9c.mp4"
    assert excluded(export)
    assert excluded(export.with_name(export.name + ".part"))  # a render under way
    assert excluded(PurePosixPath(signature_path(Path(export))))
    # The share database, the clips and the audit log are what a backup is for.
    assert not excluded(shares / "shares.sqlite3")
    assert not excluded(PurePosixPath("/data/doorstep/front_door/2026-11-23/c_1.mp4"))
    assert not excluded(PurePosixPath("/data/doorstep/clips.db"))


def test_build_pins_a_base_image_per_architecture(addon_config: dict[str, Any]) -> None:
    assert rules.check_build(_yaml(ADDON / "build.yaml"), addon_config["arch"]) == []
    dockerfile = (ADDON / "Dockerfile").read_text(encoding="utf-8")
    assert "ARG BUILD_FROM\nFROM $BUILD_FROM\n" in dockerfile


@pytest.mark.parametrize("language", ["en", "fr"])
def test_translations_name_every_option(addon_config: dict[str, Any], language: str) -> None:
    translations = _yaml(ADDON / "translations" / f"{language}.yaml")
    schema = addon_config["schema"]
    assert rules.check_translations(translations, schema, addon_config["ports"]) == []
    configuration = translations["configuration"]
    assert set(configuration) == set(schema)
    assert set(configuration["cameras"]["fields"]) == set(schema["cameras"][0])
    assert set(translations["network"]) == set(addon_config["ports"])


def test_icon_and_logo_sizes() -> None:
    with Image.open(ADDON / "icon.png") as icon:
        assert icon.format == "PNG"
        assert icon.size == (128, 128)
    with Image.open(ADDON / "logo.png") as logo:
        assert logo.format == "PNG"
        assert logo.size == (250, 100)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda c: c.pop("slug"), "slug: required"),
        (lambda c: c.update(version=1.0), "version: expected a string (quote versions)"),
        (lambda c: c.update(arch=["armv7"]), "arch: armv7 is deprecated by the Supervisor"),
        (lambda c: c.update(services=["mqtt"]), "services.0: expected mqtt|mysql:"),
        (lambda c: c.update(map=["media:rx"]), "map.0: unknown folder 'media:rx'"),
        (lambda c: c.update(ports={"5080": "web"}), "ports.5080: expected a port"),
        (lambda c: c.update(init="no"), "init: expected true or false"),
        (lambda c: c["schema"].update(retention_days="number"), "unknown option type 'number'"),
        (
            lambda c: c["schema"]["cameras"][0].update(privacy_masks=[["str"]]),
            "a list may not directly contain another list",
        ),
        (lambda c: c["options"].update(colour="red"), "options.colour: unknown option"),
        (lambda c: c["options"].pop("storage"), "options.storage: missing required option"),
        (lambda c: c["options"].update(storage="usb"), "options.storage: 'usb' does not match"),
        (
            lambda c: c["options"]["cameras"][0].update(name="Front Door"),
            "options.cameras.0.name: 'Front Door' does not match",
        ),
    ],
)
def test_the_rules_catch_what_the_supervisor_refuses(
    addon_config: dict[str, Any], change: Any, problem: str
) -> None:
    broken = copy.deepcopy(addon_config)
    change(broken)
    assert any(p.startswith(problem) or problem in p for p in rules.check_config(broken))


# --- options → bridge config ------------------------------------------------------------


def test_the_default_options_give_a_valid_config(addon_config: dict[str, Any]) -> None:
    data = addon_config_data(addon_config["options"], BROKER, ENV)
    config = parse_config(data)
    assert list(config.cameras) == ["front_door"]
    assert config.storage.path == Path("/media/doorstep")
    # A new install keeps each kind of clip as long as the bridge does by default.
    assert config.storage.retention_days is None
    assert config.storage.retention == RetentionPeriods(ring=30, person=30, motion=7, manual=30)
    assert config.sharing.redact_faces is True


def test_the_log_level_option(addon_config: dict[str, Any]) -> None:
    assert parse_config(addon_config_data(addon_config["options"], BROKER, ENV)).log_level == "INFO"
    options = {**addon_config["options"], "log_level": "debug"}
    assert rules.check_options(addon_config["schema"], options) == []
    assert parse_config(addon_config_data(options, BROKER, ENV)).log_level == "DEBUG"
    assert rules.check_options(addon_config["schema"], {**options, "log_level": "loud"}) != []


def test_an_install_from_before_the_retention_kinds_keeps_its_period(
    addon_config: dict[str, Any],
) -> None:
    # The Supervisor runs an installed add-on with {**the new defaults, **its saved options}.
    saved = {
        "cameras": [{"name": "front_door", "source": "rtsp://user:pw@192.168.1.20/stream1"}],
        "storage": "media",
        "retention_days": 14,
        "redact_faces": True,
    }
    options = {**addon_config["options"], **saved}
    assert rules.check_options(addon_config["schema"], options) == []
    config = parse_config(addon_config_data(options, BROKER, ENV))
    assert config.storage.retention == RetentionPeriods(ring=14, person=14, motion=14, manual=14)


@pytest.mark.parametrize(
    ("retention", "periods"),
    [
        (
            {"retention_motion_days": 3},
            RetentionPeriods(ring=30, person=30, motion=3, manual=30),
        ),
        (
            {"retention_days": 14, "retention_ring_days": 60, "retention_person_days": 45},
            RetentionPeriods(ring=60, person=45, motion=14, manual=14),
        ),
        (
            {
                "retention_ring_days": 90,
                "retention_person_days": 20,
                "retention_motion_days": 0,
                "retention_manual_days": 365,
            },
            RetentionPeriods(ring=90, person=20, motion=0, manual=365),
        ),
    ],
)
def test_retention_per_kind_reaches_the_config(
    addon_config: dict[str, Any], retention: dict[str, int], periods: RetentionPeriods
) -> None:
    options = {**addon_config["options"], **retention}
    assert rules.check_options(addon_config["schema"], options) == []
    data = addon_config_data(options, BROKER, ENV)
    assert data["storage"]["retention"] == {
        option.removeprefix("retention_").removesuffix("_days"): days
        for option, days in retention.items()
        if option != "retention_days"
    }
    assert parse_config(data).storage.retention == periods


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("retention_ring_days", 7.5),
        ("retention_person_days", -1),
        ("retention_motion_days", 3651),
        ("retention_manual_days", "30"),
    ],
)
def test_the_supervisor_refuses_a_bad_retention_option(
    addon_config: dict[str, Any], option: str, value: Any
) -> None:
    options = {**addon_config["options"], option: value}
    assert rules.check_options(addon_config["schema"], options) == [
        f"options.{option}: {value!r} does not match 'int(0,3650)?'"
    ]


_RANGE = re.compile(r"^(int|float)\(([^,]*),([^)]*)\)\??$")


def _ranged_options(addon_config: dict[str, Any]) -> list[tuple[str, bool, str, str, str]]:
    """(option, per camera, type, low, high) of every option the Supervisor keeps in a range."""
    schema = addon_config["schema"]
    ranged = [(name, False, typ) for name, typ in schema.items() if isinstance(typ, str)]
    ranged += [(name, True, typ) for name, typ in schema["cameras"][0].items()]
    return [
        (name, per_camera, *match.groups())
        for name, per_camera, typ in ranged
        if (match := _RANGE.match(str(typ)))
    ]


def test_every_value_the_supervisor_takes_starts_the_bridge(addon_config: dict[str, Any]) -> None:
    """The ranges in the add-on's schema are written by hand: none may be wider than the
    bridge's own. A value past the bridge's range would be saved, then stop the add-on."""
    ranged = _ranged_options(addon_config)
    assert {name for name, *_ in ranged} >= {"link_ttl_hours", "pre_roll", "retention_days"}
    refused = []
    for name, per_camera, typ, low, high in ranged:
        number = int if typ == "int" else float
        # An open end: a value far out, which the Supervisor takes as it stands.
        for value in (number(low or -(10**9)), number(high or 10**9)):
            options = copy.deepcopy(addon_config["options"])
            if per_camera:
                options["cameras"][0][name] = value
            else:
                options[name] = value
            assert rules.check_options(addon_config["schema"], options) == [], (name, value)
            try:
                parse_config(addon_config_data(options, BROKER, ENV))
            except ConfigError as err:
                refused += err.problems
    assert refused == []


def test_one_camera_with_the_mosquitto_add_on() -> None:
    data = addon_config_data(
        {"cameras": [{"name": "porch", "source": "demo://"}], "storage": "media"}, BROKER, ENV
    )
    assert data == {
        "mqtt": {
            "host": "core-mosquitto",
            "port": 1883,
            "username": "addons",
            "password": "s3cret",
        },
        "http": {"host": "0.0.0.0", "port": 5080, "public_url": "http://local-doorstep:5080"},
        "storage": {"path": "/media/doorstep"},
        "cameras": {"porch": {"source": "demo://"}},
    }
    config = parse_config(data)
    assert config.http.announced_url == "http://local-doorstep:5080"
    assert config.mqtt.password == "s3cret"


def test_every_option_reaches_the_config() -> None:
    options = {
        "cameras": [
            {
                "name": "front_door",
                "friendly_name": "Front door",
                "source": "rtsp://user:pass@192.168.1.20/stream1",
                "detect_source": "rtsp://user:pass@192.168.1.20/stream2",
                "doorbell_topic": "zigbee2mqtt/front_button",
                "doorbell_payload": '{"action": "single"}',
                "privacy_masks": ["0,0 300,0 300,200 0,200", "1000,0 1280,0 1280,720"],
                "motion_masks": ["0,0 640,0 640,60 0,60"],
                "motion_zones": [
                    "path: 200,120 440,120 640,360 0,360",
                    "doorstep:260,280 380,280 380,360",
                ],
                "pre_roll": 3,
                "post_roll": 12.5,
                "person_detection": True,
                "record_motion": "people",
            },
            {
                "name": "garden",
                "source": "http://192.168.1.21/mjpeg",
                "doorbell_topic": "garden/button",
                "doorbell_payload": "pressed",
            },
        ],
        "storage": "data",
        "retention_days": 30,
        "max_size_gb": 200,
        "base_topic": "doorstep_house",
        "api_token": "a-long-random-token-of-mine",
        "link_ttl_hours": 6,
        "max_window_hours": 2,
        "redact_faces": False,
        "decision_timeout_minutes": 15,
    }
    broker = Broker(host="core-mosquitto", port=8883, ssl=True)
    config = parse_config(addon_config_data(options, broker, ENV))
    front, garden = config.cameras["front_door"], config.cameras["garden"]
    assert front.friendly_name == "Front door"
    assert front.detect_source == "rtsp://user:pass@192.168.1.20/stream2"
    assert front.doorbell.topic == "zigbee2mqtt/front_button"
    assert front.doorbell.payload == (("action", "single"),)
    assert len(front.privacy_masks) == 2
    assert len(front.motion.masks) == 1
    assert [name for name, _ in front.motion.zones] == ["path", "doorstep"]
    assert front.motion.zones[1][1] == ((260, 280), (380, 280), (380, 360))
    assert [name for name, _ in garden.motion.zones] == []
    assert (front.record.pre_roll, front.record.post_roll) == (3, 12.5)
    assert front.person.enabled
    assert front.record.motion == "people"
    assert not garden.person.enabled
    assert garden.record.motion == "all"
    assert garden.doorbell.payload == "pressed"
    assert garden.friendly_name == "Garden"
    assert config.storage.path == Path("/data/doorstep")
    assert (config.storage.retention_days, config.storage.max_size_gb) == (30, 200)
    assert config.mqtt.base_topic == "doorstep_house"
    assert config.mqtt.tls is not None
    assert config.mqtt.username is None
    assert config.http.token == "a-long-random-token-of-mine"
    assert config.sharing.link_ttl_hours == 6
    assert config.sharing.redact_faces is False
    assert config.sharing.decision_timeout_minutes == 15


def test_public_url_option_wins_over_the_host_name() -> None:
    options = {
        "cameras": [{"name": "porch", "source": "demo://"}],
        "public_url": "http://192.168.1.15:5080",
    }
    config = parse_config(addon_config_data(options, None, ENV))
    assert config.http.announced_url == "http://192.168.1.15:5080"
    assert config.mqtt.host == "127.0.0.1"  # no Supervisor broker: the bridge's default


@pytest.mark.parametrize(
    ("options", "problems"),
    [
        ({}, ["cameras: required option is missing"]),
        ({"cameras": []}, ["cameras: expected at least one camera"]),
        (
            {"cameras": [{"name": "porch", "source": "demo://"}], "colour": "red"},
            ["colour: unknown option"],
        ),
        (
            {"cameras": [{"name": "porch"}]},
            ["cameras.0.source: required option is missing"],
        ),
        (
            {
                "cameras": [
                    {"name": "porch", "source": "demo://"},
                    {"name": "gate", "source": "demo://", "privacy_masks": ["0,0 1,1", "a,b"]},
                ]
            },
            [
                "cameras.1.privacy_masks.0: a mask needs at least 3 points, e.g. '0,0 300,0 300,200 0,200'",
                "cameras.1.privacy_masks.1: 'a,b' is not a point; expected x,y pairs such as '0,0 300,0'",
            ],
        ),
        (
            {"cameras": [{"name": "porch", "source": "demo://", "doorbell_payload": "{oops"}]},
            [
                "cameras.0.doorbell_payload: not a valid JSON object: Expecting property name enclosed in double quotes"
            ],
        ),
        (
            {"cameras": [{"name": "porch", "source": "demo://"}, {"name": "porch", "source": "x"}]},
            ["cameras.1.name: 'porch' is already used by another camera"],
        ),
        (
            {"cameras": [{"name": "Front Door", "source": "demo://"}]},
            [
                "cameras.0.name: camera names use lowercase letters, digits and '_' (e.g. front_door)"
            ],
        ),
        (
            {"cameras": [{"name": "porch", "source": "ftp://cam/stream", "pre_roll": 99}]},
            [
                "cameras.0.pre_roll: expected a number <= 60",
                "cameras.0.source: expected rtsp://..., http(s)://... (MJPEG), demo:// or a file path, not a ftp:// URL",
            ],
        ),
        (
            {
                "cameras": [{"name": "porch", "source": "demo://"}],
                "retention_days": -1,
                "api_token": "short",
                "link_ttl_hours": 0,
            },
            [
                "api_token: expected at least 16 characters",
                "link_ttl_hours: expected a number >= 0.1",
                "retention_days: expected a number >= 0",
            ],
        ),
        (
            {
                "cameras": [{"name": "porch", "source": "demo://"}],
                "retention_motion_days": 4000,
                "retention_manual_days": -2,
            },
            [
                "retention_manual_days: expected a number >= 0",
                "retention_motion_days: expected a number <= 3650",
            ],
        ),
        (
            {"cameras": [{"name": "porch", "source": "demo://", "privacy_masks": [5]}]},
            ["cameras.0.privacy_masks.0: expected points as text, e.g. '0,0 300,0 300,200 0,200'"],
        ),
        (
            {
                "cameras": [
                    {
                        "name": "porch",
                        "source": "demo://",
                        "motion_zones": ["0,0 300,0 300,200", "path: 0,0 1,1 2,x", ": 0,0 1,0 1,1"],
                    }
                ]
            },
            [
                (
                    "cameras.0.motion_zones.0: expected a name, a colon and points,"
                    " e.g. 'doorstep: 0,0 300,0 300,200'"
                )
            ],
        ),
        (
            {
                "cameras": [
                    {
                        "name": "porch",
                        "source": "demo://",
                        "motion_zones": ["path: 0,0 1,0 1,1", "path: 0,0 2,0 2,2"],
                    }
                ]
            },
            ["cameras.0.motion_zones.1: the zone 'path' is named twice"],
        ),
        (
            {
                "cameras": [
                    {"name": "porch", "source": "demo://", "motion_zones": ["step: 0,0 1,1"]}
                ]
            },
            [
                (
                    "cameras.0.motion_zones.0: a zone needs at least 3 points,"
                    " e.g. '0,0 300,0 300,200 0,200'"
                )
            ],
        ),
        (
            {
                "cameras": [
                    {"name": "porch", "source": "demo://", "motion_zones": ["step: -5,0 9,0 9,9"]}
                ]
            },
            ["cameras.0.motion_zones.step: point 0: coordinates must be >= 0"],
        ),
        (
            {"cameras": [{"name": "gate", "source": "demo://", "doorbell_payload": "{}"}]},
            ["cameras.0.doorbell_payload: expected a non-empty JSON object"],
        ),
        (
            {"cameras": [{"name": "path", "source": "demo://", "doorbell_payload": 5}]},
            [
                'cameras.0.doorbell_payload: expected text, or a JSON object such as {"action": "single"}'
            ],
        ),
        (
            {"cameras": [{"name": "porch", "source": "demo://", "record_motion": "people"}]},
            [
                (
                    "cameras.0.record_motion: 'people' records only when person detection sees"
                    " someone: turn person detection on for this camera, or record all motion"
                )
            ],
        ),
        (
            {"cameras": [{"name": "porch", "source": "demo://"}], "storage": "usb"},
            ["storage: expected media or data"],
        ),
    ],
)
def test_a_bad_option_set_names_the_option(options: dict[str, Any], problems: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        addon_config_data(options, BROKER, ENV)
    assert err.value.problems == problems


def test_a_warning_names_the_option_to_change_and_its_value_works() -> None:
    """zigbee2mqtt sends battery reports on a button's topic: the add-on names its own option."""
    options = {
        "cameras": [
            {"name": "porch", "source": "demo://"},
            {"name": "gate", "source": "demo://", "doorbell_topic": "zigbee2mqtt/gate_button"},
        ],
        "storage": "media",
    }
    [warning] = option_warnings(parse_config(addon_config_data(options, BROKER, ENV)))
    assert warning.startswith(
        "cameras.1.doorbell_payload: not set, so every message on zigbee2mqtt/gate_button rings"
    )
    # The value the warning gives, typed into the option as it stands, silences it.
    value = warning.partition("set it to ")[2].partition(" (")[0]
    options["cameras"][1]["doorbell_payload"] = value  # type: ignore[index]
    config = parse_config(addon_config_data(options, BROKER, ENV))
    payload = config.cameras["gate"].doorbell.payload
    assert isinstance(payload, tuple)
    assert dict(payload) == {"action": "single"}  # a filter on the JSON, not a text to match
    assert option_warnings(config) == []


def test_addon_config_prints_the_warnings_in_the_add_on_s_words(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from doorstep_bridge.__main__ import main

    options = tmp_path / "options.json"
    options.write_text(
        '{"cameras": [{"name": "gate", "source": "demo://",'
        ' "doorbell_topic": "zigbee2mqtt/gate_button"}], "storage": "data"}',
        encoding="utf-8",
    )
    out = tmp_path / "doorstep.yaml"
    code = main([
        "addon-config", "--options", str(options), "--out", str(out),
        "--data-dir", str(tmp_path), "--hostname", "local-doorstep",
    ])  # fmt: skip
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"{out}: written (1 camera(s)")
    assert lines[1].startswith("warning: cameras.0.doorbell_payload: not set, so every message")
    assert len(lines) == 2


def test_options_that_are_not_a_mapping() -> None:
    with pytest.raises(ConfigError) as err:
        addon_config_data(["cameras"], BROKER, ENV)
    assert err.value.problems == ["options: expected a mapping (the add-on's options.json)"]


def test_an_unreadable_options_file(tmp_path: Path) -> None:
    out = tmp_path / "doorstep.yaml"
    with pytest.raises(ConfigError) as err:
        write_addon_config(tmp_path / "missing.json", out, BROKER, ENV)
    assert err.value.problems == [f"{tmp_path / 'missing.json'}: file not found"]
    broken = tmp_path / "options.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        write_addon_config(broken, out, BROKER, ENV)
    assert err.value.problems[0].startswith(f"{broken}: cannot read: ")
    assert not out.exists()


def test_storage_or_config_that_cannot_be_written(tmp_path: Path) -> None:
    options = tmp_path / "options.json"
    options.write_text(
        '{"cameras": [{"name": "front_door", "source": "demo://"}], "storage": "data"}',
        encoding="utf-8",
    )
    # /data not writable (here: a file where the folder should be): one clear line.
    blocked = tmp_path / "blocked"
    blocked.write_text("", encoding="utf-8")
    environment = AddonEnvironment(hostname="local-doorstep", storage_roots={"data": blocked})
    with pytest.raises(ConfigError) as err:
        write_addon_config(options, tmp_path / "doorstep.yaml", BROKER, environment)
    [problem] = err.value.problems
    assert problem.startswith(f"{blocked / 'doorstep'}: cannot create the storage folder: ")
    # The config itself cannot be written.
    environment = AddonEnvironment(hostname="local-doorstep", storage_roots={"data": tmp_path})
    out = tmp_path / "taken"
    out.mkdir()
    with pytest.raises(ConfigError) as err:
        write_addon_config(options, out, BROKER, environment)
    [problem] = err.value.problems
    assert problem.startswith(f"{out}: cannot write the config: ")


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://supervisor", "supervisor: expected an http(s):// URL, not 'ftp://supervisor'"),
        ("http://127.0.0.1:1", "supervisor: cannot read the MQTT service: "),
    ],
)
def test_a_supervisor_that_cannot_be_asked(url: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        supervisor_broker(url, "token", timeout=5)
    assert err.value.problems[0].startswith(problem)


def test_every_file_names_the_same_repository() -> None:
    """HACS, the add-on store, the blueprints and the image registry all point at one repository.

    An add-on image under one owner and a repository under another cannot be installed.
    """
    repository = _yaml(ROOT / "repository.yaml")["url"].removeprefix("https://github.com/")
    owner = repository.split("/")[0]
    mention = re.compile(r"(?:github\.com/|ghcr\.io/|codeowners\W+@)([A-Za-z0-9-]+)(?:/([\w.-]+))?")
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    others: list[str] = []
    for name in tracked:
        path = ROOT / name
        if path.suffix not in {".md", ".yaml", ".yml", ".json", ".service", ".txt"}:
            continue
        for match in mention.finditer(path.read_text(encoding="utf-8", errors="replace")):
            found, repo = match.groups()
            ours = repo is None or repo == "doorstep" or repo.startswith("doorstep-")
            if ours and found.lower() not in {owner.lower(), "home-assistant"}:
                others.append(f"{name}: {match.group(0)}")
    assert others == [], f"not {owner}: {others}"
