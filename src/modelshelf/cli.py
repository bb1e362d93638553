"""Command line: `modelshelf serve`, `modelshelf scan`, `modelshelf migrate-legacy`,
`modelshelf check` and `modelshelf backup`.

Exit codes: 0 done (for `check`: the library is consistent; for `backup`: the copy is); 1
failed (for `check`: problems found, one per line on stdout; for `scan`: it could not run,
no roots or none readable; for `backup`: no copy was made, or it has problems; for any: its
output was closed before all of it was written, as by `| head`); 2 a bad command line or
setting; 3 (`check`, `backup`) no library in the data directory; 4 (`serve`)
the start-up failed (the log says why); 130 (`scan`, `migrate-legacy`, `backup`) interrupted
by Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
from collections.abc import AsyncIterator, Coroutine, Iterator
from pathlib import Path
from typing import Any

from aiohttp import web

from modelshelf import __version__
from modelshelf.app import create_app
from modelshelf.backup import back_up
from modelshelf.config import Settings, SettingsError, load_settings, unknown_variables
from modelshelf.domain import long_work
from modelshelf.domain.legacy_import import check_legacy_inputs, migrate_legacy
from modelshelf.domain.shelf import Shelf
from modelshelf.errors import NotFound, ShelfError
from modelshelf.integrity import check_library
from modelshelf.serving import StartFailed, serve, start_failure
from modelshelf.storage.database import DATABASE_NAME
from modelshelf.storage.dirlock import DataDirInUse, DirectoryLock
from modelshelf.web.keys import SHELF
from modelshelf.web.migration_api import migration_body

log = logging.getLogger("modelshelf")

EXIT_OK = 0
EXIT_FAILED = 1  # `check`: problems found
EXIT_USAGE = 2  # as argparse answers a bad command line
EXIT_NO_LIBRARY = 3  # `check`, `backup`: the data directory holds no library
EXIT_START_FAILED = 4  # `serve`: the start-up failed, every resource closed
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM (128 + SIGINT, as shells say)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = _settings(args)
    except SettingsError as exc:
        print(f"modelshelf: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        code = _run(args, settings)
        if sys.stdout is not None:  # None: started with stdout closed
            sys.stdout.flush()  # here, where a reader that went away can still be told of
        return code
    except BrokenPipeError:  # `modelshelf scan | head -1`: what was done stays done
        _stdout_to_devnull()
        with contextlib.suppress(OSError):
            print("modelshelf: the output was closed before all of it was written", file=sys.stderr)
        return EXIT_FAILED
    except ShelfError as exc:
        print(f"modelshelf: {exc.detail}", file=sys.stderr)
        return EXIT_FAILED
    except StartFailed as failed:  # `scan`, `migrate-legacy`: the library could not be opened
        print(f"modelshelf: cannot open {settings.data_dir}: {failed.reason}", file=sys.stderr)
        log.debug("opening the library failed", exc_info=failed.__cause__)
        return EXIT_FAILED
    except KeyboardInterrupt:
        # What was committed stays, the rest is as before: every change is atomic.
        print("modelshelf: interrupted; run it again to go on from here", file=sys.stderr)
        return EXIT_INTERRUPTED


def _stdout_to_devnull() -> None:
    """Python flushes stdout once more as it exits: to a closed pipe that is one more
    BrokenPipeError, printed as "Exception ignored"."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _settings(args: argparse.Namespace) -> Settings:
    """The settings the command line, environment and config files give, with logging set up
    at their level. Raises SettingsError."""
    flags = {
        "data_dir": args.data_dir,
        "host": getattr(args, "host", None),
        "port": getattr(args, "port", None),
        "log_level": args.log_level,
    }
    settings = load_settings(flags, config_dir=args.config_dir)
    _configure_logging(settings.log_level)
    chosen = args.config_dir or os.environ.get("MODELSHELF_CONFIG_DIR", "").strip()
    if chosen and not Path(chosen).is_dir():
        # Not an error: a folder of no files is a way to run on the defaults alone.
        log.warning("config folder %s is not a folder: no config file was read", chosen)
    for sentence in unknown_variables(dict(os.environ)):
        log.warning("%s", sentence)
    return settings


def _run(args: argparse.Namespace, settings: Settings) -> int:
    """The exit code of the command the command line names."""
    if args.command == "serve":
        return serve(settings, EXIT_START_FAILED)
    if args.command == "check":
        return check(settings)
    if args.command == "backup":
        return backup(settings, args.target, args.no_progress)
    if args.command == "scan":
        return _run_stoppable(scan(settings, args.types, args.no_progress))
    legacy_db, legacy_images = args.legacy_db.resolve(), args.legacy_images.resolve()
    return _run_stoppable(migrate(settings, legacy_db, legacy_images, args.no_progress))


def _run_stoppable(work: Coroutine[Any, Any, int]) -> int:
    """`work` to its end; SIGTERM (`docker stop`, systemd, `kill`) stops it as Ctrl-C does, at
    a safe point, saying so (KeyboardInterrupt), rather than by SIGTERM's default action: the
    process ended in the middle of a change, without a word."""

    async def stoppable() -> int:
        task = asyncio.current_task()
        if task is not None:
            with contextlib.suppress(NotImplementedError):  # Windows: no such handlers
                asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        return await work

    try:
        return asyncio.run(stoppable())
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None


async def migrate(settings: Settings, legacy_db: Path, legacy_images: Path, quiet: bool) -> int:
    """Stage 1 without a server: the same resources as the app, no socket. Inputs that are not
    there are refused before the data directory is made."""
    check_legacy_inputs(legacy_db, legacy_images)
    async with _opened(settings) as shelf:
        report = await migrate_legacy(
            shelf, legacy_db, legacy_images, bar=None if not quiet else False
        )
    print(migration_body(report).model_dump_json(indent=2))
    return EXIT_OK


async def scan(settings: Settings, types: list[str] | None, quiet: bool) -> int:
    """A scan of the model roots as a job, with a bar on a terminal (files, bytes, bytes/s,
    ETA); prints the job's result as JSON. EXIT_FAILED if it found nothing to scan because
    of a problem (no roots, roots missing or unreadable): the JSON says which."""
    async with _opened(settings) as shelf:
        try:
            result = await long_work.run_scan(shelf, types, bar=None if not quiet else False)
        except asyncio.CancelledError:
            # Ctrl-C (asyncio.run cancels this task): the job itself stops at its next safe
            # point, rather than running on until the shutdown grace period ends.
            if (running := shelf.jobs.active("scan")) is not None:
                with contextlib.suppress(ShelfError):
                    await shelf.jobs.cancel(running.id)
            raise
    print(json.dumps(result, indent=2, ensure_ascii=False))
    why = [*result["warnings"], *(f"{p['path']}: {p['reason']}" for p in result["problems"])]
    if result["counts"]["files_found"] == 0 and why:
        print(f"modelshelf: nothing was scanned: {why[0]}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


@contextlib.asynccontextmanager
async def _opened(settings: Settings) -> AsyncIterator[Shelf]:
    """The app's resources for a command that runs one piece of work (no socket, no folder
    watcher). Raises StartFailed (every resource closed) if they cannot be opened: a data
    directory that is a file, unwritable, or whose database is not one."""
    runner = web.AppRunner(create_app(_without_server_work(settings)))
    try:
        await runner.setup()
    except Exception as exc:
        await runner.cleanup()
        raise StartFailed(start_failure(exc)) from exc
    try:
        yield runner.app[SHELF]
    finally:
        await runner.cleanup()


def _without_server_work(settings: Settings) -> Settings:
    """Settings for a command that runs one piece of work and ends: no folder watcher beside
    it (it would apply the same files the command is scanning, in a second writer)."""
    return settings.model_copy(update={"watch": False})


def check(settings: Settings) -> int:
    """Print every disagreement between the database and the images folder. Returns EXIT_OK,
    EXIT_FAILED if there is any, EXIT_NO_LIBRARY if the data directory holds no library (a
    mistyped --data-dir must not read as "problems found")."""
    try:
        with _at_rest_or_said(settings.data_dir):
            problems = check_library(settings.data_dir)
    except NotFound as exc:
        print(f"modelshelf: {exc.detail}", file=sys.stderr)
        return EXIT_NO_LIBRARY
    except ShelfError as exc:  # a library that cannot be read
        print(f"modelshelf: {exc.detail}", file=sys.stderr)
        return EXIT_FAILED
    for problem in problems:
        print(problem)
    print(f"{len(problems)} problem(s) in {settings.data_dir}", file=sys.stderr)
    return EXIT_FAILED if problems else EXIT_OK


def backup(settings: Settings, target: Path, quiet: bool) -> int:
    """Copy the library into `target` (modelshelf.backup) with a bar on a terminal; prints
    the report as JSON. EXIT_OK if the copy checks clean, EXIT_FAILED if it has problems or
    could not be made, EXIT_NO_LIBRARY if the data directory holds no library."""
    try:
        with _sigterm_as_ctrl_c():
            report = back_up(settings.data_dir, target, bar=None if not quiet else False)
    except NotFound as exc:
        print(f"modelshelf: {exc.detail}", file=sys.stderr)
        return EXIT_NO_LIBRARY
    except (ShelfError, OSError) as exc:
        print(f"modelshelf: no backup was made: {start_failure(exc)}", file=sys.stderr)
        return EXIT_FAILED
    print(json.dumps(dataclasses.asdict(report), indent=2, ensure_ascii=False))
    for problem in report.problems:
        print(f"modelshelf: the backup has a problem: {problem}", file=sys.stderr)
    return EXIT_FAILED if report.problems else EXIT_OK


@contextlib.contextmanager
def _at_rest_or_said(data_dir: Path) -> Iterator[None]:
    """The data directory's lock meanwhile, so that no service starts and changes the library
    under the check; if a service runs on it, says that what it changes meanwhile may read as
    a problem (the check goes on: it only reads)."""
    lock = DirectoryLock(data_dir)
    try:
        # Only on a library: taking the lock makes its folder (a mistyped --data-dir).
        if (data_dir / DATABASE_NAME).is_file():
            lock.acquire()
    except DataDirInUse:
        print(
            f"modelshelf: a service is running on {data_dir}: a change it makes while the check"
            " reads may show as a problem; check again, or check a backup of it",
            file=sys.stderr,
        )
    except OSError:
        pass  # a folder this process may not write: nothing can start a service there either
    try:
        yield
    finally:
        lock.release()


@contextlib.contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """Meanwhile SIGTERM stops the main thread as Ctrl-C does (KeyboardInterrupt: said, exit
    130), as _run_stoppable does for the commands that run on an event loop."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
        ("scan", "scan the model folders into the library, as a job"),
        ("migrate-legacy", "stage 1: import a legacy library from the command line"),
        ("check", "check that the database and the images folder agree"),
        ("backup", "copy the library into a folder, while the service runs or not"),
    ):
        sub = commands.add_parser(name, help=helptext)
        # Metavars as the README's synopsis writes them (tests/test_cli_help.py).
        folder: dict[str, Any] = {"type": _path, "metavar": "DIR", **common}
        sub.add_argument(
            "--data-dir", help="data directory (default: the data_dir setting, ./data)", **folder
        )
        sub.add_argument("--config-dir", help="folder of *.toml settings", **folder)
        sub.add_argument("--log-level", metavar="LEVEL", help="DEBUG, INFO, WARNING, ...", **common)
        _add_options(sub, name, common)
    return parser


def _path(text: str) -> Path:
    """A path from the command line. An empty one (`--data-dir "$DIR"` with DIR unset) is
    refused: as a Path it is ".", and the library would be made in the working directory."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path names no folder")
    return Path(text)


def _add_options(sub: argparse.ArgumentParser, name: str, common: dict[str, Any]) -> None:
    """The options of one command, besides the data and config folders and the log level."""
    if name == "serve":
        sub.add_argument(
            "--host", help="address to listen on (default: the host setting, 127.0.0.1)", **common
        )
        sub.add_argument(
            "--port", type=int, help="port to listen on (default: the port setting, 8080)", **common
        )
    elif name == "scan":
        sub.add_argument(
            "--type",
            dest="types",
            metavar="TYPE",
            action="append",
            help="scan only the roots of this model type (repeat for more)",
        )
    if name == "backup":
        sub.add_argument(
            "target",
            type=_path,
            metavar="TARGET",
            help="folder of the backup (new, empty or an earlier backup)",
        )
    if name in ("scan", "migrate-legacy", "backup"):
        sub.add_argument(
            "--no-progress",
            action="store_true",
            help="log progress lines instead of drawing a bar",
        )
    if name == "migrate-legacy":
        sub.add_argument(
            "--legacy-db", type=_path, metavar="FILE", required=True, help="legacy SQLite file"
        )
        sub.add_argument(
            "--legacy-images",
            type=_path,
            metavar="DIR",
            required=True,
            help="legacy images folder",
        )
