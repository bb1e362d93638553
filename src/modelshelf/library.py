"""Browsing the library and changing a model's example images (upload, delete)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from modelshelf import filejournal
from modelshelf.errors import ImageError, InvalidInput, NotFound, TooLarge
from modelshelf.imagestore import StagedImage
from modelshelf.records import ModelRecord, PendingRecord, image_name, is_sha256
from modelshelf.shelf import Shelf
from modelshelf.storage import queries
from modelshelf.storage.catalog import ModelFilter, count_models, page_of_hashes

log = logging.getLogger(__name__)


def require_sha256(value: str) -> str:
    """Raises InvalidInput unless `value` is 64 lowercase hex characters."""
    if not is_sha256(value):
        raise InvalidInput(f"{value[:100]!r} is not a SHA256 (64 lowercase hex characters)")
    return value


async def list_models(
    shelf: Shelf, where: ModelFilter, limit: int, offset: int
) -> tuple[int, list[ModelRecord]]:
    """One page of models matching `where`, and how many match in all."""
    async with shelf.storage.read() as conn:
        total = await count_models(conn, where)
        hashes = await page_of_hashes(conn, where, limit, offset)
        return total, await queries.fetch_models(conn, hashes)


async def get_model(shelf: Shelf, sha256: str) -> ModelRecord:
    """The full record. Raises InvalidInput for a malformed hash, NotFound for an unknown one."""
    require_sha256(sha256)
    await shelf.model_locks.wait_idle(sha256)
    async with shelf.storage.read() as conn:
        found = await queries.fetch_models(conn, [sha256])
    if not found:
        raise NotFound(f"no model with SHA256 {sha256}")
    return found[0]


async def list_pending(shelf: Shelf) -> list[PendingRecord]:
    """Every pending model, oldest id first, with tags and image name."""
    async with shelf.storage.read() as conn:
        rows = await queries.list_pending_rows(conn)
        return await queries.pending_records(conn, rows)


async def list_tags(shelf: Shelf) -> list[dict[str, Any]]:
    async with shelf.storage.read() as conn:
        rows = await queries.list_tags(conn)
    return [{"id": r["id"], "name": r["name"], "models": r["models"]} for r in rows]


async def list_types(shelf: Shelf) -> list[str]:
    async with shelf.storage.read() as conn:
        return await queries.list_types(conn)


async def receive_upload(shelf: Shelf, chunks: AsyncIterator[bytes]) -> Path:
    """Stream an uploaded file into staging. Raises TooLarge over `upload_max_bytes`."""
    limit = shelf.settings.upload_max_bytes
    target = await shelf.images.run(shelf.images.new_upload_file)
    received = 0
    try:
        with await shelf.images.run(target.open, "wb") as handle:
            async for chunk in chunks:
                received += len(chunk)
                if received > limit:
                    raise TooLarge(f"the image is larger than the limit of {limit} bytes")
                await shelf.images.run(handle.write, chunk)
    except BaseException:
        await shelf.images.discard(target.parent)
        raise
    return target


async def add_image(shelf: Shelf, sha256: str, upload: Path) -> str:
    """Render `upload` as the next example image of a model; returns its public name.

    Raises NotFound (unknown model), InvalidInput (not an image), TooLarge (too many pixels).
    The upload file is consumed either way.
    """
    staged: StagedImage | None = None
    try:
        require_sha256(sha256)  # inside the try: a rejected upload must not stay in staging
        if not await _model_exists(shelf, sha256):
            raise NotFound(f"no model with SHA256 {sha256}")
        try:
            staged = await shelf.images.stage_renditions(upload)
        except ImageError as exc:
            raise InvalidInput(f"the uploaded file is not a usable image: {exc.detail}") from exc
        async with shelf.model_locks.hold(sha256):
            async with shelf.storage.write() as tx:
                if await queries.fetch_model_row(tx, sha256) is None:
                    raise NotFound(f"no model with SHA256 {sha256}")
                seq = await shelf.images.get_next_sequence_index(sha256, tx)
                await queries.add_image(tx, sha256, seq)
                ops = shelf.images.place_renditions(staged, sha256, seq)
                journal_id = await shelf.images.record(tx, ops)
            staged = None
            await shelf.images.carry_out(journal_id, ops)
    finally:
        if staged is not None:
            await shelf.images.discard(staged.folder)
        await shelf.images.discard(upload.parent)
    log.info("added image %s", image_name(sha256, seq))
    return image_name(sha256, seq)


async def delete_image(shelf: Shelf, sha256: str, seq: int) -> None:
    """Delete one example image and move the later ones down so seqs stay 0..n-1.

    The index changes in one transaction and the files move under the model's lock, so a
    listing never shows a gap or a duplicate. Raises NotFound.
    """
    async with shelf.model_locks.hold(sha256):
        async with shelf.storage.write() as tx:
            if seq not in await queries.image_seqs(tx, sha256):
                raise NotFound(f"no image {image_name(sha256, seq)}")
            last = await queries.remove_image_and_shift(tx, sha256, seq)
            ops = [filejournal.shift(sha256, seq, last)]
            journal_id = await shelf.images.record(tx, ops)
        await shelf.images.carry_out(journal_id, ops)
    log.info("deleted image %s (%d later images moved down)", image_name(sha256, seq), last - seq)


async def _model_exists(shelf: Shelf, sha256: str) -> bool:
    async with shelf.storage.read() as conn:
        return await queries.fetch_model_row(conn, sha256) is not None
