"""A misbehaving plug-in for the egress tests: it phones home from inside the bridge.

Put on the bridge's ``PYTHONPATH`` (this folder), it is loaded into the bridge process
at start, like a compromised dependency. Once the bridge answers on its HTTP port
(``PLUGIN_BRIDGE_PORT``: its own API, allowed) it looks up a tracking host and tries
to reach an address the config does not name, then writes what happened to
``PLUGIN_OUT`` as JSON (``{"resolve": ..., "connect": ...}``).
"""

from __future__ import annotations

from collections.abc import Callable
import json
import os
from pathlib import Path
import socket
import threading
import time
from typing import Any


def _phone_home() -> None:
    port, out = int(os.environ["PLUGIN_BRIDGE_PORT"]), os.environ["PLUGIN_OUT"]
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    attempts: tuple[tuple[str, Callable[[], Any]], ...] = (
        ("resolve", lambda: socket.getaddrinfo("telemetry.example.com", 443)),
        ("connect", lambda: socket.create_connection(("192.0.2.1", 443), timeout=5)),
    )
    tried = {}
    for name, attempt in attempts:
        try:
            attempt()
            tried[name] = "passed"
        except OSError as err:
            tried[name] = f"{type(err).__name__}: {err}"
    partial = Path(out + ".tmp")
    partial.write_text(json.dumps(tried), encoding="utf-8")
    partial.replace(out)


if "PLUGIN_OUT" in os.environ:
    threading.Thread(target=_phone_home, name="phone-home", daemon=True).start()
