"""Queries for `legacy_libraries`, `legacy_import_log` and `legacy_tag_log`: which legacy
libraries stage 1 has read, which of their rows it brought in (as a model, or as which pending
id), and which tag each of their tags became."""

from __future__ import annotations

from collections.abc import Sequence

import aiosqlite

from modelshelf.storage.rows import chunks, fetch_all, fetch_one, now_ms, placeholders


async def register_library(
    tx: aiosqlite.Connection,
    fingerprint: str,
    source: str,
    first_rows: Sequence[tuple[int, str]] = (),
) -> tuple[int, bool]:
    """The id of the library with this fingerprint, registering it if it is new. A library
    logged before libraries were told apart (no fingerprint) is adopted by the first one
    registered. A new fingerprint whose `first_rows` ((legacy id, created_mark) of its lowest
    ids) were logged from a known library is that library, used longer in the old manager (a
    first row deleted, a first model's file moved): it takes the new fingerprint. Returns
    (id, whether it was seen before)."""
    row = await fetch_one(
        tx, "SELECT id FROM legacy_libraries WHERE fingerprint = ?", (fingerprint,)
    )
    if row is not None:
        return int(row[0]), True
    unnamed = await fetch_one(tx, "SELECT id FROM legacy_libraries WHERE fingerprint IS NULL")
    known = unnamed[0] if unnamed is not None else await _library_of_rows(tx, first_rows)
    if known is not None:
        await tx.execute(
            "UPDATE legacy_libraries SET fingerprint = ?, source = ? WHERE id = ?",
            (fingerprint, source, known),
        )
        return int(known), True
    cursor = await tx.execute(
        "INSERT INTO legacy_libraries(fingerprint, source, first_seen_at) VALUES (?, ?, ?)",
        (fingerprint, source, now_ms()),
    )
    if cursor.lastrowid is None:  # pragma: no cover - SQLite always reports it for an INSERT
        raise RuntimeError("SQLite did not report the new library's id")
    return int(cursor.lastrowid), False


async def _library_of_rows(
    tx: aiosqlite.Connection, first_rows: Sequence[tuple[int, str]]
) -> int | None:
    """The library from which at least two of `first_rows` were logged, with two different
    creation times (rows made in one instant, as a script or a test makes them, tell no
    library from another), or all of them if there is only one; None otherwise."""
    if not first_rows:
        return None
    pairs = ", ".join("(?, ?)" for _ in first_rows)
    found = await fetch_one(
        tx,
        "SELECT library_id, count(*), count(DISTINCT created_mark) FROM legacy_import_log"
        f" WHERE (legacy_id, created_mark) IN (VALUES {pairs})"
        " GROUP BY library_id ORDER BY count(*) DESC, library_id LIMIT 1",
        tuple(value for pair in first_rows for value in pair),
    )
    if found is None:
        return None
    library_id, matched, instants = (int(v) for v in found)
    enough = matched == len(first_rows) == 1 or (matched >= 2 and instants >= 2)
    return library_id if enough else None


async def migrated_ids(
    conn: aiosqlite.Connection, library_id: int, legacy_ids: Sequence[int]
) -> set[int]:
    """The legacy ids among `legacy_ids` that stage 1 brought in from this library before."""
    found: set[int] = set()
    for chunk in chunks(legacy_ids):
        rows = await fetch_all(
            conn,
            "SELECT legacy_id FROM legacy_import_log WHERE library_id = ?"
            f" AND legacy_id IN ({placeholders(len(chunk))})",
            (library_id, *chunk),
        )
        found |= {int(r[0]) for r in rows}
    return found


async def used_pending_ids(conn: aiosqlite.Connection, ids: Sequence[int]) -> set[int]:
    """The ids among `ids` that a pending model has, or had before it was promoted."""
    found: set[int] = set()
    for chunk in chunks(ids):
        marks = placeholders(len(chunk))
        rows = await fetch_all(
            conn,
            f"SELECT id FROM pending_import WHERE id IN ({marks})"
            f" UNION SELECT pending_id FROM legacy_import_log WHERE pending_id IN ({marks})",
            (*chunk, *chunk),
        )
        found |= {int(r[0]) for r in rows}
    return found


async def pending_id_bounds(conn: aiosqlite.Connection) -> tuple[int, int] | None:
    """The lowest and highest id any pending model has or had, or None if there never was one."""
    row = await fetch_one(
        conn,
        "SELECT min(lo), max(hi) FROM (SELECT min(id) AS lo, max(id) AS hi FROM pending_import"
        " UNION ALL SELECT min(pending_id), max(pending_id) FROM legacy_import_log)",
    )
    if row is None or row[0] is None:
        return None
    return int(row[0]), int(row[1])


async def log_migrated(
    tx: aiosqlite.Connection,
    library_id: int,
    legacy_id: int,
    target: str,
    sha256: str | None,
    pending_id: int | None,
    created_mark: str | None = None,
) -> None:
    await tx.execute(
        "INSERT OR REPLACE INTO legacy_import_log(library_id, legacy_id, target, sha256,"
        " pending_id, imported_at, created_mark) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (library_id, legacy_id, target, sha256, pending_id, now_ms(), created_mark),
    )


async def logged_tags(conn: aiosqlite.Connection, library_id: int) -> dict[int, int | None]:
    """Legacy tag id -> the tag it became, of the tags stage 1 brought in from this library
    (None: that tag was deleted here since)."""
    rows = await fetch_all(
        conn, "SELECT legacy_id, tag_id FROM legacy_tag_log WHERE library_id = ?", (library_id,)
    )
    return {int(r[0]): None if r[1] is None else int(r[1]) for r in rows}


async def log_tag(tx: aiosqlite.Connection, library_id: int, legacy_id: int, tag_id: int) -> None:
    await tx.execute(
        "INSERT OR REPLACE INTO legacy_tag_log(library_id, legacy_id, tag_id) VALUES (?, ?, ?)",
        (library_id, legacy_id, tag_id),
    )
