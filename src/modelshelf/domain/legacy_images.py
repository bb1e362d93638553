"""Stage 1's images: each file a legacy row lists is looked up in the legacy images folder (and
never outside it, symlinks resolved), then rendered into renditions for a model or copied
unchanged for a pending model, into staging. A file that cannot be used is reported, never
fatal; a full disk ends the batch, and no rendering thread outlives it."""

from __future__ import annotations

import asyncio
import contextlib
import stat
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from modelshelf.domain.legacy_plan import LegacyPlan
from modelshelf.domain.legacy_report import MigrationReport
from modelshelf.domain.shelf import Shelf
from modelshelf.errors import ImageError, TooLarge
from modelshelf.imagefolder import StagedImage
from modelshelf.storage.change import Staging

T = TypeVar("T")


class _Unusable(Exception):
    """A listed image that cannot be read; `count` names the report's count for it."""

    def __init__(self, count: str, text: str) -> None:
        super().__init__(text)
        self.count = count
        self.text = text


@dataclass
class StagedImages:
    """What a batch staged, by legacy id: renditions of models, the original of pending ones."""

    renditions: dict[int, list[StagedImage]] = field(default_factory=dict)
    originals: dict[int, tuple[Path, str]] = field(default_factory=dict)


async def stage_images(
    shelf: Shelf,
    plans: list[LegacyPlan],
    staging: Staging,
    images: Path,
    report: MigrationReport,
) -> StagedImages:
    """Stage the images of these plans, `workers` at a time. Raises StorageFull (the other
    renders are stopped and waited for first)."""
    staged = StagedImages()
    root = await shelf.run_files(images.resolve)
    gate = asyncio.Semaphore(shelf.settings.workers)

    async def stage(plan: LegacyPlan) -> None:
        async with gate:
            if plan.goes_to_pending:
                await _stage_original(shelf, staging, staged, plan, root, report)
            else:
                await _stage_renditions(shelf, staging, staged, plan, root, report)

    await _all_or_none(stage(p) for p in plans if p.image_names)
    return staged


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
    shelf: Shelf,
    staging: Staging,
    staged: StagedImages,
    plan: LegacyPlan,
    root: Path,
    report: MigrationReport,
) -> None:
    renditions = staged.renditions.setdefault(plan.legacy_id, [])
    for name in plan.image_names:
        report.count("images_listed")
        try:
            source = await shelf.run_files(find_legacy_image, root, name)
            folder = await staging.new_folder()
            renditions.append(
                await _to_the_end(shelf, name, shelf.folder.render_into, source, folder)
            )
        except _Unusable as exc:
            report.count(exc.count)
            report.problem(plan.legacy_id, exc.text)


async def _stage_original(
    shelf: Shelf,
    staging: Staging,
    staged: StagedImages,
    plan: LegacyPlan,
    root: Path,
    report: MigrationReport,
) -> None:
    report.count("images_listed", len(plan.image_names))
    for name in plan.image_names:  # the first listed image that can be used
        try:
            source = await shelf.run_files(find_legacy_image, root, name)
            folder = await staging.new_folder()
            copied = await _to_the_end(shelf, name, shelf.folder.copy_original_into, source, folder)
        except _Unusable as exc:
            report.count(exc.count)
            report.problem(plan.legacy_id, exc.text)
            continue
        staged.originals[plan.legacy_id] = copied
        return


def find_legacy_image(root: Path, name: str) -> Path:
    """The file `name` in the legacy images folder `root` (already resolved), every symlink
    resolved. Raises _Unusable unless it is a regular file inside that folder."""
    shown = _shown(name)
    try:
        source = (root / name).resolve()
        if not source.is_relative_to(root):
            raise _Unusable(
                "images_outside",
                f"image {shown} leads outside the legacy images folder; it was not read",
            )
        info = source.stat()
    except FileNotFoundError:
        raise _Unusable(
            "images_missing", f"image {shown} is not in the legacy images folder"
        ) from None
    except (OSError, RuntimeError, ValueError) as exc:  # too long, a symlink loop, ...
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise _Unusable("images_missing", f"image {shown} cannot be looked up: {reason}") from None
    if not stat.S_ISREG(info.st_mode):
        raise _Unusable("images_unreadable", f"image {shown} is not a regular file")
    return source


async def _to_the_end(shelf: Shelf, name: str, func: Callable[..., T], *args: Any) -> T:
    """`shelf.run_cpu`, except that a cancelled caller first waits for the thread to finish (a
    batch that gave up must not leave a thread writing into the staging it removes). Raises
    _Unusable for an image that cannot be decoded or read."""
    task = asyncio.ensure_future(shelf.run_cpu(func, *args))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        while not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([task])
        if not task.cancelled():
            task.exception()  # retrieved: the cancellation is what the caller hears about
        raise
    except (ImageError, TooLarge) as exc:
        raise _Unusable("images_unreadable", f"image {_shown(name)}: {exc.detail}") from None
    except OSError as exc:  # run_cpu has turned a full disk into StorageFull already
        raise _Unusable(
            "images_unreadable", f"image {_shown(name)} cannot be read: {exc.strerror or exc}"
        ) from None


def _shown(name: str) -> str:
    return name if len(name) <= 200 else name[:200] + "..."
