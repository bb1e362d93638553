"""Queries for `hash_cache`: digests of model files by (path, size, mtime_ns, inode)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import aiosqlite

from modelshelf.storage.rows import chunks, fetch_all, fetch_one, now_ms, placeholders


class CachedDigest(NamedTuple):
    """A cache entry: the SHA256 of a path's file as it was when it was hashed."""

    size: int
    mtime_ns: int
    inode: int
    sha256: str

    def digest_for(self, size: int, mtime_ns: int, inode: int) -> str | None:
        """The SHA256 if it was computed for exactly this size, mtime and inode; None if the
        file at the path is another state of it (its content may have changed since)."""
        return (
            self.sha256
            if (self.size, self.mtime_ns, self.inode) == (size, mtime_ns, inode)
            else None
        )


async def cached_digest(
    conn: aiosqlite.Connection, path: str, size: int, mtime_ns: int, inode: int
) -> str | None:
    """The cached SHA256 of `path` if it was computed for exactly this size, mtime and inode."""
    row = await fetch_one(
        conn, "SELECT size, mtime_ns, inode, sha256 FROM hash_cache WHERE path = ?", (path,)
    )
    if row is None:
        return None
    return CachedDigest(row[0], row[1], row[2], str(row[3])).digest_for(size, mtime_ns, inode)


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
) -> dict[str, CachedDigest]:
    """path -> the cache entry of each of these paths that has one."""
    found: dict[str, CachedDigest] = {}
    for chunk in chunks(paths):
        rows = await fetch_all(
            conn,
            "SELECT path, size, mtime_ns, inode, sha256 FROM hash_cache"
            f" WHERE path IN ({placeholders(len(chunk))})",
            chunk,
        )
        found.update({r[0]: CachedDigest(r[1], r[2], r[3], r[4]) for r in rows})
    return found
