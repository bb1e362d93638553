"""Versioned schema migrations. Each runs once, in its own transaction, in order.

The first one adopts an existing Hikaze Model Manager 2 library as it is (CREATE ... IF NOT EXISTS),
so starting on such a database only adds what is missing and never rewrites data.
"""

from __future__ import annotations

import time

import aiosqlite

MIGRATIONS: list[tuple[str, str]] = [
    (
        "contract tables",
        """
        CREATE TABLE IF NOT EXISTS models(
            sha256 TEXT PRIMARY KEY, path TEXT, name TEXT, type TEXT,
            size_bytes INTEGER, created_at INTEGER, meta_json TEXT);
        CREATE TABLE IF NOT EXISTS tags(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
        CREATE TABLE IF NOT EXISTS model_tags(
            model_hash TEXT REFERENCES models(sha256) ON DELETE CASCADE,
            tag_id INTEGER REFERENCES tags(id),
            PRIMARY KEY(model_hash, tag_id));
        CREATE TABLE IF NOT EXISTS pending_import(
            id INTEGER PRIMARY KEY, path TEXT, sha256 TEXT, name TEXT, type TEXT,
            size_bytes INTEGER, created_at INTEGER, meta_json TEXT);
        CREATE TABLE IF NOT EXISTS pending_model_tags(
            model_id INTEGER REFERENCES pending_import(id) ON DELETE CASCADE,
            tag_id INTEGER REFERENCES tags(id),
            PRIMARY KEY(model_id, tag_id));
        CREATE TABLE IF NOT EXISTS db_meta(key TEXT PRIMARY KEY, value TEXT);
        """,
    ),
    (
        "indexes, image index, hash cache, file journal, history, legacy log",
        """
        CREATE INDEX IF NOT EXISTS models_type ON models(type);
        CREATE INDEX IF NOT EXISTS models_name ON models(name COLLATE NOCASE);
        CREATE INDEX IF NOT EXISTS models_created ON models(created_at);
        CREATE INDEX IF NOT EXISTS model_tags_tag ON model_tags(tag_id);
        CREATE INDEX IF NOT EXISTS pending_model_tags_tag ON pending_model_tags(tag_id);
        -- One row per example image whose three renditions are on disk. It is changed in the
        -- same transaction as the change that writes the files, and reconciled at start-up.
        CREATE TABLE IF NOT EXISTS images(
            model_hash TEXT NOT NULL, seq INTEGER NOT NULL,
            PRIMARY KEY(model_hash, seq)) WITHOUT ROWID;
        CREATE TABLE IF NOT EXISTS hash_cache(
            path TEXT PRIMARY KEY, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
            inode INTEGER NOT NULL, sha256 TEXT NOT NULL, hashed_at INTEGER NOT NULL);
        -- File operations committed with a database change and not yet carried out.
        CREATE TABLE IF NOT EXISTS file_journal(
            id INTEGER PRIMARY KEY AUTOINCREMENT, created_at INTEGER NOT NULL,
            ops TEXT NOT NULL);
        -- What a model was before an override or merge changed it.
        CREATE TABLE IF NOT EXISTS model_history(
            id INTEGER PRIMARY KEY AUTOINCREMENT, model_hash TEXT NOT NULL,
            pending_id INTEGER, strategy TEXT NOT NULL, changed_at INTEGER NOT NULL,
            previous TEXT NOT NULL, pending TEXT NOT NULL);
        CREATE INDEX IF NOT EXISTS model_history_hash ON model_history(model_hash);
        -- The original image of a pending model: images/pending/<pending_id>.<ext>
        CREATE TABLE IF NOT EXISTS pending_images(
            pending_id INTEGER PRIMARY KEY REFERENCES pending_import(id) ON DELETE CASCADE,
            ext TEXT NOT NULL);
        -- Legacy rows already brought in, so a second stage-1 run adds nothing twice.
        CREATE TABLE IF NOT EXISTS legacy_import_log(
            legacy_id INTEGER PRIMARY KEY, target TEXT NOT NULL, sha256 TEXT,
            imported_at INTEGER NOT NULL);
        """,
    ),
    (
        "journal entries that cannot be replayed are set aside, with the reason",
        """
        ALTER TABLE file_journal ADD COLUMN set_aside_at INTEGER;
        ALTER TABLE file_journal ADD COLUMN problem TEXT;
        """,
    ),
    (
        "the legacy import log knows which library each row came from and its pending id",
        """
        -- A legacy library, told apart from others by a fingerprint of its first rows. Rows
        -- logged before libraries were told apart belong to one with no fingerprint, which
        -- the next library stage 1 reads adopts.
        CREATE TABLE legacy_libraries(
            id INTEGER PRIMARY KEY, fingerprint TEXT UNIQUE, source TEXT,
            first_seen_at INTEGER NOT NULL);
        INSERT INTO legacy_libraries(id, fingerprint, source, first_seen_at)
            SELECT 1, NULL, NULL, (SELECT min(imported_at) FROM legacy_import_log)
            WHERE EXISTS (SELECT 1 FROM legacy_import_log);
        CREATE TABLE legacy_import_log_v2(
            library_id INTEGER NOT NULL REFERENCES legacy_libraries(id),
            legacy_id INTEGER NOT NULL, target TEXT NOT NULL, sha256 TEXT, pending_id INTEGER,
            imported_at INTEGER NOT NULL, PRIMARY KEY(library_id, legacy_id));
        INSERT INTO legacy_import_log_v2
            SELECT 1, legacy_id, target, sha256,
                CASE WHEN target = 'pending' THEN legacy_id END, imported_at
            FROM legacy_import_log;
        DROP TABLE legacy_import_log;
        ALTER TABLE legacy_import_log_v2 RENAME TO legacy_import_log;
        CREATE INDEX legacy_import_log_pending ON legacy_import_log(pending_id);
        """,
    ),
]


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
    # executescript() would COMMIT implicitly; run statement by statement inside our transaction.
    lines = [line for line in script.splitlines() if not line.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]
