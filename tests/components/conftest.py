"""Shared fixtures of the integration tests.

pytest-homeassistant-custom-component registers itself as a pytest plugin, so
``hass``, ``mqtt_mock`` and friends need no import.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
import logging
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


class LogRecords(logging.Handler):
    """What the integration logged during one test."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def messages(self) -> list[str]:
        """Every message, formatted."""
        return [record.getMessage() for record in self.records]

    @property
    def text(self) -> str:
        """Every message, one a line."""
        return "".join(f"{message}\n" for message in self.messages)

    def levels(self, text: str) -> list[int]:
        """Levels of the messages that contain ``text``, in order."""
        return [r.levelno for r in self.records if text in r.getMessage()]


@pytest.fixture
def doorstep_log() -> Iterator[LogRecords]:
    """The integration's log records, through a handler of the test's own.

    Not ``caplog``: HA's test plugin overrides ``caplog`` with a fixture that
    requests ``caplog``, so whenever pytest's logging plugin is off
    (``-p no:logging``) the override finds only itself and the test errors with
    "recursive dependency involving fixture 'caplog'".
    """
    logger = logging.getLogger("custom_components.doorstep")
    handler = LogRecords()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
