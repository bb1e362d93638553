"""Fixtures: a real data directory in tmp_path and the real app through aiohttp_client."""

from __future__ import annotations

import gc
import logging
import os
import shutil
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from modelshelf.app import create_app
from modelshelf.config import Settings
from modelshelf.domain.shelf import Shelf
from modelshelf.web.keys import SHELF
from tests.factories import LegacyLibrary, Library

Client = TestClient[web.Request, web.Application]
MakeClient = Callable[..., Awaitable[Client]]
IMPORT = "/api/migration/import_a_model"


def pytest_configure(config: pytest.Config) -> None:
    # pytest-asyncio makes its own loops and ignores PYTHONASYNCIODEBUG; honour it here so a
    # debug run really runs every loop in debug mode (slow-callback detection included).
    if os.environ.get("PYTHONASYNCIODEBUG"):
        config.option.asyncio_debug = True


class _SlowCallbacks(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if not (message.startswith("Executing") and " took " in message):
            return
        # Tests build their real inputs (model files, images) synchronously in their own task
        # or fixtures; only the service's callbacks must never hold the loop.
        if "coro=<test_" in message or "_async_fixture_wrapper" in message:
            return
        self.messages.append(message[:400])


@pytest.fixture(autouse=True)
def event_loop_is_never_blocked(request: pytest.FixtureRequest) -> Iterator[None]:
    """In asyncio debug mode, a callback that holds the loop over 100 ms fails the test."""
    if not request.config.getoption("asyncio_debug", False):
        yield
        return
    # A full garbage collection over the whole test session's heap (hypothesis, schemathesis,
    # every earlier test's leftovers) takes 100-140 ms here and lands in whatever callback runs;
    # freezing that heap leaves the collector only what this test creates.
    gc.collect()
    gc.freeze()
    handler = _SlowCallbacks()
    logger = logging.getLogger("asyncio")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    assert not handler.messages, "the event loop was blocked:\n" + "\n".join(handler.messages)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return Settings(data_dir=data_dir, workers=2, read_connections=2).resolve_paths()


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


@pytest.fixture
async def make_client(aiohttp_client: Any, settings: Settings) -> MakeClient:
    """Start the real app; keyword arguments override settings."""

    async def start(**overrides: Any) -> Client:
        app = create_app(settings.model_copy(update=overrides) if overrides else settings)
        client: Client = await aiohttp_client(app)
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
            settings = Settings(data_dir=template, workers=2, read_connections=2).resolve_paths()
            builder: Client = await aiohttp_client(create_app(settings))
            await build(builder, LegacyLibrary(template / "legacy"))
            await builder.close()
            _TEMPLATES[name] = template
        shutil.copytree(template, data_dir, symlinks=True, dirs_exist_ok=True)
        return await make_client()

    return start


def shelf_of(client: Client) -> Shelf:
    return client.app[SHELF]


async def migrate(client: Client, legacy: LegacyLibrary) -> dict[str, Any]:
    """Run stage 1 through the API; returns the report."""
    response = await client.post(
        "/api/migration/migrate_legacy_db",
        json={"legacy_db_path": str(legacy.db_path), "legacy_images_dir": str(legacy.images_dir)},
    )
    body: dict[str, Any] = await response.json()
    assert response.status == 200, body
    return body


async def post_import(client: Client, pending_id: Any, strategy: Any = None, **extra: Any) -> Any:
    """POST import_a_model; returns (status, body)."""
    body = {"id": pending_id, "conf_strategy": strategy, **extra}
    response = await client.post(IMPORT, json=body)
    return response.status, await response.json()
