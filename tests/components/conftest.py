"""Shared fixtures of the integration tests.

pytest-homeassistant-custom-component registers itself as a pytest plugin, so
``hass``, ``mqtt_mock`` and friends need no import.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from unittest.mock import MagicMock, Mock

import pytest


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let HA load custom_components/ from the repository root."""


@pytest.fixture
async def mqtt(mqtt_mock: MagicMock, mqtt_client_mock: MagicMock) -> AsyncIterator[MagicMock]:
    """``mqtt_mock`` whose fake socket is closed at teardown.

    The mocked paho client "opens" a socket, which starts MQTT's 1 s misc timer;
    nothing closes it, so the plugin's cleanup check fails the test with a
    lingering ``MQTT._async_start_misc_periodic`` timer.
    """
    yield mqtt_mock
    mqtt_client_mock.on_socket_close(mqtt_client_mock, None, Mock(fileno=Mock(return_value=-1)))
