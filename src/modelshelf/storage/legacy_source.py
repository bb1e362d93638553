"""Reading a legacy (first Hikaze model manager) library: opening its SQLite file read-only
(with what its -wal file holds), refusing files that are not legacy libraries, and fetching
its rows in batches from one consistent snapshot.

A legacy file is untrusted input. Every query on it is bounded in time (a progress handler
interrupts it), every value in size, and every value arrives as SQLite holds it: TEXT that is
not valid UTF-8 comes back as `UndecodedText` instead of failing the whole batch.
"""

from __future__ import annotations

import asyncio
import math
import os
import shutil
import sqlite3
import stat
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

from modelshelf.errors import InvalidInput, Locked, ShelfError, Unprocessable

# The columns stage 1 reads; a library lacking one is refused up front.
MODEL_COLUMNS = (
    "id",
    "path",
    "name",
    "type",
    "size_bytes",
    "hash_hex",
    "created_at",
    "meta_json",
    "extra_json",
)
REQUIRED = {"models": MODEL_COLUMNS, "tags": ("id", "name"), "model_tags": ("model_id", "tag_id")}
# Longest time one query may take; a legacy library answers any of them in well under this.
QUERY_SECONDS = 30.0
# How long to wait for another program's write lock on the legacy file.
BUSY_SECONDS = 2.0
# A value longer than this (in bytes) is not read; the row is reported instead.
MAX_VALUE_BYTES = 8 * 2**20
MAX_TAG_NAME_BYTES = 4096
# A batch stops early once its values add up to this, so memory stays flat.
BATCH_BYTES = 32 * 2**20
# How often (in SQLite VM steps) the progress handler looks at the clock.
_PROGRESS_STEPS = 10_000
_COMPANIONS = ("-wal", "-shm", "-journal")


class UndecodedText(bytes):
    """A TEXT value whose bytes are not valid UTF-8, exactly as the legacy file holds them."""


@dataclass(frozen=True)
class LegacyRow:
    """One legacy `models` row: its values by column (None where a value was too long) and
    the length in bytes of each value that was too long to read."""

    values: dict[str, Any]
    oversize: dict[str, int]

    @property
    def legacy_id(self) -> int:
        return int(self.values["id"])


def _decode_text(raw: bytes) -> str | UndecodedText:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return UndecodedText(raw)


async def open_legacy_database(path: Path, scratch: Path) -> LegacyDatabase:
    """Open a legacy database read-only, including what its -wal file holds, and check that it
    is a legacy library.

    SQLite can read a WAL database read-only only if it may use the -shm file; when it cannot
    (a read-only folder without one), the database and its WAL are copied under `scratch`
    and the copy is opened. Raises InvalidInput if the file is not a legacy library (with
    what is missing), Locked if another program is writing it, Unprocessable if a program
    left it half-written (a hot journal that a read-only reader cannot roll back).
    """
    await asyncio.to_thread(_refuse_planted_companions, path)
    try:
        legacy = await LegacyDatabase.connect(path, path.name)
    except sqlite3.Error as exc:
        if not _copy_may_help(exc) or not await asyncio.to_thread(_in_wal_mode, path):
            raise _translated(exc, path.name) from exc
        copy = await asyncio.to_thread(_copy_with_wal, path, scratch)
        try:
            legacy = await LegacyDatabase.connect(copy, path.name)
        except sqlite3.Error as copy_exc:
            raise _translated(copy_exc, path.name) from copy_exc
    try:
        await legacy.check_schema()
    except BaseException:
        await legacy.close()
        raise
    return legacy


class LegacyDatabase:
    """A legacy library opened read-only, inside one read transaction (a consistent snapshot
    for the whole of stage 1). Every method raises InvalidInput for a query that fails or
    runs over QUERY_SECONDS, Locked while another program holds the file's lock."""

    def __init__(self, conn: aiosqlite.Connection, name: str) -> None:
        self._conn = conn
        self.name = name
        self._deadline = math.inf

    @classmethod
    async def connect(cls, path: Path, name: str) -> LegacyDatabase:
        """Raises sqlite3.Error if the file cannot be opened and read."""
        uri = f"file:{urllib.parse.quote(str(path))}?mode=ro"
        conn = await aiosqlite.connect(uri, uri=True, timeout=BUSY_SECONDS, isolation_level=None)
        legacy = cls(conn, name)
        try:
            conn.row_factory = sqlite3.Row
            conn.text_factory = _decode_text
            await conn.set_progress_handler(legacy._over_time, _PROGRESS_STEPS)
            await conn.execute("BEGIN")
            legacy._deadline = time.monotonic() + QUERY_SECONDS
            await conn.execute("SELECT count(*) FROM sqlite_master")
            legacy._deadline = math.inf
        except BaseException:
            await conn.close()
            raise
        return legacy

    def _over_time(self) -> int:
        # Runs in aiosqlite's thread; non-zero interrupts the statement (SQLITE_INTERRUPT).
        return 1 if time.monotonic() > self._deadline else 0

    async def close(self) -> None:
        await self._conn.close()

    async def _query(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[Any]:
        self._deadline = time.monotonic() + QUERY_SECONDS
        try:
            async with self._conn.execute(sql, params) as cursor:
                return list(await cursor.fetchall())
        except sqlite3.Error as exc:
            raise _translated(exc, self.name) from exc
        finally:
            self._deadline = math.inf

    async def check_schema(self) -> None:
        """Raises InvalidInput naming everything that makes this file no legacy library."""
        verdict = await self._query("PRAGMA quick_check(1)")
        if verdict and verdict[0][0] != "ok":
            raise InvalidInput(f"{self.name} is a damaged SQLite database: {verdict[0][0]}")
        problems: list[str] = []
        for table, columns in REQUIRED.items():
            problems += await self._table_problems(table, columns)
        if not problems:
            for table in ("models", "tags"):
                odd = await self._query(
                    f"SELECT typeof(id) FROM {table} WHERE typeof(id) != 'integer' LIMIT 1"
                )
                if odd:
                    problems.append(f"{table}.id holds {odd[0][0]} values, not integers")
        if problems:
            raise InvalidInput(f"{self.name} is not a legacy Hikaze library: {'; '.join(problems)}")

    async def _table_problems(self, table: str, columns: tuple[str, ...]) -> list[str]:
        found = await self._query(
            "SELECT type, sql FROM sqlite_master WHERE lower(name) = ?", (table,)
        )
        if not found:
            return [f"no table {table}"]
        kind, sql = found[0][0], found[0][1]
        if kind != "table":
            return [f"{table} is a {kind}, not a table"]
        if isinstance(sql, str) and sql.lstrip().upper().startswith("CREATE VIRTUAL"):
            return [f"{table} is a virtual table"]
        present = {
            str(r[0]).lower()
            for r in await self._query("SELECT name FROM pragma_table_xinfo(?)", (table,))
        }
        missing = [c for c in columns if c not in present]
        return [f"{table} lacks column(s) {', '.join(missing)}"] if missing else []

    async def count_models(self) -> int:
        rows = await self._query("SELECT count(*) FROM models")
        return int(rows[0][0])

    async def id_bounds(self) -> tuple[int, int] | None:
        """The lowest and highest model id, or None for a library without models."""
        rows = await self._query("SELECT min(id), max(id) FROM models")
        return None if rows[0][0] is None else (int(rows[0][0]), int(rows[0][1]))

    async def first_rows(self, count: int) -> list[tuple[Any, ...]]:
        """(id, created_at, path) of the `count` lowest ids; values over 1,000 bytes cut."""
        rows = await self._query(
            "SELECT id, typeof(created_at), substr(CAST(created_at AS BLOB), 1, 1000),"
            " typeof(path), substr(CAST(path AS BLOB), 1, 1000) FROM models ORDER BY id LIMIT ?",
            (count,),
        )
        return [tuple(r) for r in rows]

    async def fetch_tags(self) -> list[tuple[int, Any]]:
        """(id, name) of every tag; a name over MAX_TAG_NAME_BYTES comes back as None."""
        rows = await self._query(
            "SELECT id, CASE WHEN length(CAST(name AS BLOB)) > ? THEN NULL ELSE name END"
            " FROM tags ORDER BY id",
            (MAX_TAG_NAME_BYTES,),
        )
        return [(int(r[0]), r[1]) for r in rows]

    async def fetch_batch(self, after_id: int | None, size: int) -> list[LegacyRow]:
        """Up to `size` model rows with an id above `after_id` (None: from the lowest), by id;
        fewer once their values add up to BATCH_BYTES."""
        where, params = ("", []) if after_id is None else ("WHERE id > ?", [after_id])
        sql = f"SELECT {_batch_columns()} FROM models {where} ORDER BY id LIMIT ?"
        rows: list[LegacyRow] = []
        spent = 0
        self._deadline = time.monotonic() + QUERY_SECONDS
        try:
            async with self._conn.execute(sql, (*params, size)) as cursor:
                async for raw in cursor:
                    row = _legacy_row(raw)
                    rows.append(row)
                    spent += sum(int(raw[f"{c}__bytes"] or 0) for c in MODEL_COLUMNS[1:])
                    if spent >= BATCH_BYTES:
                        break
        except sqlite3.Error as exc:
            raise _translated(exc, self.name) from exc
        finally:
            self._deadline = math.inf
        return rows

    async def fetch_model_tags(self, ids: list[int]) -> list[tuple[Any, Any]]:
        """(model_id, tag_id) links of these legacy models, as the file holds them."""
        if not ids:
            return []
        marks = ",".join("?" * len(ids))
        rows = await self._query(
            f"SELECT model_id, tag_id FROM model_tags WHERE model_id IN ({marks})", ids
        )
        return [(r[0], r[1]) for r in rows]


def _batch_columns() -> str:
    parts = ["id"]
    for column in MODEL_COLUMNS[1:]:
        size = f"length(CAST({column} AS BLOB))"
        kept = f"CASE WHEN {size} > {MAX_VALUE_BYTES} THEN NULL ELSE {column} END"
        parts.append(f"{kept} AS {column}")
        parts.append(f"{size} AS {column}__bytes")
    return ", ".join(parts)


def _legacy_row(raw: sqlite3.Row) -> LegacyRow:
    values = {c: raw[c] for c in MODEL_COLUMNS}
    oversize = {
        c: int(raw[f"{c}__bytes"])
        for c in MODEL_COLUMNS[1:]
        if raw[f"{c}__bytes"] is not None and int(raw[f"{c}__bytes"]) > MAX_VALUE_BYTES
    }
    return LegacyRow(values, oversize)


def _translated(exc: sqlite3.Error, name: str) -> ShelfError:
    """What a failure of the legacy file means for the caller, by SQLite's result code."""
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
        return Locked(
            f"the legacy database {name} is busy: another program is writing it. "
            "Try again when it has finished (what stage 1 brought in so far stays; "
            "a new run completes it).",
            retry_after=5,
        )
    if code == sqlite3.SQLITE_READONLY_ROLLBACK:
        return Unprocessable(
            f"the legacy database {name} was left half-written by a program that stopped while "
            f"writing it ({name}-journal is a hot journal). Open it once with that program or "
            "the sqlite3 shell, which finishes or undoes that write, then run stage 1 again."
        )
    if primary == sqlite3.SQLITE_INTERRUPT:
        return InvalidInput(
            f"the legacy database {name} took longer than {QUERY_SECONDS:g} s to answer one "
            "query; it is not a library stage 1 can read"
        )
    if primary in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
        return InvalidInput(f"{name} is not a readable SQLite database: {exc}")
    return InvalidInput(f"the legacy database {name} cannot be read: {exc}")


def _copy_may_help(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    return primary in (sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY)


def _in_wal_mode(path: Path) -> bool:
    # Bytes 18 and 19 of a database header are 2 in WAL mode (1 with a rollback journal).
    try:
        with path.open("rb") as handle:
            header = handle.read(20)
    except OSError:
        return False
    return len(header) == 20 and header[18] == 2 and header[19] == 2


def _refuse_planted_companions(path: Path) -> None:
    """SQLite opens <db>-wal, -shm and -journal by name: a symlink there would make it read
    (or map) a file outside the legacy folder. Raises InvalidInput."""
    for suffix in _COMPANIONS:
        companion = Path(f"{path}{suffix}")
        try:
            info = companion.lstat()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise InvalidInput(f"{companion.name} cannot be examined: {exc.strerror}") from exc
        if not stat.S_ISREG(info.st_mode):
            raise InvalidInput(
                f"{companion.name} beside the legacy database is not a regular file; "
                "stage 1 does not follow it"
            )


def _copy_with_wal(path: Path, scratch: Path) -> Path:
    """Copy the database and its -wal into `scratch`. Raises Locked if either changed while it
    was copied (another program writing it: the copy could be torn), InvalidInput if they
    cannot be read."""
    copy_dir = Path(tempfile.mkdtemp(dir=scratch))
    try:
        for suffix in ("", "-wal"):
            source = Path(f"{path}{suffix}")
            if not source.exists():
                continue
            before = _identity(source)
            shutil.copyfile(source, copy_dir / f"legacy.db{suffix}")
            if _identity(source) != before:
                raise Locked(
                    f"the legacy database {path.name} changed while it was read: another "
                    "program is writing it. Try again when it has finished.",
                    retry_after=5,
                )
    except OSError as exc:
        raise InvalidInput(f"the legacy database {path.name} cannot be read: {exc}") from exc
    return copy_dir / "legacy.db"


def _identity(path: Path) -> tuple[int, int, int]:
    info = os.stat(path)
    return info.st_size, info.st_mtime_ns, info.st_ino
