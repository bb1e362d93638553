"""Bringing a database's schema up to date: each step of schema.MIGRATIONS not yet applied
runs once, in its own transaction, in order, and is recorded in `schema_migrations`."""

from __future__ import annotations

import sqlite3
import time

import aiosqlite

from modelshelf.storage.schema import MIGRATIONS


async def apply_migrations(conn: aiosqlite.Connection) -> int:
    """Bring the schema up to date; returns the resulting version. Safe to call repeatedly."""
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
    )
    async with conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations") as cur:
        row = await cur.fetchone()
    current = int(row[0]) if row else 0
    for version, (name, script) in enumerate(MIGRATIONS, start=1):
        if version <= current:
            continue
        await conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in _statements(script):
                await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_migrations(version, name, applied_at) VALUES (?, ?, ?)",
                (version, name, int(time.time() * 1000)),
            )
            await conn.execute("COMMIT")
        except BaseException:
            await conn.execute("ROLLBACK")
            raise
    return len(MIGRATIONS)


def _statements(script: str) -> list[str]:
    """The statements of a script, in order. executescript() would COMMIT implicitly, so each
    runs alone inside our transaction; a trigger's body (with its own semicolons) stays whole."""
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    statements: list[str] = []
    pending = ""
    for piece in "\n".join(lines).split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                statements.append(pending.strip())
            pending = ""
    if pending.strip(" \n;"):
        raise ValueError(f"incomplete statement in a migration: {pending.strip()[:200]}")
    return statements
