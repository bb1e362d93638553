"""Changing a model's example images: adding an uploaded image, deleting one (the later ones
move down so seqs stay 0..n-1), reordering them and renumbering. Each is one change through
the unit of work."""

from __future__ import annotations

import dataclasses
import errno
import io
import logging
import re
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from modelshelf.domain.catalog import require_sha256
from modelshelf.domain.revisions import IfMatch, Versioned, editing, require_version, versioned
from modelshelf.domain.shelf import Shelf
from modelshelf.errors import Conflict, ImageError, InvalidInput, NotFound, TooLarge
from modelshelf.imagefolder import parse_image_name
from modelshelf.records import image_name
from modelshelf.renditions import qualities
from modelshelf.storage import image_index, models
from modelshelf.storage.change import Change, Staging

log = logging.getLogger(__name__)

# How a refusal names an upload whose client sent no file name.
UNNAMED_UPLOAD = "the uploaded image"
SHOWN_NAME_MAX = 200


@dataclass(frozen=True)
class Upload:
    """An uploaded file being received into staging; `add_image` consumes it. `shown` is the
    file's name as the person's client sent it: every refusal of it says that name, never
    the staged copy's, which the server chose."""

    staging: Staging
    file: Path
    shown: str = UNNAMED_UPLOAD


@dataclass(frozen=True)
class Added:
    """An image added: its public name, and the model as the change left it."""

    name: str
    model: Versioned


async def start_upload(shelf: Shelf) -> Upload:
    staging = shelf.changes.staging()
    return Upload(staging, await staging.new_folder() / "upload")


def shown_name(filename: str | None) -> str:
    """How refusals name an uploaded file the client called `filename`: its last part only (an
    old browser sends the whole path, a hostile client climbs with ../; the server's folders
    are none of the answer's business), cut at SHOWN_NAME_MAX characters; UNNAMED_UPLOAD for
    none."""
    name = re.split(r"[\\/]", filename or "")[-1].strip()
    if not name:
        return UNNAMED_UPLOAD
    return name if len(name) <= SHOWN_NAME_MAX else name[:SHOWN_NAME_MAX] + "..."


async def receive_upload(
    shelf: Shelf, upload: Upload, chunks: AsyncIterator[bytes], filename: str | None
) -> Upload:
    """Stream an uploaded file, called `filename` by the client, into staging; returns the
    upload that names it so. Raises TooLarge over `upload_max_bytes`."""
    upload = dataclasses.replace(upload, shown=shown_name(filename))
    limit = shelf.settings.upload_max_bytes
    received = 0
    # Unbuffered, closed in the pool: a full disk shows in a write there (StorageFull), never
    # in a flush on the event loop.
    handle = await shelf.run_files(upload.file.open, "wb", 0)
    try:
        async for chunk in chunks:
            received += len(chunk)
            if received > limit:
                raise TooLarge(f"{upload.shown} is larger than the limit of {limit} bytes")
            await shelf.run_files(write_all, handle, chunk)
    finally:
        await shelf.run_files(handle.close)
    return upload


def write_all(handle: io.FileIO, data: bytes) -> None:
    """Write every byte of `data` to an unbuffered file (a raw write may take only part).
    Raises OSError."""
    view = memoryview(data)
    while view:
        written = handle.write(view)
        if not written:
            raise OSError(errno.EIO, "the file took none of the bytes written to it")
        view = view[written:]


async def add_image(
    shelf: Shelf, sha256: str, upload: Upload, if_match: IfMatch | None = None
) -> Added:
    """Render an uploaded file as the next example image of a model; returns its public name
    and the model's version after it.
    With `if_match`, only if the model is still at that version when the change begins (a
    client that missed a reorder made elsewhere would go on showing pictures where they no
    longer are); decided under the model's lock, as the rendering before it holds none.

    Raises InvalidInput (bad hash, not an image), NotFound (unknown model), TooLarge (too many
    pixels), PreconditionFailed (nothing added). The upload is consumed either way.
    """
    async with upload.staging:
        require_sha256(sha256)
        async with shelf.storage.read() as conn:
            if not await models.model_exists(conn, sha256):
                raise NotFound(f"no model with SHA256 {sha256}")
        folder = await upload.staging.new_folder()
        try:
            staged = await shelf.run_cpu(
                shelf.folder.render_into, upload.file, folder, upload.shown
            )
        except ImageError as exc:  # its words name the file as the client sent it
            raise InvalidInput(exc.detail) from exc
        async with shelf.changes.change(lock=[sha256], staging=upload.staging) as change:
            if not await models.model_exists(change.tx, sha256):
                raise NotFound(f"no model with SHA256 {sha256}")
            if if_match is not None:
                await require_version(change.tx, sha256, if_match)
            seq = await image_index.next_image_seq(change.tx, sha256)
            await image_index.add_image(change.tx, sha256, seq)
            for quality in qualities():
                change.move(staged.file(quality), shelf.folder.rendition_path(sha256, seq, quality))
            after = await version_left(change, sha256)
    log.info("added image %s", image_name(sha256, seq))
    return Added(image_name(sha256, seq), after)


async def delete_image(
    shelf: Shelf, sha256: str, seq: int, if_match: IfMatch | None = None
) -> Versioned:
    """Delete one example image and move the later ones down so seqs stay 0..n-1 (returns the
    model's version after it); with
    `if_match`, only if the model is still at that version (an image's name is its place, so
    a client that missed a reorder would otherwise delete another picture).

    The index changes in one transaction and the files move under the model's lock, so a
    listing never shows a gap or a duplicate. Raises NotFound, PreconditionFailed (nothing
    deleted).
    """
    async with shelf.changes.change(lock=[sha256]) as change:
        seqs = await image_index.image_seqs(change.tx, sha256)
        if seq not in seqs:
            raise NotFound(f"no image {image_name(sha256, seq)}")
        if if_match is not None:
            await require_version(change.tx, sha256, if_match)
        later = [s for s in seqs if s > seq]
        await renumber_images(change, sha256, {s: s - 1 for s in later}, drop=[seq])
        after = await version_left(change, sha256)
    log.info("deleted image %s (%d later images moved down)", image_name(sha256, seq), len(later))
    return after


async def reorder_images(
    shelf: Shelf, sha256: str, order: list[str], if_match: IfMatch | None
) -> Versioned:
    """Give a model's images a new order: afterwards `order[i]` is seq i (the cover is seq 0).
    `order` must name exactly the current images. The model is saved in history first.

    Raises InvalidInput (a name that is no image name), NotFound (unknown model),
    PreconditionFailed, Conflict (`order` is not exactly the current images; `images` lists
    them).
    """
    wanted = [parse_image_name(name) for name in order]
    async with editing(shelf, sha256, if_match) as edit:
        current = await image_index.image_seqs(edit.tx, sha256)
        seqs = [seq for owner, seq in wanted if owner == sha256]
        if len(seqs) != len(wanted) or sorted(seqs) != current:
            raise Conflict(
                "order must name each current image of the model exactly once",
                images=[image_name(sha256, s) for s in current],
            )
        moves = {old: new for new, old in enumerate(seqs) if old != new}
        if not moves:
            return edit.before
        await edit.save("reorder", {"order": [image_name(sha256, s) for s in seqs]})
        await renumber_images(edit.change, sha256, moves, drop=[])
        after = await edit.after()
    log.info("reordered the %d images of %s", len(seqs), sha256)
    return after


async def version_left(change: Change, sha256: str) -> Versioned:
    """The model as `change` leaves it: its answer carries the version, so a client tells a
    change made elsewhere right after it from its own (as a reorder's answer lets it)."""
    found = await versioned(change.tx, sha256)
    if found is None:  # pragma: no cover - the change holds the model's lock and found it
        raise NotFound(f"no model with SHA256 {sha256}")
    return found


async def renumber_images(
    change: Change, sha256: str, moves: Mapping[int, int], drop: Iterable[int]
) -> None:
    """Within `change`: give images new seqs (old -> new) and remove those in `drop`, in the
    index and on disk alike."""
    moves = {old: new for old, new in moves.items() if old != new}
    drop = list(drop)
    await image_index.renumber_images(change.tx, sha256, moves, drop)
    await change.renumber(sha256, moves, drop)
