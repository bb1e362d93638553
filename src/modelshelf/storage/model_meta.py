"""Queries for a model's `meta_json` alone: read and written on the connection's thread, as
it may be megabytes (see `models` for the whole row)."""

from __future__ import annotations

import sqlite3
from typing import Any

import aiosqlite

from modelshelf.storage.rows import dump_meta, parse_meta, query_tuples, run_on_connection


async def fetch_meta(conn: aiosqlite.Connection, sha256: str) -> dict[str, Any]:
    """A model's meta_json ({} for an unknown model), read and parsed on the connection's
    thread (a scan keeps megabytes of a kohya header's tag counts)."""
    return await run_on_connection(conn, _read_meta, sha256)


def _read_meta(db: sqlite3.Connection, sha256: str) -> dict[str, Any]:
    rows = query_tuples(db, "SELECT meta_json FROM models WHERE sha256 = ?", (sha256,))
    return parse_meta(rows[0][0] if rows else None)


async def set_meta_json(tx: aiosqlite.Connection, sha256: str, meta: dict[str, Any]) -> None:
    """Write a model's meta_json, serialised on the connection's thread (see fetch_meta)."""
    await run_on_connection(tx, _write_meta, sha256, meta)


def _write_meta(db: sqlite3.Connection, sha256: str, meta: dict[str, Any]) -> None:
    db.execute("UPDATE models SET meta_json = ? WHERE sha256 = ?", (dump_meta(meta), sha256))
