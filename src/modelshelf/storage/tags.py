"""Queries for the `tags` table."""

from __future__ import annotations

import sqlite3

import aiosqlite

from modelshelf.storage.rows import fetch_all, fetch_value


async def list_tags(conn: aiosqlite.Connection) -> list[sqlite3.Row]:
    """Every tag with the number of models carrying it, by name."""
    return await fetch_all(
        conn,
        "SELECT t.id, t.name, (SELECT count(*) FROM model_tags mt WHERE mt.tag_id = t.id) AS models"
        " FROM tags t ORDER BY t.name",
    )


async def tag_id_by_name(conn: aiosqlite.Connection, name: str) -> int | None:
    value = await fetch_value(conn, "SELECT id FROM tags WHERE name = ?", (name,))
    return None if value is None else int(value)


async def tag_id_taken(conn: aiosqlite.Connection, tag_id: int) -> bool:
    return await fetch_value(conn, "SELECT 1 FROM tags WHERE id = ?", (tag_id,)) is not None


async def insert_tag(tx: aiosqlite.Connection, name: str, tag_id: int | None = None) -> int:
    """Insert a tag (with `tag_id`, or a new id when None) and return its id."""
    cursor = await tx.execute("INSERT INTO tags(id, name) VALUES (?, ?)", (tag_id, name))
    if cursor.lastrowid is None:  # pragma: no cover - SQLite always reports it for an INSERT
        raise RuntimeError("SQLite did not report the new tag's id")
    return int(cursor.lastrowid)
