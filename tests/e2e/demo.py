"""The live demo behind ``scripts/demo``: the whole system on this machine, offline.

``run`` (default) starts Mosquitto, the bridge on the built-in demo camera (a
visitor walks up and rings every minute), and Home Assistant on 127.0.0.1
(``DEMO_HA_PORT``, default 8123) with the integration from the working tree,
an onboarded owner and the owner's phone as approver. It prints the MQTT
traffic, what the phone receives, and stops everything on Ctrl-C.
``ring`` presses the doorbell of the running demo; ``share`` asks for footage,
and ``approve`` / ``deny`` tap a button of the phone's notification.
"""

from __future__ import annotations

import argparse
import asyncio
from contextlib import suppress
import fcntl
import json
import os
from pathlib import Path
import secrets
import shutil
import signal
import sys
import threading
import time
from typing import Any

import aiohttp
import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from tests.e2e.ha_client import OWNER, HaClient, Phone, tap_action
from tests.e2e.servers import (
    BASE_TOPIC,
    CAMERA,
    ROOT,
    Watchdog,
    ha_facts,
    listening,
    make_bridge,
    make_home_assistant,
    mosquitto,
    start_mosquitto,
    write_json_private,
)
from tests.e2e.stack import Stack, bridge_id, configure_home_assistant

#: Where the demo keeps its state; DEMO_DIR moves it (the tests run a demo of their own).
DEMO = Path(os.environ.get("DEMO_DIR", ROOT / ".demo"))
CREDENTIALS = DEMO / "credentials.json"
RUN_FILE = DEMO / "run.json"
#: Held (flock) by the running demo for its whole life: one demo per folder. The kernel
#: drops the lock when the process dies, so a crash leaves nothing stale behind.
LOCK_FILE = DEMO / "demo.lock"
#: The neighbour's window, top left of the demo camera's 640x360 frame: never stored.
PRIVACY_MASK = [[0, 0], [160, 0], [160, 90], [0, 90]]
#: How long ``approve`` / ``deny`` wait for Home Assistant to act on the tap.
DECISION_TIMEOUT = 20.0
PAYLOAD_WIDTH = 90
#: Where a share link opens for its recipient, without a login: through Home Assistant
#: (``SHARE_URL`` of the integration), never on the bridge, which listens on loopback only.
SHARE_URL = "{ha_url}/api/doorstep/share/{bridge_id}/{token}"
#: The services of this folder's demo, as their command lines name them (found when an
#: earlier demo was killed before it could stop them).
SERVICE_NAMES = {"mosquitto": "Mosquitto", "bridge": "the bridge", "ha": "Home Assistant"}

#: say() is called from paho's network thread and from the asyncio thread: one line at a time.
_output_lock = threading.Lock()
#: Set once the demo's output is gone (the reader of its pipe ended, its terminal closed).
output_gone = threading.Event()


def _shown(path: Path) -> Path:
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def _write(text: str, stream_name: str = "stdout") -> None:
    """Write ``text`` in one call and flush; never raise when the output has gone away.

    A broken stdout is replaced by /dev/null (on the same descriptor, so that Python's own
    flush at exit finds nothing to complain about), and ``output_gone`` tells the demo.
    """
    with _output_lock:
        stream = getattr(sys, stream_name)
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError):
            if stream_name == "stdout":
                output_gone.set()
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, stream.fileno())
            except (OSError, ValueError, AttributeError):
                setattr(sys, stream_name, Path(os.devnull).open("w"))  # noqa: SIM115 - until exit
            finally:
                os.close(devnull)


def say(text: str) -> None:
    """One line on the terminal, time-stamped."""
    _write(f"{time.strftime('%H:%M:%S')}  {text}\n")


def complain(text: str) -> None:
    """One line on stderr (``demo: ...``)."""
    _write(f"demo: {text}\n", "stderr")


def share_link(ha_url: str, bridge: str, link: str) -> str:
    """The address a recipient opens, from the bridge's link path (``.../<token>``)."""
    return SHARE_URL.format(ha_url=ha_url, bridge_id=bridge, token=link.rpartition("/")[2])


def describe(payload: bytes) -> str:
    """A payload as a person would like to read it: short, JPEG as its size."""
    if payload[:3] == b"\xff\xd8\xff":
        return f"<jpeg {len(payload)} bytes>"
    try:
        text = payload.decode()
    except UnicodeDecodeError:
        return f"<{len(payload)} bytes>"
    text = " ".join(text.split())
    if not text:
        return "(empty)"
    return text if len(text) <= PAYLOAD_WIDTH else text[: PAYLOAD_WIDTH - 1] + "…"


def mqtt_printer(port: int, ha_url: str, bridge: str) -> paho.Client:
    """Print every Doorstep message on the broker, as Home Assistant receives them.

    A ready share's link is shown as its recipient opens it: through Home Assistant.
    """
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="doorstep-demo-monitor")

    def on_connect(*_args: object) -> None:
        client.subscribe([(f"{BASE_TOPIC}/#", 0)])

    share_states: dict[str, str] = {}

    def on_message(_client: object, _userdata: object, message: paho.MQTTMessage) -> None:
        retained = " (retained)" if message.retain else ""
        text = describe(message.payload)
        if message.topic.startswith(f"{BASE_TOPIC}/share/s_"):
            # A render publishes its progress many times a second: one line per state.
            with suppress(ValueError, AttributeError):
                share = json.loads(message.payload)
                if share_states.get(message.topic) == share["state"]:
                    return
                share_states[message.topic] = share["state"]
                text = f"state {share['state']}, requested by {share['requester']!r}"
                if share.get("link"):
                    link = share_link(ha_url, bridge, share["link"])
                    text += f", link {link} (no login needed) until {share['link_expires']}"
        say(f"mqtt  {message.topic:<38} {text}{retained}")

    client.on_connect = on_connect
    client.on_message = on_message
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def show_notification(note: dict[str, Any]) -> None:
    """Print what the phone shows; remember its buttons for ``scripts/demo approve|deny``."""
    data = note.get("data", {})
    actions = data.get("actions", [])
    if not actions:  # e.g. clear_notification once someone decided
        say(f"phone ({note.get('message')})")
        return
    titles = [a["title"] for a in actions]
    say(f"phone {note.get('title', '')}: {note.get('message')} {titles}")
    say("      answer from the 'phone' with: scripts/demo approve | scripts/demo deny")
    with suppress(OSError, ValueError):
        run = json.loads(RUN_FILE.read_text())
        run["notification"] = {"tag": data.get("tag"), "actions": [a["action"] for a in actions]}
        write_json_private(RUN_FILE, run)


async def phone(stack: Stack, stop: asyncio.Event) -> None:
    """The owner's phone: the companion app's local push channel, printed."""
    owner_phone = stack.phones[OWNER]
    async with aiohttp.ClientSession() as session:
        client = HaClient(session, stack.ha.url, owner_phone.user_token)
        while not stop.is_set():
            try:
                async with client.websocket() as ws:
                    sub = await ws.subscribe(
                        type="mobile_app/push_notification_channel",
                        webhook_id=owner_phone.webhook_id,
                    )
                    while not stop.is_set():
                        with suppress(TimeoutError):
                            message = await ws.receive(timeout=1.0)
                            if message.get("id") == sub and message.get("type") == "event":
                                show_notification(message["event"])
            except (aiohttp.ClientError, ConnectionError, RuntimeError):
                await asyncio.sleep(2)


async def ha_events(stack: Stack, stop: asyncio.Event) -> None:
    """Print the Doorstep entity changes Home Assistant makes (what automations see)."""
    async with aiohttp.ClientSession() as session:
        client = HaClient(session, stack.ha.url, stack.owner_token)
        with suppress(aiohttp.ClientError, ConnectionError, RuntimeError):
            async with client.websocket() as ws:
                sub = await ws.subscribe(type="subscribe_events", event_type="state_changed")
                while not stop.is_set():
                    with suppress(TimeoutError):
                        message = await ws.receive(timeout=1.0)
                        if message.get("id") != sub:
                            continue
                        data = message["event"]["data"]
                        entity_id: str = data["entity_id"]
                        new = data.get("new_state") or {}
                        old = data.get("old_state") or {}
                        if f".{CAMERA}_" not in entity_id or old.get("state") == new.get("state"):
                            continue
                        detail = new.get("state")
                        if entity_id.startswith("event."):
                            detail = new.get("attributes", {}).get("event_type")
                        say(f"ha    {entity_id:<38} {detail}")


def load_password() -> str:
    """Keep the owner's password across runs (a fresh one the first time)."""
    with suppress(OSError, ValueError, KeyError):
        password: str = json.loads(CREDENTIALS.read_text())["password"]
        return password
    return secrets.token_urlsafe(12)


async def serve(stack: Stack, started: float) -> None:
    """Configure HA, print the login, then show the traffic until Ctrl-C."""
    await configure_home_assistant(stack)
    write_json_private(CREDENTIALS, stack.credentials())
    write_json_private(
        RUN_FILE,
        {
            "mqtt_port": stack.mqtt_port,
            "pid": os.getpid(),
            "url": stack.ha.url,
            "token": stack.owner_token,
            "phone_webhook": stack.phones[OWNER].webhook_id,
        },
    )
    bridge = await bridge_id(stack)
    elapsed = time.monotonic() - started
    _write(
        f"\n  Home Assistant {ha_facts()['version']} is ready ({elapsed:.0f} s): {stack.ha.url}\n"
        f"  Log in as {OWNER!r}, password {stack.password!r} (also in {_shown(CREDENTIALS)})\n"
        f"  The demo visitor rings every minute; ring now with: scripts/demo ring\n"
        f"  Ask for footage with: scripts/demo share (the owner's 'phone' is notified)\n"
        f"  Ctrl-C stops everything.\n\n"
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stop.set)
    monitor = mqtt_printer(stack.mqtt_port, stack.ha.url, bridge)
    tasks = [asyncio.create_task(phone(stack, stop)), asyncio.create_task(ha_events(stack, stop))]
    try:
        while not stop.is_set():
            if output_gone.is_set():  # nobody reads the demo any more (e.g. `| head`)
                stop.set()
            for service in (stack.broker, stack.bridge.service, stack.ha.service):
                if not service.running:
                    say(f"{service.name} stopped unexpectedly; see {service.log_path}")
                    stop.set()
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=2.0)
    finally:
        monitor.disconnect()
        monitor.loop_stop()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _take_lock() -> int | None:
    """The demo's lock (an open descriptor, kept until exit), or None when another demo has it."""
    DEMO.mkdir(mode=0o700, exist_ok=True)
    fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _lock_holder() -> str | None:
    """Who runs the demo of this folder ("pid N, URL"), or None when no demo runs."""
    try:
        fd = os.open(LOCK_FILE, os.O_RDONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = LOCK_FILE.read_text().strip() or "?"
        url = ""
        with suppress(OSError, ValueError, KeyError):
            url = ", " + json.loads(RUN_FILE.read_text())["url"]
        return f"pid {pid}{url}"
    finally:
        os.close(fd)
    return None


def _ha_port() -> int | None:
    """DEMO_HA_PORT (default 8123), or None when it is no port number."""
    raw = os.environ.get("DEMO_HA_PORT", "8123").strip()
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= 65535:
        return None
    return int(raw)


def leftovers() -> dict[int, str]:
    """Services of this folder that an earlier demo left running: pid -> what it is.

    Only a demo killed outright leaves any (its watchdog stops them within seconds; demos
    before the watchdog did not have one). Found by their command lines, which name this
    folder's config files. Linux only (``/proc``); elsewhere, none are found.
    """
    wanted = {
        str(DEMO / "mosquitto.conf"): SERVICE_NAMES["mosquitto"],
        str(DEMO / "doorstep.yaml"): SERVICE_NAMES["bridge"],
        str(DEMO / "ha"): SERVICE_NAMES["ha"],
    }
    found: dict[int, str] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        with suppress(OSError, ValueError):
            args = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            name = next((wanted[arg] for arg in args if arg in wanted), None)
            if name is not None and int(entry.name) != os.getpid():
                found[int(entry.name)] = name
    return found


def _stop_on_signal(signum: int, _frame: object) -> None:
    """SIGTERM or SIGHUP (its terminal closed) during start-up: stop like Ctrl-C does."""
    raise KeyboardInterrupt(signal.Signals(signum).name)


#: What stops the demo: Ctrl-C, ``kill``, and its terminal closing.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def run() -> int:
    """Start everything, serve, stop everything."""
    port = _ha_port()
    if port is None:
        complain("DEMO_HA_PORT must be a port number (1-65535)")
        return 2
    # Before anything else: a second demo must not touch the running one's folder.
    lock = _take_lock()
    if lock is None:
        complain(
            f"already running in {_shown(DEMO)} ({_lock_holder() or 'starting'}); "
            "stop it (Ctrl-C in its terminal) before starting another"
        )
        return 1
    # Ours now: a run file left by a demo that was killed describes nothing that runs.
    RUN_FILE.unlink(missing_ok=True)
    if left := leftovers():
        what = ", ".join(f"{name} (pid {pid})" for pid, name in sorted(left.items()))
        pids = " ".join(str(pid) for pid in sorted(left))
        complain(
            f"an earlier demo in {_shown(DEMO)} was killed and left {what} running"
            f"{f' on port {port}' if listening(port) else ''}; stop them with: kill {pids}"
        )
        return 1
    if listening(port):
        complain(f"port {port} is taken; set DEMO_HA_PORT to another port")
        return 1
    started = time.monotonic()
    DEMO.chmod(0o700)
    # A fresh Home Assistant each time (onboarded by the demo); the clips stay.
    shutil.rmtree(DEMO / "ha", ignore_errors=True)
    shutil.rmtree(DEMO / "logs", ignore_errors=True)
    broker, mqtt_port = mosquitto(DEMO)
    bridge = make_bridge(DEMO, mqtt_port, "demo://?period=60", {"privacy_masks": [PRIVACY_MASK]})
    ha = make_home_assistant(DEMO / "ha", port, DEMO / "logs/home-assistant.log")
    # The project's blueprints, ready under Settings > Automations > Blueprints.
    shutil.copytree(ROOT / "blueprints", DEMO / "ha" / "blueprints", dirs_exist_ok=True)
    stack = Stack(DEMO, broker, mqtt_port, bridge, ha, password=load_password())
    # Should the demo be killed outright, its watchdog stops the services (they run in
    # sessions of their own, out of reach of the terminal's signals).
    watchdog = Watchdog()
    for service in (broker, bridge.service, ha.service):
        service.watchdog = watchdog
    # Ctrl-C (or SIGTERM, SIGHUP) during start-up lands here as KeyboardInterrupt; the
    # finally stops what runs. While serving, they set serve()'s stop event instead.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _stop_on_signal)
    try:
        say("starting Mosquitto, the bridge (demo camera) and Home Assistant…")
        start_mosquitto(broker, mqtt_port)
        bridge.start()
        ha.start()
        asyncio.run(serve(stack, started))
    except KeyboardInterrupt:
        pass
    except RuntimeError as err:
        complain(str(err))
        return 1
    finally:
        # A second Ctrl-C (or the terminal closing meanwhile) must not cut the stop short.
        for sig in STOP_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        say("stopping…")
        stack.stop()
        watchdog.close()
        RUN_FILE.unlink(missing_ok=True)
        say(f"stopped (logs in {_shown(DEMO / 'logs')})")
    return 0


def ring() -> int:
    """Press the doorbell of the running demo (as a button on the broker would)."""
    run_state = _running()
    if run_state is None:
        return 1
    port = int(run_state["mqtt_port"])
    client = paho.Client(CallbackAPIVersion.VERSION2)
    try:
        client.connect("127.0.0.1", port)
    except OSError:
        print("demo: its broker does not answer; is the demo still running?", file=sys.stderr)
        return 1
    client.loop_start()
    info = client.publish(f"{BASE_TOPIC}/{CAMERA}/ring/set", b"demo", qos=1)
    info.wait_for_publish(10)
    client.disconnect()
    client.loop_stop()
    print(f"ding dong: pressed {BASE_TOPIC}/{CAMERA}/ring/set")
    return 0


def _running() -> dict[str, Any] | None:
    """The running demo's addresses, or None (and why, on stderr)."""
    holder = _lock_holder()
    try:
        run_state: dict[str, Any] = json.loads(RUN_FILE.read_text())
    except (OSError, ValueError):
        run_state = {}
    if holder is not None and run_state:
        return run_state
    if holder is not None:
        print(
            f"demo: still starting ({holder}); try again once it prints the login",
            file=sys.stderr,
        )
    else:
        print("demo: not running (start it with scripts/demo)", file=sys.stderr)
    return None


async def _share(run_state: dict[str, Any]) -> None:
    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, run_state["url"], run_state["token"])
        answer = await owner.call_service(
            "doorstep",
            "request_share",
            {
                "entity_id": f"event.{CAMERA}_doorbell",
                "last_minutes": 10,
                "requester": "Neighbour (demo)",
                "reason": "A parcel went missing",
            },
            response=True,
        )
    response = answer["service_response"]
    print(f"share request {response['share_id']}: {response['state']}")


def share() -> int:
    """Ask for the last 10 minutes of footage, as a neighbour's request would."""
    run_state = _running()
    if run_state is None:
        return 1
    asyncio.run(_share(run_state))
    return 0


async def _tap_and_watch(run_state: dict[str, Any], phone_reg: Phone, action: str,
                         tag: str | None) -> tuple[bool, str]:  # fmt: skip
    """Tap, then read what Home Assistant did with it: a share state, or a refusal.

    The companion app's webhook answers 200 to any well-formed call; whether the tap
    counted shows on HA's bus afterwards.
    """
    async with aiohttp.ClientSession() as session:
        owner = HaClient(session, run_state["url"], run_state["token"])
        async with owner.websocket() as ws:
            refused = await ws.subscribe(
                type="subscribe_events", event_type="doorstep_share_decision_rejected"
            )
            updated = await ws.subscribe(
                type="subscribe_events", event_type="doorstep_share_updated"
            )
            status = await tap_action(session, run_state["url"], phone_reg, action, tag)
            if status != 200:
                return False, f"Home Assistant answered HTTP {status} to the phone's tap"
            deadline = time.monotonic() + DECISION_TIMEOUT
            while (left := deadline - time.monotonic()) > 0:
                with suppress(TimeoutError):
                    message = await ws.receive(timeout=left)
                    data = message.get("event", {}).get("data", {})
                    if message.get("id") == refused:
                        why = str(data.get("reason", "")).replace("_", " ")
                        return False, f"Home Assistant refused the tap: {why}"
                    if message.get("id") == updated:
                        return True, f"share {data.get('share_id')} is now {data.get('state')}"
    return False, f"Home Assistant did nothing with the tap within {DECISION_TIMEOUT:.0f} s"


def answer(verb: str) -> int:
    """Tap Approve or Deny on the phone's last notification (the app's webhook)."""
    run_state = _running()
    if run_state is None:
        return 1
    note = run_state.get("notification")
    if not note:
        print("demo: the phone has no share notification (try scripts/demo share)", file=sys.stderr)
        return 1
    action = next((a for a in note["actions"] if f"_{verb.upper()}_" in a), None)
    if action is None:
        print(f"demo: the notification has no {verb} button", file=sys.stderr)
        return 1
    phone_reg = Phone(run_state["token"], run_state["phone_webhook"], "Owner phone")
    counted, outcome = asyncio.run(_tap_and_watch(run_state, phone_reg, action, note["tag"]))
    print(f"tapped {verb} on the phone: {outcome}", file=sys.stdout if counted else sys.stderr)
    return 0 if counted else 1


def main(argv: list[str] | None = None) -> int:
    """``scripts/demo [run|ring|share|approve|deny]``."""
    parser = argparse.ArgumentParser(prog="scripts/demo", description=__doc__.splitlines()[0])
    parser.add_argument(
        "command", nargs="?", default="run", choices=["run", "ring", "share", "approve", "deny"]
    )
    args = parser.parse_args(argv)
    if args.command == "ring":
        return ring()
    if args.command == "share":
        return share()
    if args.command in ("approve", "deny"):
        return answer(args.command)
    return run()


if __name__ == "__main__":
    sys.exit(main())
