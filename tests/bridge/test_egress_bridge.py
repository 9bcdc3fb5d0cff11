"""The running bridge with a misbehaving plug-in: refused, audited, counted on MQTT.

The plug-in (tests/support/phone_home) is a ``sitecustomize`` module on the bridge's
``PYTHONPATH``: loaded into the bridge process at start, like a compromised
dependency. Once the bridge answers on its HTTP port it tries to look up a tracking
host and to reach an address the config does not name, and writes what happened to
a file.
"""

from __future__ import annotations

from collections.abc import Callable
import json
import os
from pathlib import Path
import signal
import subprocess
import sys

import yaml

from doorstep_bridge.sharing.audit import verify_log

from .conftest import Broker, Listener, free_port

EGRESS = "doorstep/bridge/egress"

#: The plug-in's folder: its ``sitecustomize`` phones home (tests/support/phone_home).
PLUGIN = Path(__file__).resolve().parents[1] / "support" / "phone_home"


def test_a_plugin_that_phones_home_is_refused_audited_and_counted(
    mqtt_broker: Broker, mqtt_listener: Callable[..., Listener], tmp_path: Path
) -> None:
    out = tmp_path / "phone-home.json"
    http_port = free_port()
    config = tmp_path / "doorstep.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "mqtt": {"port": mqtt_broker.port},
                "http": {"port": http_port},
                "storage": {"path": str(tmp_path / "data")},
                "cameras": {"front_door": {"source": "demo://"}},
            }
        )
    )
    listener = mqtt_listener(EGRESS)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(PLUGIN), os.environ.get("PYTHONPATH", "")]),
        "PLUGIN_BRIDGE_PORT": str(http_port),
        "PLUGIN_OUT": str(out),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "doorstep_bridge", "run", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        reports = [json.loads(listener.wait_for(EGRESS, 30))]
        while reports[-1]["blocked"] < 2:
            reports.append(json.loads(listener.wait_for(EGRESS, 30)))
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)

    assert process.returncode == 0, stderr.decode(errors="replace")[-2000:]
    # Refused in the plug-in, before anything left the process.
    tried = json.loads(out.read_text())
    assert tried["resolve"].startswith("EgressRefusedError: [Errno 13] egress guard: resolve")
    assert tried["connect"].startswith("EgressRefusedError: [Errno 13] egress guard: connect")
    # Counted on MQTT, retained: what was published before the broker connection came up
    # is sent as its latest state, so earlier counts may never show.
    counts = [r["blocked"] for r in reports]
    assert counts == sorted(counts)
    assert counts[-1] == 2
    last = reports[-1]["last"]
    assert (last["action"], last["destination"]) == ("connect", "192.0.2.1:443")
    assert last["caller"].startswith("sitecustomize:")
    assert last["thread"] == "phone-home"
    # Audited, in a chain that verifies.
    assert verify_log(tmp_path / "data").ok
    audit = tmp_path / "data" / "audit"
    records = [
        json.loads(line)
        for line in (audit / "audit.jsonl").read_text().splitlines()
        if '"connection_blocked"' in line
    ]
    assert [(r["action"], r["destination"], r["count"]) for r in records] == [
        ("resolve", "telemetry.example.com", 1),
        ("connect", "192.0.2.1:443", 1),
    ]
    assert all(r["caller"].startswith("sitecustomize:") for r in records)
    assert b"Egress guard refused connect 192.0.2.1:443 from sitecustomize:" in stderr
