"""Command line: ``doorstep-bridge run|check|audit verify|verify-export|report|addon-config``."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
import logging
import os
from pathlib import Path
import sys

from doorstep_bridge import __version__
from doorstep_bridge.config import LOG_LEVELS, Config, config_warnings, load_config
from doorstep_bridge.exceptions import ConfigError, DoorstepError

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_INVALID = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="doorstep-bridge",
        description="Doorstep: a local-only, privacy-first smart doorbell bridge.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the bridge")
    run.add_argument("--config", required=True, type=Path, help="YAML config file")
    run.add_argument(
        "--log-level",
        type=str.upper,  # as the config's log_level: debug or DEBUG
        choices=LOG_LEVELS,
        help="how much to log (default: the config's log_level, else INFO)",
    )

    check = commands.add_parser("check", help="validate a config file (exit 2 on problems)")
    check.add_argument("--config", required=True, type=Path, help="YAML config file")

    audit = commands.add_parser("audit", help="audit log tools")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = audit_commands.add_parser("verify", help="verify the audit log's hash chain")
    verify.add_argument("--config", required=True, type=Path, help="YAML config file")

    verify_export = commands.add_parser(
        "verify-export", help="check a share export against its signature, offline"
    )
    verify_export.add_argument("file", type=Path, help="the exported video")
    verify_export.add_argument(
        "signature",
        type=Path,
        nargs="?",
        help="its signature file (default: FILE.doorstep-sig.json)",
    )
    verify_export.add_argument(
        "--fingerprint",
        help="also require this signing key (SHA256:..., as the bridge shows it)",
    )

    report = commands.add_parser(
        "report", help="print the transparency report (share requests, decisions, releases)"
    )
    report.add_argument("--config", required=True, type=Path, help="YAML config file")
    report.add_argument(
        "--since", help="only requests made from this time on (ISO 8601, e.g. 2026-01-01)"
    )

    addon = commands.add_parser(
        "addon-config", help="write the config of the Home Assistant OS add-on from its options"
    )
    addon.add_argument("--options", required=True, type=Path, help="the add-on's options.json")
    addon.add_argument("--out", required=True, type=Path, help="the YAML config to write")
    addon.add_argument(
        "--mqtt-from-supervisor",
        action="store_true",
        help="take the broker from the Supervisor's mqtt service (SUPERVISOR_TOKEN)",
    )
    addon.add_argument("--supervisor-url", default="http://supervisor")
    addon.add_argument("--hostname", help="the add-on's host name (default: this host's)")
    addon.add_argument("--listen-host", default="0.0.0.0")  # noqa: S104 - inside the container
    addon.add_argument("--listen-port", type=int, default=5080)
    addon.add_argument("--media-dir", type=Path, default=Path("/media"))
    addon.add_argument("--data-dir", type=Path, default=Path("/data"))
    return parser


def _load(path: Path) -> Config | None:
    try:
        return load_config(path)
    except ConfigError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return None


def _check(path: Path) -> int:
    config = _load(path)
    if config is None:
        return EXIT_INVALID
    cameras = ", ".join(config.cameras)
    print(f"{path}: valid ({len(config.cameras)} camera(s): {cameras})")
    for warning in config_warnings(config):
        print(f"warning: {warning}")
    return EXIT_OK


def _run(path: Path, log_level: str | None) -> int:
    from doorstep_bridge.app import create_app  # noqa: PLC0415 - keeps `check` fast
    from doorstep_bridge.http.announce import with_reachable_url  # noqa: PLC0415
    from doorstep_bridge.http.server import serve  # noqa: PLC0415

    # Clips, snapshots, the index, the audit log and exports are for the owner only,
    # whichever library creates them (FFmpeg, SQLite): files 0600, folders 0700.
    os.umask(0o077)
    logging.basicConfig(
        level=log_level or "INFO",
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    config = _load(path)
    if config is None:
        return EXIT_INVALID
    # The command line wins over the config (a one-off look at DEBUG).
    logging.getLogger().setLevel(log_level or config.log_level)
    logger = logging.getLogger("doorstep_bridge")
    logger.info("Doorstep bridge %s starting with %d camera(s)", __version__, len(config.cameras))
    config = with_reachable_url(config)
    for warning in config_warnings(config):
        logger.warning("%s", warning)
    try:
        asyncio.run(serve(create_app(config), config))
    except DoorstepError as err:
        logger.error("%s", err)  # noqa: TRY400 - the message is the whole story; no traceback
        return EXIT_FAILURE
    except OSError as err:
        # Not the HTTP address (that is a ListenError): a file or device the start needed.
        where = f" ({err.filename})" if err.filename else ""
        logger.error("Cannot start: %s%s", err.strerror or err, where)  # noqa: TRY400
        return EXIT_FAILURE
    return EXIT_OK


def _no_bridge_ran(config: Config) -> bool:
    """Say so when no bridge has run with the config's storage folder: no log to read."""
    from doorstep_bridge.sharing.audit import audit_dir, never_ran  # noqa: PLC0415

    if not never_ran(audit_dir(config.storage.path)):
        return False
    print(
        f"no audit log: no bridge has run with the storage folder {config.storage.path}"
        " (storage.path); give the config the bridge runs with, on the machine it runs on",
        file=sys.stderr,
    )
    return True


def _audit_verify(path: Path) -> int:
    config = _load(path)
    if config is None:
        return EXIT_INVALID
    from doorstep_bridge.sharing.audit import audit_dir, verify  # noqa: PLC0415

    if _no_bridge_ran(config):
        return EXIT_FAILURE
    result = verify(audit_dir(config.storage.path))
    print(result.message)
    return EXIT_OK if result.ok else EXIT_FAILURE


def _verify_export(file: Path, signature: Path | None, expected_key: str | None) -> int:
    from doorstep_bridge.sharing.signing import VerifyError, describe, verify_export  # noqa: PLC0415

    try:
        result = verify_export(file, signature)
    except VerifyError as err:
        print(f"cannot verify {file}: {err}", file=sys.stderr)
        return EXIT_INVALID
    except OSError as err:
        print(f"cannot read {file}: {err.strerror or err}", file=sys.stderr)
        return EXIT_INVALID
    print(describe(result))
    if expected_key is not None:
        if result.key_fingerprint != expected_key.strip():
            print(
                f"NOT the expected key: signed by {result.key_fingerprint}, expected {expected_key}"
            )
            return EXIT_FAILURE
        if result.ok:
            print("The key is the one expected: this is the export that bridge signed.")
    return EXIT_OK if result.ok else EXIT_FAILURE


def _report(path: Path, since_text: str | None) -> int:
    from datetime import UTC, datetime  # noqa: PLC0415

    from doorstep_bridge.sharing.audit import audit_dir  # noqa: PLC0415
    from doorstep_bridge.sharing.report import build_report  # noqa: PLC0415

    config = _load(path)
    if config is None:
        return EXIT_INVALID
    since = None
    if since_text is not None:
        try:
            since = datetime.fromisoformat(since_text)
        except ValueError:
            print(f"--since: {since_text!r} is not an ISO 8601 date or time", file=sys.stderr)
            return EXIT_INVALID
        if since.tzinfo is None:
            since = since.replace(tzinfo=UTC)
    if _no_bridge_ran(config):
        return EXIT_FAILURE
    report = build_report(audit_dir(config.storage.path), since)
    print(report.text())
    return EXIT_OK if report.log_ok else EXIT_FAILURE


def _addon_config(args: argparse.Namespace) -> int:
    import socket  # noqa: PLC0415 - only this command needs these

    from doorstep_bridge import addon  # noqa: PLC0415

    try:
        broker = None
        if args.mqtt_from_supervisor:
            token = os.environ.get("SUPERVISOR_TOKEN")
            if not token:
                raise ConfigError(["supervisor: SUPERVISOR_TOKEN is not set"])  # noqa: TRY301
            broker = addon.supervisor_broker(args.supervisor_url, token)
        environment = addon.AddonEnvironment(
            hostname=args.hostname or socket.gethostname(),
            listen_host=args.listen_host,
            listen_port=args.listen_port,
            storage_roots={"media": args.media_dir, "data": args.data_dir},
        )
        config = addon.write_addon_config(args.options, args.out, broker, environment)
    except ConfigError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return EXIT_INVALID
    print(f"{args.out}: written ({len(config.cameras)} camera(s), API {config.http.announced_url})")
    for warning in addon.option_warnings(config):
        print(f"warning: {warning}")
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``doorstep-bridge`` console script."""
    args = _parser().parse_args(argv)
    commands: dict[str, Callable[[], int]] = {
        "run": lambda: _run(args.config, args.log_level),
        "check": lambda: _check(args.config),
        "audit": lambda: _audit_verify(args.config),  # its one action: verify
        "verify-export": lambda: _verify_export(args.file, args.signature, args.fingerprint),
        "report": lambda: _report(args.config, args.since),
        "addon-config": lambda: _addon_config(args),
    }
    try:
        return commands[args.command]()
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
