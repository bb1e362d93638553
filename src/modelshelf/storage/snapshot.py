"""The database as of one instant, copied while the service may be writing it, and the marks
that tell whether the images folder has changed since: for `modelshelf backup`, which runs in a
process of its own, on plain sqlite3 connections (no event loop)."""

from __future__ import annotations

import errno
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from modelshelf.storage import consistency
from modelshelf.storage.schema import MIGRATIONS


@dataclass(frozen=True)
class FileMarks:
    """Where the file journal stood. Every change that puts files in place or removes them
    writes a journal entry in its transaction, and carries the files out after its commit:
    `last` is the id of the last entry ever written (an AUTOINCREMENT sequence, never reused),
    `unfinished` how many entries may still have files to carry out."""

    last: int
    unfinished: int


def copy_database(source: Path, target: Path) -> FileMarks:
    """`source` as of one instant into `target` (made anew); returns the marks the copy holds.
    Raises NotFound if `source` is not a modelshelf database, StorageUnavailable if it cannot
    be read, OSError if `target` cannot be written (then no `target` is left)."""
    remove_database(target)
    with consistency.open_read_only(source) as conn:
        copy = sqlite3.connect(target)
        try:
            # All pages in one step: they are read in one read transaction, so the copy is
            # the database as one commit left it, whatever the service writes meanwhile.
            conn.backup(copy, pages=-1)
            marks = _marks(copy)
        except sqlite3.Error as exc:  # the copy's disk: full, failing, read-only
            copy.close()
            remove_database(target)
            full = "full" in str(exc)
            raise OSError(
                errno.ENOSPC if full else errno.EIO,
                f"the database could not be copied into {target.parent}: {exc}",
            ) from exc
        finally:
            copy.close()
    return marks


def schema_behind(database: Path) -> str | None:
    """Why `database` is not at this version's schema (a library this version has not opened
    yet, or one a newer version migrated), or None if it is. Raises as `copy_database`."""
    with consistency.open_read_only(database) as conn:
        try:
            row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
        except sqlite3.OperationalError:  # no such table: older than every migration
            row = (0,)
    version, current = int(row[0] or 0), len(MIGRATIONS)
    if version < current:
        return f"its schema is version {version}, older than this modelshelf's {current}"
    if version > current:
        return f"its schema is version {version}, newer than this modelshelf's {current}"
    return None


def file_marks(database: Path) -> FileMarks:
    """The marks `database` holds now. Raises as `copy_database`."""
    with consistency.open_read_only(database) as conn:
        return _marks(conn)


def _marks(conn: sqlite3.Connection) -> FileMarks:
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'file_journal'").fetchone()
    unfinished = conn.execute(
        "SELECT count(*) FROM file_journal WHERE set_aside_at IS NULL"
    ).fetchone()
    return FileMarks(last=int(row[0]) if row else 0, unfinished=int(unfinished[0]))


def _companions(database: Path) -> tuple[Path, Path]:
    """The WAL and shared-memory files SQLite keeps beside `database`."""
    return database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")


def remove_database(database: Path) -> None:
    """`database` and the files SQLite keeps beside it, gone if they were there."""
    for path in (database, *_companions(database)):
        path.unlink(missing_ok=True)
