"""Queries for `model_history`: what a model was before a change altered it."""

from __future__ import annotations

import sqlite3
from typing import Any

import aiosqlite

from modelshelf.storage.rows import dump_meta, fetch_all, now_ms


async def record_history(
    tx: aiosqlite.Connection,
    sha256: str,
    pending_id: int | None,
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
    """A model's history entries, newest first."""
    return await fetch_all(
        conn, "SELECT * FROM model_history WHERE model_hash = ? ORDER BY id DESC", (sha256,)
    )
