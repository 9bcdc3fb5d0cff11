"""Fixtures of the packaging tests: the bridge tests' real Mosquitto broker."""

from tests.bridge.conftest import mqtt_broker

__all__ = ["mqtt_broker"]
