"""Queries for the `tags` table (and the links to a tag, when the tag goes)."""

from __future__ import annotations

import sqlite3

import aiosqlite

from modelshelf.records import Tag
from modelshelf.storage.rows import fetch_all, fetch_one, fetch_value


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


async def fetch_tag(conn: aiosqlite.Connection, tag_id: int) -> Tag | None:
    row = await fetch_one(conn, "SELECT id, name FROM tags WHERE id = ?", (tag_id,))
    return None if row is None else Tag(id=row[0], name=row[1])


async def tag_ids_for_names(tx: aiosqlite.Connection, names: list[str]) -> list[int]:
    """The ids of tags with these names, creating those that do not exist yet."""
    ids = []
    for name in names:
        found = await tag_id_by_name(tx, name)
        ids.append(found if found is not None else await insert_tag(tx, name))
    return ids


async def rename_tag(tx: aiosqlite.Connection, tag_id: int, name: str) -> None:
    await tx.execute("UPDATE tags SET name = ? WHERE id = ?", (name, tag_id))


async def delete_tag(tx: aiosqlite.Connection, tag_id: int) -> None:
    """Remove a tag and every link to it, from models and pending models alike."""
    await tx.execute("DELETE FROM model_tags WHERE tag_id = ?", (tag_id,))
    await tx.execute("DELETE FROM pending_model_tags WHERE tag_id = ?", (tag_id,))
    await tx.execute("DELETE FROM tags WHERE id = ?", (tag_id,))
