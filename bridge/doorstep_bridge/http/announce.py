"""The API address announced to Home Assistant when the bridge listens on every address.

``http.host: 0.0.0.0`` without ``http.public_url`` used to announce
``http://0.0.0.0:5080``: a Home Assistant on another machine (or in another
container) cannot reach that, and the owner had to correct it in the setup form.
The address this machine reaches the broker from is one Home Assistant most
likely reaches too (it talks to the same broker), so that is announced instead.
"""

from __future__ import annotations

from dataclasses import replace
import ipaddress
import logging
import socket

from doorstep_bridge.config import Config

_LOGGER = logging.getLogger(__name__)

#: Hosts that mean "listen on every address".
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})  # noqa: S104 - compared, not bound


def with_reachable_url(config: Config) -> Config:
    """``config`` with an API address Home Assistant can reach, when it has none of its own.

    Blocking (a name look-up for the broker): call before the event loop runs.
    """
    http = config.http
    if http.public_url or http.host not in WILDCARD_HOSTS:
        return config
    address = address_towards(config.mqtt.host, config.mqtt.port)
    if address is None:
        _LOGGER.warning(
            "http.host is %s and http.public_url is not set: Home Assistant is told %s, "
            "which works only on this machine; set http.public_url to this machine's address",
            http.host or "''",
            http.announced_url,
        )
        return config
    host = f"[{address}]" if ":" in address else address
    url = f"http://{host}:{http.port}"
    _LOGGER.info(
        "Announcing the API to Home Assistant as %s, the address this machine reaches the "
        "broker from (set http.public_url to announce another)",
        url,
    )
    return replace(config, http=replace(http, public_url=url))


def address_towards(host: str, port: int) -> str | None:
    """This machine's address on the way to ``host``; None when that is a loopback address.

    A UDP socket's ``connect`` only picks the route: nothing is sent.
    """
    try:
        candidates = socket.getaddrinfo(host, port, type=socket.SOCK_DGRAM)
    except OSError:
        return None
    for family, _type, _proto, _name, destination in candidates:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            try:
                probe.connect(destination)
            except OSError:
                continue
            address = str(probe.getsockname()[0]).partition("%")[0]
        if not ipaddress.ip_address(address).is_loopback:
            return address
    return None
