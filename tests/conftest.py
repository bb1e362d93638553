"""Fixtures: a real data directory in tmp_path and the real app through aiohttp_client."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from http import HTTPStatus
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from modelshelf import crashpoints
from modelshelf.app import create_app
from modelshelf.config import Settings
from modelshelf.domain.shelf import Shelf
from modelshelf.web.keys import SHELF
from modelshelf.web.protocol import ServiceRunner
from tests.factories import TEST_SETTINGS, LegacyLibrary, Library
from tests.server import ServerProcess

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]
IMPORT = "/api/migration/import_a_model"


def pytest_configure(config: pytest.Config) -> None:
    # pytest-asyncio makes its own loops and ignores PYTHONASYNCIODEBUG; honour it here so a
    # debug run really runs every loop in debug mode (slow-callback detection included).
    if os.environ.get("PYTHONASYNCIODEBUG"):
        config.option.asyncio_debug = True


# A callback holds the event loop if the loop's thread spends this much CPU time in it (hashing,
# rendering or big JSON done in place) or this much wall time (a blocking wait). Wall time alone
# (asyncio's own slow-callback warning at 100 ms) misfires on a shared 2-core machine, where the
# scheduler can keep any callback from a core for that long; CPU time does not.
BLOCKING_CPU_SECONDS = 0.1
BLOCKING_WALL_SECONDS = 1.0


class _BlockingCallbacks:
    """Times every callback the event loop runs (asyncio.Handle._run) and keeps those that
    held it, except the tests' own tasks and fixtures, which build real inputs in place."""

    def __init__(self, run: Callable[[asyncio.Handle], None]) -> None:
        self.found: list[str] = []
        self._run = run

    def run(self, handle: asyncio.Handle) -> None:
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            self._run(handle)
        finally:
            cpu = time.thread_time() - cpu
            wall = time.perf_counter() - wall
            if cpu >= BLOCKING_CPU_SECONDS or wall >= BLOCKING_WALL_SECONDS:
                self._keep(handle, wall, cpu)

    def _keep(self, handle: asyncio.Handle, wall: float, cpu: float) -> None:
        owner = getattr(handle._callback, "__self__", None)
        text = repr(owner if isinstance(owner, asyncio.Task) else handle)
        if "coro=<test_" in text or "_async_fixture_wrapper" in text:
            return
        self.found.append(f"{text[:300]} took {wall:.3f} s, {cpu:.3f} s of CPU")


@pytest.fixture(autouse=True)
def event_loop_is_never_blocked(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """In asyncio debug mode (`make test`), a service callback that holds the loop fails the
    test: 100 ms of CPU time, or a second of wall time."""
    if not request.config.getoption("asyncio_debug", False):
        yield
        return
    # A full garbage collection over the whole test session's heap (hypothesis, schemathesis,
    # every earlier test's leftovers) takes 100-140 ms here and lands in whatever callback runs;
    # freezing that heap leaves the collector only what this test creates.
    gc.collect()
    gc.freeze()
    watch = _BlockingCallbacks(asyncio.Handle._run)

    def timed_run(handle: asyncio.Handle) -> None:
        watch.run(handle)

    monkeypatch.setattr(asyncio.Handle, "_run", timed_run)
    yield
    monkeypatch.undo()
    assert not watch.found, "the event loop was blocked:\n" + "\n".join(watch.found)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(
        data_dir=data_dir, workers=2, read_connections=2, **TEST_SETTINGS
    ).resolve_paths()


@pytest.fixture
def legacy(data_dir: Path) -> LegacyLibrary:
    """An empty legacy library under the default legacy_root (<data_dir>/legacy)."""
    return LegacyLibrary(data_dir / "legacy")


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    path = tmp_path / "models"
    path.mkdir()
    return path


@pytest.fixture
def lib(legacy: LegacyLibrary, models_dir: Path) -> Library:
    """A legacy library with model files of real bytes in `models_dir`."""
    return Library(legacy, models_dir)


class ServiceTestServer(TestServer):
    """A test server made as the service makes its own (web.protocol.ServiceRunner: bodies
    never decoded, aiohttp's own errors answered in JSON)."""

    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        return ServiceRunner(self.app, **kwargs)


@pytest.fixture
async def make_client(aiohttp_client: Any, settings: Settings) -> MakeClient:
    """Start the real app; keyword arguments override settings."""

    async def start(**overrides: Any) -> Client:
        app = create_app(settings.model_copy(update=overrides) if overrides else settings)
        client: Client = await aiohttp_client(ServiceTestServer(app))
        return client

    return start


@pytest.fixture
async def client(make_client: MakeClient) -> Client:
    return await make_client()


Build = Callable[[Client, LegacyLibrary], Awaitable[None]]
Prepared = Callable[[str, Build], Awaitable[Client]]
_TEMPLATES: dict[str, Path] = {}


@pytest.fixture
def prepared(
    aiohttp_client: Any,
    tmp_path_factory: pytest.TempPathFactory,
    make_client: MakeClient,
    data_dir: Path,
) -> Prepared:
    """Start the real app on a copy of a data directory that `build` filled through the real app
    once per session: the long parametrized tables would otherwise run stage 1 per row."""

    async def start(name: str, build: Build) -> Client:
        template = _TEMPLATES.get(name)
        if template is None:
            template = tmp_path_factory.mktemp(name) / "data"
            settings = Settings(
                data_dir=template, workers=2, read_connections=2, **TEST_SETTINGS
            ).resolve_paths()
            builder: Client = await aiohttp_client(create_app(settings))
            await build(builder, LegacyLibrary(template / "legacy"))
            await builder.close()
            _TEMPLATES[name] = template
        shutil.copytree(template, data_dir, symlinks=True, dirs_exist_ok=True)
        return await make_client()

    return start


def shelf_of(client: Client) -> Shelf:
    return client.app[SHELF]


def assert_error_body(body: Any, status: int, fragment: str = "") -> None:
    """`body` is the service's error: {"error": <reason phrase>, "detail": <sentence>, ...},
    its detail containing `fragment`."""
    assert isinstance(body, dict), body
    assert body["error"] == HTTPStatus(status).phrase, body
    assert isinstance(body["detail"], str) and body["detail"], body
    assert fragment in body["detail"], body


def migrate_body(legacy: LegacyLibrary) -> dict[str, str]:
    return {"legacy_db_path": str(legacy.db_path), "legacy_images_dir": str(legacy.images_dir)}


async def migrate(client: Client, legacy: LegacyLibrary) -> dict[str, Any]:
    """Run stage 1 through the API; returns the report."""
    response = await client.post("/api/migration/migrate_legacy_db", json=migrate_body(legacy))
    body: dict[str, Any] = await response.json()
    assert response.status == 200, body
    return body


# Real processes and fuzzing take longer than the 60 s every other test gets (pyproject.toml).
SLOW_TIMEOUT = 300


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slow") and not item.get_closest_marker("timeout"):
            item.add_marker(pytest.mark.timeout(SLOW_TIMEOUT))


async def post_import(client: Client, pending_id: Any, strategy: Any = None, **extra: Any) -> Any:
    """POST import_a_model; returns (status, body)."""
    body = {"id": pending_id, "conf_strategy": strategy, **extra}
    response = await client.post(IMPORT, json=body)
    return response.status, await response.json()


@contextmanager
def point_reached(name: str) -> Iterator[asyncio.Event]:
    """An event set once the service reaches crash point `name` (from any thread)."""
    loop = asyncio.get_running_loop()
    event = asyncio.Event()
    with crashpoints.hooked(name, lambda: loop.call_soon_threadsafe(event.set)):
        yield event


class Pause:
    """Holds the first thread that reaches a crash point there until `release()`; `reached`
    is set meanwhile. For points reached in worker threads (hashing, file operations)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.reached = asyncio.Event()
        self._loop = loop
        self._go = threading.Event()
        self._taken = False

    def hold(self) -> None:
        if self._taken:
            return
        self._taken = True
        self._loop.call_soon_threadsafe(self.reached.set)
        if not self._go.wait(timeout=60):
            raise TimeoutError("the test never released the pause")

    def release(self) -> None:
        self._go.set()


@contextmanager
def paused_at(name: str) -> Iterator[Pause]:
    """Pause the first thread reaching `name`; released at the latest when the block ends."""
    pause = Pause(asyncio.get_running_loop())
    try:
        with crashpoints.hooked(name, pause.hold):
            yield pause
    finally:
        pause.release()


@contextmanager
def read_only_file(path: Path) -> Iterator[None]:
    """Make `path` (a file or a folder) unwritable for this process: for a non-root user,
    taking the write bits away (which it cannot pass by); for root, the immutable attribute,
    else a read-only bind mount of it onto itself. Skips only for root where neither is
    possible."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o555 if path.is_dir() else 0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    reasons: list[str] = []
    chattr = shutil.which("chattr")
    if chattr is not None:
        done = subprocess.run([chattr, "+i", str(path)], capture_output=True, text=True)
        if done.returncode == 0:
            try:
                yield
            finally:
                subprocess.run([chattr, "-i", str(path)], check=True)
            return
        reasons.append(f"chattr +i failed: {done.stderr.strip()}")
    else:
        reasons.append("chattr is not installed")
    mount = shutil.which("mount")
    if mount is not None:
        bound = subprocess.run([mount, "--bind", str(path), str(path)], capture_output=True)
        if bound.returncode == 0:
            try:
                remount = subprocess.run(
                    [mount, "-o", "remount,bind,ro", str(path)], capture_output=True, text=True
                )
                if remount.returncode == 0:
                    yield
                    return
                reasons.append(f"read-only remount failed: {remount.stderr.strip()}")
            finally:
                subprocess.run(["umount", str(path)], check=True)
        else:
            reasons.append(f"bind mount failed: {bound.stderr.decode().strip()}")
    pytest.skip("cannot make a file read-only for root here: " + "; ".join(reasons))


def http_post(server: ServerProcess, path: str, body: Any) -> tuple[int, Any]:
    """POST JSON to a server process (blocking); returns the status and the JSON answer."""
    request = urllib.request.Request(
        server.url + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())
