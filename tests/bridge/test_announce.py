"""The API address announced to Home Assistant when the bridge listens on every address."""

from __future__ import annotations

import json
import logging
from pathlib import Path
import shutil
import subprocess
import sys
from typing import Any
import urllib.request

import pytest
import yaml

from doorstep_bridge.config import Config, parse_config
from doorstep_bridge.http.announce import address_towards, with_reachable_url
from doorstep_bridge.mqtt.publisher import bridge_info
from tests.bridge.conftest import Broker, Listener, free_port

#: A documentation address (TEST-NET-3): routed like any other, never reached (UDP
#: ``connect`` sends nothing).
FAR_BROKER = "203.0.113.7"


def config(tmp_path: Path, broker: str, **http: Any) -> Config:
    return parse_config(
        {
            "mqtt": {"host": broker},
            "http": {"port": 5080, **http},
            "storage": {"path": str(tmp_path)},
            "cameras": {"front_door": {"source": "demo://porch"}},
        }
    )


@pytest.fixture
def own_address() -> str:
    address = address_towards(FAR_BROKER, 1883)
    if address is None:
        pytest.skip("this machine has no route off itself")
    return address


def test_a_bridge_on_every_address_announces_the_one_it_reaches_the_broker_from(
    tmp_path: Path, own_address: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    announced = with_reachable_url(config(tmp_path, FAR_BROKER, host="0.0.0.0"))
    url = f"http://{own_address}:5080"
    assert announced.http.announced_url == url
    assert bridge_info(announced, "b1")["api_url"] == url  # discovery and bridge info
    assert announced.http.host == "0.0.0.0"
    assert f"Announcing the API to Home Assistant as {url}" in caplog.text


@pytest.mark.parametrize(
    ("http", "announced"),
    [
        ({"host": "127.0.0.1"}, "http://127.0.0.1:5080"),
        ({"host": "192.0.2.40"}, "http://192.0.2.40:5080"),
        ({"host": "0.0.0.0", "public_url": "http://door.lan:5080"}, "http://door.lan:5080"),
    ],
)
def test_an_address_of_the_owners_choosing_is_announced_as_it_is(
    tmp_path: Path, http: dict[str, str], announced: str
) -> None:
    assert with_reachable_url(config(tmp_path, FAR_BROKER, **http)).http.announced_url == announced


def test_a_broker_on_this_machine_gives_no_address_and_a_warning_says_what_to_set(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    announced = with_reachable_url(config(tmp_path, "127.0.0.1", host="0.0.0.0"))
    assert announced.http.announced_url == "http://0.0.0.0:5080"
    assert "http.public_url is not set" in caplog.text
    assert "works only on this machine" in caplog.text


def test_a_broker_name_that_does_not_resolve_gives_no_address() -> None:
    assert address_towards("no-such-broker.invalid", 1883) is None


def test_a_running_bridge_on_every_address_is_discovered_at_one_home_assistant_can_reach(
    tmp_path: Path, own_address: str
) -> None:
    """The real command and broker: discovery names an address the API answers on."""
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed (scripts/setup installs it)")
    port = free_port()
    mosquitto_conf = tmp_path / "mosquitto.conf"
    # Every address: the bridge reaches it at this machine's own, as from another host.
    mosquitto_conf.write_text(f"listener {port}\nallow_anonymous true\n", encoding="utf-8")
    broker = Broker(port=port, config_path=mosquitto_conf, host=own_address)
    broker.start()
    api_port = free_port()
    config_path = tmp_path / "doorstep.yaml"
    config_path.write_text(
        yaml.safe_dump(
            {
                "mqtt": {"host": own_address, "port": port},
                "http": {"host": "0.0.0.0", "port": api_port},
                "storage": {"path": str(tmp_path / "data")},
                "cameras": {"front_door": {"source": "demo://?fps=5&width=320&height=180"}},
            }
        ),
        encoding="utf-8",
    )
    listener = Listener(broker, ["doorstep/bridge/info"])
    log = tmp_path / "bridge.log"
    with log.open("wb") as out:
        bridge = subprocess.Popen(
            [sys.executable, "-m", "doorstep_bridge", "run", "--config", str(config_path)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        # The bridge info carries the same URL as discovery (one builder, bridge_info).
        info = json.loads(listener.wait_for("doorstep/bridge/info", timeout=60))
        assert info["api_url"] == f"http://{own_address}:{api_port}"
        with urllib.request.urlopen(f"{info['api_url']}/api/health", timeout=10) as answer:
            assert answer.status == 200
    finally:
        bridge.terminate()
        bridge.wait(timeout=30)
        listener.close()
        broker.stop()
    assert "Announcing the API to Home Assistant as" in log.read_text(encoding="utf-8")
