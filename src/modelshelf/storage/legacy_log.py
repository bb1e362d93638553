"""Queries for `legacy_import_log`: legacy rows already brought in by stage 1."""

from __future__ import annotations

from collections.abc import Sequence

import aiosqlite

from modelshelf.storage.rows import chunks, fetch_all, now_ms, placeholders


async def migrated_ids(conn: aiosqlite.Connection, legacy_ids: Sequence[int]) -> set[int]:
    """The legacy ids among `legacy_ids` that stage 1 brought in before."""
    found: set[int] = set()
    for chunk in chunks(legacy_ids):
        marks = placeholders(len(chunk))
        rows = await fetch_all(
            conn, f"SELECT legacy_id FROM legacy_import_log WHERE legacy_id IN ({marks})", chunk
        )
        found |= {int(r[0]) for r in rows}
    return found


async def log_migrated(
    tx: aiosqlite.Connection, legacy_id: int, target: str, sha256: str | None
) -> None:
    await tx.execute(
        "INSERT OR REPLACE INTO legacy_import_log(legacy_id, target, sha256, imported_at)"
        " VALUES (?, ?, ?, ?)",
        (legacy_id, target, sha256, now_ms()),
    )
