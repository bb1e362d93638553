"""Command line: `modelshelf serve` and `modelshelf migrate-legacy`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from pathlib import Path
from typing import Any

from aiohttp import web

from modelshelf import __version__
from modelshelf.app import create_app
from modelshelf.config import Settings, SettingsError, load_settings
from modelshelf.domain.legacy_import import migrate_legacy
from modelshelf.errors import ShelfError
from modelshelf.integrity import check_library
from modelshelf.web.keys import SHELF
from modelshelf.web.migration_api import migration_body
from modelshelf.web.protocol import ServiceRunner

log = logging.getLogger("modelshelf")


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    flags = {
        "data_dir": args.data_dir,
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "log_level": args.log_level,
    }
    try:
        settings = load_settings(flags, config_dir=args.config_dir)
    except SettingsError as exc:
        print(f"modelshelf: {exc}", file=sys.stderr)
        return 2
    _configure_logging(settings.log_level)
    try:
        if args.command == "serve":
            return serve(settings)
        if args.command == "check":
            return check(settings)
        return asyncio.run(
            migrate(
                settings, args.legacy_db.resolve(), args.legacy_images.resolve(), args.no_progress
            )
        )
    except ShelfError as exc:
        print(f"modelshelf: {exc.detail}", file=sys.stderr)
        return 1


def serve(settings: Settings) -> int:
    """Serve until SIGINT or SIGTERM; in-flight requests get `shutdown_timeout` to finish."""
    log.info(
        "modelshelf %s serving %s on %s:%d",
        __version__,
        settings.data_dir,
        settings.host,
        settings.port,
    )
    loop = asyncio.new_event_loop()
    main_task = loop.create_task(_serve(settings))
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(main_task)
    except (web.GracefulExit, KeyboardInterrupt):  # SIGTERM, SIGINT
        pass
    finally:
        _close_loop(loop, main_task)
    return 0


async def _serve(settings: Settings) -> None:
    """What web.run_app does, with the runner that answers aiohttp's own errors (a request
    it cannot parse) with the JSON error body (see web.protocol)."""
    runner = ServiceRunner(
        create_app(settings),
        handle_signals=True,
        shutdown_timeout=settings.shutdown_timeout,
        keepalive_timeout=75.0,
        access_log_format='%a "%r" %s %b %Tfs',
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, settings.host, settings.port).start()
        await asyncio.Event().wait()  # until a signal raises GracefulExit
    finally:
        await runner.cleanup()  # stops listening, gives requests their time, closes the app


def _close_loop(loop: asyncio.AbstractEventLoop, main_task: asyncio.Task[None]) -> None:
    # As web.run_app: the server's own cleanup first, only then whatever is left.
    if not main_task.done():
        main_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            loop.run_until_complete(main_task)
    left = asyncio.all_tasks(loop)
    for task in left:
        task.cancel()
    loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.close()


async def migrate(settings: Settings, legacy_db: Path, legacy_images: Path, quiet: bool) -> int:
    """Stage 1 without a server: the same resources as the app, no socket."""
    runner = web.AppRunner(create_app(settings))
    await runner.setup()
    try:
        shelf = runner.app[SHELF]
        report = await migrate_legacy(
            shelf, legacy_db, legacy_images, bar=None if not quiet else False
        )
    finally:
        await runner.cleanup()
    print(migration_body(report).model_dump_json(indent=2))
    return 0


def check(settings: Settings) -> int:
    """Print every disagreement between the database and the images folder; 1 if any."""
    problems = check_library(settings.data_dir)
    for problem in problems:
        print(problem)
    print(f"{len(problems)} problem(s) in {settings.data_dir}", file=sys.stderr)
    return 1 if problems else 0


def _configure_logging(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="modelshelf", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    commands = parser.add_subparsers(dest="command", required=True)
    common: dict[str, Any] = {"default": None}
    for name, helptext in (
        ("serve", "serve the HTTP API"),
        ("migrate-legacy", "stage 1: import a legacy library from the command line"),
        ("check", "check that the database and the images folder agree"),
    ):
        sub = commands.add_parser(name, help=helptext)
        sub.add_argument("--data-dir", type=Path, help="data directory (default ./data)", **common)
        sub.add_argument("--config-dir", type=Path, help="folder of *.toml settings", **common)
        sub.add_argument("--log-level", help="DEBUG, INFO, WARNING, ...", **common)
        if name == "serve":
            sub.add_argument("--host", help="address to listen on (default 127.0.0.1)", **common)
            sub.add_argument("--port", type=int, help="port to listen on (default 8080)", **common)
        elif name == "migrate-legacy":
            sub.add_argument("--legacy-db", type=Path, required=True, help="legacy SQLite file")
            sub.add_argument(
                "--legacy-images", type=Path, required=True, help="legacy images folder"
            )
            sub.add_argument(
                "--no-progress",
                action="store_true",
                help="log progress lines instead of drawing a bar",
            )
    return parser
