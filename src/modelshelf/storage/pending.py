"""Queries for pending models: `pending_import`, `pending_model_tags` and `pending_images`
(which original image, by extension, lies at images/pending/<id>.<ext>)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

import aiosqlite
from pydantic import TypeAdapter
from pydantic_core import from_json

from modelshelf.records import MODEL_COLUMNS, PendingRecord
from modelshelf.storage.models import (
    record_columns,
    tag_fields_by_name,
    tags_from_json,
    tags_json_sql,
)
from modelshelf.storage.rows import (
    UNKNOWN_CHARS,
    dump_meta,
    fetch_all,
    fetch_one,
    parse_meta,
    query_tuples,
    run_on_connection,
)

# A pending model's row with its tags and whether it has an image, in one query (one trip to
# the connection's thread).
_RECORD_SELECT = (
    f"SELECT p.*, {tags_json_sql('p.id', 'pending_model_tags', 'model_id')} AS tags_json,"
    " EXISTS (SELECT 1 FROM pending_images i WHERE i.pending_id = p.id) AS has_image"
    " FROM pending_import p"
)
# Records validated as one list: 120 pending models cost about a fifth less than built one by
# one (0.75-0.89 against 0.98-1.06 ms, a throwaway timing), on the connection's thread.
PENDING_RECORDS = TypeAdapter(list[PendingRecord])


async def fetch_pending_row(conn: aiosqlite.Connection, pending_id: int) -> sqlite3.Row | None:
    return await fetch_one(conn, "SELECT * FROM pending_import WHERE id = ?", (pending_id,))


async def fetch_pending(conn: aiosqlite.Connection, pending_id: int) -> PendingRecord | None:
    """A pending model's record, read and parsed on the connection's thread (its meta_json
    may be hundreds of KB, too long to parse on the event loop)."""
    return await run_on_connection(conn, _read_one_pending, pending_id)


def _read_one_pending(db: sqlite3.Connection, pending_id: int) -> PendingRecord | None:
    rows = db.execute(f"{_RECORD_SELECT} WHERE p.id = ?", (pending_id,)).fetchall()
    return pending_record(rows[0]) if rows else None


async def queue_generation(conn: aiosqlite.Connection) -> int:
    """A number that every change of a pending model's record moves (schema: the triggers of
    `pending_queue`), whoever writes it."""
    row = await fetch_one(conn, "SELECT generation FROM pending_queue WHERE id = 1")
    return int(row[0]) if row is not None else 0


async def list_pending(conn: aiosqlite.Connection) -> list[PendingRecord]:
    """Every pending model's record, by id, in one query and one trip to the connection's
    thread, where the records are built too."""
    return (await list_sized_pending(conn))[0]


async def list_sized_pending(conn: aiosqlite.Connection) -> tuple[list[PendingRecord], int]:
    """list_pending, with the length of the JSON the records were read from (UNKNOWN_CHARS
    when read row by row): about that of their answer, which when long is serialised off the
    event loop."""
    return await run_on_connection(conn, _read_pending)


async def list_pending_fields(conn: aiosqlite.Connection) -> tuple[list[dict[str, Any]], int]:
    """list_sized_pending's records as their fields, not validated yet: for a caller that
    adds fields of its own and validates them once (the queue's checks)."""
    return await run_on_connection(conn, _read_pending_fields)


def _read_pending(db: sqlite3.Connection) -> tuple[list[PendingRecord], int]:
    fields, chars = _read_pending_fields(db)
    return PENDING_RECORDS.validate_python(fields), chars


def _read_pending_fields(db: sqlite3.Connection) -> tuple[list[dict[str, Any]], int]:
    # One row, a JSON array of every pending model, not a row each (see rows.query_json).
    columns = ", ".join(f"p.{c}" for c in ("id", "sha256", *MODEL_COLUMNS, "meta_json"))
    sql = (
        f"SELECT json_group_array(json_array({columns},"
        f" {tags_json_sql('p.id', 'pending_model_tags', 'model_id')},"
        " EXISTS (SELECT 1 FROM pending_images i WHERE i.pending_id = p.id)))"
        " FROM pending_import p"
    )
    try:
        text = query_tuples(db, sql)[0][0]
    except sqlite3.OperationalError:  # a BLOB, which JSON cannot hold (another program's)
        by_rows = db.execute(f"{_RECORD_SELECT} ORDER BY p.id")
        return [dict(pending_record(r)) for r in by_rows], UNKNOWN_CHARS
    rows = from_json(text)
    width = len(MODEL_COLUMNS)
    fields = [
        {
            "id": row[0],
            "sha256": row[1],
            **dict(zip(MODEL_COLUMNS, row[2 : 2 + width], strict=True)),
            "meta_json": parse_meta(row[2 + width]),
            "tags": tag_fields_by_name(row[3 + width]),
            "images": [f"pending/{row[0]}"] if row[4 + width] else [],
        }
        for row in sorted(rows, key=lambda r: r[0])
    ]
    return fields, len(text)


def pending_record(row: sqlite3.Row) -> PendingRecord:
    """The record of a row of _RECORD_SELECT."""
    return PendingRecord(
        id=row["id"],
        sha256=row["sha256"],
        tags=tags_from_json(row["tags_json"]),
        images=[f"pending/{row['id']}"] if row["has_image"] else [],
        **record_columns(row),
    )


async def pending_ids(conn: aiosqlite.Connection) -> set[int]:
    return {int(r[0]) for r in await fetch_all(conn, "SELECT id FROM pending_import")}


async def pending_tag_ids(conn: aiosqlite.Connection, pending_id: int) -> list[int]:
    rows = await fetch_all(
        conn, "SELECT tag_id FROM pending_model_tags WHERE model_id = ?", (pending_id,)
    )
    return [r[0] for r in rows]


async def insert_pending(
    tx: aiosqlite.Connection,
    pending_id: int,
    sha256: str | None,
    fields: dict[str, Any],
    tag_ids: Iterable[int],
) -> None:
    """Insert a pending model and its tag links in one trip to the connection's thread, where
    its meta_json is serialised (megabytes at times: a kohya header's tag counts)."""
    await run_on_connection(tx, _insert_pending, pending_id, sha256, fields, list(tag_ids))


def _insert_pending(
    db: sqlite3.Connection,
    pending_id: int,
    sha256: str | None,
    fields: dict[str, Any],
    tag_ids: list[int],
) -> None:
    db.execute(
        "INSERT INTO pending_import(id, path, sha256, name, type, size_bytes, created_at,"
        " meta_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            pending_id,
            fields.get("path"),
            sha256,
            fields.get("name"),
            fields.get("type"),
            fields.get("size_bytes"),
            fields.get("created_at"),
            dump_meta(fields.get("meta_json", {})),
        ),
    )
    db.executemany(
        "INSERT OR IGNORE INTO pending_model_tags(model_id, tag_id) VALUES (?, ?)",
        [(pending_id, t) for t in tag_ids],
    )


async def delete_pending(tx: aiosqlite.Connection, pending_id: int) -> None:
    # ON DELETE CASCADE removes its pending_model_tags and pending_images rows.
    await tx.execute("DELETE FROM pending_import WHERE id = ?", (pending_id,))


async def delete_pendings(tx: aiosqlite.Connection, ids: Iterable[int]) -> None:
    """delete_pending of each of `ids`."""
    await tx.executemany("DELETE FROM pending_import WHERE id = ?", [(i,) for i in ids])


# --- pending originals -------------------------------------------------------------------------


async def pending_image_ext(conn: aiosqlite.Connection, pending_id: int) -> str | None:
    row = await fetch_one(
        conn, "SELECT ext FROM pending_images WHERE pending_id = ?", (pending_id,)
    )
    return None if row is None else str(row[0])


async def set_pending_image(tx: aiosqlite.Connection, pending_id: int, ext: str) -> None:
    await tx.execute(
        "INSERT OR REPLACE INTO pending_images(pending_id, ext) VALUES (?, ?)", (pending_id, ext)
    )


async def all_pending_images(conn: aiosqlite.Connection) -> dict[int, str]:
    rows = await fetch_all(conn, "SELECT pending_id, ext FROM pending_images")
    return {int(r[0]): str(r[1]) for r in rows}


async def forget_pending_images(tx: aiosqlite.Connection, ids: Iterable[int]) -> None:
    await tx.executemany("DELETE FROM pending_images WHERE pending_id = ?", [(i,) for i in ids])
