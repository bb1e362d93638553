"""Read-only queries for `modelshelf check`, on a plain sqlite3 connection (the check runs with
no event loop, usually while the service is stopped)."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote


@contextmanager
def open_read_only(path: Path) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
    try:
        yield conn
    finally:
        conn.close()


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
