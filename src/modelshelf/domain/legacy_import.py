"""Stage 1: bring a legacy library in. Hashed models go to `models` with their images rendered
as renditions; unhashed ones (and hashed duplicates) go to `pending_import` with their first
image copied unchanged. Works in batches, so memory stays flat, and skips the rows of this
library already brought in, so running it twice adds nothing twice; a second library whose
ids overlap the first is brought in too (its pending models get new ids where needed).

A legacy library is untrusted input: a file that is not one is refused before anything is
written, and each row is checked value by value and validated into the record the API will
answer with. A row that still cannot be stored is refused alone; the rest goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from modelshelf.crashpoints import crashpoint
from modelshelf.domain.legacy_images import StagedImages, stage_images
from modelshelf.domain.legacy_plan import (
    FreshPendingIds,
    LegacyPlan,
    by_images,
    created_mark,
    library_fingerprint,
    plan_rows,
    rows_held,
)
from modelshelf.domain.legacy_report import MigrationReport
from modelshelf.domain.legacy_tags import migrate_tags
from modelshelf.domain.shelf import Shelf
from modelshelf.errors import Forbidden, InvalidInput, Locked, NotFound, PartRefused
from modelshelf.progress import Progress
from modelshelf.renditions import qualities
from modelshelf.storage import image_index, legacy_log, models, pending
from modelshelf.storage.change import Change, Staging
from modelshelf.storage.legacy_source import LegacyDatabase, LegacyRow, open_legacy_database

__all__ = ["MigrationReport", "migrate_legacy", "request_inputs"]

log = logging.getLogger(__name__)

BATCH_SIZE = 200
# The rows of a batch are staged and written a few at a time, at most this many listed images
# in one change (a row with more is one change alone): rendering is what takes the time, so
# progress moves as rows are written, and an interrupted run loses at most one such change
# (one change per batch kept a bar at 0 for a whole batch: 93 s for 150 models of two
# 1-megapixel pictures on two cores). Each change leaves the CPU pool idle while it commits
# and while its last image renders: 16 made stage 1 10% slower (bench/legacy_import.py at
# 1,000 models: 31.0-32.4 s against 28.5-28.9 s), 64 about 3% (29.4 s), a step every few
# seconds on two cores.
IMAGES_PER_CHANGE = 64
# How many of the first rows tell a library from another.
FINGERPRINT_ROWS = 8


@dataclass
class _Run:
    """One stage-1 run: what it reads, what it found so far, and the ids it hands out."""

    legacy: LegacyDatabase
    images: Path
    report: MigrationReport
    library_id: int
    tag_map: dict[int, int]
    fresh_ids: FreshPendingIds


async def request_inputs(
    shelf: Shelf, legacy_db_path: str, legacy_images_dir: str
) -> tuple[Path, Path]:
    """The legacy database and images folder a remote caller names: both must lie under
    `legacy_root` once symlinks and `..` are resolved, and exist. Raises Forbidden,
    InvalidInput, NotFound."""
    root = shelf.settings.effective_legacy_root
    db_path = await shelf.run_files(_inside, root, legacy_db_path)
    images_dir = await shelf.run_files(_inside, root, legacy_images_dir)
    await shelf.run_files(check_legacy_inputs, db_path, images_dir)
    return db_path, images_dir


def _inside(root: Path, given: str) -> Path:
    if "\x00" in given:
        raise InvalidInput("a path cannot contain NUL characters")
    try:
        resolved = (root / given).resolve()
        inside = resolved.is_relative_to(root.resolve())
    except (OSError, RuntimeError) as exc:  # a symlink loop, a name too long
        raise InvalidInput(f"{given[:200]} cannot be resolved: {exc}") from exc
    if not inside:
        raise Forbidden(f"{given} is outside the legacy root {root}")
    return resolved


def _is(kind: str, path: Path) -> bool:
    try:
        return path.is_file() if kind == "file" else path.is_dir()
    except (OSError, ValueError):
        return False


def check_legacy_inputs(legacy_db: Path, legacy_images: Path) -> None:
    """Raises NotFound unless `legacy_db` is a file and `legacy_images` a folder, saying which
    is wrong and how. Blocking (it stats both)."""
    _require("legacy database", legacy_db, "file")
    _require("legacy images folder", legacy_images, "dir")


def _require(what: str, path: Path, kind: str) -> None:
    if _is(kind, path):
        return
    other = "dir" if kind == "file" else "file"
    if _is(other, path):
        wanted, found = ("file", "folder") if kind == "file" else ("folder", "file")
        raise NotFound(f"{what} {path} is a {found}, not a {wanted}")
    raise NotFound(f"{what} {path} does not exist")


async def migrate_legacy(
    shelf: Shelf,
    legacy_db: Path,
    legacy_images: Path,
    bar: bool | None = False,
    progress: Progress | None = None,
) -> MigrationReport:
    """Run stage 1, telling `progress` (if given) the rows done. Raises NotFound for a missing
    input, InvalidInput for a file that is not a legacy library (before anything is written),
    Locked if a migration is already running or another program is writing the legacy file,
    StorageFull, StorageBusy. Broken rows are reported in the answer, never fatal."""
    await shelf.run_files(check_legacy_inputs, legacy_db, legacy_images)
    if shelf.migration_lock.locked():
        raise Locked("a legacy migration is already running")
    async with shelf.migration_lock, shelf.changes.staging() as scratch:
        legacy = await open_legacy_database(legacy_db, await scratch.new_folder())
        try:
            return await _migrate(shelf, legacy, (legacy_db, legacy_images), bar, progress)
        finally:
            await legacy.close()


async def _migrate(
    shelf: Shelf,
    legacy: LegacyDatabase,
    inputs: tuple[Path, Path],
    bar: bool | None,
    progress: Progress | None,
) -> MigrationReport:
    legacy_db, images = inputs
    report = MigrationReport()
    # Everything is read once before anything is written: a file that cannot be read (a
    # query over its time bound, a lock) is refused whole.
    total = await legacy.count_models()
    first_rows = await legacy.first_rows(FINGERPRINT_ROWS)
    legacy_tags = await legacy.fetch_tags()
    rows = await legacy.fetch_batch(None, BATCH_SIZE)
    bounds = [b for b in [await legacy.id_bounds()] if b is not None]
    async with shelf.storage.read(bulk=True) as conn:
        bounds += [b for b in [await legacy_log.pending_id_bounds(conn)] if b is not None]
    fingerprint = library_fingerprint(first_rows)
    known_by = [(r.legacy_id, m) for r in rows[:FINGERPRINT_ROWS] if (m := created_mark(r))]
    library_id, tag_map = await _prepare(
        shelf, (fingerprint, known_by), str(legacy_db), legacy_tags, report
    )
    run = _Run(legacy, images, report, library_id, tag_map, FreshPendingIds(bounds))
    report.db_migration["legacy_models"] = total
    with Progress.use(progress, total, "legacy import", bar) as progress:
        while rows:
            await _migrate_batch(shelf, run, rows, progress)
            crashpoint("legacy.batch_done")
            rows = await legacy.fetch_batch(rows[-1].legacy_id, BATCH_SIZE)
    return report


async def _prepare(
    shelf: Shelf,
    identity: tuple[str, list[tuple[int, str]]],
    source: str,
    legacy_tags: list[tuple[int, Any]],
    report: MigrationReport,
) -> tuple[int, dict[int, int]]:
    """One change before the batches: the library is registered and its tags brought in
    (both idempotent: a re-run finds them). `identity`: the library's fingerprint and the
    (legacy id, created_mark) of its first rows. Returns the library's id and the tag map."""
    fingerprint, first_rows = identity
    async with shelf.changes.change() as change:
        library_id, seen = await legacy_log.register_library(
            change.tx, fingerprint, source, first_rows
        )
        tag_map = await migrate_tags(change, library_id, legacy_tags, report)
    report.library = {"fingerprint": fingerprint, "seen_before": seen}
    return library_id, tag_map


async def _migrate_batch(
    shelf: Shelf, run: _Run, rows: list[LegacyRow], progress: Progress
) -> None:
    """Plan the rows of a batch, then stage and write them a few at a time, telling `progress`
    of each row once it is written (or found not to need writing)."""
    tags_by_model = await _legacy_tags(run, [r.legacy_id for r in rows])
    plans = await shelf.run_cpu(plan_rows, rows, tags_by_model)
    plans = await _plans_to_write(shelf, run, plans)
    progress.advance(len(rows) - len(plans))
    for part in by_images(plans, IMAGES_PER_CHANGE):
        await _migrate_part(shelf, run, part)
        progress.advance(len(part))


async def _migrate_part(shelf: Shelf, run: _Run, plans: list[LegacyPlan]) -> None:
    """Stage the images of `plans` and write them in one change."""
    async with shelf.changes.staging() as staging:
        staged = await stage_images(shelf, plans, staging, run.images, run.report)
        # A savepoint per row costs two statements; they are taken only when the database
        # has refused a row of this batch, to write it again with that row alone undone.
        try:
            written = await _write_batch(shelf, run, plans, staging, staged, alone=False)
        except PartRefused:
            written = await _write_batch(shelf, run, plans, staging, staged, alone=True)
    for plan, images, refusal in written:
        _count_written(run.report, plan, images, refusal)


async def _legacy_tags(run: _Run, ids: list[int]) -> dict[int, list[int]]:
    result: dict[int, list[int]] = {}
    for model_id, tag_id in await run.legacy.fetch_model_tags(ids):
        # Links are as the file holds them: only integer pairs naming a migrated tag count.
        if type(model_id) is int and type(tag_id) is int and tag_id in run.tag_map:
            result.setdefault(model_id, []).append(run.tag_map[tag_id])
    return result


async def _plans_to_write(shelf: Shelf, run: _Run, plans: list[LegacyPlan]) -> list[LegacyPlan]:
    """Drop rows of this library brought in before and rows that cannot be served; send
    hashed duplicates to pending (nothing is lost, and promotion with a strategy can resolve
    them); give a new pending id to a row whose id another library's pending model has."""
    ids = [p.legacy_id for p in plans]
    hashes = [p.sha256 for p in plans if p.sha256]
    async with shelf.storage.read(bulk=True) as conn:
        done = await legacy_log.migrated_ids(conn, run.library_id, ids)
        taken = await legacy_log.used_pending_ids(conn, ids)
        existing = await models.existing_paths(conn, hashes)
        at_path = [p.sha256 for p in plans if p.sha256 in existing and p.legacy_id not in done]
        found = {m.sha256: m for m in await models.fetch_models(conn, at_path)}
    held = await shelf.run_cpu(rows_held, plans, found) if found else set()
    report = run.report
    to_write: list[LegacyPlan] = []
    seen: set[str] = set()
    for plan in plans:
        if plan.legacy_id in done or plan.legacy_id in held:
            report.count("already_migrated")
            continue
        if plan.refused is None:
            _place(plan, existing, seen, taken, run)
        _report_problems(plan, report)
        if plan.refused is not None:
            report.count("rows_refused")
            continue
        to_write.append(plan)
    return to_write


def _place(
    plan: LegacyPlan, existing: dict[str, str | None], seen: set[str], taken: set[int], run: _Run
) -> None:
    if plan.sha256 and (plan.sha256 in existing or plan.sha256 in seen):
        plan.problems.append("same SHA256 as a model already in the library; sent to pending")
        plan.to_pending = True
        run.report.count("duplicates_to_pending")
    if plan.sha256:
        seen.add(plan.sha256)
    if plan.goes_to_pending and plan.legacy_id in taken:
        fresh = run.fresh_ids.take()
        if fresh is None:
            plan.refused = "its id is taken and no pending id is free"
            return
        plan.pending_id = fresh
        plan.problems.append(
            f"pending id {plan.legacy_id} belongs to a model from another library; "
            f"this row is pending as id {fresh}"
        )
        run.report.count("pending_renumbered")


def _report_problems(plan: LegacyPlan, report: MigrationReport) -> None:
    if plan.problems or plan.refused:
        report.count("rows_with_problems")
    extra = {} if plan.pending_id == plan.legacy_id else {"pending_id": plan.pending_id}
    for text in plan.problems:
        report.problem(plan.legacy_id, text, **extra)
    if plan.refused is not None:
        report.problem(plan.legacy_id, f"not migrated: {plan.refused}")


async def _write_batch(
    shelf: Shelf,
    run: _Run,
    plans: list[LegacyPlan],
    staging: Staging,
    staged: StagedImages,
    *,
    alone: bool,
) -> list[tuple[LegacyPlan, int, str | None]]:
    """Write the rows of a batch in one change: (plan, images placed, why the database
    refused it or None) for each. With `alone`, a refused row is undone alone and the rest is
    written; without it, PartRefused ends the whole change."""
    written: list[tuple[LegacyPlan, int, str | None]] = []
    # The models it writes are locked, as every change to a model is: a reader waits for a
    # model's change (Shelf.settled) only while it is locked, and must not list renditions
    # committed but not yet moved into place.
    new_models = [p.sha256 for p in plans if p.sha256 and not p.goes_to_pending]
    async with shelf.changes.change(lock=new_models, staging=staging) as change:
        for plan in plans:
            try:
                async with change.part(alone=alone):
                    if plan.goes_to_pending:
                        images = await _write_pending(shelf, run, change, plan, staged)
                    else:
                        images = await _write_model(shelf, run, change, plan, staged)
            except PartRefused as exc:
                if not alone:
                    raise
                written.append((plan, 0, exc.detail))
                continue
            written.append((plan, images, None))
    return written


def _count_written(
    report: MigrationReport, plan: LegacyPlan, images: int, refusal: str | None
) -> None:
    if refusal is not None:
        report.count("rows_refused")
        report.problem(plan.legacy_id, f"not migrated: {refusal}")
    elif plan.goes_to_pending:
        report.count("pending_created")
        report.count("pending_images_copied", images)
    else:
        report.count("models_imported")
        report.count("renditions_created", images)


async def _write_model(
    shelf: Shelf, run: _Run, change: Change, plan: LegacyPlan, staged: StagedImages
) -> int:
    sha256 = plan.sha256 or ""
    renditions = staged.renditions.get(plan.legacy_id, [])
    await models.insert_model(change.tx, sha256, plan.fields)
    await models.add_model_tags(change.tx, sha256, plan.tag_ids)
    for seq, image in enumerate(renditions):
        await image_index.add_image(change.tx, sha256, seq)
        for quality in qualities():
            change.move(image.file(quality), shelf.folder.rendition_path(sha256, seq, quality))
    await legacy_log.log_migrated(
        change.tx, run.library_id, plan.legacy_id, "model", plan.sha256, None, plan.created_mark
    )
    return len(renditions)


async def _write_pending(
    shelf: Shelf, run: _Run, change: Change, plan: LegacyPlan, staged: StagedImages
) -> int:
    pending_id = plan.legacy_id if plan.pending_id is None else plan.pending_id
    await pending.insert_pending(change.tx, pending_id, plan.sha256, plan.fields, plan.tag_ids)
    original = staged.originals.get(plan.legacy_id)
    if original is not None:
        path, ext = original
        await pending.set_pending_image(change.tx, pending_id, ext)
        change.move(path, shelf.folder.pending_path(pending_id, ext))
    await legacy_log.log_migrated(
        change.tx,
        run.library_id,
        plan.legacy_id,
        "pending",
        plan.sha256,
        pending_id,
        plan.created_mark,
    )
    return 0 if original is None else 1
