"""Stage 1: bring a legacy library in. Hashed models go to `models` with their images rendered
as renditions; unhashed ones (and hashed duplicates) go to `pending_import` with their first
image copied unchanged. Works in batches, so memory stays flat, and skips legacy rows already
brought in, so running it twice adds nothing twice."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite

from modelshelf.errors import Forbidden, ImageError, InvalidInput, Locked, NotFound, TooLarge
from modelshelf.filejournal import FileOp
from modelshelf.imagestore import StagedImage
from modelshelf.legacy import LEGACY_COLUMNS, LegacyPlan, open_legacy_database, plan_rows
from modelshelf.progress import Progress
from modelshelf.shelf import Shelf
from modelshelf.storage import queries

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
    renditions: dict[int, list[StagedImage]] = field(default_factory=dict)
    originals: dict[int, tuple[Path, str]] = field(default_factory=dict)

    def staged_folders(self) -> list[Path]:
        folders = [s.folder for staged in self.renditions.values() for s in staged]
        return folders + [path.parent for path, _ in self.originals.values()]


async def migrate_legacy_from_request(
    shelf: Shelf, legacy_db_path: str, legacy_images_dir: str
) -> MigrationReport:
    """Stage 1 for a remote caller: both paths must lie under `legacy_root` once symlinks and
    `..` are resolved. Raises Forbidden otherwise, then as `migrate_legacy`."""
    root = shelf.settings.effective_legacy_root
    db_path = await shelf.images.run(_inside, root, legacy_db_path)
    images_dir = await shelf.images.run(_inside, root, legacy_images_dir)
    return await migrate_legacy(shelf, db_path, images_dir)


def _inside(root: Path, given: str) -> Path:
    if "\x00" in given:
        raise InvalidInput("a path cannot contain NUL characters")
    resolved = (root / given).resolve()
    if not resolved.is_relative_to(root.resolve()):
        raise Forbidden(f"{given} is outside the legacy root {root}")
    return resolved


async def migrate_legacy(
    shelf: Shelf, legacy_db: Path, legacy_images: Path, bar: bool | None = False
) -> MigrationReport:
    """Run stage 1. Raises NotFound for a missing input, InvalidInput for a file that is not a
    legacy library, Locked if a migration is already running. Broken rows are reported in the
    answer, never fatal."""
    if not await shelf.images.run(legacy_db.is_file):
        raise NotFound(f"legacy database {legacy_db} does not exist")
    if not await shelf.images.run(legacy_images.is_dir):
        raise NotFound(f"legacy images folder {legacy_images} does not exist")
    if shelf.migration_lock.locked():
        raise Locked("a legacy migration is already running")
    async with shelf.migration_lock:
        await shelf.images.run(lambda: shelf.images.staging_dir.mkdir(parents=True, exist_ok=True))
        legacy = await open_legacy_database(legacy_db, shelf.images.staging_dir)
        try:
            return await _migrate(shelf, legacy, legacy_images, bar)
        finally:
            await legacy.close()


async def _migrate(
    shelf: Shelf, legacy: aiosqlite.Connection, images: Path, bar: bool | None
) -> MigrationReport:
    report = MigrationReport()
    tag_map = await _migrate_tags(shelf, legacy, report)
    async with legacy.execute("SELECT count(*) FROM models") as cursor:
        row = await cursor.fetchone()
    total = int(row[0]) if row else 0
    report.db_migration["legacy_models"] = total
    last_id = -(2**63)
    with Progress(total, "legacy import", bar=bar) as progress:
        while rows := await _fetch_batch(legacy, last_id):
            last_id = int(rows[-1]["id"])
            await _migrate_batch(shelf, legacy, rows, images, tag_map, report)
            progress.advance(len(rows))
    return report


async def _migrate_tags(
    shelf: Shelf, legacy: aiosqlite.Connection, report: MigrationReport
) -> dict[int, int]:
    """Tags keep their legacy ids; a name already present keeps the id it has here."""
    async with legacy.execute("SELECT id, name FROM tags ORDER BY id") as cursor:
        legacy_tags = [(int(r[0]), r[1]) for r in await cursor.fetchall()]
    mapping: dict[int, int] = {}
    async with shelf.storage.write() as tx:
        for legacy_id, name in legacy_tags:
            if not isinstance(name, str) or not name.strip():
                report.problem(None, f"tag {legacy_id} has no name; not migrated")
                continue
            async with tx.execute("SELECT id FROM tags WHERE name = ?", (name,)) as cursor:
                found = await cursor.fetchone()
            if found is not None:
                mapping[legacy_id] = int(found[0])
                report.db_migration["tags_reused"] += 1
                continue
            async with tx.execute("SELECT 1 FROM tags WHERE id = ?", (legacy_id,)) as cursor:
                id_taken = await cursor.fetchone() is not None
            cursor2 = await tx.execute(
                "INSERT INTO tags(id, name) VALUES (?, ?)", (None if id_taken else legacy_id, name)
            )
            mapping[legacy_id] = int(cursor2.lastrowid or legacy_id)
            report.db_migration["tags_created"] += 1
    return mapping


async def _fetch_batch(legacy: aiosqlite.Connection, after_id: int) -> list[dict[str, Any]]:
    async with legacy.execute(
        f"SELECT {LEGACY_COLUMNS} FROM models WHERE id > ? ORDER BY id LIMIT ?",
        (after_id, BATCH_SIZE),
    ) as cursor:
        return [dict(r) for r in await cursor.fetchall()]


async def _migrate_batch(
    shelf: Shelf,
    legacy: aiosqlite.Connection,
    rows: list[dict[str, Any]],
    images: Path,
    tag_map: dict[int, int],
    report: MigrationReport,
) -> None:
    tags_by_model = await _legacy_tags(legacy, [int(r["id"]) for r in rows], tag_map)
    loop = asyncio.get_running_loop()
    plans = await loop.run_in_executor(shelf.executors.cpu, plan_rows, rows, tags_by_model)
    batch = _Batch(await _new_plans(shelf, plans, report))
    try:
        await _stage_images(shelf, batch, images, report)
        async with shelf.storage.write() as tx:
            ops = await _write_batch(shelf, tx, batch, report)
            journal_id = await shelf.images.record(tx, ops)
        batch.renditions.clear()
        batch.originals.clear()
        await shelf.images.carry_out(journal_id, ops)
    finally:
        for folder in batch.staged_folders():  # only left if the batch failed
            await shelf.images.discard(folder)


async def _legacy_tags(
    legacy: aiosqlite.Connection, ids: list[int], tag_map: dict[int, int]
) -> dict[int, list[int]]:
    marks = ",".join("?" * len(ids))
    async with legacy.execute(
        f"SELECT model_id, tag_id FROM model_tags WHERE model_id IN ({marks})", ids
    ) as cursor:
        pairs = await cursor.fetchall()
    result: dict[int, list[int]] = {}
    for model_id, tag_id in pairs:
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
    marks = ",".join("?" * len(ids))
    async with shelf.storage.read() as conn:
        async with conn.execute(
            f"SELECT legacy_id FROM legacy_import_log WHERE legacy_id IN ({marks})"
            f" UNION SELECT id FROM pending_import WHERE id IN ({marks})",
            ids + ids,
        ) as cursor:
            done = {int(r[0]) for r in await cursor.fetchall()}
        existing = {
            r["sha256"]: r["path"]
            for r in [await queries.fetch_model_row(conn, h) for h in hashes]
            if r is not None
        }
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

    await asyncio.gather(*(stage(p) for p in batch.plans if p.image_names))


async def _stage_renditions(
    shelf: Shelf, batch: _Batch, plan: LegacyPlan, images: Path, report: MigrationReport
) -> None:
    staged: list[StagedImage] = batch.renditions.setdefault(plan.legacy_id, [])
    for name in plan.image_names:
        report.image_migration["images_listed"] += 1
        source = await _source(shelf, images, name, plan, report)
        if source is None:
            continue
        try:
            staged.append(await shelf.images.stage_renditions(source))
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
        try:
            batch.originals[plan.legacy_id] = await shelf.images.stage_copy(source)
        except (ImageError, TooLarge) as exc:
            report.image_migration["images_unreadable"] += 1
            report.problem(plan.legacy_id, f"image {name}: {exc.detail}")
            continue
        return


async def _source(
    shelf: Shelf, images: Path, name: str, plan: LegacyPlan, report: MigrationReport
) -> Path | None:
    source = images / name
    if await shelf.images.run(source.is_file):
        return source
    report.image_migration["images_missing"] += 1
    report.problem(plan.legacy_id, f"image {name} is not in the legacy images folder")
    return None


async def _write_batch(
    shelf: Shelf, tx: aiosqlite.Connection, batch: _Batch, report: MigrationReport
) -> list[FileOp]:
    ops: list[FileOp] = []
    for plan in batch.plans:
        if _goes_to_pending(plan):
            ops += await _write_pending(shelf, tx, plan, batch, report)
        else:
            ops += await _write_model(shelf, tx, plan, batch, report)
    return ops


async def _write_model(
    shelf: Shelf, tx: aiosqlite.Connection, plan: LegacyPlan, batch: _Batch, report: MigrationReport
) -> list[FileOp]:
    assert plan.sha256 is not None
    staged = batch.renditions.get(plan.legacy_id, [])
    await queries.insert_model(tx, plan.sha256, plan.fields)
    await queries.add_model_tags(tx, plan.sha256, plan.tag_ids)
    ops: list[FileOp] = []
    for seq, image in enumerate(staged):
        await queries.add_image(tx, plan.sha256, seq)
        ops += shelf.images.place_renditions(image, plan.sha256, seq)
    await _log(tx, plan, "model")
    report.db_migration["models_imported"] += 1
    report.image_migration["renditions_created"] += len(staged)
    return ops


async def _write_pending(
    shelf: Shelf, tx: aiosqlite.Connection, plan: LegacyPlan, batch: _Batch, report: MigrationReport
) -> list[FileOp]:
    fields = plan.fields
    await tx.execute(
        "INSERT INTO pending_import(id, path, sha256, name, type, size_bytes, created_at,"
        " meta_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            plan.legacy_id,
            fields["path"],
            plan.sha256,
            fields["name"],
            fields["type"],
            fields["size_bytes"],
            fields["created_at"],
            queries.dump_meta(fields["meta_json"]),
        ),
    )
    await tx.executemany(
        "INSERT OR IGNORE INTO pending_model_tags(model_id, tag_id) VALUES (?, ?)",
        [(plan.legacy_id, t) for t in plan.tag_ids],
    )
    ops: list[FileOp] = []
    original = batch.originals.get(plan.legacy_id)
    if original is not None:
        path, ext = original
        await tx.execute(
            "INSERT INTO pending_images(pending_id, ext) VALUES (?, ?)", (plan.legacy_id, ext)
        )
        ops = shelf.images.place_pending(path, plan.legacy_id, ext)
        report.image_migration["pending_images_copied"] += 1
    await _log(tx, plan, "pending")
    report.db_migration["pending_created"] += 1
    return ops


async def _log(tx: aiosqlite.Connection, plan: LegacyPlan, target: str) -> None:
    await tx.execute(
        "INSERT OR REPLACE INTO legacy_import_log(legacy_id, target, sha256, imported_at)"
        " VALUES (?, ?, ?, ?)",
        (plan.legacy_id, target, plan.sha256, queries.now_ms()),
    )
