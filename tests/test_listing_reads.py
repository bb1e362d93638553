"""How a page of models is read: one snapshot and one trip to the connection's thread, a count
kept only while the library has not changed since, and a type filter answered from an index."""

from __future__ import annotations

import contextlib
import sqlite3
from array import array
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from modelshelf.storage import Storage, listing
from modelshelf.storage import counts as counts_module
from modelshelf.storage.counts import RANKING_DEPTH, Kept, MatchCounts
from modelshelf.storage.listing import ranking_depth, read_page
from modelshelf.storage.model_filter import ModelFilter
from modelshelf.storage.rows import run_on_connection
from modelshelf.storage.search_rows import refresh_stale
from tests.conftest import Client
from tests.editing import call
from tests.factories import LegacyLibrary
from tests.test_search import build_library, search, sha


@pytest.fixture
async def library(client: Client, legacy: LegacyLibrary) -> Client:
    await build_library(client, legacy)
    return client


async def models_page(client: Client, params: dict[str, str]) -> Any:
    """The body of `GET /api/models` with `params`, which must answer 200."""
    response = await client.get("/api/models", params=params)
    body = await response.json()
    assert response.status == 200, body
    return body


async def total_of(client: Client, params: dict[str, str]) -> int:
    """`total` of a page of one model: counted, never the length of the page."""
    return int((await models_page(client, {**params, "limit": "1"}))["total"])


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
    assert storage.counts(False).settled(start)
    async with storage.write():
        assert storage.generation == start + 1
        assert not storage.counts(False).settled(storage.generation)
        assert not storage.counts(False).settled(start)
    assert storage.generation == start + 2
    with pytest.raises(ValueError, match="undone"):
        async with storage.write():
            raise ValueError("undone")
    assert storage.generation == start + 4  # a rolled back write moves it too


def total(counts: MatchCounts, key: str, generation: int) -> int | None:
    kept = counts.get(key, generation)
    return None if kept is None else kept.total


def test_a_count_is_handed_out_only_under_the_generation_it_was_made_at() -> None:
    generation = 0
    counts = MatchCounts(lambda: generation)
    counts.put("pixel", 0, Kept(2))
    assert total(counts, "pixel", 0) == 2
    generation = 2
    assert counts.get("pixel", 2) is None
    assert not counts.settled(0)


def test_the_oldest_count_is_dropped_past_the_capacity() -> None:
    counts = MatchCounts(lambda: 0, capacity=2)
    counts.put("a", 0, Kept(1))
    counts.put("b", 0, Kept(2))
    assert total(counts, "a", 0) == 1  # "b" is now the oldest used
    counts.put("c", 0, Kept(3))
    assert [total(counts, key, 0) for key in "abc"] == [1, None, 3]


def test_a_ranking_stays_when_the_same_filter_is_counted_in_another_order() -> None:
    counts = MatchCounts(lambda: 0)
    counts.put("pixel", 0, Kept(3, array("q", [7, 5, 6])))
    counts.put("pixel", 0, Kept(3))  # the same words, sorted by name
    assert counts.get("pixel", 0) == Kept(3, array("q", [7, 5, 6]))
    counts.put("pixel", 2, Kept(3))
    assert counts.get("pixel", 2) == Kept(3)  # not a ranking made under another generation


def test_past_the_rows_budget_the_oldest_rankings_go_and_their_totals_stay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(counts_module, "RANKED_ROWS_KEPT", 5)
    counts = MatchCounts(lambda: 0)
    counts.put("a", 0, Kept(3, array("q", [1, 2, 3])))
    counts.put("b", 0, Kept(2, array("q", [4, 5])))
    assert counts.get("a", 0) == Kept(3, array("q", [1, 2, 3]))  # "b" is now the oldest used
    counts.put("c", 0, Kept(2, array("q", [6, 7])))
    assert [counts.get(key, 0) for key in "abc"] == [
        Kept(3, array("q", [1, 2, 3])),
        Kept(2),
        Kept(2, array("q", [6, 7])),
    ]


@pytest.mark.parametrize(
    ("limit", "offset", "kept_depth", "depth"),
    [
        (50, 0, 0, 50),  # a first page ranks what it shows, as it did before rankings were kept
        (100, 300, 0, 400),  # so does any page met first
        (100, 100, 100, RANKING_DEPTH),  # past what is kept: a person scrolls on
        (50, 5000, 0, 5050),  # past the depth: to the page's end, and nothing is kept
        (100, 1950, 2000, 2050),
    ],
)
def test_a_page_past_what_is_kept_ranks_to_the_depth(
    limit: int, offset: int, kept_depth: int, depth: int
) -> None:
    assert ranking_depth(limit, offset, kept_depth) == depth


@pytest.mark.parametrize(
    ("kept", "limit", "offset", "page"),
    [
        (Kept(3), 2, 0, None),  # no ranking kept
        (Kept(5, array("q", [9, 8, 7])), 2, 0, [9, 8]),
        (Kept(5, array("q", [9, 8, 7])), 2, 1, [8, 7]),
        (Kept(5, array("q", [9, 8, 7])), 2, 2, None),  # past what was kept of 5 matches
        (Kept(3, array("q", [9, 8, 7])), 2, 2, [7]),  # every match was kept
        (Kept(3, array("q", [9, 8, 7])), 2, 5, []),
        (Kept(0, array("q")), 50, 0, []),
    ],
)
def test_a_kept_ranking_answers_only_the_pages_it_holds(
    kept: Kept, limit: int, offset: int, page: list[int] | None
) -> None:
    assert kept.ranked_page(limit, offset) == page


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
    storage.counts(False).put("pixel", storage.generation, Kept(3))
    assert total(storage.counts(False), "pixel", storage.generation) == kept


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


async def paged(client: Client, query: str, count: int) -> list[str]:
    """Names of the first `count` matches, read a page of one at a time (the way the web UI
    pages, so after the first the order may come from a kept ranking)."""
    names = []
    for offset in range(count):
        params = {"q": query, "limit": "1", "offset": str(offset)}
        names += [m["name"] for m in (await models_page(client, params))["models"]]
    return names


async def test_a_ranking_kept_before_a_change_is_ranked_again_after_it(library: Client) -> None:
    before = await paged(library, "pixel", 3)
    assert before == ["Pixel Art XL", "Realistic Vision"]
    assert await paged(library, "pixel", 3) == before  # the pages after the first: kept
    for model, name in ((sha(5), "Pixel Pixel Pixel Pixel"), (sha(2), "Art XL")):
        status, answer, _ = await call(library, "PATCH", f"/api/models/{model}", {"name": name})
        assert status == 200, answer
        after = await paged(library, "pixel", 3)
        assert after == await search(library, "pixel")
    assert after == ["Pixel Pixel Pixel Pixel", "Art XL"]


# More words, more weight; no name begins with "pixel", which would rank it first
# (search.name_tiers_sql).
PIXELS = [" ".join(["art"] + ["pixel"] * n) for n in range(1, 6)]
RANKED = PIXELS[::-1]  # best first for "pixel"


@pytest.fixture
async def pixels(tmp_path: Path) -> AsyncIterator[Storage]:
    """A library of five models named "art pixel" to "art pixel pixel pixel pixel pixel",
    and six others: "pixel" is in fewer than half, so bm25 ranks it (search.broad_sql)."""
    path = tmp_path / "modelshelf.db"
    storage = Storage(path)
    await storage.open()
    await storage.close()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        for n, name in enumerate(PIXELS + [f"sketch {n}" for n in range(6)], start=1):
            db.execute("INSERT INTO models(sha256, name) VALUES (?, ?)", (sha(n), name))
    await storage.open()  # indexes the rows written behind its back
    yield storage
    await storage.close()


async def names(
    storage: Storage, where: ModelFilter, limit: int, offset: int, counts: MatchCounts
) -> list[str | None]:
    async with storage.read() as conn:
        return [r.name for r in (await read_page(conn, where, limit, offset, counts))[1]]


async def test_paging_a_search_keeps_its_ranking_from_the_second_page_on(
    pixels: Storage,
) -> None:
    where = ModelFilter(q="pixel")
    pages, depths = [], []
    for offset in range(6):
        pages += await names(pixels, where, 1, offset, pixels.counts(True))
        kept = pixels.counts(True).get(where.count_key(), pixels.index_generation)
        assert kept is not None
        depths.append(kept.depth)
    assert depths == [1, 5, 5, 5, 5, 5]  # every match: fewer than RANKING_DEPTH
    nothing_kept = MatchCounts(lambda: 0, capacity=0)
    assert pages == await names(pixels, where, 50, 0, nothing_kept) == RANKED


@pytest.mark.parametrize(("limit", "offset"), [(2, 0), (2, 1), (3, 2), (50, 0)])
async def test_pages_of_several_come_from_the_kept_ranking_in_its_order(
    pixels: Storage, limit: int, offset: int
) -> None:
    where = ModelFilter(q="pixel")
    await names(pixels, where, 1, 0, pixels.counts(True))
    await names(pixels, where, 1, 1, pixels.counts(True))  # now every match is kept
    assert await names(pixels, where, limit, offset, pixels.counts(True)) == RANKED[offset:][:limit]


async def test_a_ranking_is_not_used_if_a_write_began_during_the_read(pixels: Storage) -> None:
    where = ModelFilter(q="pixel")
    await names(pixels, where, 50, 0, pixels.counts(True))
    kept = pixels.counts(True).get(where.count_key(), pixels.index_generation)
    assert kept is not None and kept.ranking is not None
    generations = iter([0, 2])  # the read starts at 0; a write has begun and ended by its end
    counts = MatchCounts(lambda: next(generations, 2))
    wrong = array("q", reversed(kept.ranking))  # what a ranking made before the write could say
    counts.put(where.count_key(), 0, Kept(kept.total, wrong))
    assert await names(pixels, where, 50, 0, counts) == RANKED


async def test_a_sorted_listing_does_not_take_the_order_of_a_kept_ranking(
    pixels: Storage,
) -> None:
    await names(pixels, ModelFilter(q="pixel"), 50, 0, pixels.counts(True))  # keeps the ranking
    by_name = ModelFilter(q="pixel", sort="name")
    assert await names(pixels, by_name, 50, 0, pixels.counts(True)) == sorted(PIXELS)


async def test_a_page_past_the_ranking_depth_keeps_no_ranking(
    pixels: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing, "RANKING_DEPTH", 2)
    where = ModelFilter(q="pixel")
    assert await names(pixels, where, 1, 0, pixels.counts(True)) == RANKED[:1]
    assert await names(pixels, where, 1, 3, pixels.counts(True)) == RANKED[3:4]  # past the depth
    kept = pixels.counts(True).get(where.count_key(), pixels.index_generation)
    assert kept is not None and kept.depth == 1
    assert await names(pixels, where, 1, 1, pixels.counts(True)) == RANKED[1:2]
    kept = pixels.counts(True).get(where.count_key(), pixels.index_generation)
    assert kept is not None and kept.depth == 2


async def test_nothing_kept_before_a_close_is_used_after_the_next_open(pixels: Storage) -> None:
    await pixels.close()
    with contextlib.closing(sqlite3.connect(pixels.path, isolation_level=None)) as db:
        for n in range(1, 6):
            row = (f"/m/{n}", sha(n))
            db.execute("INSERT INTO model_files(path, sha256, present) VALUES (?, ?, 1)", row)
    await pixels.open()
    found = ModelFilter(q="pixel", missing=False)
    assert await names(pixels, found, 50, 0, pixels.counts(False)) == RANKED
    await pixels.close()
    with contextlib.closing(sqlite3.connect(pixels.path, isolation_level=None)) as db:
        # Another program: a file gone marks no search row stale, so opening writes nothing.
        db.execute("UPDATE model_files SET present = 0 WHERE sha256 = ?", (sha(5),))
    await pixels.open()
    async with pixels.read() as conn:
        total, records = await read_page(conn, found, 50, 0, pixels.counts(False))
    assert (total, [r.name for r in records]) == (4, RANKED[1:])


# --- the index's own generation -----------------------------------------------------------------


async def test_the_index_generation_is_odd_from_its_change_until_the_write_ends(
    pixels: Storage,
) -> None:
    start = pixels.index_generation
    async with pixels.write():
        assert pixels.index_generation == start  # a write alone leaves it
        pixels.mark_index_changing()
        pixels.mark_index_changing()  # twice is once
        assert pixels.index_generation == start + 1
        assert not pixels.counts(True).settled(start)
    assert pixels.index_generation == start + 2

    async def undone() -> None:
        async with pixels.write():
            pixels.mark_index_changing()
            raise ValueError("undone")

    with pytest.raises(ValueError, match="undone"):
        await undone()
    assert pixels.index_generation == start + 4  # a rolled back change moves it too


@pytest.mark.parametrize(
    "where",
    [
        ModelFilter(q="pixel"),
        ModelFilter(q="pixel", sort="name"),
        ModelFilter(),
        ModelFilter(q="p"),
    ],
)
async def test_a_listing_stays_kept_across_a_write_that_leaves_the_index_as_it_was(
    pixels: Storage, where: ModelFilter
) -> None:
    counts = pixels.counts(where.tracked_by_index())
    nothing_kept = MatchCounts(lambda: 0, capacity=0)
    assert await names(pixels, where, 50, 0, counts) == await names(
        pixels, where, 50, 0, nothing_kept
    )
    async with pixels.write() as tx:  # an image, a job's progress: nothing the index holds
        await tx.execute("INSERT INTO images(model_hash, seq) VALUES (?, 0)", (sha(1),))
        assert await refresh_stale(tx, pixels.mark_index_changing) == 0
    assert counts.get(where.count_key(), pixels.index_generation) is not None
    assert pixels.counts(False).get(where.count_key(), pixels.generation) is None
    async with pixels.write() as tx:  # a rename: the index changes
        await tx.execute("UPDATE models SET name = 'art pixel' WHERE sha256 = ?", (sha(5),))
        assert await refresh_stale(tx, pixels.mark_index_changing) == 1
    assert counts.get(where.count_key(), pixels.index_generation) is None
    after = await names(pixels, where, 50, 0, counts)
    assert after == await names(pixels, where, 50, 0, nothing_kept)
    assert PIXELS[-1] not in after


async def test_a_missing_filter_is_counted_again_when_a_file_goes(pixels: Storage) -> None:
    async with pixels.write() as tx:
        for n in range(1, 12):  # every model of the fixture
            row = (f"/m/{n}", sha(n))
            await tx.execute("INSERT INTO model_files(path, sha256, present) VALUES (?, ?, 1)", row)
        await refresh_stale(tx, pixels.mark_index_changing)
    gone = ModelFilter(missing=True)
    counts = pixels.counts(gone.tracked_by_index())
    async with pixels.read() as conn:
        assert await read_page(conn, gone, 1, 0, counts) == (0, [])
    async with pixels.write() as tx:  # a file gone: no search row is marked
        await tx.execute("UPDATE model_files SET present = 0 WHERE sha256 = ?", (sha(5),))
        assert await refresh_stale(tx, pixels.mark_index_changing) == 0
    async with pixels.read() as conn:
        total, records = await read_page(conn, gone, 1, 0, counts)
    assert (total, [r.name for r in records]) == (1, [PIXELS[4]])
