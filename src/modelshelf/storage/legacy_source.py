"""Reading a legacy (first Hikaze model manager) library: opening its SQLite file read-only
(with what its -wal file holds) and fetching its rows in batches."""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

import aiosqlite

from modelshelf.errors import InvalidInput
from modelshelf.storage.rows import fetch_all, fetch_value, placeholders

LEGACY_COLUMNS = "id, path, name, type, size_bytes, hash_hex, created_at, meta_json, extra_json"


async def open_legacy_database(path: Path, scratch: Path) -> aiosqlite.Connection:
    """Open a legacy database read-only, including what its -wal file holds.

    SQLite can read a WAL database read-only only if it may use the -shm file; when it cannot
    (a read-only folder without one), the database and its WAL are copied under `scratch`
    and the copy is opened. Raises InvalidInput if the file is not a legacy library.
    """
    try:
        conn = await _connect_read_only(path)
    except sqlite3.Error:
        copy = await asyncio.to_thread(_copy_with_wal, path, scratch)
        try:
            conn = await _connect_read_only(copy)
        except sqlite3.Error as exc:
            raise InvalidInput(f"{path.name} cannot be opened as a SQLite database: {exc}") from exc
    try:
        await _check_legacy_schema(conn, path)
    except BaseException:
        await conn.close()
        raise
    return conn


def _copy_with_wal(path: Path, scratch: Path) -> Path:
    copy_dir = Path(tempfile.mkdtemp(dir=scratch))
    for suffix in ("", "-wal"):
        source = Path(f"{path}{suffix}")
        if source.exists():
            shutil.copyfile(source, copy_dir / f"legacy.db{suffix}")
    return copy_dir / "legacy.db"


async def _connect_read_only(path: Path) -> aiosqlite.Connection:
    uri = f"file:{urllib.parse.quote(str(path))}?mode=ro"
    conn = await aiosqlite.connect(uri, uri=True)
    conn.row_factory = sqlite3.Row
    try:
        await conn.execute("SELECT count(*) FROM sqlite_master")
    except BaseException:
        await conn.close()
        raise
    return conn


async def _check_legacy_schema(conn: aiosqlite.Connection, path: Path) -> None:
    try:
        async with conn.execute("SELECT name FROM pragma_table_info('models')") as cursor:
            columns = {r[0] for r in await cursor.fetchall()}
    except sqlite3.DatabaseError as exc:
        raise InvalidInput(f"{path.name} is not a SQLite database: {exc}") from exc
    needed = {"id", "path", "name", "type", "hash_hex", "extra_json"}
    if not needed <= columns:
        missing = ", ".join(sorted(needed - columns)) or "the models table"
        raise InvalidInput(f"{path.name} is not a legacy Hikaze library (missing {missing})")


async def count_models(legacy: aiosqlite.Connection) -> int:
    return int(await fetch_value(legacy, "SELECT count(*) FROM models") or 0)


async def fetch_tags(legacy: aiosqlite.Connection) -> list[tuple[int, Any]]:
    rows = await fetch_all(legacy, "SELECT id, name FROM tags ORDER BY id")
    return [(int(r[0]), r[1]) for r in rows]


async def fetch_batch(
    legacy: aiosqlite.Connection, after_id: int, size: int
) -> list[dict[str, Any]]:
    """The next `size` model rows with an id above `after_id`, by id."""
    rows = await fetch_all(
        legacy,
        f"SELECT {LEGACY_COLUMNS} FROM models WHERE id > ? ORDER BY id LIMIT ?",
        (after_id, size),
    )
    return [dict(r) for r in rows]


async def fetch_model_tags(legacy: aiosqlite.Connection, ids: list[int]) -> list[tuple[Any, Any]]:
    """(model_id, tag_id) links of these legacy models."""
    rows = await fetch_all(
        legacy,
        f"SELECT model_id, tag_id FROM model_tags WHERE model_id IN ({placeholders(len(ids))})",
        ids,
    )
    return [(r[0], r[1]) for r in rows]
