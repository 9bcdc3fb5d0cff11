"""Config validation: what a user sees from `doorstep-bridge check`."""

from __future__ import annotations

import json
import math
from pathlib import Path
import socket
import subprocess
import sys
from typing import Any

import pytest
import yaml

from doorstep_bridge.camera.sources import file_path
from doorstep_bridge.config import TlsSettings, config_warnings, load_config, parse_config
from doorstep_bridge.exceptions import ConfigError
from doorstep_bridge.urls import redact_url
from tests.bridge.certs import self_signed

PRODUCT_EXAMPLE = """
mqtt: {host: 127.0.0.1, port: 1883, base_topic: doorstep}
http: {host: 127.0.0.1, port: 5080}
storage: {path: ./doorstep-data, retention_days: 14}
cameras:
  front_door:
    source: rtsp://user:pass@192.0.2.10/stream
    doorbell: {topic: zigbee2mqtt/front_button}
    record: {pre_roll: 5, post_roll: 10}
    privacy_masks: [[[0, 0], [300, 0], [300, 200], [0, 200]]]
sharing: {link_ttl_hours: 24, max_window_hours: 12, redact_faces: true}
"""


def problems(raw: Any) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse_config(raw, Path("/tmp"))
    return info.value.problems


ENCODE_LOGIN = (
    "the user name or password contains /, ? or #: write each of them percent-encoded"
    " (/ as %2F, ? as %3F, # as %23)"
)


def minimal(**camera: Any) -> dict[str, Any]:
    return {"cameras": {"front_door": {"source": "demo://", **camera}}}


def test_product_example_is_valid(tmp_path: Path) -> None:
    path = tmp_path / "doorstep.yaml"
    path.write_text(PRODUCT_EXAMPLE)
    config = load_config(path)
    camera = config.cameras["front_door"]
    assert camera.friendly_name == "Front door"
    assert camera.record.pre_roll == 5.0
    assert camera.doorbell.topic == "zigbee2mqtt/front_button"
    assert camera.privacy_masks == (((0, 0), (300, 0), (300, 200), (0, 200)),)
    assert config.storage.path == tmp_path / "doorstep-data"
    assert config.sharing.max_window_hours == 12
    # retention_days alone: the period of every kind of clip.
    assert set(config.storage.retention.payload().values()) == {14}


def test_relative_paths_are_relative_to_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As under systemd (working directory /) or in the container (/data, config in /config)."""
    folder = tmp_path / "config"
    (folder / "certs").mkdir(parents=True)
    cert, key = self_signed(folder)  # the TLS files are read with the config
    (folder / "certs/ca.pem").write_bytes(cert.read_bytes())
    cert.rename(folder / "c.pem")
    key.rename(folder / "k")
    (folder / "doorstep.yaml").write_text(
        yaml.safe_dump(
            {
                "mqtt": {"tls": {"ca_certs": "certs/ca.pem", "certfile": "c.pem", "keyfile": "k"}},
                "storage": {"path": "data"},
                "cameras": {
                    "porch": {"source": "videos/porch.mp4", "detect_source": "./low.mp4"},
                    "yard": {"source": "/srv/yard.mp4"},
                    "file_url": {"source": "file:///srv/gate.mp4"},
                    "rtsp": {"source": "rtsp://user:pass@192.0.2.10/stream"},
                    "demo": {"source": "demo://?period=60", "detect_source": "http://cam/v.mjpg"},
                },
            }
        )
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    config = load_config(Path("../config/doorstep.yaml"))

    assert file_path(config.cameras["porch"].source) == folder / "videos/porch.mp4"
    assert file_path(config.cameras["porch"].detect_source or "") == folder / "low.mp4"
    assert config.mqtt.tls == TlsSettings(
        ca_certs=str(folder / "certs/ca.pem"),
        certfile=str(folder / "c.pem"),
        keyfile=str(folder / "k"),
    )
    assert config.storage.path == folder / "data"
    # Absolute paths and URLs are used as written.
    assert config.cameras["yard"].source == "/srv/yard.mp4"
    assert config.cameras["file_url"].source == "file:///srv/gate.mp4"
    assert config.cameras["rtsp"].source == "rtsp://user:pass@192.0.2.10/stream"
    assert config.cameras["demo"].source == "demo://?period=60"
    assert config.cameras["demo"].detect_source == "http://cam/v.mjpg"
    assert config.cameras["yard"].detect_source is None


@pytest.mark.parametrize(
    ("source", "path"),
    [
        ("file:///srv/front%20door.mp4", "/srv/front door.mp4"),
        ("file://localhost/srv/gate.mp4", "/srv/gate.mp4"),
        ("file:///srv/clip%231.mp4", "/srv/clip#1.mp4"),
    ],
)
def test_file_urls_name_the_file_written(source: str, path: str) -> None:
    config = parse_config(minimal(source=source))
    assert file_path(config.cameras["front_door"].source) == Path(path)


def test_a_key_given_twice_is_refused(tmp_path: Path) -> None:
    """YAML would keep the second silently: the first record block, or camera, lost."""
    path = tmp_path / "doorstep.yaml"
    path.write_text(
        "cameras:\n"
        "  front_door:\n"
        "    source: demo://\n"
        "    record: {pre_roll: 3}\n"
        "    record: {post_roll: 3}\n"
        "  front_door:\n"
        "    source: rtsp://192.0.2.10/stream\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    why = "give it once, or the second would replace the first"
    assert info.value.problems == [
        f"cameras.front_door.record: duplicate key (lines 4 and 5); {why}",
        f"cameras.front_door: duplicate key (lines 2 and 6); {why}",
    ]


def test_keys_merged_in_may_be_overridden(tmp_path: Path) -> None:
    path = tmp_path / "doorstep.yaml"
    path.write_text(
        "cameras:\n"
        "  front_door: {source: demo://, record: &record {pre_roll: 3, post_roll: 20}}\n"
        "  back_door: {source: demo://, record: {<<: *record, pre_roll: 8}}\n"
    )
    record = load_config(path).cameras["back_door"].record
    assert (record.pre_roll, record.post_roll) == (8.0, 20.0)
    # Merged before it is read itself (YAML rewrites a merged mapping in place).
    path.write_text(
        "cameras:\n"
        "  front_door:\n"
        "    source: demo://\n"
        "    doorbell:\n"
        "      topic: buttons/front\n"
        "      payload: &alice {<<: {alice: a-long-random-token-1}, alice: a-long-random-token-2}\n"
        "sharing: {requester_tokens: {<<: *alice}}\n"
    )
    tokens = load_config(path).sharing.requester_tokens
    assert tokens == (("alice", "a-long-random-token-2"),)


def test_retention_by_kind() -> None:
    storage = {"retention_days": 10, "retention": {"motion": 3, "ring": 60}}
    config = parse_config({**minimal(), "storage": storage})
    assert config.storage.retention.payload() == {
        "ring": 60,
        "person": 10,
        "motion": 3,
        "manual": 10,
    }
    assert problems({**minimal(), "storage": {"retention": {"parcel": 3, "ring": -1}}}) == [
        "storage.retention.parcel: unknown key",
        "storage.retention.ring: expected a number >= 0",
    ]


def test_defaults() -> None:
    config = parse_config(minimal())
    assert config.mqtt.base_topic == "doorstep"
    assert config.mqtt.port == 1883
    assert config.http.port == 5080
    assert config.http.token is None
    assert config.storage.retention_days is None
    assert config.storage.retention.payload() == {
        "ring": 30,
        "person": 30,
        "motion": 7,
        "manual": 30,
    }
    camera = config.cameras["front_door"]
    assert camera.detect_fps == 5.0
    assert camera.doorbell.debounce == 2.0
    assert camera.record.post_roll == 10.0


#: The end of the message for a doorbell topic that matches one of the bridge's own.
RINGS = (
    ": every message the bridge sends there would ring; use the button's own topic "
    "(e.g. zigbee2mqtt/front_button/action)"
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            minimal(record={"pre_roll": "five"}),
            "cameras.front_door.record.pre_roll: expected a number",
        ),
        (
            minimal(record={"pre_roll": True}),
            "cameras.front_door.record.pre_roll: expected a number",
        ),
        (
            minimal(record={"motion": "cats"}),
            "cameras.front_door.record.motion: expected all or people",
        ),
        (
            minimal(record={"motion": "people"}),
            (
                "cameras.front_door.record.motion: 'people' records only when person detection"
                " sees someone: turn person detection on for this camera, or record all motion"
            ),
        ),
        (minimal(colour="red"), "cameras.front_door.colour: unknown key"),
        ({"cameras": {"front_door": {}}}, "cameras.front_door.source: required key is missing"),
        ({"cameras": {}}, "cameras: expected at least one camera"),
        ({}, "cameras: required key is missing"),
        (
            minimal(privacy_masks=[[[0, 0], [10, 0]]]),
            "cameras.front_door.privacy_masks.0: expected a polygon: a list of at least 3 [x, y] points",
        ),
        (
            minimal(privacy_masks=[[[0, 0], [10, "x"], [5, 5]]]),
            "cameras.front_door.privacy_masks.0: point 1: expected [x, y] with two numbers",
        ),
        # A point OpenCV cannot hold in 32 bits passed `check`, then stopped every clip;
        # .inf and 1.0e+400 (also inf to YAML) stopped `check` itself with a traceback.
        *(
            (
                minimal(privacy_masks=[[[0, 0], [300, 0], [huge, 200], [0, 200]]]),
                "cameras.front_door.privacy_masks.0: point 2: expected finite coordinates <= 100000",
            )
            for huge in (3_000_000_000, math.inf, math.nan, 10**400, 100_001)
        ),
        (
            minimal(motion={"masks": [[[0, 0], [640, 0], [640, math.inf]]]}),
            "cameras.front_door.motion.masks.0: point 2: expected finite coordinates <= 100000",
        ),
        (
            minimal(motion={"zones": {"path": [[0, 0], [3_000_000_000, 0], [640, 360]]}}),
            "cameras.front_door.motion.zones.path: point 1: expected finite coordinates <= 100000",
        ),
        (
            minimal(source="ftp://cam/x"),
            "cameras.front_door.source: expected rtsp://..., http(s)://... (MJPEG), demo:// or a file path, not a ftp:// URL",
        ),
        ({**minimal(), "mqtt": {"port": 70000}}, "mqtt.port: expected a whole number <= 65535"),
        (
            {**minimal(), "mqtt": {"base_topic": "door/#"}},
            "mqtt.base_topic: expected an MQTT topic without wildcards or leading/trailing '/'",
        ),
        (
            {**minimal(), "mqtt": {"base_topic": "door\0step"}},
            "mqtt.base_topic: must not contain a NUL character",
        ),
        (
            {**minimal(), "mqtt": {"base_topic": "d" * 65535}},
            "mqtt.base_topic: must be at most 65279 bytes long (UTF-8)",
        ),
        (
            minimal(doorbell={"topic": "zigbee2mqtt/#/button"}),
            "cameras.front_door.doorbell.topic: '#' must be the last level (as in zigbee2mqtt/#)",
        ),
        (
            minimal(doorbell={"topic": "zigbee2mqtt/button#"}),
            "cameras.front_door.doorbell.topic: '#' must be a whole level (as in zigbee2mqtt/#)",
        ),
        (
            minimal(doorbell={"topic": "a/b+/c"}),
            "cameras.front_door.doorbell.topic: '+' must be a whole level (as in zigbee2mqtt/+/action)",
        ),
        (
            {**minimal(), "mqtt": {"base_topic": "$doorstep"}},
            "mqtt.base_topic: must not start with '$' (the broker keeps those topics for itself)",
        ),
        (
            minimal(doorbell={"topic": "$share/bells/zigbee2mqtt/front_button"}),
            (
                "cameras.front_door.doorbell.topic: must not start with '$': the broker keeps "
                "those topics for itself, and a shared subscription ($share/...) would never ring"
            ),
        ),
        # The bridge's own messages would ring: every motion, clip, availability change.
        (
            minimal(doorbell={"topic": "#"}),
            "cameras.front_door.doorbell.topic: matches the bridge's own topic doorstep/available"
            + RINGS,
        ),
        (
            minimal(doorbell={"topic": "doorstep/front_door/+"}),
            "cameras.front_door.doorbell.topic: matches the bridge's own topic "
            "doorstep/front_door/available" + RINGS,
        ),
        (
            {**minimal(doorbell={"topic": "home/#"}), "mqtt": {"base_topic": "home/bell"}},
            "cameras.front_door.doorbell.topic: matches the bridge's own topic home/bell/available"
            + RINGS,
        ),
        (
            minimal(doorbell={"topic": "buttons/\0"}),
            "cameras.front_door.doorbell.topic: must not contain a NUL character",
        ),
        (
            minimal(doorbell={"topic": "b/" + "é" * 32767}),
            "cameras.front_door.doorbell.topic: must be at most 65535 bytes long (UTF-8)",
        ),
        (
            minimal(doorbell={"topic": "buttons/\ud800"}),
            "cameras.front_door.doorbell.topic: must be valid UTF-8 (it contains an unpaired surrogate)",
        ),
        (
            minimal(doorbell={"topic": ""}),
            "cameras.front_door.doorbell.topic: expected a non-empty string",
        ),
        (
            {**minimal(), "mqtt": {"username": "doorstep", "password": 1234}},
            'mqtt.password: expected a string (quote a password YAML reads otherwise: "1234")',
        ),
        ({**minimal(), "mqtt": "127.0.0.1"}, "mqtt: expected a mapping"),
        (minimal(record=5), "cameras.front_door.record: expected a mapping"),
        ({"cameras": {"front_door": "demo://"}}, "cameras.front_door: expected a mapping"),
        (
            minimal(doorbell={"payload": {"action": "single"}}),
            (
                "cameras.front_door.doorbell.payload: a payload only filters the messages"
                " of the doorbell topic: set the topic too"
            ),
        ),
        ({**minimal(), "http": {"token": "short"}}, "http.token: expected at least 16 characters"),
        (
            {**minimal(), "http": {"public_url": "doorstep.lan:5080"}},
            "http.public_url: expected an http(s):// URL such as http://192.168.1.20:5080",
        ),
        (
            {**minimal(), "sharing": {"redact_faces": "yes"}},
            "sharing.redact_faces: expected true or false",
        ),
        (
            {"cameras": {"Front Door": {"source": "demo://"}}},
            "cameras.Front Door: camera names use lowercase letters, digits and '_' (e.g. front_door)",
        ),
        (
            {"cameras": {"share": {"source": "demo://"}}},
            "cameras.share: 'share' is reserved; choose another camera name",
        ),
        ([1, 2], "expected a mapping at the top level (mqtt:, http:, cameras:, ...)"),
        # YAML's .nan and .inf are numbers to it: NaN passed every bound, and either
        # stopped retention at each of its runs.
        (
            {**minimal(), "storage": {"retention": {"motion": math.nan}}},
            "storage.retention.motion: expected a finite number",
        ),
        (
            {**minimal(), "storage": {"max_size_gb": math.inf}},
            "storage.max_size_gb: expected a finite number",
        ),
        (
            {**minimal(), "storage": {"max_size_gb": 10**400}},
            "storage.max_size_gb: expected a finite number",
        ),
        (
            minimal(record={"post_roll": -math.inf}),
            "cameras.front_door.record.post_roll: expected a finite number",
        ),
        # A password with /, ? or # as itself reads as "user" for the host and the start
        # of the password for the port; the message must not repeat the password.
        *(
            (
                minimal(source=f"rtsp://admin:{password}@192.0.2.10/stream"),
                "cameras.front_door.source: " + ENCODE_LOGIN,
            )
            for password in ("Pa#ss123", "pa/ss", "pa?ss")
        ),
        (
            {"cameras": {"porch": {"source": "demo://", "detect_source": "http://u:s#cret@cam/v"}}},
            "cameras.porch.detect_source: " + ENCODE_LOGIN,
        ),
        (
            minimal(source="rtsp://192.0.2.10:55a4/stream"),
            "cameras.front_door.source: the port after the host is not a number from 0 to 65535",
        ),
        # A host where the path should be: file://front.mp4 opened the working directory.
        *(
            (
                minimal(source=source),
                (
                    "cameras.front_door.source: expected file:///absolute/path (three slashes)"
                    " or a plain file path, relative to this config file"
                ),
            )
            for source in (
                "file://front.mp4",
                "file://nas/srv/front.mp4",
                "file://",
                "file://localhost",
            )
        ),
        *(
            (
                minimal(detect_source=source),
                (
                    "cameras.front_door.detect_source: write ? and # in a file:// URL percent-encoded"
                    " (? as %3F, # as %23), or use a plain file path"
                ),
            )
            for source in ("file:///srv/clip#1.mp4", "file:///srv/clip?.mp4")
        ),
        # ~user for a user this machine does not have: a RuntimeError traceback before.
        (
            {**minimal(), "storage": {"path": "~nosuchdoorstepuser/data"}},
            "storage.path: no such user 'nosuchdoorstepuser' for ~nosuchdoorstepuser",
        ),
        (
            {**minimal(), "mqtt": {"tls": {"ca_certs": "~nosuchdoorstepuser"}}},
            "mqtt.tls.ca_certs: no such user 'nosuchdoorstepuser' for ~nosuchdoorstepuser",
        ),
        (
            minimal(detect_source="~nosuchdoorstepuser/low.mp4"),
            (
                "cameras.front_door.detect_source: no such user 'nosuchdoorstepuser'"
                " for ~nosuchdoorstepuser"
            ),
        ),
        (
            {**minimal(), "storage": {"path": "~door\0step/data"}},
            "storage.path: must not contain a NUL character",
        ),
        (
            minimal(source="rtsp:///stream"),
            "cameras.front_door.source: expected a host after :// (such as rtsp://192.168.1.30/stream)",
        ),
    ],
)
def test_invalid_configs_name_the_key_path(raw: Any, expected: str) -> None:
    assert expected in problems(raw)


def test_every_problem_is_reported_at_once() -> None:
    raw = {
        "mqtt": {"port": "x", "extra": 1},
        "cameras": {"front_door": {"source": "demo://", "record": {"post_roll": -1}}},
    }
    assert problems(raw) == [
        "cameras.front_door.record.post_roll: expected a number >= 0",
        "mqtt.extra: unknown key",
        "mqtt.port: expected a whole number",
    ]


def test_mask_coordinates_up_to_the_documented_bound_are_valid() -> None:
    corner = [[0, 0], [100_000, 0], [100_000, 100_000.0]]
    camera = parse_config(minimal(privacy_masks=[corner])).cameras["front_door"]
    assert camera.privacy_masks == (((0, 0), (100_000, 0), (100_000, 100_000)),)


def test_check_refuses_an_infinite_mask_point_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "doorstep.yaml"
    path.write_text(PRODUCT_EXAMPLE.replace("[300, 200], [0, 200]", "[.inf, 200], [0, 200]"))
    result = run_check(path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "cameras.front_door.privacy_masks.0: point 2: expected finite coordinates <= 100000"
    ]


def test_check_names_a_home_folder_of_no_user_without_a_traceback(tmp_path: Path) -> None:
    path = tmp_path / "doorstep.yaml"
    path.write_text(PRODUCT_EXAMPLE.replace("./doorstep-data", "~nosuchdoorstepuser/data"))
    result = run_check(path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "storage.path: no such user 'nosuchdoorstepuser' for ~nosuchdoorstepuser"
    ]


def test_a_home_folder_is_used_and_a_missing_one_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", "/home/doorstep")
    config = parse_config({**minimal(), "storage": {"path": "~/data"}})
    assert config.storage.path == Path("/home/doorstep/data")

    # No HOME, and no entry for the user either (a container run under a bare uid).
    def no_entry(uid: int) -> Any:
        raise KeyError(uid)

    monkeypatch.delenv("HOME")
    monkeypatch.setattr("pwd.getpwuid", no_entry)
    assert problems({**minimal(), "storage": {"path": "~/data"}}) == [
        "storage.path: cannot tell the home folder for ~ (HOME is not set): write the path in full"
    ]


def test_announced_api_url() -> None:
    assert parse_config({**minimal(), "http": {"host": "0.0.0.0"}}).http.announced_url == (
        "http://0.0.0.0:5080"
    )
    config = parse_config({**minimal(), "http": {"public_url": "http://192.168.1.20:5080/"}})
    assert config.http.announced_url == "http://192.168.1.20:5080"


@pytest.mark.parametrize(
    "topic",
    [
        "zigbee2mqtt/+/action",
        "buttons/#",
        "+",
        "+/+/press",
        "a//b",
        "front door/button",
        # Under the base topic, on a topic of the button's own.
        "doorstep/front_door/button",
    ],
)
def test_valid_doorbell_topic_filters(topic: str) -> None:
    config = parse_config(minimal(doorbell={"topic": topic}))
    assert config.cameras["front_door"].doorbell.topic == topic


@pytest.mark.parametrize("password", ["", " ", "1234", "pass word", "# not a comment"])
def test_any_string_is_a_password(password: str) -> None:
    config = parse_config({**minimal(), "mqtt": {"username": "doorstep", "password": password}})
    assert config.mqtt.password == password


def test_doorbell_payload_mapping() -> None:
    config = parse_config(minimal(doorbell={"topic": "z2m/b", "payload": {"action": "single"}}))
    assert config.cameras["front_door"].doorbell.payload == (("action", "single"),)


def test_secrets_do_not_appear_in_reprs() -> None:
    config = parse_config(
        {
            "mqtt": {"username": "u", "password": "mqtt-secret"},
            "http": {"token": "http-token-0123456789"},
            "cameras": {"front_door": {"source": "rtsp://admin:cam-secret@192.0.2.1/s"}},
        }
    )
    text = repr(config)
    for secret in ("mqtt-secret", "http-token-0123456789", "cam-secret"):
        assert secret not in text
    assert config.cameras["front_door"].safe_source == "rtsp://***@192.0.2.1/s"


@pytest.mark.parametrize(
    "source",
    [
        "rtsp://admin:Pa#ss123@192.0.2.10/stream",
        "http://admin:S3cr/t99@192.0.2.10/video.mjpg",
        "rtsp://admin:Pa?ss123@192.0.2.10/stream",
        "rtsp://ad#min@192.0.2.10/stream",  # a login without a password, cut short
    ],
)
def test_a_login_cut_short_by_a_character_is_still_hidden(source: str) -> None:
    # Read as a URL, the password's tail is the path, query or fragment: none of it shows.
    redacted = redact_url(source)
    assert redacted == f"{source.partition(':')[0]}://***@192.0.2.10/{source.rpartition('/')[2]}"
    assert "ss123" not in redacted
    assert "t99" not in redacted


def test_sources_with_percent_encoded_logins_are_valid() -> None:
    source = "rtsp://admin:Pa%23ss%2F%3F@192.0.2.10:554/stream"
    config = parse_config(minimal(source=source))
    assert config.cameras["front_door"].source == source
    assert config.cameras["front_door"].safe_source == "rtsp://***@192.0.2.10:554/stream"


def test_redact_url_leaves_plain_sources_alone() -> None:
    assert redact_url("/videos/door.mp4") == "/videos/door.mp4"
    assert redact_url("rtsp://192.0.2.1:554/s") == "rtsp://192.0.2.1:554/s"
    assert redact_url("rtsp://user@192.0.2.1:554/s") == "rtsp://***@192.0.2.1:554/s"


PEM_LIB = (
    "not a PEM certificate with its private key (a key in a file of its own goes in"
    " mqtt.tls.keyfile; a key locked with a password cannot be used)"
)


@pytest.mark.parametrize(
    ("tls", "expected"),
    [
        (
            {"ca_certs": "missing-ca.crt"},
            "mqtt.tls.ca_certs: cannot use {dir}/missing-ca.crt: No such file or directory",
        ),
        (
            {"ca_certs": "ca.txt"},
            "mqtt.tls.ca_certs: cannot use {dir}/ca.txt: no PEM certificate in it",
        ),
        ({"certfile": "broker.crt"}, "mqtt.tls.certfile: cannot use {dir}/broker.crt: " + PEM_LIB),
        (
            {"certfile": "broker.crt", "keyfile": "other/broker.key"},
            (
                "mqtt.tls.certfile/keyfile: cannot use {dir}/broker.crt and {dir}/other/broker.key:"
                " the key is not the certificate's"
            ),
        ),
        (
            {"keyfile": "broker.key"},
            "mqtt.tls.keyfile: a key needs its certificate: set mqtt.tls.certfile too",
        ),
    ],
)
def test_tls_files_that_cannot_be_used_are_named_with_their_key(
    tmp_path: Path, tls: dict[str, str], expected: str
) -> None:
    # Before, the files were first read when the bridge connected: `check` said "valid"
    # and `run` stopped with an SSL error blaming the HTTP address.
    self_signed(tmp_path)
    (tmp_path / "other").mkdir()
    self_signed(tmp_path / "other")
    (tmp_path / "ca.txt").write_text("not a certificate\n")
    path = tmp_path / "doorstep.yaml"
    path.write_text(yaml.safe_dump({"mqtt": {"tls": tls}, **minimal()}))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems == [expected.format(dir=tmp_path)]
    result = run_check(path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [expected.format(dir=tmp_path)]


def test_tls_files_that_belong_together_are_accepted(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    path = tmp_path / "doorstep.yaml"
    tls = {"ca_certs": cert.name, "certfile": cert.name, "keyfile": key.name}
    path.write_text(yaml.safe_dump({"mqtt": {"tls": tls}, **minimal()}))
    assert load_config(path).mqtt.tls == TlsSettings(
        ca_certs=str(cert), certfile=str(cert), keyfile=str(key)
    )


def run_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "doorstep_bridge", "check", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_check_command_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(PRODUCT_EXAMPLE)
    result = run_check(good)
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout

    bad = tmp_path / "bad.yaml"
    data = yaml.safe_load(PRODUCT_EXAMPLE)
    data["cameras"]["front_door"]["record"]["pre_roll"] = "five"
    data["cameras"]["front_door"]["zoom"] = 2
    bad.write_text(yaml.safe_dump(data))
    result = run_check(bad)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "cameras.front_door.record.pre_roll: expected a number",
        "cameras.front_door.zoom: unknown key",
    ]
    assert "Traceback" not in result.stderr


def test_check_warns_of_a_zigbee2mqtt_button_without_a_payload_filter(tmp_path: Path) -> None:
    # zigbee2mqtt publishes the button's whole state on its topic: a battery report rang.
    path = tmp_path / "doorstep.yaml"
    path.write_text(PRODUCT_EXAMPLE)  # doorbell: {topic: zigbee2mqtt/front_button}
    result = run_check(path)
    assert result.returncode == 0, result.stderr
    warning = (
        "warning: cameras.front_door.doorbell.payload: not set, so every message on"
        " zigbee2mqtt/front_button rings, and zigbee2mqtt also sends the button's battery and"
        ' link-quality reports there; set it to {"action": "single"} (the action your button'
        " sends when pressed)"
    )
    assert result.stdout.splitlines()[1:] == [warning]
    # The suggested value, as written, is the filter that lets presses alone through.
    suggested = yaml.safe_load(warning.partition("set it to ")[2].partition(" (")[0])
    fixed = PRODUCT_EXAMPLE.replace(
        "doorbell: {topic: zigbee2mqtt/front_button}",
        f"doorbell: {{topic: zigbee2mqtt/front_button, payload: {json.dumps(suggested)}}}",
    )
    assert fixed != PRODUCT_EXAMPLE
    path.write_text(fixed)
    result = run_check(path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[1:] == []


@pytest.mark.parametrize(
    "doorbell",
    [
        {"topic": "zigbee2mqtt/front_button", "payload": {"action": "single"}},
        {"topic": "zigbee2mqtt/front_button/action"},  # the action alone, nothing else
        {"topic": "buttons/front"},  # not zigbee2mqtt: what it sends is unknown
        {},
    ],
)
def test_no_warning_for_a_button_that_sends_presses_only(doorbell: dict[str, Any]) -> None:
    config = parse_config(minimal(**({"doorbell": doorbell} if doorbell else {})))
    assert config_warnings(config) == []


def test_check_refuses_a_doorbell_topic_paho_would_reject(tmp_path: Path) -> None:
    """Accepted, such a topic would end the broker connection at the first subscribe."""
    path = tmp_path / "doorstep.yaml"
    data = yaml.safe_load(PRODUCT_EXAMPLE)
    data["cameras"]["front_door"]["doorbell"]["topic"] = "zigbee2mqtt/#/button"
    data["cameras"]["back_door"] = {"source": "demo://", "doorbell": {"topic": "a/b+/c"}}
    path.write_text(yaml.safe_dump(data))
    result = run_check(path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "cameras.back_door.doorbell.topic: '+' must be a whole level (as in zigbee2mqtt/+/action)",
        "cameras.front_door.doorbell.topic: '#' must be the last level (as in zigbee2mqtt/#)",
    ]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "file not found"),
        ("cameras: [unclosed", "not valid YAML (line 1"),
        (
            "cameras:\n  porch: {source: demo://}\n  porch: {source: demo://}\n",
            "cameras.porch: duplicate key (lines 2 and 3)",
        ),
        ("", "expected a mapping at the top level"),
    ],
)
def test_check_unreadable_files(tmp_path: Path, content: str | None, expected: str) -> None:
    path = tmp_path / "doorstep.yaml"
    if content is not None:
        path.write_text(content)
    result = run_check(path)
    assert result.returncode == 2
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("level", ["debug", "INFO", "Warning", "error"])
def test_log_level_takes_any_case(level: str) -> None:
    assert parse_config({**minimal(), "log_level": level}).log_level == level.upper()


def test_log_level_names_the_levels() -> None:
    assert problems({**minimal(), "log_level": "verbose"}) == [
        "log_level: expected debug, info, warning or error"
    ]


def _bridge_log(tmp_path: Path, log_level: str | None, *arguments: str) -> str:
    """The log of a bridge run until it says it cannot reach its (absent) broker."""
    from tests.bridge.conftest import free_port

    config = tmp_path / f"doorstep-{log_level}-{len(arguments)}.yaml"
    data: dict[str, Any] = {
        "mqtt": {"port": free_port()},  # nobody listens there
        "http": {"port": free_port()},
        "storage": {"path": str(tmp_path / "data")},
        "cameras": {"front_door": {"source": "demo://"}},
    }
    if log_level is not None:
        data["log_level"] = log_level
    config.write_text(yaml.safe_dump(data))
    process = subprocess.Popen(
        [sys.executable, "-m", "doorstep_bridge", "run", "--config", str(config), *arguments],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            if "Cannot connect to the MQTT broker" in line:  # a warning: logged at every level
                break
    finally:
        process.terminate()
        process.wait(30)
    return "".join(lines)


def test_run_logs_at_the_configs_level_unless_told_otherwise(tmp_path: Path) -> None:
    starting = "Doorstep bridge"  # the INFO line every start logs
    assert starting in _bridge_log(tmp_path, None)
    assert starting not in _bridge_log(tmp_path, "warning")
    assert starting in _bridge_log(tmp_path, "warning", "--log-level", "INFO")
    # In either case, as in the config.
    assert starting in _bridge_log(tmp_path, "warning", "--log-level", "info")


def test_run_names_the_http_address_it_cannot_listen_on(tmp_path: Path) -> None:
    from tests.bridge.conftest import free_port

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = tmp_path / "doorstep.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "mqtt": {"port": free_port()},
                    "http": {"port": port},
                    "storage": {"path": str(tmp_path / "data")},
                    "cameras": {"front_door": {"source": "demo://"}},
                }
            )
        )
        result = subprocess.run(
            [sys.executable, "-m", "doorstep_bridge", "run", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert f"Cannot listen on 127.0.0.1:{port} (http.port): Address already in use" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        # Before: "Unknown error -2" (the resolver's code read as an errno).
        ("192.168.1.300", "the host name does not resolve"),
        ("nosuchhost.invalid", "the host name does not resolve"),
        # Before: asyncio's "could not bind on any address out of [...]", no reason.
        ("192.0.2.55", "not an address of this machine"),  # TEST-NET-1: nobody's
    ],
)
def test_run_says_why_http_host_cannot_be_listened_on(
    tmp_path: Path, host: str, reason: str
) -> None:
    from tests.bridge.conftest import free_port

    port = free_port()
    config = tmp_path / "doorstep.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "mqtt": {"port": free_port()},
                "http": {"host": host, "port": port},
                "storage": {"path": str(tmp_path / "data")},
                "cameras": {"front_door": {"source": "demo://"}},
            }
        )
    )
    result = subprocess.run(
        [sys.executable, "-m", "doorstep_bridge", "run", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert f"Cannot listen on {host}:{port} (http.host): {reason}\n" in result.stderr
    assert "Traceback" not in result.stderr
