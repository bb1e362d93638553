"""Read-only queries for `modelshelf check`, on a plain sqlite3 connection (the check runs with
no event loop, usually while the service is stopped)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from modelshelf.errors import NotFound, StorageUnavailable


@contextmanager
def open_read_only(path: Path) -> Iterator[sqlite3.Connection]:
    """`path` opened read-only. Raises NotFound if it is not a modelshelf database (not SQLite,
    or no `models` table), StorageUnavailable if it cannot be read."""
    conn = _connect_read_only(path)
    try:
        yield conn
    finally:
        conn.close()


def _connect_read_only(path: Path) -> sqlite3.Connection:
    uri = f"file:{quote(str(path))}?mode=ro"
    conn = sqlite3.connect(uri, uri=True)
    try:
        try:
            return _checked(conn, path)
        except sqlite3.OperationalError:
            conn.close()
            wal = path.with_name(path.name + "-wal")
            if wal.exists() and wal.stat().st_size:
                raise
            # A WAL database in a folder we cannot write: SQLite cannot make its -shm file.
            # With no WAL file, the database file holds every commit, so it may be read as
            # immutable.
            conn = sqlite3.connect(uri + "&immutable=1", uri=True)
            return _checked(conn, path)
    except sqlite3.DatabaseError as exc:
        conn.close()
        if isinstance(exc, sqlite3.OperationalError):
            raise StorageUnavailable(f"cannot read {path}: {exc}") from None
        raise NotFound(f"{path} is not a modelshelf library: {exc}") from None


def _checked(conn: sqlite3.Connection, path: Path) -> sqlite3.Connection:
    found = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'models'")
    if found.fetchone() is None:
        conn.close()
        raise NotFound(f"{path} is not a modelshelf library: it has no models table")
    return conn


def model_hashes(conn: sqlite3.Connection) -> list[object]:
    return [r[0] for r in conn.execute("SELECT sha256 FROM models")]


def foreign_key_problems(conn: sqlite3.Connection) -> list[tuple[object, ...]]:
    return [tuple(r) for r in conn.execute("PRAGMA foreign_key_check")]


def index_rows(conn: sqlite3.Connection) -> list[tuple[str, int]]:
    rows = conn.execute("SELECT model_hash, seq FROM images ORDER BY model_hash, seq")
    return [(str(h), int(s)) for h, s in rows]


def pending_images(conn: sqlite3.Connection) -> dict[int, str]:
    return {int(i): str(e) for i, e in conn.execute("SELECT pending_id, ext FROM pending_images")}


def unfinished_journal(conn: sqlite3.Connection) -> list[int]:
    rows = conn.execute("SELECT id FROM file_journal WHERE set_aside_at IS NULL ORDER BY id")
    return [int(r[0]) for r in rows]


def set_aside_journal(conn: sqlite3.Connection) -> list[tuple[int, str]]:
    rows = conn.execute(
        "SELECT id, coalesce(problem, '') FROM file_journal WHERE set_aside_at IS NOT NULL"
        " ORDER BY id"
    )
    return [(int(i), str(p)) for i, p in rows]
