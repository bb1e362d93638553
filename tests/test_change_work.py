"""A change's own blocking work (planning an import's record, applying a patch, parsing a
record from history) runs on the change's connection thread, never in the CPU pool: bulk work
fills that pool (32 imports rendering), and a change waiting there holds the writer and its
models' locks, so every other write and every reader of the model waited with it (1-4 s
under bench/load_imports.py; BENCHMARKS.md, Reads under load)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Client, shelf_of
from tests.editing import A, build, call, history
from tests.factories import LegacyLibrary
from tests.test_edit_races import PENDING, library_copy, pool_jobs

# What an import does before its change begins, holding nothing: the pending file hashed, its
# image rendered (the job, and the encodes of its renditions it hands the pool).
BEFORE_THE_CHANGE = {"hash_file", "render_into", "_encode"}


@pytest.fixture
async def library(client: Client, legacy: LegacyLibrary) -> Client:
    await build(client, legacy)
    return client


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", f"/api/models/{A}", {"name": "Renamed", "meta_json": {"notes": "kept"}}),
        ("RESTORE", "", None),
        ("DELETE-RESTORE", "", None),
    ],
    ids=["patch", "restore", "restore-deleted"],
)
async def test_an_edit_gives_the_cpu_pool_nothing(
    library: Client, monkeypatch: pytest.MonkeyPatch, method: str, path: str, body: Any
) -> None:
    if method == "RESTORE":
        assert (await call(library, "PATCH", f"/api/models/{A}", {"name": "New"}))[0] == 200
        entry = (await history(library, A))[0]["id"]
        method, path = "POST", f"/api/models/{A}/history/{entry}/restore"
    elif method == "DELETE-RESTORE":
        assert (await call(library, "DELETE", f"/api/models/{A}", None))[0] == 200
        method, path, body = "POST", "/api/models/restore", {"hashes": [A]}
    with pool_jobs(shelf_of(library).executors.cpu, monkeypatch) as names:
        status, answer, _ = await call(library, method, path, body)
    assert status == 200, answer
    assert names == []


@pytest.mark.parametrize("strategy", ["merge", "override"])
async def test_an_import_over_a_model_gives_the_cpu_pool_only_what_it_does_before_its_change(
    aiohttp_client: Any,
    tmp_path_factory: pytest.TempPathFactory,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    strategy: str,
) -> None:
    """The pending file is hashed and its image rendered in the CPU pool before the change
    begins, holding nothing; the record the strategy makes is planned inside the change, on
    its thread."""
    client, _ = await library_copy(aiohttp_client, tmp_path_factory, data_dir)
    body = {"id": PENDING, "conf_strategy": strategy}
    with pool_jobs(shelf_of(client).executors.cpu, monkeypatch) as names:
        status, answer, _ = await call(client, "POST", "/api/migration/import_a_model", body)
    assert status == 200, answer
    assert set(names) <= BEFORE_THE_CHANGE, names
