"""What a model's files say, brought into its record: read in a thread (`folders.facts`), example
images rendered into staging, then applied inside a change.

Who owns a meta key: the scan writes only the keys in META_KEYS, each under its own name, and
remembers the value it wrote (`file_facts.written`). When a source file changes, a key is
refreshed only while its value in `meta_json` is still the one the scan wrote (or both are
absent). A key a person set, changed or removed is theirs from then on; the scan leaves it
alone. Tags are added once: a tag the scan added and a person removed is not added again.
Example images are added once each, known by the SHA256 of the image file; the embedded
thumbnail only when the model has no example image at all.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelshelf.domain.shelf import Shelf
from modelshelf.domain.tagging import normalize_tag_name
from modelshelf.errors import ImageError, InvalidInput, TooLarge
from modelshelf.folders.facts import META_KEYS, Copy, FileFacts, KnownHeader, read_facts
from modelshelf.folders.problems import Problem, printable
from modelshelf.hashing import hash_file
from modelshelf.imagefolder import StagedImage
from modelshelf.renditions import qualities
from modelshelf.storage import file_facts, image_index, model_meta, models, tags
from modelshelf.storage.change import Change, Staging
from modelshelf.storage.file_facts import FactsRecord
from modelshelf.storage.rows import same_json

log = logging.getLogger(__name__)

_ABSENT: Any = object()
# How the reason of a problem begins when a file beside a model could not be read at all (a
# permission, an I/O error), not because of what it holds: such a file is not remembered as
# read, so the next scan reads it again (chmod leaves its size and mtime as they were).
IMAGE_NOT_ADDED = "example image not added: "
UNREADABLE = ("cannot read", IMAGE_NOT_ADDED + "cannot read")


@dataclass
class Applied:
    meta_changed: bool = False
    tags_added: int = 0
    images_added: int = 0


@dataclass
class StagedFacts:
    """Facts read from the files at `source` and its example images rendered into staging,
    each with the SHA256 of its image file; `problems` says what could not be used."""

    source: str
    facts: FileFacts
    images: list[tuple[str, StagedImage]] = field(default_factory=list)
    thumbnail: tuple[str, StagedImage] | None = None
    problems: list[Problem] = field(default_factory=list)
    applied: Applied | None = None  # set once applied to a model

    @property
    def model_unreadable(self) -> bool:
        """The model file itself could not be opened: what it says is unknown, not absent."""
        return any(
            p.path == printable(self.source) and p.reason.startswith("cannot read")
            for p in self.facts.problems
        )

    def recorded_sources(self) -> dict[str, tuple[int, int]]:
        """The sidecar signatures to remember: those that could not be read are left out,
        so that the next scan sees a difference and reads them again."""
        return self._readable(Path(self.source), self.facts.sources)

    def recorded_copies(self) -> dict[str, dict[str, tuple[int, int]]]:
        """The same for each other copy read, by its path."""
        copies = self.facts.copy_sources
        return {path: self._readable(Path(path), names) for path, names in copies.items()}

    def _readable(
        self, model: Path, names: dict[str, tuple[int, int]]
    ) -> dict[str, tuple[int, int]]:
        unreadable = {p.path for p in self.problems if p.reason.startswith(UNREADABLE)}
        return {
            name: signature
            for name, signature in names.items()
            if printable(model.parent / name) not in unreadable
        }


def _same_or_both_absent(held: Any, wrote: Any) -> bool:
    """Whether a meta key holds what the scan wrote: the same JSON (a person's `true` is not
    the scan's `1`), or neither there."""
    if held is _ABSENT or wrote is _ABSENT:
        return held is wrote
    return same_json(held, wrote)


def refresh_file_meta(
    current: dict[str, Any], written: dict[str, Any], found: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The new meta_json and the new record of what the scan wrote, for what the files say
    now (`found`). A key in META_KEYS takes its new value (or is removed when no file says
    it any more) only while `current` still holds what the scan last wrote (`written`), both
    absent counting as equal; otherwise a person owns it and it is left as it is."""
    meta, record = dict(current), dict(written)
    for key in META_KEYS:
        if not _same_or_both_absent(current.get(key, _ABSENT), written.get(key, _ABSENT)):
            continue
        value = found.get(key, _ABSENT)
        if value is _ABSENT:
            meta.pop(key, None)
            record.pop(key, None)
        else:
            meta[key] = value
            record[key] = value
    return meta, record


def _refreshed(
    current: dict[str, Any], written: dict[str, Any], found: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """refresh_file_meta, and whether the meta_json it makes differs from `current`."""
    meta, record = refresh_file_meta(current, written, found)
    return meta, record, meta != current


async def stage_facts(
    shelf: Shelf,
    staging: Staging,
    source: Path,
    companions: Iterable[str] | None,
    known_images: set[str],
    want_thumbnail: bool,
    header: KnownHeader | None = None,
    copies: Sequence[Copy] = (),
) -> StagedFacts:
    """Read what the file at `source` and its companions say (`companions`: their names, or
    None to list the folder; `header`: the model file's header if known, so that the file is
    not opened), and the sidecars of its other `copies`, and render the example images not in
    `known_images` into `staging`; the thumbnail only if `want_thumbnail` and no image file
    beside any copy is a picture. Never raises for what a file holds."""
    names = None if companions is None else list(companions)
    facts = await shelf.run_cpu(read_facts, source, names, header, copies)
    facts, refused = _taggable(facts, source)
    staged = StagedFacts(str(source), facts, problems=[*facts.problems, *refused])
    seen = set(known_images)
    no_picture = 0
    for preview in facts.preview_images:
        problems_before = len(staged.problems)
        image = await _stage_image(shelf, staging, preview, seen, staged.problems)
        no_picture += _not_a_picture(staged.problems[problems_before:])
        if image is not None:
            staged.images.append(image)
    # The thumbnail stands in when no picture is beside the model: no preview file, or none
    # that is a usable picture (a failed download, a video saved under an image's name). One
    # that cannot be read now (a permission) may be a picture, read by the next scan.
    no_preview = no_picture == len(facts.preview_images)
    if want_thumbnail and no_preview and facts.thumbnail is not None:
        folder = await staging.new_folder()
        embedded = folder / "thumbnail"
        await shelf.run_files(embedded.write_bytes, facts.thumbnail.data)
        staged.thumbnail = await _stage_image(
            shelf, staging, embedded, seen, staged.problems, shown=f"{source} (thumbnail)"
        )
    return staged


def _not_a_picture(problems: list[Problem]) -> bool:
    """Whether the problems of staging one example image say it is no usable picture (as
    opposed to none: it was staged or seen before; or one that could not be read)."""
    return any(not p.reason.startswith(UNREADABLE) for p in problems)


def _taggable(facts: FileFacts, source: Path) -> tuple[FileFacts, list[Problem]]:
    """`facts` with only the tags a person could add (tagging.normalize_tag_name: at most
    MAX_TAG_NAME characters, no control character), and a problem for each other one: the
    API refuses such a name, so a model carrying it could neither have its tags saved back (PUT
    tags sends them all) nor be listed by it. Its sidecar keeps it under `lora_manager`."""
    kept: list[str] = []
    problems: list[Problem] = []
    for name in facts.tags:
        try:
            normalize_tag_name(name)
        except InvalidInput as exc:
            shown = name if len(name) <= 40 else name[:40] + "…"
            reason = f"LoRA Manager tag {shown!r} not added: {exc.detail}"
            problems.append(Problem(printable(source), reason))
        else:
            kept.append(name)
    if not problems:
        return facts, []
    return dataclasses.replace(facts, tags=tuple(kept)), problems


async def _stage_image(
    shelf: Shelf,
    staging: Staging,
    image: Path,
    seen: set[str],
    problems: list[Problem],
    shown: str | None = None,
) -> tuple[str, StagedImage] | None:
    """(SHA256 of the image file, its renditions in staging), or None if the same image was
    added before or it cannot be used (then a problem says why)."""
    try:
        digest = await shelf.run_files(hash_file, image)
        if digest in seen:
            return None
        seen.add(digest)
        folder = await staging.new_folder()
        return digest, await shelf.run_cpu(shelf.folder.render_into, image, folder)
    except (ImageError, TooLarge) as exc:
        reason = IMAGE_NOT_ADDED + exc.detail
    except OSError as exc:
        reason = f"{IMAGE_NOT_ADDED}cannot read: {exc.strerror or exc}"
    problems.append(Problem(shown or printable(image), reason))
    return None


async def apply_facts(
    shelf: Shelf, change: Change, sha256: str, staged: StagedFacts, record: FactsRecord | None
) -> Applied:
    """Within `change`: refresh the model's meta keys, add its new tags and example images,
    and remember what was written. The model must exist."""
    tx = change.tx
    record = record or FactsRecord()
    applied = Applied()
    current = await model_meta.fetch_meta(tx, sha256)
    # Off the loop: a kohya header's tag counts (megabytes) held the loop 0.12 s here.
    meta, written, changed = await change.run(
        _refreshed, current, record.written, staged.facts.meta
    )
    if changed:
        await model_meta.set_meta_json(tx, sha256, meta)
        applied.meta_changed = True
    new_tags = [name for name in staged.facts.tags if name not in record.tags]
    for name in new_tags:
        tag_id = await tags.tag_id_by_name(tx, name)
        if tag_id is None:
            tag_id = await tags.insert_tag(tx, name)
        await models.add_model_tags(tx, sha256, [tag_id])
    applied.tags_added = len(new_tags)
    applied.images_added = await _place_images(shelf, change, sha256, staged)
    source_path = None if staged.model_unreadable else staged.source
    await file_facts.save_facts(
        tx,
        sha256,
        FactsRecord(
            source_path,
            staged.recorded_sources(),
            written,
            [*record.tags, *new_tags],
            staged.recorded_copies(),
            [(p.path, p.reason) for p in staged.problems],
        ),
    )
    staged.applied = applied
    return applied


async def _place_images(shelf: Shelf, change: Change, sha256: str, staged: StagedFacts) -> int:
    added = await file_facts.images_added(change.tx, sha256)
    seq = await image_index.next_image_seq(change.tx, sha256)
    images = [image for image in staged.images if image[0] not in added]
    # The thumbnail only stands in for a model with no example image at all.
    if not images and seq == 0 and staged.thumbnail and staged.thumbnail[0] not in added:
        images = [staged.thumbnail]
    for number, (_digest, image) in enumerate(images, start=seq):
        await image_index.add_image(change.tx, sha256, number)
        for quality in qualities():
            change.move(image.file(quality), shelf.folder.rendition_path(sha256, number, quality))
    await file_facts.record_images(change.tx, sha256, [digest for digest, _ in images])
    return len(images)
