"""SQL for the library's tables. Every function takes the connection to run on: a read connection
from `Storage.read()` or the transaction from `Storage.write()`."""

from __future__ import annotations

import json
import sqlite3
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import aiosqlite

from modelshelf.records import ModelRecord, PendingRecord, Tag, image_name

MODEL_COLUMNS = ("path", "name", "type", "size_bytes", "created_at")


def now_ms() -> int:
    return int(time.time() * 1000)


def parse_meta(text: str | None) -> dict[str, Any]:
    """meta_json as an object; NULL is {}, and a non-object value is kept under `value`."""
    if text is None or text == "":
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"unparsed_meta_json": text}
    return value if isinstance(value, dict) else {"value": value}


def dump_meta(meta: dict[str, Any]) -> str:
    return json.dumps(meta, ensure_ascii=False, separators=(",", ":"))


async def _all(
    conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()
) -> list[sqlite3.Row]:
    async with conn.execute(sql, params) as cursor:
        return list(await cursor.fetchall())


async def _one(
    conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()
) -> sqlite3.Row | None:
    async with conn.execute(sql, params) as cursor:
        row: sqlite3.Row | None = await cursor.fetchone()
        return row


def _placeholders(count: int) -> str:
    return ",".join("?" * count)


# --- models -----------------------------------------------------------------------------------


async def fetch_model_row(conn: aiosqlite.Connection, sha256: str) -> sqlite3.Row | None:
    return await _one(conn, "SELECT * FROM models WHERE sha256 = ?", (sha256,))


async def fetch_models(conn: aiosqlite.Connection, hashes: Sequence[str]) -> list[ModelRecord]:
    """Full records for these hashes, in the given order, skipping unknown ones."""
    if not hashes:
        return []
    rows = {
        r["sha256"]: r
        for r in await _all(
            conn, f"SELECT * FROM models WHERE sha256 IN ({_placeholders(len(hashes))})", hashes
        )
    }
    tags = await model_tags(conn, list(rows))
    seqs = await image_seqs_of(conn, list(rows))
    return [model_record(rows[h], tags.get(h, []), seqs.get(h, [])) for h in hashes if h in rows]


def _columns(row: sqlite3.Row) -> dict[str, Any]:
    """The columns models and pending models share, meta_json parsed."""
    return {c: row[c] for c in MODEL_COLUMNS} | {"meta_json": parse_meta(row["meta_json"])}


def model_record(row: sqlite3.Row, tags: list[Tag], seqs: list[int]) -> ModelRecord:
    images = [image_name(row["sha256"], s) for s in seqs]
    return ModelRecord(sha256=row["sha256"], tags=tags, images=images, **_columns(row))


async def insert_model(tx: aiosqlite.Connection, sha256: str, fields: dict[str, Any]) -> None:
    await tx.execute(
        "INSERT INTO models(sha256, path, name, type, size_bytes, created_at, meta_json)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (sha256, *(fields.get(c) for c in MODEL_COLUMNS), dump_meta(fields.get("meta_json", {}))),
    )


async def update_model(tx: aiosqlite.Connection, sha256: str, fields: dict[str, Any]) -> None:
    await tx.execute(
        "UPDATE models SET path=?, name=?, type=?, size_bytes=?, created_at=?, meta_json=?"
        " WHERE sha256=?",
        (*(fields.get(c) for c in MODEL_COLUMNS), dump_meta(fields["meta_json"]), sha256),
    )


async def model_tags(conn: aiosqlite.Connection, hashes: Sequence[str]) -> dict[str, list[Tag]]:
    result: dict[str, list[Tag]] = defaultdict(list)
    for chunk in _chunks(hashes):
        for row in await _all(
            conn,
            "SELECT mt.model_hash, t.id, t.name FROM model_tags mt JOIN tags t ON t.id = mt.tag_id"
            f" WHERE mt.model_hash IN ({_placeholders(len(chunk))}) ORDER BY t.name",
            chunk,
        ):
            result[row[0]].append(Tag(id=row[1], name=row[2]))
    return result


async def add_model_tags(tx: aiosqlite.Connection, sha256: str, tag_ids: Iterable[int]) -> None:
    await tx.executemany(
        "INSERT OR IGNORE INTO model_tags(model_hash, tag_id) VALUES (?, ?)",
        [(sha256, t) for t in tag_ids],
    )


# --- pending models ---------------------------------------------------------------------------


async def fetch_pending_row(conn: aiosqlite.Connection, pending_id: int) -> sqlite3.Row | None:
    return await _one(conn, "SELECT * FROM pending_import WHERE id = ?", (pending_id,))


async def fetch_pending(conn: aiosqlite.Connection, pending_id: int) -> PendingRecord | None:
    row = await fetch_pending_row(conn, pending_id)
    if row is None:
        return None
    return (await pending_records(conn, [row]))[0]


async def list_pending_rows(conn: aiosqlite.Connection) -> list[sqlite3.Row]:
    return await _all(conn, "SELECT * FROM pending_import ORDER BY id")


async def pending_records(
    conn: aiosqlite.Connection, rows: Sequence[sqlite3.Row]
) -> list[PendingRecord]:
    ids = [r["id"] for r in rows]
    tags: dict[int, list[Tag]] = defaultdict(list)
    with_image: set[int] = set()
    for chunk in _chunks(ids):
        marks = _placeholders(len(chunk))
        for t in await _all(
            conn,
            "SELECT pt.model_id, t.id, t.name FROM pending_model_tags pt"
            f" JOIN tags t ON t.id = pt.tag_id WHERE pt.model_id IN ({marks}) ORDER BY t.name",
            chunk,
        ):
            tags[t[0]].append(Tag(id=t[1], name=t[2]))
        for i in await _all(
            conn, f"SELECT pending_id FROM pending_images WHERE pending_id IN ({marks})", chunk
        ):
            with_image.add(i[0])
    return [
        PendingRecord(
            id=r["id"],
            sha256=r["sha256"],
            tags=tags.get(r["id"], []),
            images=[f"pending/{r['id']}"] if r["id"] in with_image else [],
            **_columns(r),
        )
        for r in rows
    ]


async def pending_tag_ids(conn: aiosqlite.Connection, pending_id: int) -> list[int]:
    rows = await _all(
        conn, "SELECT tag_id FROM pending_model_tags WHERE model_id = ?", (pending_id,)
    )
    return [r[0] for r in rows]


async def pending_image_ext(conn: aiosqlite.Connection, pending_id: int) -> str | None:
    row = await _one(conn, "SELECT ext FROM pending_images WHERE pending_id = ?", (pending_id,))
    return None if row is None else str(row[0])


async def delete_pending(tx: aiosqlite.Connection, pending_id: int) -> None:
    # ON DELETE CASCADE removes its pending_model_tags and pending_images rows.
    await tx.execute("DELETE FROM pending_import WHERE id = ?", (pending_id,))


async def forget_pending_image(tx: aiosqlite.Connection, pending_id: int) -> None:
    await tx.execute("DELETE FROM pending_images WHERE pending_id = ?", (pending_id,))


# --- image index ------------------------------------------------------------------------------


async def image_seqs(conn: aiosqlite.Connection, sha256: str) -> list[int]:
    rows = await _all(conn, "SELECT seq FROM images WHERE model_hash = ? ORDER BY seq", (sha256,))
    return [r[0] for r in rows]


async def image_seqs_of(conn: aiosqlite.Connection, hashes: Sequence[str]) -> dict[str, list[int]]:
    result: dict[str, list[int]] = defaultdict(list)
    for chunk in _chunks(hashes):
        for row in await _all(
            conn,
            f"SELECT model_hash, seq FROM images WHERE model_hash IN ({_placeholders(len(chunk))})"
            " ORDER BY model_hash, seq",
            chunk,
        ):
            result[row[0]].append(row[1])
    return result


async def next_image_seq(tx: aiosqlite.Connection, sha256: str) -> int:
    """The next free seq of a model. Call it inside the write transaction that uses it."""
    row = await _one(
        tx, "SELECT coalesce(max(seq) + 1, 0) FROM images WHERE model_hash = ?", (sha256,)
    )
    return int(row[0]) if row else 0


async def add_image(tx: aiosqlite.Connection, sha256: str, seq: int) -> None:
    await tx.execute("INSERT OR IGNORE INTO images(model_hash, seq) VALUES (?, ?)", (sha256, seq))


async def remove_image_and_shift(tx: aiosqlite.Connection, sha256: str, seq: int) -> int:
    """Drop image `seq` and renumber the later ones down by one; returns the old last seq."""
    last = await next_image_seq(tx, sha256) - 1
    await tx.execute("DELETE FROM images WHERE model_hash = ? AND seq = ?", (sha256, seq))
    # Renumber one row at a time in ascending order: a single UPDATE could momentarily collide
    # with the primary key of the row it is about to replace.
    for current in range(seq + 1, last + 1):
        await tx.execute(
            "UPDATE images SET seq = ? WHERE model_hash = ? AND seq = ?",
            (current - 1, sha256, current),
        )
    return last


# --- tags -------------------------------------------------------------------------------------


async def list_tags(conn: aiosqlite.Connection) -> list[sqlite3.Row]:
    return await _all(
        conn,
        "SELECT t.id, t.name, (SELECT count(*) FROM model_tags mt WHERE mt.tag_id = t.id) AS models"
        " FROM tags t ORDER BY t.name",
    )


async def list_types(conn: aiosqlite.Connection) -> list[str]:
    rows = await _all(
        conn, "SELECT DISTINCT type FROM models WHERE type IS NOT NULL AND type != '' ORDER BY type"
    )
    return [r[0] for r in rows]


# --- history ----------------------------------------------------------------------------------


async def record_history(
    tx: aiosqlite.Connection,
    sha256: str,
    pending_id: int,
    strategy: str,
    previous: dict[str, Any],
    pending: dict[str, Any],
) -> None:
    await tx.execute(
        "INSERT INTO model_history(model_hash, pending_id, strategy, changed_at, previous, pending)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (sha256, pending_id, strategy, now_ms(), dump_meta(previous), dump_meta(pending)),
    )


async def model_history(conn: aiosqlite.Connection, sha256: str) -> list[sqlite3.Row]:
    return await _all(
        conn, "SELECT * FROM model_history WHERE model_hash = ? ORDER BY id", (sha256,)
    )


def _chunks(items: Sequence[Any], size: int = 500) -> list[Sequence[Any]]:
    # SQLite caps the number of bound parameters; 500 keeps well under every build's limit.
    return [items[i : i + size] for i in range(0, len(items), size)]
