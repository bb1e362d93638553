"""Queries for the `images` index: one row per example image (model hash, seq). It changes in
the same transaction as the change that moves the rendition files, and is reconciled with the
images folder at start-up."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence

import aiosqlite

from modelshelf.storage.rows import (
    fetch_all,
    fetch_json,
    fetch_value,
    grouped_by_hash,
    run_on_connection,
)


async def image_seqs(conn: aiosqlite.Connection, sha256: str) -> list[int]:
    """A model's image seqs in order, read as one row (see rows.query_json)."""
    seqs = await fetch_json(
        conn, "SELECT json_group_array(seq) FROM images WHERE model_hash = ?", (sha256,)
    )
    return sorted(int(seq) for seq in seqs)


def image_seqs_of(db: sqlite3.Connection, hashes: Sequence[str]) -> dict[str, list[int]]:
    """sha256 -> its image seqs in order (on the connection's thread: rows.run_on_connection)."""
    return grouped_by_hash(
        db,
        "SELECT model_hash, seq FROM images WHERE model_hash IN ({marks}) ORDER BY model_hash, seq",
        hashes,
        lambda row: int(row[1]),
    )


async def image_seqs_of_models(
    conn: aiosqlite.Connection, hashes: Sequence[str]
) -> dict[str, list[int]]:
    """image_seqs_of, from the event loop: one trip to the connection's thread."""
    return await run_on_connection(conn, image_seqs_of, hashes)


async def all_images(conn: aiosqlite.Connection) -> set[tuple[str, int]]:
    rows = await fetch_all(conn, "SELECT model_hash, seq FROM images")
    return {(str(r[0]), int(r[1])) for r in rows}


async def next_image_seq(conn: aiosqlite.Connection, sha256: str) -> int:
    """The next free seq of a model. To allocate it, ask inside the transaction that uses it."""
    value = await fetch_value(
        conn, "SELECT coalesce(max(seq) + 1, 0) FROM images WHERE model_hash = ?", (sha256,)
    )
    return int(value or 0)


async def image_content_keys(conn: aiosqlite.Connection, sha256: str) -> list[int]:
    """The content key of each of a model's images, in seq order: a key is new whenever a file
    is written under a seq and moves with the image when its seq changes."""
    rows = await fetch_all(
        conn, "SELECT content_key FROM images WHERE model_hash = ? ORDER BY seq", (sha256,)
    )
    return [int(r[0]) for r in rows]


async def add_image(tx: aiosqlite.Connection, sha256: str, seq: int) -> None:
    """Index image `seq` (new files under it: a replaced image gets a new content key)."""
    await tx.execute(
        "INSERT INTO images(model_hash, seq, content_key) VALUES (?, ?, random())"
        " ON CONFLICT(model_hash, seq) DO UPDATE SET content_key = excluded.content_key",
        (sha256, seq),
    )


async def add_images(tx: aiosqlite.Connection, keys: Iterable[tuple[str, int]]) -> None:
    await tx.executemany(
        "INSERT OR IGNORE INTO images(model_hash, seq, content_key) VALUES (?, ?, random())", keys
    )


async def remove_images(tx: aiosqlite.Connection, keys: Iterable[tuple[str, int]]) -> None:
    await tx.executemany("DELETE FROM images WHERE model_hash = ? AND seq = ?", keys)


async def renumber_images(
    tx: aiosqlite.Connection, sha256: str, moves: Mapping[int, int], drop: Iterable[int]
) -> None:
    """Drop images `drop` and give each image `old` in `moves` the seq `moves[old]`: a fixed
    number of statements however many images move (the single writer is held meanwhile, and
    a statement each cost it a trip to its thread each: 300 of them to reverse 300 images)."""
    await remove_images(tx, [(sha256, s) for s in drop])
    if not moves:
        return
    # Through negative seqs: renaming in place could collide with a row not yet renamed.
    # MATERIALIZED: the moves are read once and each looked up by the primary key, rather
    # than read again for every image of the model.
    await tx.execute(
        "WITH moved(old, new) AS MATERIALIZED"
        " (SELECT CAST(key AS INTEGER), value FROM json_each(?1))"
        " UPDATE images SET seq = -1 - moved.new FROM moved"
        " WHERE images.model_hash = ?2 AND images.seq = moved.old",
        (json.dumps({str(old): new for old, new in moves.items()}), sha256),
    )
    await tx.execute("UPDATE images SET seq = -1 - seq WHERE model_hash = ? AND seq < 0", (sha256,))
