"""Queries for `model_history`: what a model was before a change altered it.

A row holds the model's record as it was (`previous`), the change (`strategy`: override or
merge for a promotion, or an edit's action) and what the change brought (`pending`: the
pending record of a promotion, or the edit's arguments). Rows outlive their model, so a
deleted model can be restored."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite
from pydantic import BaseModel

from modelshelf.records import ModelRecord
from modelshelf.storage.models import read_models
from modelshelf.storage.rows import (
    chunks,
    dump_meta,
    fetch_all,
    fetch_one,
    now_ms,
    placeholders,
    run_on_connection,
)

_INSERT = (
    "INSERT INTO model_history(model_hash, pending_id, strategy, changed_at, previous, pending)"
    " VALUES (?, ?, ?, ?, ?, ?)"
)


async def record_history(
    tx: aiosqlite.Connection,
    sha256: str,
    pending_id: int | None,
    strategy: str,
    previous: ModelRecord,
    pending: dict[str, Any] | BaseModel,
) -> int:
    """Save a model's record before `strategy` changes it, with what the change brought
    (`pending`: a record, or the arguments of an edit); returns the entry's id. Both are
    serialised on the connection's thread: a record with large meta_json (420 KB in a merge,
    a megabyte in an edit) took milliseconds a time on the event loop."""
    row = (sha256, pending_id, strategy, now_ms(), previous, pending)
    return await run_on_connection(tx, _record_history, row)


def _record_history(db: sqlite3.Connection, row: tuple[Any, ...]) -> int:
    *fields, previous, pending = row
    if isinstance(pending, BaseModel):
        pending = pending.model_dump(mode="json")
    texts = (dump_meta(previous.model_dump(mode="json")), dump_meta(pending))
    cursor = db.execute(_INSERT, (*fields, *texts))
    if cursor.lastrowid is None:  # pragma: no cover - SQLite always reports it for an INSERT
        raise RuntimeError("SQLite did not report the history entry's id")
    return int(cursor.lastrowid)


async def save_models(
    tx: aiosqlite.Connection, hashes: Sequence[str], strategy: str, details: dict[str, Any]
) -> int:
    """Save each model of `hashes` as it is now before `strategy` changes it, as record_history
    does one by one (unknown hashes are skipped); returns how many were saved. One trip to the
    connection's thread, where the records are read and written: a thousand records with large
    meta_json, serialised on the event loop, would hold it up."""
    return await run_on_connection(tx, _save_models, hashes, strategy, dump_meta(details))


def _save_models(db: sqlite3.Connection, hashes: Sequence[str], strategy: str, details: str) -> int:
    at = now_ms()
    rows = [
        (r.sha256, None, strategy, at, dump_meta(r.model_dump(mode="json")), details)
        for r in read_models(db, hashes)
    ]
    db.executemany(_INSERT, rows)
    return len(rows)


async def model_history(
    conn: aiosqlite.Connection, sha256: str, before: int | None = None, limit: int = -1
) -> list[sqlite3.Row]:
    """A model's history entries, newest first: those older than entry `before` if given, at
    most `limit` of them (-1: all). The index on model_hash holds the id, so a page of a long
    history reads only its rows."""
    return await fetch_all(
        conn,
        "SELECT * FROM model_history WHERE model_hash = ? AND id < ? ORDER BY id DESC LIMIT ?",
        (sha256, 2**63 - 1 if before is None else before, limit),
    )


async def has_history(conn: aiosqlite.Connection, sha256: str) -> bool:
    query = "SELECT 1 FROM model_history WHERE model_hash = ? LIMIT 1"
    return await fetch_one(conn, query, (sha256,)) is not None


async def history_entry(
    conn: aiosqlite.Connection, sha256: str, entry_id: int
) -> sqlite3.Row | None:
    return await fetch_one(
        conn, "SELECT * FROM model_history WHERE model_hash = ? AND id = ?", (sha256, entry_id)
    )


async def last_deleted(conn: aiosqlite.Connection, sha256: str) -> str | None:
    """The `previous` record (JSON text) of the model's newest delete entry, if any."""
    row = await fetch_one(
        conn,
        "SELECT previous FROM model_history WHERE model_hash = ? AND strategy = 'delete'"
        " ORDER BY id DESC LIMIT 1",
        (sha256,),
    )
    return None if row is None else str(row[0])


async def newest_deletes(
    conn: aiosqlite.Connection, hashes: Sequence[str]
) -> dict[str, tuple[int, str]]:
    """For each model of `hashes` ever deleted: the id and `previous` record (JSON text) of
    its newest delete entry."""
    found: dict[str, tuple[int, str]] = {}
    for chunk in chunks(hashes):
        # With max() the only aggregate, SQLite takes the bare column `previous` from the row
        # holding the maximum: the newest delete's record.
        for row in await fetch_all(
            conn,
            "SELECT model_hash, max(id), previous FROM model_history WHERE strategy = 'delete'"
            f" AND model_hash IN ({placeholders(len(chunk))}) GROUP BY model_hash",
            chunk,
        ):
            found[str(row[0])] = (int(row[1]), str(row[2]))
    return found
