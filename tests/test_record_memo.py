"""A page's records are kept serialised by the text of their rows (storage.record_texts): a
record read again as it was is not built again, a changed one is read as it is now, and what
the memo keeps is bounded."""

from __future__ import annotations

import contextlib
import gc
import json
import sqlite3
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from modelshelf.records import ModelRecord
from modelshelf.storage import Storage, listing
from modelshelf.storage.models import read_models
from modelshelf.storage.record_texts import (
    LONGEST_KEPT,
    RecordMemo,
    cut_jsons,
    record_jsons,
    records_of,
    records_text_sql,
)
from modelshelf.storage.rows import placeholders, run_on_connection
from modelshelf.web.bodies import ModelsPage, ModelsQuery
from tests.conftest import Client
from tests.loop_watch import Calls, watch_calls

HASHES = [f"{n:x}" * 64 for n in range(1, 6)]
# The separator between rows, a newline, quotes, a backslash and letters of several scripts:
# what a name, a tag or a path written by another program may hold.
ODD = 'sep\x1erow "quoted" back\\slash\nnew 日本 éclair \x00'


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    storage = Storage(tmp_path / "data" / "modelshelf.db", read_connections=2)
    await storage.open()
    with contextlib.closing(sqlite3.connect(storage.path, isolation_level=None)) as db:
        db.execute("INSERT INTO tags(id, name) VALUES (1, ?), (2, 'plain')", (ODD,))
        for n, sha in enumerate(HASHES):
            meta = json.dumps({"description": f'\x1e odd \\ " {n}', "n": n, "x": [1, 2.5, None]})
            db.execute(
                "INSERT INTO models(sha256, name, meta_json, size_bytes) VALUES (?, ?, ?, ?)",
                (sha, f"{ODD} {n}", meta, n * 1000),
            )
            db.execute(
                "INSERT INTO model_tags(model_hash, tag_id) VALUES (?, 1), (?, 2)", (sha, sha)
            )
            db.execute("INSERT INTO images(model_hash, seq) VALUES (?, 0), (?, 1)", (sha, sha))
            db.execute(
                "INSERT INTO model_files(path, sha256, present) VALUES (?, ?, ?)",
                (f"/roots/{ODD}/{n}.safetensors", sha, n % 2),
            )
    yield storage
    await storage.close()


async def read_jsons(storage: Storage, memo: RecordMemo, hashes: list[str]) -> list[bytes]:
    def read(db: sqlite3.Connection) -> list[bytes]:
        sql = f"SELECT ({records_text_sql(placeholders(len(hashes)))})"
        text = db.execute(sql, hashes).fetchone()[0]
        return memo.jsons(hashes, text)

    async with storage.read() as conn:
        return await run_on_connection(conn, read)


async def read_records(storage: Storage, hashes: list[str]) -> list[ModelRecord]:
    async with storage.read() as conn:
        return await run_on_connection(conn, read_models, hashes)


@pytest.mark.parametrize(
    "hashes", [HASHES, HASHES[::-1], [HASHES[2], "f" * 64, HASHES[0]], ["f" * 64], []]
)
async def test_the_json_of_records_read_as_text_is_what_pydantic_writes_of_them(
    storage: Storage, hashes: list[str]
) -> None:
    memo = RecordMemo()
    expected = await read_records(storage, hashes)
    for _ in range(2):  # built, then kept
        jsons = await read_jsons(storage, memo, hashes)
        assert jsons == record_jsons(expected)
        assert records_of(jsons) == expected


async def test_a_page_of_kept_records_is_the_page_pydantic_writes(storage: Storage) -> None:
    records = await read_records(storage, HASHES)
    query = ModelsQuery.model_validate({"limit": "3", "offset": "7"})
    page = ModelsPage(models=records, total=12, limit=3, offset=7)
    assert ModelsPage.json_of(record_jsons(records), 12, query) == page.model_dump_json().encode()
    empty = ModelsPage(models=[], total=0, limit=3, offset=7).model_dump_json().encode()
    assert ModelsPage.json_of([], 0, query) == empty
    cut_query = ModelsQuery.model_validate({"limit": "3", "offset": "7", "meta_keys": "x,n"})
    cut = ModelsPage.of(records, 12, cut_query).model_dump_json().encode()
    keys = cut_query.meta_key_set()
    assert keys is not None
    assert ModelsPage.json_of(cut_jsons(record_jsons(records), keys), 12, cut_query) == cut


@pytest.mark.parametrize(
    ("change", "changed"),
    [
        ("UPDATE models SET name = 'renamed' WHERE sha256 = :sha", [1]),
        ("UPDATE models SET meta_json = '{\"n\": 99}' WHERE sha256 = :sha", [1]),
        ("UPDATE tags SET name = 'renamed tag' WHERE id = 2", [0, 1, 2, 3, 4]),
        ("DELETE FROM model_tags WHERE model_hash = :sha AND tag_id = 1", [1]),
        ("DELETE FROM images WHERE model_hash = :sha AND seq = 1", [1]),
        ("UPDATE model_files SET present = 1 - present WHERE sha256 = :sha", [1]),
    ],
    ids=["name", "meta", "tag renamed", "tag unlinked", "image", "location"],
)
async def test_a_record_changed_since_it_was_kept_is_read_as_it_is_now(
    storage: Storage, change: str, changed: list[int]
) -> None:
    memo = RecordMemo()
    before = await read_jsons(storage, memo, HASHES)
    with contextlib.closing(sqlite3.connect(storage.path, isolation_level=None)) as db:
        db.execute(change, {"sha": HASHES[1]})
    after = await read_jsons(storage, memo, HASHES)
    assert after == record_jsons(await read_records(storage, HASHES))
    assert [n for n in range(len(HASHES)) if after[n] != before[n]] == changed


async def test_the_memo_forgets_the_least_recently_read_beyond_its_capacity(
    storage: Storage,
) -> None:
    one = await read_jsons(storage, RecordMemo(), HASHES[:1])
    chars = []
    for sha in HASHES:
        alone = RecordMemo()
        await read_jsons(storage, alone, [sha])
        chars.append(alone.size)
    memo = RecordMemo(capacity=sum(chars[:3]))
    first = await read_jsons(storage, memo, HASHES[:3])
    assert len(memo) == 3
    await read_jsons(storage, memo, HASHES[:1])  # the first is read again: the second is oldest
    await read_jsons(storage, memo, HASHES[3:4])
    assert len(memo) == 3 and memo.size <= sum(chars[:3])
    again = await read_jsons(storage, memo, HASHES[:3])
    # What was kept is answered as it was kept; what was forgotten is built again.
    assert [again[n] is first[n] for n in range(3)] == [True, False, True]
    assert again == first
    assert one == (await read_jsons(storage, memo, HASHES[:1]))


async def test_a_row_longer_than_the_longest_kept_is_answered_but_not_kept(
    storage: Storage,
) -> None:
    with contextlib.closing(sqlite3.connect(storage.path, isolation_level=None)) as db:
        long_meta = json.dumps({"tag_counts": "x" * LONGEST_KEPT})
        db.execute("UPDATE models SET meta_json = ? WHERE sha256 = ?", (long_meta, HASHES[0]))
    memo = RecordMemo()
    jsons = await read_jsons(storage, memo, HASHES[:2])
    assert records_of(jsons) == await read_records(storage, HASHES[:2])
    assert len(memo) == 1


@pytest.mark.parametrize("letter", ["a", "é", "日", "😀"], ids=["ascii", "latin", "cjk", "emoji"])
def test_what_the_memo_keeps_takes_no_more_memory_than_its_capacity(
    tmp_path: Path, letter: str
) -> None:
    """The capacity was counted in characters of the rows' texts, which Python keeps in 1 to
    4 bytes each (and once parsed, with their UTF-8 beside them): records of Japanese text
    took twice the memory the memo was bounded at, of emoji two and a half times."""
    capacity = 2 * 1024 * 1024
    hashes = [f"{n:064x}" for n in range(1200)]
    with contextlib.closing(sqlite3.connect(tmp_path / "rows.db")) as db:
        db.executescript(
            "CREATE TABLE models(sha256 TEXT PRIMARY KEY, path TEXT, name TEXT, type TEXT,"
            " size_bytes INTEGER, created_at INTEGER, meta_json TEXT);"
            " CREATE TABLE tags(id INTEGER PRIMARY KEY, name TEXT);"
            " CREATE TABLE model_tags(model_hash TEXT, tag_id INTEGER);"
            " CREATE TABLE images(model_hash TEXT, seq INTEGER);"
            " CREATE TABLE model_files(path TEXT, sha256 TEXT, present INTEGER);"
        )
        meta = json.dumps({"description": letter * 2000}, ensure_ascii=False)
        db.executemany(
            "INSERT INTO models VALUES (?, '/m', ?, 'lora', 1, 2, ?)",
            [(sha, letter * 20, meta) for sha in hashes],
        )
        memo = RecordMemo(capacity=capacity)
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for start in range(0, len(hashes), 50):
                page = hashes[start : start + 50]
                sql = f"SELECT ({records_text_sql(placeholders(len(page)))})"
                memo.jsons(page, db.execute(sql, page).fetchone()[0])
            gc.collect()
            kept = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
    assert 0 < memo.size <= capacity
    assert kept <= capacity * 1.1, f"{kept / capacity:.2f} times the capacity"


@pytest.mark.parametrize("meta_keys", [None, "base_model", "deep"])
async def test_a_page_holding_meta_json_nested_as_deep_as_a_record_is_served_is_answered(
    client: Client, data_dir: Path, meta_keys: str | None
) -> None:
    """Another program's meta_json nested 230 levels deep is served (as deep as a page can
    be: records.SERVABLE_META_DEPTH). Revalidated from its record's JSON, whose parser gives
    up at 200 levels, a page cut to ?meta_keys= (the web UI's every page) holding such a
    model answered 500."""
    deep = "[" * 230 + "]" * 230
    with contextlib.closing(sqlite3.connect(data_dir / "modelshelf.db")) as db:
        db.execute(
            "INSERT INTO models(sha256, name, meta_json) VALUES (?, 'deep', ?)",
            (HASHES[0], f'{{"deep": {deep}, "base_model": "SD 1.5"}}'),
        )
        db.commit()
    params = {} if meta_keys is None else {"meta_keys": meta_keys}
    response = await client.get("/api/models", params=params)
    body = await response.json()
    assert response.status == 200, body
    [meta] = [m["meta_json"] for m in body["models"]]
    everything = {"deep": json.loads(deep), "base_model": "SD 1.5"}
    assert meta == (everything if meta_keys is None else {meta_keys: everything[meta_keys]})


async def test_a_page_cut_to_meta_keys_is_not_validated_again_on_the_loop(
    client: Client, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The web UI asks every page with ?meta_keys=base_model. Read as their records' JSON,
    such a page's records were validated again from it on the event loop to be cut: a page of
    50 records of 5 KB took 1.5 ms of the loop where it had taken 0.26."""
    with contextlib.closing(sqlite3.connect(data_dir / "modelshelf.db")) as db:
        for n, sha in enumerate(HASHES):
            meta = {"base_model": "SD 1.5", "n": n, "x": [1.5, 2**70, -0.0], "d": ODD}
            db.execute(
                "INSERT INTO models(sha256, name, meta_json) VALUES (?, ?, ?)",
                (sha, f"{ODD} {n}", json.dumps(meta)),
            )
        db.commit()
    whole = await (await client.get("/api/models")).json()
    calls = Calls()
    watch_calls(monkeypatch, calls, listing, "records_of")
    response = await client.get("/api/models", params={"meta_keys": "base_model,x,d"})
    cut = json.loads(await response.read())
    assert not calls.any_on_loop
    for model in whole["models"]:
        model["meta_json"].pop("n")
    assert cut == whole
