"""Reading records: a model's tags, image seqs and locations, and a pending model's tags and
image, come with its row in one query (each query is a trip to the connection's thread and
back to the event loop, which under bulk work cost more than SQLite), in the order the API
promises: tags by name, seqs ascending, locations by path."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from modelshelf.records import image_name
from modelshelf.storage import Storage
from modelshelf.storage.counts import RANKING_DEPTH, MatchCounts
from modelshelf.storage.image_index import image_content_keys
from modelshelf.storage.listing import (
    count_models,
    page_of_hashes,
    read_page,
    read_page_at_once,
    read_ranked_page,
)
from modelshelf.storage.model_filter import ModelFilter
from modelshelf.storage.models import (
    fetch_model,
    fetch_model_and_image_keys,
    fetch_models,
    read_models,
)
from modelshelf.storage.pending import fetch_pending, list_pending
from modelshelf.storage.rows import run_on_connection

# Names whose order by UTF-8 bytes (SQLite's) and by code points (Python's) is the same, and
# differs from the order of insertion and from a case-blind order.
TAG_NAMES = ["zeta", "Alpha", "éclair", "beta", "日本"]
SHA_A, SHA_B, SHA_C = "a" * 64, "b" * 64, "c" * 64


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    storage = Storage(tmp_path / "data" / "modelshelf.db", read_connections=2)
    await storage.open()
    with contextlib.closing(sqlite3.connect(storage.path, isolation_level=None)) as db:
        seed(db)
    yield storage
    await storage.close()


def seed(db: sqlite3.Connection) -> None:
    """Model A with every tag, seqs 3, 1, 2 and two locations; B with nothing linked; pending
    1 with two tags and an image, pending 2 with neither. All inserted out of order."""
    db.executemany("INSERT INTO tags(id, name) VALUES (?, ?)", enumerate(TAG_NAMES, start=1))
    for sha in (SHA_A, SHA_B):
        db.execute("INSERT INTO models(sha256, name, meta_json) VALUES (?, ?, '{}')", (sha, sha))
    db.executemany(
        "INSERT INTO model_tags(model_hash, tag_id) VALUES (?, ?)",
        [(SHA_A, i) for i in range(len(TAG_NAMES), 0, -1)],
    )
    db.executemany(
        "INSERT INTO images(model_hash, seq) VALUES (?, ?)", [(SHA_A, s) for s in (3, 1, 2)]
    )
    db.executemany(
        "INSERT INTO model_files(path, sha256, present) VALUES (?, ?, ?)",
        [("/roots/z/a.safetensors", SHA_A, 1), ("/roots/b/a.safetensors", SHA_A, 0)],
    )
    for pending_id in (2, 1):
        db.execute(
            "INSERT INTO pending_import(id, name, meta_json) VALUES (?, ?, '{}')",
            (pending_id, f"p{pending_id}"),
        )
    db.executemany("INSERT INTO pending_model_tags(model_id, tag_id) VALUES (1, ?)", [(1,), (2,)])
    db.execute("INSERT INTO pending_images(pending_id, ext) VALUES (1, 'png')")


async def test_a_model_record_carries_its_links_in_the_promised_order(storage: Storage) -> None:
    async with storage.read() as conn:
        record = await fetch_model(conn, SHA_A)
    assert record is not None
    assert [t.name for t in record.tags] == sorted(TAG_NAMES)
    assert [t.id for t in record.tags] == [TAG_NAMES.index(n) + 1 for n in sorted(TAG_NAMES)]
    assert record.images == [image_name(SHA_A, seq) for seq in (1, 2, 3)]
    assert [(f.path, f.present) for f in record.files] == [
        ("/roots/b/a.safetensors", False),
        ("/roots/z/a.safetensors", True),
    ]


async def test_a_model_with_nothing_linked_has_empty_lists(storage: Storage) -> None:
    async with storage.read() as conn:
        record = await fetch_model(conn, SHA_B)
    assert record is not None
    assert (record.tags, record.images, record.files) == ([], [], [])


@pytest.mark.parametrize(
    ("hashes", "expected"),
    [
        ([SHA_B, SHA_A], [SHA_B, SHA_A]),
        ([SHA_A, SHA_C, SHA_B], [SHA_A, SHA_B]),
        ([SHA_C], []),
        ([], []),
    ],
)
async def test_records_come_in_the_order_asked_skipping_unknown_hashes(
    storage: Storage, hashes: list[str], expected: list[str]
) -> None:
    async with storage.read() as conn:
        records = await fetch_models(conn, hashes)
    assert [r.sha256 for r in records] == expected


async def test_pending_records_carry_their_tags_by_name_and_their_image(
    storage: Storage,
) -> None:
    async with storage.read() as conn:
        listed = await list_pending(conn)
        one = await fetch_pending(conn, 1)
        unknown = await fetch_pending(conn, 99)
    assert [(p.id, [t.name for t in p.tags], p.images) for p in listed] == [
        (1, ["Alpha", "zeta"], ["pending/1"]),
        (2, [], []),
    ]
    assert one == listed[0]
    assert unknown is None


@pytest.mark.parametrize(
    ("read", "queries"),
    [
        (lambda conn: fetch_models(conn, [SHA_A]), 1),
        (lambda conn: fetch_models(conn, [SHA_A, SHA_B]), 1),
        (lambda conn: fetch_model(conn, SHA_A), 1),
        (lambda conn: fetch_model_and_image_keys(conn, SHA_A), 1),
        (list_pending, 1),
        (lambda conn: fetch_pending(conn, 1), 1),
    ],
    ids=["one model", "two models", "fetch_model", "with keys", "pending list", "one pending"],
)
async def test_record_reads_take_a_fixed_number_of_queries_whatever_the_records(
    storage: Storage, read: Any, queries: int
) -> None:
    # Records: their rows, tags, image seqs and locations, one query for the whole set that
    # answers one row (see models.read_models: a row each costs a GIL hand-over each).
    statements: list[str] = []
    async with storage.read() as conn:
        await conn.set_trace_callback(statements.append)
        await read(conn)
        await conn.set_trace_callback(None)
    assert len(statements) == queries, statements


async def test_a_column_json_cannot_hold_is_read_row_by_row(storage: Storage) -> None:
    # Another program may write a BLOB where modelshelf writes text; the one-row read of a
    # page (a JSON array) cannot carry it, and the records are read a row at a time instead.
    with contextlib.closing(sqlite3.connect(storage.path, isolation_level=None)) as db:
        db.execute("UPDATE models SET name = ? WHERE sha256 = ?", (b"blob name", SHA_B))
    async with storage.read() as conn:
        records = await fetch_models(conn, [SHA_A, SHA_B])
    assert [(r.sha256, r.name) for r in records] == [(SHA_A, SHA_A), (SHA_B, "blob name")]
    assert [t.name for t in records[0].tags] == sorted(TAG_NAMES)


async def test_a_pending_column_json_cannot_hold_is_read_row_by_row(storage: Storage) -> None:
    with contextlib.closing(sqlite3.connect(storage.path, isolation_level=None)) as db:
        db.execute("UPDATE pending_import SET name = ? WHERE id = 2", (b"blob name",))
    async with storage.read() as conn:
        listed = await list_pending(conn)
    assert [(p.id, p.name, [t.name for t in p.tags]) for p in listed] == [
        (1, "p1", ["Alpha", "zeta"]),
        (2, "blob name", []),
    ]


async def reopened(storage: Storage) -> None:
    """Opened again: the search index is built for the rows `seed` wrote behind its back."""
    await storage.close()
    await storage.open()


@pytest.mark.parametrize(
    ("where", "kept_totals", "statements"),
    [
        (ModelFilter(), 0, 1),
        (ModelFilter(sort="name", order="desc"), 0, 1),
        (ModelFilter(tag="Alpha"), 0, 1),
        (ModelFilter(q="zeta"), 0, 1),
        (ModelFilter(q="zeta"), 256, 1),  # met again: its total is kept
        (ModelFilter(q="zeta", missing=False), 0, 1),  # matches scored once, counted, ranked
        (ModelFilter(q="zeta", missing=False), 256, 1),
    ],
    ids=["all", "sorted", "tag", "words", "words, kept", "words and filter", "and filter, kept"],
)
async def test_a_page_and_its_total_are_read_by_one_statement(
    storage: Storage, where: ModelFilter, kept_totals: int, statements: int
) -> None:
    """One statement is one snapshot without a transaction, and one hand-back of the GIL."""
    await reopened(storage)
    counts = MatchCounts(lambda: storage.generation, capacity=kept_totals)
    async with storage.read() as conn:
        first = await read_page(conn, where, 50, 0, counts)
        traced: list[str] = []
        await conn.set_trace_callback(traced.append)
        again = await read_page(conn, where, 50, 0, counts)
        await conn.set_trace_callback(None)
    # FTS5 runs statements of its own ("-- PRAGMA 'main'.data_version"): not ours.
    ours = [sql for sql in traced if not sql.startswith("--")]
    assert len(ours) == statements, ours
    assert again == first


FILTERS = [
    ModelFilter(),
    ModelFilter(sort="name", order="desc"),
    ModelFilter(sort="size_bytes"),
    ModelFilter(tag="Alpha"),
    ModelFilter(q="a"),
    ModelFilter(q="zeta"),
    ModelFilter(missing=True),
    ModelFilter(q="nothing"),
    ModelFilter(q="a", missing=False),
    ModelFilter(q="zeta", tag="zeta"),
]


@pytest.mark.parametrize("where", FILTERS)
async def test_the_page_read_at_once_is_the_page_read_query_by_query(
    storage: Storage, where: ModelFilter
) -> None:
    await reopened(storage)

    def by_queries(db: sqlite3.Connection) -> tuple[int, list[Any]]:
        db.execute("BEGIN")
        try:
            hashes = page_of_hashes(db, where, 1, 1) + page_of_hashes(db, where, 1, 0)
            return count_models(db, where), read_models(db, hashes[::-1])
        finally:
            db.execute("COMMIT")

    async with storage.read() as conn:
        expected = await run_on_connection(conn, by_queries)
        at_once = await run_on_connection(
            conn, lambda db: read_page_at_once(db, where, 2, 0, count=True)
        )
    assert at_once is not None
    assert (at_once.total, at_once.records) == expected
    assert (at_once.ranking is not None) == where.ranked()


@pytest.mark.parametrize("where", [where for where in FILTERS if where.ranked()])
async def test_a_page_read_from_the_kept_ranking_is_the_page_ranked_again(
    storage: Storage, where: ModelFilter
) -> None:
    await reopened(storage)

    def pages(db: sqlite3.Connection) -> list[tuple[list[Any], list[Any]]]:
        first = read_page_at_once(db, where, RANKING_DEPTH, 0, count=True)
        assert first is not None and first.ranking is not None
        assert len(first.ranking) == first.total  # ranked to the page's end: every match
        found = []
        for offset in range(first.total + 1):
            ranked_again = read_page_at_once(db, where, 1, offset, count=False)
            assert ranked_again is not None
            kept = read_ranked_page(db, first.ranking[offset : offset + 1].tolist())
            found.append((ranked_again.records, kept))
        return found

    async with storage.read() as conn:
        for ranked_again, kept in await run_on_connection(conn, pages):
            assert kept == ranked_again


@pytest.mark.parametrize("kept", [False, True], ids=["counted", "total kept before the BLOB"])
async def test_a_page_with_a_column_json_cannot_hold_is_read_query_by_query(
    storage: Storage, kept: bool
) -> None:
    where = ModelFilter(sort="name")
    counts = MatchCounts(lambda: storage.generation, capacity=256 if kept else 0)
    if kept:  # the total is kept; another program then writes the BLOB
        async with storage.read() as conn:
            await read_page(conn, where, 50, 0, counts)
    with contextlib.closing(sqlite3.connect(storage.path, isolation_level=None)) as db:
        db.execute("UPDATE models SET name = ? WHERE sha256 = ?", (b"blob name", SHA_B))
    async with storage.read() as conn:
        total, records = await read_page(conn, where, 50, 0, counts)
    assert total == 2
    assert [(r.sha256, r.name) for r in records] == [(SHA_A, SHA_A), (SHA_B, "blob name")]


@pytest.mark.parametrize("blob", [False, True], ids=["as JSON", "a BLOB, row by row"])
@pytest.mark.parametrize("sha256", [SHA_A, SHA_B, SHA_C])
async def test_a_model_and_its_image_keys_are_read_together_as_apart(
    storage: Storage, sha256: str, blob: bool
) -> None:
    if blob:
        with contextlib.closing(sqlite3.connect(storage.path, isolation_level=None)) as db:
            db.execute("UPDATE models SET name = ? WHERE sha256 = ?", (b"blob", sha256))
    async with storage.read() as conn:
        together = await fetch_model_and_image_keys(conn, sha256)
        record = await fetch_model(conn, sha256)
        apart = None if record is None else (record, await image_content_keys(conn, sha256))
    assert together == apart
    if sha256 == SHA_A:
        assert together is not None and len(together[1]) == 3
