"""The files a scan has still to register, kept on disk instead of in memory.

A first scan of a tree finds every file before it hashes any (it must know the total, and it
hashes the largest first), so the list of waiting files grows with the tree. It is kept in
a private temporary SQLite database of its own (not the library's: nothing in it is library
data, and it vanishes with its connection, a crash included), with a small page cache, and
read back a page at a time: the scan's memory does not grow with the number of files.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from modelshelf.storage.rows import fetch_all, fetch_one

# Page cache of the queue's database, in KiB (SQLite's default is 2 MiB a connection).
CACHE_KIB = 256

_SCHEMA = (
    # seq: the order the walk found the files in; last: no file of its size was walked after.
    "CREATE TABLE queue (seq INTEGER PRIMARY KEY, path TEXT NOT NULL, type TEXT NOT NULL,"
    " size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, inode INTEGER NOT NULL,"
    " device INTEGER NOT NULL, companions TEXT NOT NULL, sha256 TEXT, known INTEGER NOT NULL,"
    " early INTEGER NOT NULL DEFAULT 0, last INTEGER NOT NULL DEFAULT 0)",
    # n: the order they are handed out in (see `plan`).
    "CREATE TABLE dispatch (n INTEGER PRIMARY KEY, seq INTEGER NOT NULL)",
)


@dataclass(frozen=True, slots=True)
class Queued:
    """A file waiting to be registered, as the walk saw it: `sha256` if its content is known
    without reading it, `known` if its path was a location already; `more_of_size` (set by
    `plan`) if a file of its size was walked after it: a copy of it, maybe."""

    path: str
    type: str
    size: int
    mtime_ns: int
    inode: int
    device: int
    companions: dict[str, tuple[int, int]]
    sha256: str | None
    known: bool
    more_of_size: bool = False


class ScanQueue:
    """Files added in walk order (`add`), then `plan`ned once, then handed out a page at a
    time (`page`). Open with `open()`, and `close()` it in every case."""

    def __init__(self) -> None:
        self._conn: aiosqlite.Connection | None = None
        self._dispatched = 0

    async def open(self) -> None:
        # "": a private temporary database, deleted when its connection closes (SQLite
        # unlinks the file as soon as it creates it, so a crash leaves nothing either).
        conn = await aiosqlite.connect("", isolation_level=None)
        try:
            await conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            await conn.execute("PRAGMA journal_mode=OFF")
            await conn.execute("PRAGMA synchronous=OFF")
            for statement in _SCHEMA:
                await conn.execute(statement)
        except BaseException:
            await conn.close()
            raise
        self._conn = conn

    async def close(self) -> None:
        if self._conn is not None:
            conn, self._conn = self._conn, None
            await conn.close()

    async def add(self, files: Sequence[Queued]) -> None:
        """Queue `files`, after those queued before (walk order)."""
        if files:
            await self._require().executemany(
                "INSERT INTO queue(path, type, size, mtime_ns, inode, device, companions,"
                " sha256, known) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [_row(f) for f in files],
            )

    async def plan(self) -> tuple[int, int]:
        """Fix the order files are handed out in, and return (files queued, bytes of those
        whose content is not known). The order: files known without reading that no file of
        their size walked before them has to wait for (cheap, so first), then by size, the
        largest first; files of one size in walk order in any case. Each file is marked
        whether a file of its size is handed out after it (`Queued.more_of_size`)."""
        conn = self._require()
        await conn.execute("CREATE INDEX queue_size ON queue(size, sha256 IS NULL, seq)")
        await conn.execute(
            "UPDATE queue SET early = 1 WHERE sha256 IS NOT NULL AND NOT EXISTS ("
            "SELECT 1 FROM queue AS p WHERE p.size = queue.size AND p.sha256 IS NULL"
            " AND p.seq < queue.seq)"
        )
        await conn.execute(
            "INSERT INTO dispatch(seq) SELECT seq FROM queue ORDER BY early DESC, size DESC, seq"
        )
        await conn.execute(
            "UPDATE queue SET last = 1 WHERE seq IN (SELECT max(seq) FROM queue GROUP BY size)"
        )
        row = await fetch_one(
            conn,
            "SELECT count(*), coalesce(sum(CASE WHEN sha256 IS NULL THEN size END), 0) FROM queue",
        )
        self._dispatched = 0
        return (0, 0) if row is None else (int(row[0]), int(row[1]))

    async def page(self, count: int) -> list[Queued]:
        """The next `count` files in the planned order; [] once all were handed out."""
        rows = await fetch_all(
            self._require(),
            "SELECT q.path, q.type, q.size, q.mtime_ns, q.inode, q.device, q.companions,"
            " q.sha256, q.known, NOT q.last FROM dispatch AS d JOIN queue AS q ON q.seq = d.seq"
            " WHERE d.n > ? ORDER BY d.n LIMIT ?",
            (self._dispatched, count),
        )
        self._dispatched += len(rows)
        return [_queued(row) for row in rows]

    def _require(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise RuntimeError("the scan queue is not open")
        return self._conn


def _row(found: Queued) -> tuple[Any, ...]:
    companions = json.dumps(found.companions, ensure_ascii=False, separators=(",", ":"))
    return (
        found.path,
        found.type,
        found.size,
        found.mtime_ns,
        found.inode,
        found.device,
        companions,
        found.sha256,
        int(found.known),
    )


def _queued(row: Any) -> Queued:
    # json keeps the companions' order (the walk's), which their facts are read in.
    companions = {name: (int(s[0]), int(s[1])) for name, s in json.loads(row[6]).items()}
    return Queued(
        row[0], row[1], row[2], row[3], row[4], row[5], companions, row[7], bool(row[8]),
        bool(row[9]),
    )  # fmt: skip
