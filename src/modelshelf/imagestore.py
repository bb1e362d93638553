"""The images folder: rendition files, pending originals, staging, and the index kept in step.

Layout (see the contract): images/<sha256>_<seq>_<quality>.webp and images/pending/<id>.<ext>.
Staging lives in images/.staging/, a name no image URL can match.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import shutil
import stat
import uuid
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from modelshelf import filejournal
from modelshelf.errors import Conflict, InvalidInput, NotFound, StorageFull
from modelshelf.executors import Executors
from modelshelf.filejournal import FileOp
from modelshelf.images import QUALITIES, render_renditions, verify_image
from modelshelf.locks import KeyedLocks
from modelshelf.records import image_name
from modelshelf.storage import Storage, queries
from modelshelf.storage.database import is_disk_full

log = logging.getLogger(__name__)

T = TypeVar("T")

# <sha256>_<seq>.webp or <sha256>.webp (seq 0). Anything else never reaches the filesystem.
PUBLIC_NAME = re.compile(r"(?P<hash>[0-9a-f]{64})(?:_(?P<seq>0|[1-9][0-9]{0,8}))?\.webp")
RENDITION_FILE = re.compile(r"([0-9a-f]{64})_(0|[1-9][0-9]*)_(high|medium|low)\.webp")
PENDING_FILE = re.compile(r"(0|[1-9][0-9]{0,18})\.([a-z0-9]{1,5})")
EXTENSION_BY_LOADER = {
    "jpegload": "jpg",
    "pngload": "png",
    "webpload": "webp",
    "gifload": "gif",
    "tiffload": "tiff",
    "heifload": "avif",
}
PENDING_EXTENSIONS = {"png", "jpg", "jpeg", "webp", "gif", "tif", "tiff", "avif", "heic", "bmp"}


@dataclass(frozen=True)
class StagedImage:
    """Three renditions rendered into a staging folder, waiting to be moved into place."""

    folder: Path

    def file(self, quality: str) -> Path:
        return self.folder / f"{quality}.webp"


def parse_image_name(name: str) -> tuple[str, int]:
    """(sha256, seq) of a public image name. Raises InvalidInput for anything else."""
    match = PUBLIC_NAME.fullmatch(name)
    if match is None:
        raise InvalidInput(
            f"{name!r} is not an image name; expected <sha256>_<seq>.webp or <sha256>.webp"
        )
    return match["hash"], int(match["seq"] or 0)


class ImageStore:
    """Owns the images folder of a data directory."""

    def __init__(
        self,
        data_dir: Path,
        storage: Storage,
        executors: Executors,
        model_locks: KeyedLocks,
        max_pixels: int,
    ) -> None:
        self.data_dir = data_dir
        self.root = data_dir / "images"
        self.pending_dir = self.root / "pending"
        self.staging_dir = self.root / ".staging"
        self.storage = storage
        self.executors = executors
        self.model_locks = model_locks
        self.max_pixels = max_pixels

    # --- paths ----------------------------------------------------------------------------

    def rendition_path(self, sha256: str, seq: int, quality: str) -> Path:
        return self.root / f"{sha256}_{seq}_{quality}.webp"

    def pending_path(self, pending_id: int, ext: str) -> Path:
        return self.pending_dir / f"{pending_id}.{ext}"

    async def run(self, func: Callable[..., T], *args: Any) -> T:
        """Run short blocking file work in the executor; a full disk becomes StorageFull."""
        return await self._run_in(self.executors.files, func, *args)

    async def run_cpu(self, func: Callable[..., T], *args: Any) -> T:
        """Run decoding and rendering in the CPU executor; a full disk becomes StorageFull."""
        return await self._run_in(self.executors.cpu, func, *args)

    async def _run_in(self, executor: Executor, func: Callable[..., T], *args: Any) -> T:
        try:
            return await asyncio.get_running_loop().run_in_executor(executor, func, *args)
        except OSError as exc:
            if is_disk_full(exc):
                raise StorageFull(
                    f"no space left for the images folder ({exc.strerror}); nothing was changed"
                ) from exc
            raise

    # --- listing and serving --------------------------------------------------------------

    async def list_names(self, sha256: str) -> list[str]:
        """Names of a model's images ordered by seq, consistent with the files on disk."""
        # A change to this model's images commits the index and then moves files; waiting for
        # it to finish means a caller never lists an image whose files are not in place yet.
        await self.model_locks.wait_idle(sha256)
        async with self.storage.read() as conn:
            return [image_name(sha256, s) for s in await queries.image_seqs(conn, sha256)]

    async def rendition_file(self, name: str, quality: str) -> Path:
        """The file to serve for a public name. Raises InvalidInput, NotFound."""
        if quality not in QUALITIES:
            raise InvalidInput(f"quality must be one of {', '.join(QUALITIES)}, not {quality!r}")
        sha256, seq = parse_image_name(name)
        await self.model_locks.wait_idle(sha256)
        return await self._regular_file(self.rendition_path(sha256, seq, quality), name)

    async def pending_file(self, pending_id: int) -> Path:
        """The original image of a pending model. Raises NotFound."""
        async with self.storage.read() as conn:
            ext = await queries.pending_image_ext(conn, pending_id)
        if ext is None:
            raise NotFound(f"pending model {pending_id} has no image")
        return await self._regular_file(self.pending_path(pending_id, ext), f"pending/{pending_id}")

    async def _regular_file(self, path: Path, name: str) -> Path:
        # lstat, not stat: a symlink planted in the folder must not lead outside it.
        try:
            info = await self.run(path.lstat)
        except FileNotFoundError:
            raise NotFound(f"no image {name}") from None
        if not stat.S_ISREG(info.st_mode):
            raise NotFound(f"no image {name}")
        return path

    # --- sequences ------------------------------------------------------------------------

    async def get_next_sequence_index(
        self, sha256: str, tx: aiosqlite.Connection | None = None
    ) -> int:
        """The first free seq of a model (0 for none). To allocate a seq, pass the write
        transaction that uses it: the single writer makes the allocation race-free."""
        if tx is not None:
            return await queries.next_image_seq(tx, sha256)
        async with self.storage.read() as conn:
            return await queries.next_image_seq(conn, sha256)

    async def promote_pending_image(
        self, pending_id: int, sha256: str, seq: int, *, replace: bool = False
    ) -> str:
        """Render pending model `pending_id`'s original as image `seq` of model `sha256`.

        An existing image at `seq` is replaced only when `replace` is true; `seq` may be at
        most the next free one, so seqs stay dense. The pending original is removed only once
        the renditions are in place. Returns the image's public name. Raises NotFound (no
        model, no pending image), Conflict (seq taken), InvalidInput (seq past the end),
        ImageError, StorageFull.
        """
        async with self.storage.read() as conn:
            ext = await queries.pending_image_ext(conn, pending_id)
        if ext is None:
            raise NotFound(f"pending model {pending_id} has no image")
        staged = await self.stage_renditions(self.pending_path(pending_id, ext))
        committed = False
        try:
            async with self.model_locks.hold(sha256):
                async with self.storage.write() as tx:
                    await self._check_seq(tx, sha256, seq, replace)
                    await queries.add_image(tx, sha256, seq)
                    await queries.forget_pending_image(tx, pending_id)
                    ops = self.place_renditions(staged, sha256, seq)
                    ops.append(self.remove_pending(pending_id, ext))  # after the moves
                    journal_id = await self.record(tx, ops)
                committed = True
                await self.carry_out(journal_id, ops)
        finally:
            if not committed:  # after the commit the staged files belong to the journal
                await self.discard(staged.folder)
        return image_name(sha256, seq)

    async def _check_seq(
        self, tx: aiosqlite.Connection, sha256: str, seq: int, replace: bool
    ) -> None:
        if await queries.fetch_model_row(tx, sha256) is None:
            raise NotFound(f"no model with SHA256 {sha256}")
        free = await self.get_next_sequence_index(sha256, tx)
        if seq > free:
            raise InvalidInput(f"seq {seq} would leave a gap; the next free seq is {free}")
        if seq < free and not replace:
            raise Conflict(f"image {image_name(sha256, seq)} exists; ask to replace it")

    # --- staging --------------------------------------------------------------------------

    def _new_staging_folder(self) -> Path:
        folder = self.staging_dir / uuid.uuid4().hex
        folder.mkdir(parents=True)
        return folder

    async def stage_renditions(self, source: Path) -> StagedImage:
        """Render `source` into a new staging folder. Raises ImageError, ImageTooLarge,
        StorageFull; leaves nothing behind on failure."""
        return await self.run_cpu(self._stage_renditions, source)

    def _stage_renditions(self, source: Path) -> StagedImage:
        staged = StagedImage(self._new_staging_folder())
        try:
            render_renditions(source, {q: staged.file(q) for q in QUALITIES}, self.max_pixels)
        except BaseException:
            shutil.rmtree(staged.folder, ignore_errors=True)
            raise
        return staged

    async def stage_copy(self, source: Path) -> tuple[Path, str]:
        """Check that `source` is a whole, decodable image and copy it, unchanged, to staging.

        Returns the staged file and the extension to keep it under. Raises ImageError,
        ImageTooLarge, StorageFull.
        """
        return await self.run_cpu(self._stage_copy, source)

    def _stage_copy(self, source: Path) -> tuple[Path, str]:
        info = verify_image(source, self.max_pixels)
        ext = source.suffix.lower().lstrip(".")
        if ext not in PENDING_EXTENSIONS:
            ext = EXTENSION_BY_LOADER.get(info.loader.removesuffix("_source"), "img")
        folder = self._new_staging_folder()
        target = folder / "original"
        try:
            shutil.copyfile(source, target)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return target, ext

    def new_upload_file(self) -> Path:
        """A fresh staging file for an upload being received."""
        return self._new_staging_folder() / "upload"

    async def discard(self, folder: Path) -> None:
        await self.run(shutil.rmtree, folder, True)

    # --- file operations for a change ----------------------------------------------------

    def place_renditions(self, staged: StagedImage, sha256: str, seq: int) -> list[FileOp]:
        """Operations that put staged renditions at image `seq`, replacing what is there."""
        ops = [
            filejournal.move(staged.file(q), self.rendition_path(sha256, seq, q), self.data_dir)
            for q in QUALITIES
        ]
        return [*ops, filejournal.rmtree(staged.folder, self.data_dir)]

    def place_pending(self, staged_original: Path, pending_id: int, ext: str) -> list[FileOp]:
        target = self.pending_path(pending_id, ext)
        return [
            filejournal.move(staged_original, target, self.data_dir),
            filejournal.rmtree(staged_original.parent, self.data_dir),
        ]

    def remove_pending(self, pending_id: int, ext: str) -> FileOp:
        return filejournal.unlink(self.pending_path(pending_id, ext), self.data_dir)

    async def record(self, tx: aiosqlite.Connection, ops: list[FileOp]) -> int:
        """Write the journal row for `ops` inside the caller's transaction."""
        cursor = await tx.execute(
            "INSERT INTO file_journal(created_at, ops) VALUES (?, ?)",
            (queries.now_ms(), json.dumps(ops)),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    async def carry_out(self, journal_id: int, ops: list[FileOp]) -> None:
        """After the commit: do the file operations, then forget the journal row.

        If the disk fails here the row stays and the next start finishes the job.
        """
        await self.run(filejournal.apply_file_ops, self.data_dir, ops)
        async with self.storage.write() as tx:
            await tx.execute("DELETE FROM file_journal WHERE id = ?", (journal_id,))
