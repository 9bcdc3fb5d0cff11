"""Command line: ``doorstep-bridge run|check|audit verify --config FILE``."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
from pathlib import Path
import sys

from doorstep_bridge import __version__
from doorstep_bridge.config import Config, load_config
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
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    check = commands.add_parser("check", help="validate a config file (exit 2 on problems)")
    check.add_argument("--config", required=True, type=Path, help="YAML config file")

    audit = commands.add_parser("audit", help="audit log tools")
    audit_commands = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    verify = audit_commands.add_parser("verify", help="verify the audit log's hash chain")
    verify.add_argument("--config", required=True, type=Path, help="YAML config file")
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
    return EXIT_OK


def _run(path: Path, log_level: str) -> int:
    from doorstep_bridge.app import create_app  # noqa: PLC0415 - keeps `check` fast
    from doorstep_bridge.http.server import serve  # noqa: PLC0415

    # Clips, snapshots, the index, the audit log and exports are for the owner only,
    # whichever library creates them (FFmpeg, SQLite): files 0600, folders 0700.
    os.umask(0o077)
    logging.basicConfig(
        level=log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    config = _load(path)
    if config is None:
        return EXIT_INVALID
    logger = logging.getLogger("doorstep_bridge")
    logger.info("Doorstep bridge %s starting with %d camera(s)", __version__, len(config.cameras))
    try:
        asyncio.run(serve(create_app(config), config))
    except OSError as err:
        logger.error(  # noqa: TRY400 - the message is the whole story; no traceback
            "Cannot listen on %s:%s: %s", config.http.host, config.http.port, err.strerror or err
        )
        return EXIT_FAILURE
    except DoorstepError as err:
        logger.error("%s", err)  # noqa: TRY400
        return EXIT_FAILURE
    return EXIT_OK


def _audit_verify(path: Path) -> int:
    config = _load(path)
    if config is None:
        return EXIT_INVALID
    from doorstep_bridge.sharing.audit import audit_dir, verify  # noqa: PLC0415

    result = verify(audit_dir(config.storage.path))
    print(result.message)
    return EXIT_OK if result.ok else EXIT_FAILURE


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``doorstep-bridge`` console script."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "check":
            return _check(args.config)
        if args.command == "run":
            return _run(args.config, args.log_level)
        return _audit_verify(args.config)
    except KeyboardInterrupt:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
