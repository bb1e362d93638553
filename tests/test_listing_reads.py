"""How a page of models is read: one snapshot and one trip to the connection's thread, a count
kept only while the library has not changed since, and a type filter answered from an index."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from modelshelf.storage import Storage
from modelshelf.storage.counts import MatchCounts
from modelshelf.storage.listing import ModelFilter
from modelshelf.storage.rows import run_on_connection
from tests.conftest import Client
from tests.editing import call
from tests.factories import LegacyLibrary
from tests.test_search import build_library, search, sha


@pytest.fixture
async def library(client: Client, legacy: LegacyLibrary) -> Client:
    await build_library(client, legacy)
    return client


async def total_of(client: Client, params: dict[str, str]) -> int:
    """`total` of a page of one model: counted, never the length of the page."""
    response = await client.get("/api/models", params={**params, "limit": "1"})
    body = await response.json()
    assert response.status == 200, body
    return int(body["total"])


@pytest.mark.parametrize(
    ("method", "path", "body", "params", "change"),
    [
        ("PATCH", f"/api/models/{sha(1)}", {"name": "Pixel Dreams"}, {"q": "pixel"}, +1),
        ("PATCH", f"/api/models/{sha(2)}", {"type": "checkpoint"}, {"type": "lora"}, -1),
        ("PUT", f"/api/models/{sha(1)}/tags", {"tags": ["retro"]}, {"q": "retro"}, +1),
        ("PUT", f"/api/models/{sha(1)}/tags", {"tags": ["lora"]}, {"tag": "lora"}, +1),
        ("DELETE", "/api/tags/2", None, {"tag": "lora", "q": "l"}, -3),
        ("DELETE", f"/api/models/{sha(2)}", None, {"q": "pixel"}, -1),
        (
            "PATCH",
            f"/api/models/{sha(1)}",
            {"meta_json": {"base_model": "SDXL 1.0"}},
            {"base_model": "sdxl 1.0"},
            +1,
        ),
    ],
)
async def test_a_total_counted_before_a_change_is_counted_again_after_it(
    library: Client,
    method: str,
    path: str,
    body: Any,
    params: dict[str, str],
    change: int,
) -> None:
    before = await total_of(library, params)
    assert await total_of(library, params) == before  # the second one may come from memory
    status, answer, _ = await call(library, method, path, body)
    assert status == 200, answer
    assert await total_of(library, params) == before + change
    assert len(await search(library, params)) == before + change


async def test_the_same_words_spelled_differently_share_a_total(library: Client) -> None:
    assert await total_of(library, {"q": "Pixel!"}) == await total_of(library, {"q": "pixel"})
    status, _, _ = await call(library, "DELETE", f"/api/models/{sha(2)}")
    assert status == 200
    assert await total_of(library, {"q": "PIXEL"}) == len(await search(library, "pixel"))


# --- the generation a count is kept under -------------------------------------------------------


@pytest.fixture
async def storage(tmp_path: Path) -> Any:
    storage = Storage(tmp_path / "modelshelf.db", read_connections=1)
    await storage.open()
    yield storage
    await storage.close()


async def test_the_generation_is_odd_exactly_while_a_write_is_open(storage: Storage) -> None:
    start = storage.generation
    assert start % 2 == 0
    assert storage.counts.settled(start)
    async with storage.write():
        assert storage.generation == start + 1
        assert not storage.counts.settled(storage.generation)
        assert not storage.counts.settled(start)
    assert storage.generation == start + 2
    with pytest.raises(ValueError, match="undone"):
        async with storage.write():
            raise ValueError("undone")
    assert storage.generation == start + 4  # a rolled back write moves it too


def test_a_count_is_handed_out_only_under_the_generation_it_was_made_at() -> None:
    generation = 0
    counts = MatchCounts(lambda: generation)
    counts.put("pixel", 0, 2)
    assert counts.get("pixel", 0) == 2
    generation = 2
    assert counts.get("pixel", 2) is None
    assert not counts.settled(0)


def test_the_oldest_count_is_dropped_past_the_capacity() -> None:
    counts = MatchCounts(lambda: 0, capacity=2)
    counts.put("a", 0, 1)
    counts.put("b", 0, 2)
    assert counts.get("a", 0) == 1  # "b" is now the oldest used
    counts.put("c", 0, 3)
    assert (counts.get("a", 0), counts.get("b", 0), counts.get("c", 0)) == (1, None, 3)


async def test_work_on_the_connection_thread_uses_that_connection(storage: Storage) -> None:
    async with storage.read() as conn:
        (default,) = (await conn.execute_fetchall("PRAGMA cache_size"))[0]
        await conn.execute("PRAGMA cache_size = -1234")  # a setting of this connection alone

        def cache_size(db: sqlite3.Connection, plus: int) -> int:
            return int(db.execute("PRAGMA cache_size").fetchone()[0]) + plus

        try:
            assert await run_on_connection(conn, cache_size, 1) == -1233
        finally:
            await conn.execute(f"PRAGMA cache_size = {int(default)}")


# --- the type filter ----------------------------------------------------------------------------


@pytest.mark.parametrize("where", [ModelFilter(q="pixel", type="lora"), ModelFilter(type="lora")])
async def test_a_type_filter_reads_the_index_not_the_models_rows(
    storage: Storage, where: ModelFilter
) -> None:
    sql, params = where.select("count(*)")
    with sqlite3.connect(storage.path) as conn:
        plan = " ".join(str(r[-1]) for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
    assert "COVERING INDEX models_type_sha256" in plan, plan


@pytest.mark.parametrize(("kept_totals", "kept"), [(0, None), (1, 3)])
def test_kept_totals_says_how_many_totals_are_kept(
    tmp_path: Path, kept_totals: int, kept: int | None
) -> None:
    storage = Storage(tmp_path / "modelshelf.db", kept_totals=kept_totals)
    storage.counts.put("pixel", storage.generation, 3)
    assert storage.counts.get("pixel", storage.generation) == kept


async def test_the_reader_used_last_is_handed_out_first(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "modelshelf.db", read_connections=3)
    await storage.open()
    try:
        for size in (-1111, -2222):
            async with storage.read() as conn:
                await conn.execute(f"PRAGMA cache_size = {size}")  # marks this connection
            async with storage.read() as again:
                assert (await again.execute_fetchall("PRAGMA cache_size"))[0][0] == size
    finally:
        await storage.close()
