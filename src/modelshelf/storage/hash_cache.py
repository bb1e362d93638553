"""Queries for `hash_cache`: digests of model files by (path, size, mtime_ns, inode)."""

from __future__ import annotations

import aiosqlite

from modelshelf.storage.rows import fetch_one, now_ms


async def cached_digest(
    conn: aiosqlite.Connection, path: str, size: int, mtime_ns: int, inode: int
) -> str | None:
    """The cached SHA256 of `path` if it was computed for exactly this size, mtime and inode."""
    row = await fetch_one(
        conn, "SELECT size, mtime_ns, inode, sha256 FROM hash_cache WHERE path = ?", (path,)
    )
    if row is None or tuple(row[:3]) != (size, mtime_ns, inode):
        return None
    return str(row[3])


async def store_digest(
    tx: aiosqlite.Connection, path: str, size: int, mtime_ns: int, inode: int, sha256: str
) -> None:
    await tx.execute(
        "INSERT OR REPLACE INTO hash_cache(path, size, mtime_ns, inode, sha256, hashed_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (path, size, mtime_ns, inode, sha256, now_ms()),
    )
