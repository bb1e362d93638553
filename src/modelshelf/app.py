"""The application factory: what the service is made of, in the order it starts."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator

from aiohttp import web

from modelshelf.config import Settings
from modelshelf.domain.shelf import Shelf
from modelshelf.domain.watch import start_watching
from modelshelf.executors import Executors
from modelshelf.hashing import Hasher
from modelshelf.imagefolder import ImageFolder
from modelshelf.jobs import Jobs
from modelshelf.locks import KeyedLocks
from modelshelf.recovery import fill_missing_renditions, recover
from modelshelf.rendition_cache import RenditionCache
from modelshelf.storage import Storage
from modelshelf.storage.change import Changes
from modelshelf.web.cors import setup_cors
from modelshelf.web.hosts import HostGuard
from modelshelf.web.keys import EXECUTORS, MODEL_LOCKS, PENDING_LOCKS, SETTINGS, SHELF, STORAGE
from modelshelf.web.middleware import (
    CrossSiteGuard,
    TrustedProxies,
    client_middleware,
    error_middleware,
    plain_bodies,
)
from modelshelf.web.routes import setup_routes

log = logging.getLogger(__name__)

MIB = 1024 * 1024


def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=settings.client_max_size)
    app[SETTINGS] = settings
    app.cleanup_ctx.append(executors_ctx)
    app.cleanup_ctx.append(storage_ctx)
    app.cleanup_ctx.append(locks_ctx)
    app.cleanup_ctx.append(shelf_ctx)
    app.on_shutdown.append(begin_stopping)
    app.cleanup_ctx.append(watch_ctx)
    app.on_shutdown.append(announce_shutdown)
    setup_routes(app, settings.path_prefix)
    setup_cors(app, settings.cors_origins)
    setup_middlewares(app, settings)
    return app


def freeze_start_up_heap() -> None:
    """Collect the garbage of start-up, then move every object still alive (modules, classes,
    the app) out of the collector's sight for good (`gc.freeze`). A full collection then scans
    only what serving creates: it took 20-35 ms with the ~58,000 objects of start-up, and ran
    on the event loop, so every request in flight waited for it (BENCHMARKS.md, reads under
    load)."""
    gc.collect()
    gc.freeze()


def setup_middlewares(app: web.Application, settings: Settings) -> None:
    # The error middleware is outermost so that errors raised by the others get a JSON body.
    app.middlewares.append(error_middleware)
    guard = HostGuard(settings.allowed_hosts, settings.host, bool(settings.trusted_proxies))
    if guard.on:  # off, it would cost every request a call for nothing
        app.middlewares.append(guard.middleware)
    app.middlewares.append(plain_bodies)
    if settings.trusted_proxies:
        app.middlewares.append(TrustedProxies(settings.trusted_proxies).middleware)
    # After the proxies: an old browser's Origin is compared with the host it asked for.
    app.middlewares.append(CrossSiteGuard(settings.cors_origins).middleware)
    # Innermost: behind a trusted proxy, the client is the address it forwarded.
    app.middlewares.append(client_middleware)


async def announce_shutdown(app: web.Application) -> None:
    """Say that shutdown has begun: the listening sockets are closed by now, and requests in
    flight get `shutdown_timeout` seconds before the resources below are released."""
    log.info(
        "shutting down: no new connections; requests in flight get up to %s s",
        app[SETTINGS].shutdown_timeout,
    )


async def executors_ctx(app: web.Application) -> AsyncIterator[None]:
    """Thread pools for hashing and rendering, and for short file work."""
    settings = app[SETTINGS]
    executors = Executors.start(settings.workers, settings.bulk_nice, settings.bulk_idle)
    app[EXECUTORS] = executors
    yield
    # Joining the threads waits for work still running in them (a rendering or a digest whose
    # caller went away): in a thread of its own, so the event loop is not held meanwhile.
    await asyncio.to_thread(executors.shutdown)


async def storage_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    storage = Storage(
        settings.database_path, settings.read_connections, kept_totals=settings.kept_totals
    )
    await storage.open()
    app[STORAGE] = storage
    log.info("database %s open", settings.database_path)
    yield
    await storage.close()


async def locks_ctx(app: web.Application) -> AsyncIterator[None]:
    app[PENDING_LOCKS] = KeyedLocks("pending model")
    app[MODEL_LOCKS] = KeyedLocks("model")
    yield


async def shelf_ctx(app: web.Application) -> AsyncIterator[None]:
    """The domain's resources; before serving, finish or undo what a crash interrupted, then
    render missing renditions in the background."""
    shelf = build_shelf(
        app[SETTINGS], app[STORAGE], app[EXECUTORS], app[PENDING_LOCKS], app[MODEL_LOCKS]
    )
    report = await recover(shelf.changes, shelf.folder)
    await shelf.jobs.fail_unfinished()
    shelf.maintenance = asyncio.create_task(
        fill_missing_renditions(shelf.changes, shelf.folder, shelf.executors.cpu, report.incomplete)
    )
    app[SHELF] = shelf
    yield
    shelf.maintenance.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await shelf.maintenance
    await shelf.drain()
    shelf.hasher.stop()  # a file still being hashed for nobody must not hold the exit
    await shelf.changes.forget_carried_out()


async def begin_stopping(app: web.Application) -> None:
    """Shutdown begins (before in-flight requests get their grace): jobs nobody waits for
    stop at their next safe point, the rest of the work gets `shutdown_timeout`."""
    if SHELF in app:
        app[SHELF].begin_stopping()


async def watch_ctx(app: web.Application) -> AsyncIterator[None]:
    """With `watch` on, changes under the model roots are applied while serving."""
    watcher = await start_watching(app[SHELF]) if app[SETTINGS].watch else None
    yield
    if watcher is not None:
        await watcher.stop()


def build_shelf(
    settings: Settings,
    storage: Storage,
    executors: Executors,
    pending_locks: KeyedLocks,
    model_locks: KeyedLocks,
) -> Shelf:
    cache = RenditionCache(settings.image_cache_mb * MIB)
    changes = Changes(storage, model_locks, settings.data_dir, executors.files, cache.forget)
    return Shelf(
        jobs=Jobs(storage, changes, executors.files),
        settings=settings,
        storage=storage,
        changes=changes,
        executors=executors,
        folder=ImageFolder(settings.data_dir, settings.max_image_pixels, executors.cpu),
        hasher=Hasher(storage, changes, executors),
        pending_locks=pending_locks,
        model_locks=model_locks,
        rendition_cache=cache,
    )
