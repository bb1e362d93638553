"""Start-up repair: finish committed file operations, drop uncommitted staging, and bring the
image indexes back in step with the files on disk (files may have been added or removed while
the service was down)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from modelshelf.images import QUALITIES
from modelshelf.imagestore import PENDING_FILE, RENDITION_FILE, ImageStore

log = logging.getLogger(__name__)


@dataclass
class DiskImages:
    """What a scan of the images folder found."""

    complete: set[tuple[str, int]] = field(default_factory=set)
    partial: set[tuple[str, int]] = field(default_factory=set)
    pending: dict[int, str] = field(default_factory=dict)


@dataclass
class RecoveryReport:
    journal_replayed: int = 0
    staging_discarded: int = 0
    index_added: int = 0
    index_removed: int = 0
    partial_sets: int = 0
    pending_added: int = 0
    pending_removed: int = 0


async def recover(store: ImageStore) -> RecoveryReport:
    """Replay the file journal, empty staging, reconcile both image indexes."""
    report = RecoveryReport()
    for folder in (store.root, store.pending_dir):
        folder.mkdir(parents=True, exist_ok=True)
    async with (
        store.storage.read() as conn,
        conn.execute("SELECT id, ops FROM file_journal ORDER BY id") as cursor,
    ):
        entries = [(int(r[0]), json.loads(r[1])) for r in await cursor.fetchall()]
    for journal_id, ops in entries:  # in commit order: a later change may build on an earlier
        await store.carry_out(journal_id, ops)
        report.journal_replayed += 1
    # Whatever is still staged belongs to changes that never committed.
    report.staging_discarded = await store.run(_empty_staging, store.staging_dir)
    disk = await store.run(scan_images, store.root)
    await _reconcile_renditions(store, disk, report)
    await _reconcile_pending(store, disk, report)
    log.info("start-up recovery: %s", report)
    return report


def _empty_staging(staging: Path) -> int:
    count = len(list(staging.iterdir())) if staging.is_dir() else 0
    shutil.rmtree(staging, ignore_errors=True)
    return count


def scan_images(root: Path) -> DiskImages:
    """One pass over the images folder (150,000 entries take a fraction of a second)."""
    found: dict[tuple[str, int], set[str]] = defaultdict(set)
    with os.scandir(root) as entries:
        for entry in entries:
            match = RENDITION_FILE.fullmatch(entry.name)
            if match and entry.is_file(follow_symlinks=False):
                found[(match[1], int(match[2]))].add(match[3])
    disk = DiskImages()
    for key, qualities in found.items():
        (disk.complete if len(qualities) == len(QUALITIES) else disk.partial).add(key)
    pending_dir = root / "pending"
    if pending_dir.is_dir():
        with os.scandir(pending_dir) as entries:
            for entry in entries:
                match = PENDING_FILE.fullmatch(entry.name)
                if match and entry.is_file(follow_symlinks=False):
                    disk.pending[int(match[1])] = match[2]
    return disk


async def _reconcile_renditions(
    store: ImageStore, disk: DiskImages, report: RecoveryReport
) -> None:
    async with (
        store.storage.read() as conn,
        conn.execute("SELECT model_hash, seq FROM images") as cursor,
    ):
        indexed = {(str(r[0]), int(r[1])) for r in await cursor.fetchall()}
    missing = disk.complete - indexed
    gone = indexed - disk.complete
    report.index_added, report.index_removed = len(missing), len(gone)
    report.partial_sets = len(disk.partial)
    for key in sorted(disk.partial):
        log.warning("image %s_%d has only some of its renditions; not listed", *key)
    if missing or gone:
        async with store.storage.write() as tx:
            await tx.executemany("INSERT INTO images(model_hash, seq) VALUES (?, ?)", missing)
            await tx.executemany("DELETE FROM images WHERE model_hash = ? AND seq = ?", gone)


async def _reconcile_pending(store: ImageStore, disk: DiskImages, report: RecoveryReport) -> None:
    async with store.storage.read() as conn:
        async with conn.execute("SELECT pending_id, ext FROM pending_images") as cursor:
            indexed = {int(r[0]): str(r[1]) for r in await cursor.fetchall()}
        async with conn.execute("SELECT id FROM pending_import") as cursor:
            pending_ids = {int(r[0]) for r in await cursor.fetchall()}
    on_disk = {i: ext for i, ext in disk.pending.items() if i in pending_ids}
    added = [(i, ext) for i, ext in on_disk.items() if indexed.get(i) != ext]
    removed = [(i,) for i in indexed if i not in on_disk]
    report.pending_added, report.pending_removed = len(added), len(removed)
    if added or removed:
        async with store.storage.write() as tx:
            await tx.executemany("DELETE FROM pending_images WHERE pending_id = ?", removed)
            await tx.executemany(
                "INSERT OR REPLACE INTO pending_images(pending_id, ext) VALUES (?, ?)", added
            )
