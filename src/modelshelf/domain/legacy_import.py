"""Stage 1: bring a legacy library in. Hashed models go to `models` with their images rendered
as renditions; unhashed ones (and hashed duplicates) go to `pending_import` with their first
image copied unchanged. Works in batches, so memory stays flat, and skips legacy rows already
brought in, so running it twice adds nothing twice."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite

from modelshelf.crashpoints import crashpoint
from modelshelf.domain.legacy_plan import LegacyPlan, plan_rows
from modelshelf.domain.shelf import Shelf
from modelshelf.errors import Forbidden, ImageError, InvalidInput, Locked, NotFound, TooLarge
from modelshelf.imagefolder import StagedImage
from modelshelf.progress import Progress
from modelshelf.renditions import qualities
from modelshelf.storage import image_index, legacy_log, legacy_source, models, pending, tags
from modelshelf.storage.change import Change, Staging

log = logging.getLogger(__name__)

BATCH_SIZE = 200
MAX_PROBLEMS_LISTED = 1000


@dataclass
class MigrationReport:
    db_migration: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            (
                "legacy_models",
                "models_imported",
                "pending_created",
                "duplicates_to_pending",
                "already_migrated",
                "rows_with_problems",
                "tags_created",
                "tags_reused",
            ),
            0,
        )
    )
    image_migration: dict[str, int] = field(
        default_factory=lambda: dict.fromkeys(
            (
                "images_listed",
                "renditions_created",
                "pending_images_copied",
                "images_missing",
                "images_unreadable",
            ),
            0,
        )
    )
    problems: list[dict[str, Any]] = field(default_factory=list)
    problems_not_listed: int = 0

    def problem(self, legacy_id: int | None, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS_LISTED:
            self.problems.append({"legacy_id": legacy_id, "problem": text})
        else:
            self.problems_not_listed += 1


@dataclass
class _Batch:
    plans: list[LegacyPlan]
    staging: Staging
    renditions: dict[int, list[StagedImage]] = field(default_factory=dict)
    originals: dict[int, tuple[Path, str]] = field(default_factory=dict)


async def request_inputs(
    shelf: Shelf, legacy_db_path: str, legacy_images_dir: str
) -> tuple[Path, Path]:
    """The legacy database and images folder a remote caller names: both must lie under
    `legacy_root` once symlinks and `..` are resolved, and exist. Raises Forbidden,
    InvalidInput, NotFound."""
    root = shelf.settings.effective_legacy_root
    db_path = await shelf.run_files(_inside, root, legacy_db_path)
    images_dir = await shelf.run_files(_inside, root, legacy_images_dir)
    await _require_inputs(shelf, db_path, images_dir)
    return db_path, images_dir


def _inside(root: Path, given: str) -> Path:
    if "\x00" in given:
        raise InvalidInput("a path cannot contain NUL characters")
    resolved = (root / given).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise Forbidden(f"{given} is outside the legacy root {root}")
    return resolved


async def _require_inputs(shelf: Shelf, legacy_db: Path, legacy_images: Path) -> None:
    if not await shelf.run_files(legacy_db.is_file):
        raise NotFound(f"legacy database {legacy_db} does not exist")
    if not await shelf.run_files(legacy_images.is_dir):
        raise NotFound(f"legacy images folder {legacy_images} does not exist")


async def migrate_legacy(
    shelf: Shelf,
    legacy_db: Path,
    legacy_images: Path,
    bar: bool | None = False,
    progress: Progress | None = None,
) -> MigrationReport:
    """Run stage 1, telling `progress` (if given) the rows done. Raises NotFound for a missing
    input, InvalidInput for a file that is not a legacy library, Locked if a migration is
    already running. Broken rows are reported in the answer, never fatal."""
    await _require_inputs(shelf, legacy_db, legacy_images)
    if shelf.migration_lock.locked():
        raise Locked("a legacy migration is already running")
    async with shelf.migration_lock, shelf.changes.staging() as scratch:
        legacy = await legacy_source.open_legacy_database(legacy_db, await scratch.new_folder())
        try:
            return await _migrate(shelf, legacy, legacy_images, bar, progress)
        finally:
            await legacy.close()


async def _migrate(
    shelf: Shelf,
    legacy: aiosqlite.Connection,
    images: Path,
    bar: bool | None,
    progress: Progress | None,
) -> MigrationReport:
    report = MigrationReport()
    tag_map = await _migrate_tags(shelf, legacy, report)
    total = await legacy_source.count_models(legacy)
    report.db_migration["legacy_models"] = total
    last_id = -(2**63)
    with Progress.use(progress, total, "legacy import", bar) as progress:
        while rows := await legacy_source.fetch_batch(legacy, last_id, BATCH_SIZE):
            last_id = int(rows[-1]["id"])
            await _migrate_batch(shelf, legacy, rows, images, tag_map, report)
            progress.advance(len(rows))
            crashpoint("legacy.batch_done")
    return report


async def _migrate_tags(
    shelf: Shelf, legacy: aiosqlite.Connection, report: MigrationReport
) -> dict[int, int]:
    """Tags keep their legacy ids; a name already present keeps the id it has here."""
    legacy_tags = await legacy_source.fetch_tags(legacy)
    mapping: dict[int, int] = {}
    async with shelf.changes.change() as change:
        for legacy_id, name in legacy_tags:
            if not isinstance(name, str) or not name.strip():
                report.problem(None, f"tag {legacy_id} has no name; not migrated")
                continue
            found = await tags.tag_id_by_name(change.tx, name)
            if found is not None:
                mapping[legacy_id] = found
                report.db_migration["tags_reused"] += 1
                continue
            id_taken = await tags.tag_id_taken(change.tx, legacy_id)
            mapping[legacy_id] = await tags.insert_tag(
                change.tx, name, None if id_taken else legacy_id
            )
            report.db_migration["tags_created"] += 1
    return mapping


async def _migrate_batch(
    shelf: Shelf,
    legacy: aiosqlite.Connection,
    rows: list[dict[str, Any]],
    images: Path,
    tag_map: dict[int, int],
    report: MigrationReport,
) -> None:
    tags_by_model = await _legacy_tags(legacy, [int(r["id"]) for r in rows], tag_map)
    plans = await shelf.run_cpu(plan_rows, rows, tags_by_model)
    async with shelf.changes.staging() as staging:
        batch = _Batch(await _new_plans(shelf, plans, report), staging)
        await _stage_images(shelf, batch, images, report)
        async with shelf.changes.change(staging=staging) as change:
            await _write_batch(shelf, change, batch, report)


async def _legacy_tags(
    legacy: aiosqlite.Connection, ids: list[int], tag_map: dict[int, int]
) -> dict[int, list[int]]:
    result: dict[int, list[int]] = {}
    for model_id, tag_id in await legacy_source.fetch_model_tags(legacy, ids):
        if tag_id in tag_map:
            result.setdefault(int(model_id), []).append(tag_map[tag_id])
    return result


async def _new_plans(
    shelf: Shelf, plans: list[LegacyPlan], report: MigrationReport
) -> list[LegacyPlan]:
    """Drop rows brought in before; send hashed duplicates to pending (nothing is lost, and
    promotion with a strategy can resolve them)."""
    ids = [p.legacy_id for p in plans]
    hashes = [p.sha256 for p in plans if p.sha256]
    async with shelf.storage.read() as conn:
        done = await legacy_log.migrated_ids(conn, ids) | await pending.existing_pending_ids(
            conn, ids
        )
        existing = await models.existing_paths(conn, hashes)
    fresh: list[LegacyPlan] = []
    seen: set[str] = set()
    for plan in plans:
        if plan.legacy_id in done or (
            plan.sha256 in existing and existing[plan.sha256] == plan.fields["path"]
        ):
            report.db_migration["already_migrated"] += 1
            continue
        if plan.sha256 and (plan.sha256 in existing or plan.sha256 in seen):
            plan.problems.append("same SHA256 as a model already in the library; sent to pending")
            plan.to_pending = True
            report.db_migration["duplicates_to_pending"] += 1
        if plan.sha256:
            seen.add(plan.sha256)
        if plan.problems:
            report.db_migration["rows_with_problems"] += 1
            for text in plan.problems:
                report.problem(plan.legacy_id, text)
        fresh.append(plan)
    return fresh


def _goes_to_pending(plan: LegacyPlan) -> bool:
    return plan.sha256 is None or plan.to_pending


async def _stage_images(shelf: Shelf, batch: _Batch, images: Path, report: MigrationReport) -> None:
    gate = asyncio.Semaphore(shelf.settings.workers)

    async def stage(plan: LegacyPlan) -> None:
        async with gate:
            if _goes_to_pending(plan):
                await _stage_original(shelf, batch, plan, images, report)
            else:
                await _stage_renditions(shelf, batch, plan, images, report)

    await _all_or_none(stage(p) for p in batch.plans if p.image_names)


async def _all_or_none(work: Iterable[Awaitable[None]]) -> None:
    """Run `work` concurrently; the first failure cancels the rest (a full disk must not let
    sibling renders go on writing) and is raised as itself."""
    try:
        async with asyncio.TaskGroup() as group:
            for item in work:
                group.create_task(_awaited(item))
    except BaseExceptionGroup as failures:
        raise failures.exceptions[0] from None


async def _awaited(item: Awaitable[None]) -> None:
    await item


async def _stage_renditions(
    shelf: Shelf, batch: _Batch, plan: LegacyPlan, images: Path, report: MigrationReport
) -> None:
    staged: list[StagedImage] = batch.renditions.setdefault(plan.legacy_id, [])
    for name in plan.image_names:
        report.image_migration["images_listed"] += 1
        source = await _source(shelf, images, name, plan, report)
        if source is None:
            continue
        folder = await batch.staging.new_folder()
        try:
            staged.append(await shelf.run_cpu(shelf.folder.render_into, source, folder))
        except (ImageError, TooLarge) as exc:
            report.image_migration["images_unreadable"] += 1
            report.problem(plan.legacy_id, f"image {name}: {exc.detail}")


async def _stage_original(
    shelf: Shelf, batch: _Batch, plan: LegacyPlan, images: Path, report: MigrationReport
) -> None:
    report.image_migration["images_listed"] += len(plan.image_names)
    for name in plan.image_names:  # the first listed image that can be used
        source = await _source(shelf, images, name, plan, report)
        if source is None:
            continue
        folder = await batch.staging.new_folder()
        try:
            batch.originals[plan.legacy_id] = await shelf.run_cpu(
                shelf.folder.copy_original_into, source, folder
            )
        except (ImageError, TooLarge) as exc:
            report.image_migration["images_unreadable"] += 1
            report.problem(plan.legacy_id, f"image {name}: {exc.detail}")
            continue
        return


async def _source(
    shelf: Shelf, images: Path, name: str, plan: LegacyPlan, report: MigrationReport
) -> Path | None:
    source = images / name
    if await shelf.run_files(source.is_file):
        return source
    report.image_migration["images_missing"] += 1
    report.problem(plan.legacy_id, f"image {name} is not in the legacy images folder")
    return None


async def _write_batch(
    shelf: Shelf, change: Change, batch: _Batch, report: MigrationReport
) -> None:
    for plan in batch.plans:
        if _goes_to_pending(plan):
            await _write_pending(shelf, change, plan, batch, report)
        else:
            await _write_model(shelf, change, plan, batch, report)


async def _write_model(
    shelf: Shelf, change: Change, plan: LegacyPlan, batch: _Batch, report: MigrationReport
) -> None:
    sha256 = plan.sha256 or ""
    staged = batch.renditions.get(plan.legacy_id, [])
    await models.insert_model(change.tx, sha256, plan.fields)
    await models.add_model_tags(change.tx, sha256, plan.tag_ids)
    for seq, image in enumerate(staged):
        await image_index.add_image(change.tx, sha256, seq)
        for quality in qualities():
            change.move(image.file(quality), shelf.folder.rendition_path(sha256, seq, quality))
    await legacy_log.log_migrated(change.tx, plan.legacy_id, "model", plan.sha256)
    report.db_migration["models_imported"] += 1
    report.image_migration["renditions_created"] += len(staged)


async def _write_pending(
    shelf: Shelf, change: Change, plan: LegacyPlan, batch: _Batch, report: MigrationReport
) -> None:
    await pending.insert_pending(change.tx, plan.legacy_id, plan.sha256, plan.fields, plan.tag_ids)
    original = batch.originals.get(plan.legacy_id)
    if original is not None:
        path, ext = original
        await pending.set_pending_image(change.tx, plan.legacy_id, ext)
        change.move(path, shelf.folder.pending_path(plan.legacy_id, ext))
        report.image_migration["pending_images_copied"] += 1
    await legacy_log.log_migrated(change.tx, plan.legacy_id, "pending", plan.sha256)
    report.db_migration["pending_created"] += 1
