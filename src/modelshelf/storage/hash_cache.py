"""Queries for `hash_cache`: digests of model files by (path, size, mtime_ns, inode)."""

from __future__ import annotations

from collections.abc import Sequence

import aiosqlite

from modelshelf.storage.rows import chunks, fetch_all, fetch_one, now_ms, placeholders


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


async def cached_digests(
    conn: aiosqlite.Connection, paths: Sequence[str]
) -> dict[str, tuple[int, int, int, str]]:
    """path -> (size, mtime_ns, inode, sha256) of the cached digests of these paths."""
    found: dict[str, tuple[int, int, int, str]] = {}
    for chunk in chunks(paths):
        rows = await fetch_all(
            conn,
            "SELECT path, size, mtime_ns, inode, sha256 FROM hash_cache"
            f" WHERE path IN ({placeholders(len(chunk))})",
            chunk,
        )
        found.update({r[0]: (r[1], r[2], r[3], r[4]) for r in rows})
    return found
