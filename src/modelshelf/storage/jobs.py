"""Queries for `jobs`: long work run in the background, its progress and its outcome.

Rows come back as `StoredJob` with `result` still JSON text: a result can be large (a batch of
10,000 ids), so the caller turns rows into `Job` records off the event loop (`to_job`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiosqlite

from modelshelf.records import Job, JobProgress
from modelshelf.storage.rows import fetch_all, fetch_one

_COLUMNS = "id, kind, state, created_at, started_at, finished_at, progress, result, error"
_WITHOUT_RESULT = "id, kind, state, created_at, started_at, finished_at, progress, NULL, error"


@dataclass(frozen=True)
class StoredJob:
    """A `jobs` row as it is stored."""

    id: str
    kind: str
    state: str
    created_at: int
    started_at: int | None
    finished_at: int | None
    progress: str
    result: str | None
    error: str | None


def to_job(row: StoredJob) -> Job:
    """The record a stored row describes (parses its JSON: call it off the event loop for
    rows with large results)."""
    return Job(
        id=row.id,
        kind=row.kind,
        state=row.state,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        progress=JobProgress.model_validate_json(row.progress),
        result=None if row.result is None else _object(row.result),
        error=row.error,
    )


def result_text(job: Job) -> str | None:
    """The JSON text stored for a job's result (may be large: call it off the event loop)."""
    if job.result is None:
        return None
    return json.dumps(job.result, ensure_ascii=False, separators=(",", ":"))


async def insert_job(tx: aiosqlite.Connection, job: Job) -> None:
    await tx.execute(
        f"INSERT INTO jobs({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            job.id,
            job.kind,
            job.state,
            job.created_at,
            job.started_at,
            job.finished_at,
            job.progress.model_dump_json(),
            result_text(job),
            job.error,
        ),
    )


async def save_job(tx: aiosqlite.Connection, job: Job, result: str | None) -> None:
    """Store everything about `job` that can change; `result` is its result's JSON text."""
    await tx.execute(
        "UPDATE jobs SET state = ?, started_at = ?, finished_at = ?, progress = ?, result = ?,"
        " error = ? WHERE id = ?",
        (
            job.state,
            job.started_at,
            job.finished_at,
            job.progress.model_dump_json(),
            result,
            job.error,
            job.id,
        ),
    )


async def save_progress(tx: aiosqlite.Connection, job_id: str, progress: JobProgress) -> None:
    await tx.execute(
        "UPDATE jobs SET progress = ? WHERE id = ? AND finished_at IS NULL",
        (progress.model_dump_json(), job_id),
    )


async def fetch_job(
    conn: aiosqlite.Connection, job_id: str, result: bool = True
) -> StoredJob | None:
    """The job's row; without `result`, its result is not read (None)."""
    columns = _COLUMNS if result else _WITHOUT_RESULT
    row = await fetch_one(conn, f"SELECT {columns} FROM jobs WHERE id = ?", (job_id,))
    return None if row is None else StoredJob(*row)


async def recent_jobs(
    conn: aiosqlite.Connection, limit: int, results: bool = True
) -> list[StoredJob]:
    """The `limit` jobs that ended (or, for a job that never ended, began) last, newest
    first; without `results`, their results are not read (None)."""
    columns = _COLUMNS if results else _WITHOUT_RESULT
    rows = await fetch_all(
        conn,
        f"SELECT {columns} FROM jobs ORDER BY coalesce(finished_at, created_at) DESC,"
        " rowid DESC LIMIT ?",
        (limit,),
    )
    return [StoredJob(*row) for row in rows]


async def count_unfinished(conn: aiosqlite.Connection) -> int:
    row = await fetch_one(conn, "SELECT count(*) FROM jobs WHERE finished_at IS NULL")
    return 0 if row is None else int(row[0])


async def fail_unfinished(tx: aiosqlite.Connection, reason: str, now: int) -> int:
    """Mark every job that never ended (the process stopped under it) failed with `reason`;
    returns how many."""
    cursor = await tx.execute(
        "UPDATE jobs SET state = 'failed', finished_at = ?, error = ? WHERE finished_at IS NULL",
        (now, reason),
    )
    return cursor.rowcount


async def forget_ended(tx: aiosqlite.Connection, keep: int) -> None:
    """Delete ended jobs beyond the newest `keep`."""
    await tx.execute(
        "DELETE FROM jobs WHERE finished_at IS NOT NULL AND id NOT IN"
        " (SELECT id FROM jobs WHERE finished_at IS NOT NULL"
        "  ORDER BY finished_at DESC, rowid DESC LIMIT ?)",
        (keep,),
    )


def _object(text: str) -> dict[str, Any]:
    value = json.loads(text)
    return value if isinstance(value, dict) else {"value": value}
