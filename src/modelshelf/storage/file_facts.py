"""Queries for `file_facts` and `file_images`: what a scan last took from a model's files (the
location and sidecars it read, the meta values and tags it wrote) and the example images it
added, so that it refreshes only what it wrote and adds each image once."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import aiosqlite

from modelshelf.storage.model_files import (
    Signatures,
    parse_signatures,
    signatures_of,
    signatures_text,
)
from modelshelf.storage.rows import dump_meta, fetch_all, parse_meta, run_on_connection


@dataclass
class FactsRecord:
    """`source_path`: the location read (None: read it again next time); `sources`: its
    sidecars' (size, mtime_ns) when read; `copies`: the same for each other location read,
    by path; `written`: meta key -> the value the scan wrote; `tags`: tag names the scan
    added; `problems`: (path, reason) of what could not be used when they were read."""

    source_path: str | None = None
    sources: Signatures = field(default_factory=dict)
    written: dict[str, Any] = field(default_factory=dict)
    tags: list[str] = field(default_factory=list)
    copies: dict[str, Signatures] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)


async def fetch_facts(conn: aiosqlite.Connection, sha256: str) -> FactsRecord | None:
    """What a scan last took from a model's files, read and parsed on the connection's thread:
    what it wrote may be megabytes (a kohya header's tag counts)."""
    return await run_on_connection(conn, _read_facts, sha256)


def _read_facts(db: sqlite3.Connection, sha256: str) -> FactsRecord | None:
    rows = db.execute("SELECT * FROM file_facts WHERE model_hash = ?", (sha256,)).fetchall()
    if not rows:
        return None
    row = rows[0]
    tags = json.loads(row["tags"]) if row["tags"] else []
    return FactsRecord(
        source_path=row["source_path"],
        sources=parse_signatures(row["sources"]) or {},
        written=parse_meta(row["written"]),
        tags=[str(t) for t in tags] if isinstance(tags, list) else [],
        copies=parse_copies(row["copies"]),
        problems=parse_problems(row["problems"]),
    )


def parse_copies(text: str | None) -> dict[str, Signatures]:
    """The copies' signatures as `copies_text` wrote them ({} for anything else)."""
    value = _loaded(text)
    if not isinstance(value, dict):
        return {}
    return {str(path): signatures_of(s) or {} for path, s in value.items()}


def copies_text(copies: dict[str, Signatures]) -> str:
    """The one JSON text of the copies' signatures, as stored (paths in order)."""
    return json.dumps({path: copies[path] for path in sorted(copies)}, separators=(",", ":"))


def parse_problems(text: str | None) -> list[tuple[str, str]]:
    value = _loaded(text)
    if not isinstance(value, list):
        return []
    return [(str(p[0]), str(p[1])) for p in value if isinstance(p, list) and len(p) == 2]


def _loaded(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


async def save_facts(tx: aiosqlite.Connection, sha256: str, record: FactsRecord) -> None:
    """Keep what a scan took from a model's files, serialised on the connection's thread (see
    fetch_facts)."""
    await run_on_connection(tx, _save_facts, sha256, record)


def _save_facts(db: sqlite3.Connection, sha256: str, record: FactsRecord) -> None:
    db.execute(
        "INSERT OR REPLACE INTO file_facts"
        "(model_hash, source_path, sources, written, tags, copies, problems)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            sha256,
            record.source_path,
            signatures_text(record.sources),
            dump_meta(record.written),
            json.dumps(record.tags, ensure_ascii=False),
            copies_text(record.copies),
            json.dumps(record.problems),
        ),
    )


async def forget_facts(tx: aiosqlite.Connection, sha256: str) -> None:
    """Drop what scans wrote for a model (its record is being created afresh)."""
    await tx.execute("DELETE FROM file_facts WHERE model_hash = ?", (sha256,))
    await tx.execute("DELETE FROM file_images WHERE model_hash = ?", (sha256,))


async def images_added(conn: aiosqlite.Connection, sha256: str) -> set[str]:
    """SHA256s of the image files a scan added to this model."""
    rows = await fetch_all(
        conn, "SELECT image_sha256 FROM file_images WHERE model_hash = ?", (sha256,)
    )
    return {str(r[0]) for r in rows}


async def record_images(tx: aiosqlite.Connection, sha256: str, images: Iterable[str]) -> None:
    await tx.executemany(
        "INSERT OR IGNORE INTO file_images(model_hash, image_sha256) VALUES (?, ?)",
        [(sha256, image) for image in images],
    )
