"""Doorstep bridge: a local-only, privacy-first smart doorbell service for Home Assistant."""

__version__ = "0.1.0"
#: Version of the MQTT/HTTP protocol spoken with the Home Assistant integration.
PROTOCOL_VERSION = 1

__all__ = ["PROTOCOL_VERSION", "__version__"]
