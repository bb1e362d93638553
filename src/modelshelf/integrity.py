"""A consistency check of a data directory: do the database and the images folder agree?

Meant for a library at rest (the service stopped, or started and idle): it reads the database
read-only and lists every disagreement it finds. `modelshelf check` runs it.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from pathlib import Path

from modelshelf.records import is_sha256
from modelshelf.recovery import DiskImages, scan_images


def check_library(data_dir: Path) -> list[str]:
    """Every problem found, as sentences; an empty list means the library is consistent."""
    images_dir = data_dir / "images"
    conn = sqlite3.connect(f"file:{data_dir / 'modelshelf.db'}?mode=ro", uri=True)
    try:
        disk = scan_images(images_dir)
        return [
            *_check_rows(conn),
            *_check_renditions(conn, disk),
            *_check_pending_images(conn, disk),
            *_check_leftovers(conn, images_dir),
        ]
    finally:
        conn.close()


def _all(conn: sqlite3.Connection, sql: str) -> list[tuple[object, ...]]:
    return [tuple(r) for r in conn.execute(sql)]


def _check_rows(conn: sqlite3.Connection) -> list[str]:
    problems = [
        f"model hash {h!r} is not 64 lowercase hex"
        for (h,) in _all(conn, "SELECT sha256 FROM models")
        if not is_sha256(h)
    ]
    problems += [f"foreign key broken: {row}" for row in _all(conn, "PRAGMA foreign_key_check")]
    problems += [
        f"image index row for unknown model {h}"
        for (h,) in _all(
            conn,
            "SELECT DISTINCT model_hash FROM images"
            " WHERE model_hash NOT IN (SELECT sha256 FROM models)",
        )
    ]
    seqs: dict[str, list[int]] = defaultdict(list)
    for h, seq in _all(conn, "SELECT model_hash, seq FROM images ORDER BY model_hash, seq"):
        seqs[str(h)].append(int(str(seq)))
    problems += [
        f"model {h} has image seqs {s}, not 0..{len(s) - 1}"
        for h, s in seqs.items()
        if s != list(range(len(s)))
    ]
    return problems


def _check_renditions(conn: sqlite3.Connection, disk: DiskImages) -> list[str]:
    indexed = {(str(h), int(str(s))) for h, s in _all(conn, "SELECT model_hash, seq FROM images")}
    problems = [
        f"image {h}_{s} is listed but its renditions are not all on disk"
        for h, s in sorted(indexed - disk.complete)
    ]
    problems += [
        f"image {h}_{s} is on disk but not listed (orphan)"
        for h, s in sorted(disk.complete - indexed)
    ]
    problems += [
        f"image {h}_{s} has only some of its three renditions" for h, s in sorted(disk.partial)
    ]
    return problems


def _check_pending_images(conn: sqlite3.Connection, disk_images: DiskImages) -> list[str]:
    disk = disk_images.pending
    indexed = {
        int(str(i)): str(e) for i, e in _all(conn, "SELECT pending_id, ext FROM pending_images")
    }
    problems = [
        f"pending image {i}.{e} is recorded but missing"
        for i, e in sorted(indexed.items())
        if disk.get(i) != e
    ]
    problems += [
        f"pending image {i}.{e} is on disk but not recorded"
        for i, e in sorted(disk.items())
        if indexed.get(i) != e
    ]
    return problems


def _check_leftovers(conn: sqlite3.Connection, images_dir: Path) -> list[str]:
    problems = [
        f"unfinished file journal entry {i}" for (i,) in _all(conn, "SELECT id FROM file_journal")
    ]
    problems += [f"temporary file left behind: {p.name}" for p in images_dir.glob(".*.tmp")]
    staging = images_dir / ".staging"
    if staging.is_dir():
        problems += [f"staging not empty: {p.name}" for p in staging.iterdir()]
    return problems
