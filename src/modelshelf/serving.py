"""The service as a process: start it (every resource, then the socket), serve until SIGTERM
or SIGINT, stop; and why a start-up failed, in words."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
from collections.abc import Callable

from aiohttp import web

from modelshelf import __version__
from modelshelf.app import create_app, freeze_start_up_heap
from modelshelf.config import Settings
from modelshelf.domain.scan import NO_ROOTS
from modelshelf.errors import ShelfError
from modelshelf.folders.roots import RootsError, gather_roots
from modelshelf.web.access_log import AccessLog
from modelshelf.web.protocol import ServiceRunner

log = logging.getLogger("modelshelf")


class StartFailed(Exception):
    """The library or the socket could not be opened; `reason` says why in one line."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def start_failure(exc: Exception) -> str:
    """Why a start-up failed, in one line a person can act on: the path or the port and what
    is wrong with it, rather than an errno's name."""
    if isinstance(exc, ShelfError):
        return exc.detail
    if isinstance(exc, FileExistsError | NotADirectoryError) and exc.filename:
        return f"{exc.filename} is a file where a folder belongs ({type(exc).__name__})"
    if isinstance(exc, PermissionError) and exc.filename:
        return f"no permission to use {exc.filename} ({type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"


def serve(settings: Settings, exit_start_failed: int) -> int:
    """Serve until SIGINT or SIGTERM; in-flight requests get `shutdown_timeout` to finish.
    A start-up that fails returns `exit_start_failed`, every resource closed."""
    try:
        with asyncio.Runner(loop_factory=event_loop_factory(settings.event_loop)) as runner:
            runner.run(_serve(settings))
    except KeyboardInterrupt:  # SIGINT where signal handlers cannot be installed (Windows)
        pass
    except StartFailed as failed:
        # One line says why (a port in use, a file where the data directory should be); the
        # traceback is for --log-level DEBUG.
        log.error("start-up failed: %s", failed.reason)
        log.debug("start-up failed", exc_info=failed.__cause__)
        return exit_start_failed
    return 0


def event_loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """What makes the server's event loop: uvloop's when `name` asks for it and it is
    installed, else None (asyncio's default loop)."""
    if name != "uvloop":
        return None
    try:
        import uvloop
    except ImportError:  # Windows has no uvloop
        log.info("uvloop is not installed: serving on asyncio's event loop")
        return None
    return uvloop.new_event_loop


async def _serve(settings: Settings) -> None:
    # The port is tried first: a port in use must not cost the start-up of a library (and a
    # new, empty one made in a mistyped data directory) before it is found.
    await ensure_port_free(settings.host, settings.port)
    # ServiceRunner answers aiohttp's own errors (a request it cannot parse) with the JSON
    # error body (see web.protocol).
    runner = ServiceRunner(
        create_app(settings),
        access_log_class=AccessLog,
        shutdown_timeout=settings.shutdown_timeout,
        keepalive_timeout=75.0,
    )
    try:
        await runner.setup()
        await web.TCPSite(runner, settings.host, settings.port).start()
        freeze_start_up_heap()
    except Exception as exc:
        # aiohttp does not clean up the contexts that did start when a later one fails: close
        # them here, or the database's threads keep the process (and its lock) alive forever.
        await runner.cleanup()
        raise StartFailed(start_failure(exc)) from exc
    # Where it listens, as bound: with port 0 the system chose the port.
    host, port = runner.addresses[0][:2]
    log.info(
        "modelshelf %s serving %s on %s:%d (event loop: %s)",
        __version__,
        settings.data_dir,
        host,
        port,
        type(asyncio.get_running_loop()).__module__.partition(".")[0],
    )
    await _say_model_folders(settings)
    try:
        await _until_stopped()
    finally:
        await runner.cleanup()


async def ensure_port_free(host: str, port: int) -> None:
    """Return if `port` on `host` can be listened on; port 0 (the system chooses) always can.
    Raises StartFailed saying why not: in use, or an address this machine does not have."""
    if port == 0:
        return
    try:
        probe = await asyncio.get_running_loop().create_server(asyncio.Protocol, host, port)
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            raise StartFailed(
                f"port {port} on {host} is in use (another modelshelf or another program"
                " listens there): stop it, or choose another port with --port"
            ) from exc
        raise StartFailed(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    probe.close()
    await probe.wait_closed()


async def _say_model_folders(settings: Settings) -> None:
    """Say at start-up which model folders a scan walks and what is wrong with them: a
    newcomer learns here, not from an empty first scan, that none are named."""
    try:
        roots = await asyncio.to_thread(
            gather_roots, settings.model_roots, settings.comfyui_model_paths
        )
    except RootsError as exc:
        log.warning("the model folders cannot be read: %s", exc)
        return
    if not roots.roots:
        log.warning("%s", NO_ROOTS)
        return
    log.info("model folders: %d, of types %s", len(roots.roots), ", ".join(roots.types))
    for warning in roots.warnings:
        log.warning("%s", warning)


async def _until_stopped() -> None:
    """Return on SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError):  # Windows: SIGINT is KeyboardInterrupt
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: in-flight requests may finish")
