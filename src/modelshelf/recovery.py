"""Start-up repair, before the service answers: finish the file operations of committed changes,
drop uncommitted staging, and bring the image indexes back in step with the files on disk (files
may have been added or removed while the service was down). It never refuses to start: a
journal entry that cannot be carried out is set aside and reported, not retried forever.

Afterwards, in the background, `fill_missing_renditions` renders the qualities an image lacks
(a quality added to the registry, a file deleted by hand) from the best rendition it has.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from modelshelf.crashpoints import crashpoint
from modelshelf.errors import ImageError
from modelshelf.executors import CpuPool
from modelshelf.imagefolder import DiskImages, ImageFolder
from modelshelf.images import fill_renditions
from modelshelf.progress import Progress
from modelshelf.renditions import qualities
from modelshelf.storage import fileops, image_index, journal, models, pending
from modelshelf.storage.change import Changes

log = logging.getLogger(__name__)


@dataclass
class RecoveryReport:
    journal_replayed: int = 0
    journal_set_aside: int = 0
    staging_discarded: int = 0
    index_added: int = 0
    index_removed: int = 0
    seq_gaps_closed: int = 0
    pending_added: int = 0
    pending_removed: int = 0
    # (sha256, seq) -> the qualities it has, for images lacking some registered quality.
    incomplete: dict[tuple[str, int], set[str]] = field(default_factory=dict, repr=False)


async def recover(changes: Changes, folder: ImageFolder) -> RecoveryReport:
    """Replay the file journal, empty staging, reconcile both image indexes, close seq gaps."""
    report = RecoveryReport()
    await changes.run_files(folder.create_folders)
    await _replay_journal(changes, report)
    # Whatever is still staged belongs to changes that never committed, or finished ones.
    report.staging_discarded = await changes.run_files(folder.empty_staging)
    disk = await changes.run_files(folder.scan)
    await _reconcile_renditions(changes, disk, report)
    await _reconcile_pending(changes, disk, report)
    await changes.forget_carried_out()
    log.info("start-up recovery: %s", report)
    if report.incomplete:
        log.warning("%d images lack some renditions; they will be rendered", len(report.incomplete))
    return report


async def _replay_journal(changes: Changes, report: RecoveryReport) -> None:
    async with changes.storage.read(bulk=True) as conn:
        entries = await journal.unfinished(conn)
    for entry in entries:  # in commit order: a later change may build on an earlier one
        if isinstance(entry, tuple):
            await _set_aside(changes, *entry, report)
            continue
        try:
            notes = await changes.run_files(fileops.apply_file_ops, changes.data_dir, entry.ops)
        except (OSError, fileops.FileOpError, KeyError, TypeError, ValueError) as exc:
            await _set_aside(changes, entry.id, f"{type(exc).__name__}: {exc}", report)
            continue
        finally:
            changes.files_changed(entry.ops)
        for note in notes:
            log.warning("journal entry %d: %s", entry.id, note)
        async with changes.change() as change:
            await journal.forget(change.tx, [entry.id])
        report.journal_replayed += 1
        crashpoint("recovery.replayed")


async def _set_aside(
    changes: Changes, journal_id: int, reason: str, report: RecoveryReport
) -> None:
    log.error(
        "journal entry %d cannot be carried out (%s); set aside, see `modelshelf check`",
        journal_id,
        reason,
    )
    async with changes.change() as change:
        await journal.set_aside(change.tx, journal_id, reason)
    report.journal_set_aside += 1


async def _reconcile_renditions(changes: Changes, disk: DiskImages, report: RecoveryReport) -> None:
    async with changes.storage.read(bulk=True) as conn:
        indexed = await image_index.all_images(conn)
        known = set(await models.existing_paths(conn, sorted({h for h, _ in disk.renditions})))
    on_disk = {key for key in disk.renditions if key[0] in known}
    added, gone = on_disk - indexed, indexed - set(disk.renditions)
    report.index_added, report.index_removed = len(added), len(gone)
    if added or gone:
        async with changes.change() as change:
            await image_index.add_images(change.tx, sorted(added))
            await image_index.remove_images(change.tx, sorted(gone))
    seqs: dict[str, list[int]] = defaultdict(list)
    for sha256, seq in sorted((indexed | added) - gone):
        seqs[sha256].append(seq)
    for sha256, found in seqs.items():
        if found != list(range(len(found))):
            await _close_gaps(changes, sha256, found)
            report.seq_gaps_closed += 1
            for new, old in enumerate(found):
                present = disk.renditions[(sha256, old)]
                disk.renditions[(sha256, new)] = present
    wanted = set(qualities())
    report.incomplete = {
        (sha256, seq): set(disk.renditions[(sha256, seq)])
        for sha256, found in seqs.items()
        for seq in range(len(found))
        if not disk.renditions[(sha256, seq)] >= wanted
    }


async def _close_gaps(changes: Changes, sha256: str, seqs: list[int]) -> None:
    """Renumber a model's images 0..n-1 in their order (files deleted by hand left a gap)."""
    moves = {old: new for new, old in enumerate(seqs) if old != new}
    async with changes.change(lock=[sha256]) as change:
        await image_index.renumber_images(change.tx, sha256, moves, [])
        await change.renumber(sha256, moves, [])
    log.warning("model %s: image seqs %s renumbered 0..%d", sha256, seqs, len(seqs) - 1)


async def _reconcile_pending(changes: Changes, disk: DiskImages, report: RecoveryReport) -> None:
    async with changes.storage.read(bulk=True) as conn:
        indexed = await pending.all_pending_images(conn)
        ids = await pending.pending_ids(conn)
    on_disk = {i: ext for i, ext in disk.pending.items() if i in ids}
    added = [(i, ext) for i, ext in on_disk.items() if indexed.get(i) != ext]
    removed = [i for i in indexed if i not in on_disk]
    report.pending_added, report.pending_removed = len(added), len(removed)
    if added or removed:
        async with changes.change() as change:
            await pending.forget_pending_images(change.tx, removed)
            for pending_id, ext in added:
                await pending.set_pending_image(change.tx, pending_id, ext)


async def fill_missing_renditions(
    changes: Changes,
    folder: ImageFolder,
    cpu: CpuPool,
    incomplete: dict[tuple[str, int], set[str]],
) -> int:
    """Render, for each image, the registered qualities it lacks from the largest one it has.
    Resumable: what is done stays done; a start-up finds what is left. Returns how many images
    were completed."""
    done = 0
    loop = asyncio.get_running_loop()
    with Progress(len(incomplete), "rendering missing renditions", bar=False) as progress:
        for (sha256, seq), present in sorted(incomplete.items()):
            source_quality = next((q for q in qualities() if q in present), None)
            if source_quality is not None:
                source = folder.rendition_path(sha256, seq, source_quality)
                missing = [q for q in qualities() if q not in present]
                if await _fill_one(changes, folder, loop, cpu, (sha256, seq), source, missing):
                    done += 1
            progress.advance()
    return done


async def _fill_one(
    changes: Changes,
    folder: ImageFolder,
    loop: asyncio.AbstractEventLoop,
    cpu: CpuPool,
    key: tuple[str, int],
    source: Path,
    missing: list[str],
) -> bool:
    sha256, seq = key
    identity = await changes.run_files(_identity, source)
    async with changes.staging() as staging:
        work = await staging.new_folder()
        targets = {q: work / f"{q}.webp" for q in missing}
        try:
            quality = _quality_of(source)
            await loop.run_in_executor(cpu, fill_renditions, source, quality, targets, cpu)
        except (ImageError, OSError) as exc:
            log.warning("image %s_%d: cannot render %s: %s", sha256, seq, missing, exc)
            return False
        async with changes.change(lock=[sha256], staging=staging) as change:
            # The image may have moved to another seq while this one was rendered.
            still = seq in await image_index.image_seqs(change.tx, sha256)
            if not still or await changes.run_files(_identity, source) != identity:
                return False
            for quality, staged in targets.items():
                change.move(staged, folder.rendition_path(sha256, seq, quality))
    return True


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return info.st_ino, info.st_mtime_ns


def _quality_of(source: Path) -> str:
    return source.stem.rsplit("_", 1)[1]
