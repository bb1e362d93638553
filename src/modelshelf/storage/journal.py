"""Queries for `file_journal`: file operations committed with a change and not yet known to be
carried out. An entry that cannot be replayed is set aside (kept, with the reason) so that it
never blocks a start; `modelshelf check` reports it."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from modelshelf.storage.rows import chunks, fetch_all, now_ms, placeholders


@dataclass(frozen=True)
class JournalEntry:
    id: int
    ops: list[dict[str, Any]]


async def record(tx: aiosqlite.Connection, ops: list[dict[str, Any]]) -> int:
    """Write one entry inside the caller's transaction; returns its id."""
    cursor = await tx.execute(
        "INSERT INTO file_journal(created_at, ops) VALUES (?, ?)", (now_ms(), json.dumps(ops))
    )
    if cursor.lastrowid is None:  # pragma: no cover - SQLite always reports it for an INSERT
        raise RuntimeError("SQLite did not report the journal entry's id")
    return int(cursor.lastrowid)


async def forget(tx: aiosqlite.Connection, ids: Sequence[int]) -> None:
    """Delete entries whose operations were carried out."""
    for chunk in chunks(ids):
        await tx.execute(
            f"DELETE FROM file_journal WHERE id IN ({placeholders(len(chunk))})", chunk
        )


async def unfinished(conn: aiosqlite.Connection) -> list[JournalEntry | tuple[int, str]]:
    """Entries to replay, in commit order. An entry whose text is not a list of operations is
    returned as (id, reason) so the caller can set it aside."""
    rows = await fetch_all(
        conn, "SELECT id, ops FROM file_journal WHERE set_aside_at IS NULL ORDER BY id"
    )
    entries: list[JournalEntry | tuple[int, str]] = []
    for row in rows:
        try:
            ops = json.loads(row[1])
        except (TypeError, ValueError) as exc:
            entries.append((int(row[0]), f"its operations are not JSON: {exc}"))
            continue
        if isinstance(ops, list) and all(isinstance(op, dict) for op in ops):
            entries.append(JournalEntry(int(row[0]), ops))
        else:
            entries.append((int(row[0]), "its operations are not a list of objects"))
    return entries


async def set_aside(tx: aiosqlite.Connection, journal_id: int, reason: str) -> None:
    await tx.execute(
        "UPDATE file_journal SET set_aside_at = ?, problem = ? WHERE id = ?",
        (now_ms(), reason, journal_id),
    )
