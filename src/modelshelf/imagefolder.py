"""The images folder of a data directory: where files live, what their names mean, rendering
and copying into staging, and a scan of what is on disk. No SQL: the index of images lives in
storage, and every change to the folder goes through the unit of work (storage.change).

Layout (fixed by the contract): images/<sha256>_<seq>_<quality>.webp and
images/pending/<id>.<ext>. Staging lives in images/.staging/, a name no image URL can match.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from modelshelf.durability import copy_synced, sync_folders
from modelshelf.errors import InvalidInput, NotFound
from modelshelf.executors import CpuPool
from modelshelf.images import render_renditions, verify_image
from modelshelf.records import SHA256_HEX, row_id_from_text
from modelshelf.rendition_cache import CachedFile
from modelshelf.renditions import qualities, rendition_file_name, rendition_file_pattern

# <sha256>_<seq>.webp or <sha256>.webp (seq 0). Anything else never reaches the filesystem.
PUBLIC_NAME = re.compile(rf"(?P<hash>{SHA256_HEX})(?:_(?P<seq>0|[1-9][0-9]{{0,8}}))?\.webp")
# images/pending/<id>.<ext>, the id in its canonical decimal spelling (any 64-bit integer).
PENDING_FILE = re.compile(r"(0|-?[1-9][0-9]{0,18})\.([a-z0-9]{1,5})")
EXTENSION_BY_LOADER = {
    "jpegload": "jpg",
    "pngload": "png",
    "webpload": "webp",
    "gifload": "gif",
    "tiffload": "tiff",
    "heifload": "avif",
}
# Opening a FIFO planted under an image name must not wait for a writer.
_O_NONBLOCK = getattr(os, "O_NONBLOCK", 0)
PENDING_EXTENSIONS = {"png", "jpg", "jpeg", "webp", "gif", "tif", "tiff", "avif", "heic", "bmp"}


# ISO base media brands (bytes 8-12 of an `ftyp` box) of the image formats kept as originals.
_HEIF_BRANDS = {
    b"avif": "image/avif",
    b"avis": "image/avif",
    b"heic": "image/heic",
    b"heix": "image/heic",
    b"heim": "image/heic",
    b"heis": "image/heic",
    b"hevc": "image/heic-sequence",
    b"hevx": "image/heic-sequence",
    b"mif1": "image/heif",
    b"msf1": "image/heif-sequence",
}


def sniff_media_type(path: Path) -> str:
    """The media type an image file's first bytes say it is (its name may not say, and the
    system's table of extensions may not know .webp or .avif). Raises OSError."""
    with path.open("rb") as handle:
        head = handle.read(16)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS:
        return _HEIF_BRANDS[head[8:12]]
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head[:2] == b"BM":
        return "image/bmp"
    return "application/octet-stream"


def parse_image_name(name: str) -> tuple[str, int]:
    """(sha256, seq) of a public image name. Raises InvalidInput for anything else."""
    match = PUBLIC_NAME.fullmatch(name)
    if match is None:
        raise InvalidInput(
            f"{name[:200]!r} is not an image name; expected <sha256>_<seq>.webp or <sha256>.webp"
        )
    return match["hash"], int(match["seq"] or 0)


@dataclass(frozen=True)
class StagedImage:
    """Renditions rendered into a staging folder, waiting to be moved into place."""

    folder: Path

    def file(self, quality: str) -> Path:
        return self.folder / f"{quality}.webp"


@dataclass
class DiskImages:
    """What a scan of the images folder found: the qualities present of each (hash, seq), and
    the pending originals by id."""

    renditions: dict[tuple[str, int], set[str]] = field(default_factory=dict)
    pending: dict[int, str] = field(default_factory=dict)


class ImageFolder:
    """Paths and blocking file work of one data directory's images folder. Every method here
    is synchronous: call it from an executor."""

    def __init__(self, data_dir: Path, max_pixels: int, helper: CpuPool | None = None) -> None:
        self.data_dir = data_dir
        # The CPU pool renderings run on: it also encodes a rendering's smaller renditions
        # while it has idle workers.
        self.helper = helper
        self.root = data_dir / "images"
        self.pending_dir = self.root / "pending"
        self.staging_dir = self.root / ".staging"
        self.max_pixels = max_pixels

    def rendition_path(self, sha256: str, seq: int, quality: str) -> Path:
        return self.root / rendition_file_name(sha256, seq, quality)

    def pending_path(self, pending_id: int, ext: str) -> Path:
        return self.pending_dir / f"{pending_id}.{ext}"

    def create_folders(self) -> None:
        for folder in (self.root, self.pending_dir, self.staging_dir):
            folder.mkdir(parents=True, exist_ok=True)

    def render_into(self, source: Path, folder: Path, shown: str | None = None) -> StagedImage:
        """Render every registered rendition of `source` into `folder`; refusals name it
        `shown` (by default its own name). Raises ImageError, ImageTooLarge, OSError."""
        staged = StagedImage(folder)
        targets = {q: staged.file(q) for q in qualities()}
        render_renditions(source, targets, self.max_pixels, self.helper, shown)
        return staged

    def copy_original_into(self, source: Path, folder: Path) -> tuple[Path, str]:
        """Check that `source` is a whole, decodable image within the pixel limit and copy it,
        unchanged, into `folder`. Returns the copy and the extension to keep it under. Raises
        ImageError, ImageTooLarge, OSError."""
        info = verify_image(source, self.max_pixels)
        ext = source.suffix.lower().lstrip(".")
        if ext not in PENDING_EXTENSIONS:
            ext = EXTENSION_BY_LOADER.get(info.loader.removesuffix("_source"), "img")
        target = folder / "original"
        copy_synced(source, target)  # on the disk before the change commits (durability)
        sync_folders([folder])
        return target, ext

    def pending_original_ext(self, pending_id: int) -> str | None:
        """The extension of the regular file images/pending/<pending_id>.<ext> now on disk
        (put there or replaced by hand, whatever the index says), or None."""
        prefix = f"{pending_id}."
        try:
            with os.scandir(self.pending_dir) as entries:
                for entry in entries:
                    match = PENDING_FILE.fullmatch(entry.name)
                    if (
                        match
                        and entry.name.startswith(prefix)
                        and entry.is_file(follow_symlinks=False)
                    ):
                        return match[2]
        except FileNotFoundError:
            return None
        return None

    def pending_originals(self) -> dict[int, set[str]]:
        """Pending id -> the extensions of the regular files images/pending/<id>.<ext> now
        on disk, in one pass over the folder (pending_original_ext of many ids)."""
        found: dict[int, set[str]] = {}
        try:
            with os.scandir(self.pending_dir) as entries:
                for entry in entries:
                    match = PENDING_FILE.fullmatch(entry.name)
                    if match and entry.is_file(follow_symlinks=False):
                        found.setdefault(int(match[1]), set()).add(match[2])
        except FileNotFoundError:
            pass
        return found

    def regular_file(self, path: Path, name: str) -> Path:
        """`path` if it is a regular file (a symlink planted in the folder must not lead
        outside it, hence lstat). Raises NotFound."""
        try:
            info = path.lstat()
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"no image {name}") from None
        if not stat.S_ISREG(info.st_mode):
            raise NotFound(f"no image {name}")
        return path

    def read_small_file(self, path: Path, name: str, limit: int) -> CachedFile | Path:
        """The bytes and validators of the regular file `path` if it holds at most `limit`
        bytes, else `path`. Never follows a symlink planted under the name. Raises NotFound."""
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | _O_NONBLOCK)
        except OSError:  # gone, a symlink (ELOOP), not a folder on the way...
            raise NotFound(f"no image {name}") from None
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise NotFound(f"no image {name}")
            if info.st_size > limit:
                return path
            # Renditions are replaced by rename, never rewritten: this inode's bytes are fixed.
            body = handle.read()
        return CachedFile.of(body, info.st_mtime_ns)

    def scan(self) -> DiskImages:
        """One pass over the images folder (150,000 entries take a fraction of a second)."""
        found: dict[tuple[str, int], set[str]] = defaultdict(set)
        pattern = rendition_file_pattern()
        with os.scandir(self.root) as entries:
            for entry in entries:
                match = pattern.fullmatch(entry.name)
                if match and entry.is_file(follow_symlinks=False):
                    found[(match[1], int(match[2]))].add(match[3])
        disk = DiskImages(renditions=dict(found))
        if self.pending_dir.is_dir():
            with os.scandir(self.pending_dir) as entries:
                for entry in entries:
                    pending = PENDING_FILE.fullmatch(entry.name)
                    pending_id = row_id_from_text(pending[1]) if pending else None
                    if pending and pending_id is not None and entry.is_file(follow_symlinks=False):
                        disk.pending[pending_id] = pending[2]
        return disk

    def empty_staging(self) -> int:
        """Remove everything staged (start-up: it belongs to changes that never committed, or
        to finished ones). Returns how many folders were removed."""
        count = len(list(self.staging_dir.iterdir())) if self.staging_dir.is_dir() else 0
        shutil.rmtree(self.staging_dir, ignore_errors=True)
        self.staging_dir.mkdir(parents=True, exist_ok=True)
        return count

    def leftovers(self) -> list[str]:
        """Temporary files and staged folders left behind, for `modelshelf check`."""
        found = [f"temporary file left behind: {p.name}" for p in self.root.glob(".*.tmp")]
        if self.staging_dir.is_dir():
            found += [f"staging not empty: {p.name}" for p in self.staging_dir.iterdir()]
        return found
