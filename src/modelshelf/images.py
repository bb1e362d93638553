"""Example-image renditions with pyvips. Everything here is synchronous and blocking: call it
from a thread executor (libvips releases the GIL while it works)."""

from __future__ import annotations

import contextlib
import functools
import logging
import math
import os
import re
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyvips

from modelshelf.durability import sync_folders, write_synced
from modelshelf.errors import ImageError, ImageTooLarge
from modelshelf.executors import CpuPool
from modelshelf.renditions import HIGH_MAX_PIXELS, registered, rendition

DEFAULT_MAX_PIXELS = 100_000_000
# libvips decodes a picture in strips of whole lines, so the memory and time of a decode grow
# with its width as stored, whatever its pixel count: 10,000,000 x 10 (100 MP, a 292 KB PNG)
# took 5 GB and 16 s, a tiled TIFF of 2,000,000 x 50 126 s. At this width (JPEG's and GIF's
# own limit) a 100 MP picture takes ~630 MB, a few times one of 10000x10000; a tall one is
# read a few lines at a time and costs no more than any other.
MAX_STORED_WIDTH = 65_535
# WebP's limit on a side: a longer picture (a panorama, a strip) is shrunk to fit, not refused.
WEBP_MAX_SIDE = 16_383
# Orientations 5-8 turn the picture by 90 degrees, so its displayed width is its stored height.
_TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}

# libvips caches operations by their arguments, file names included; a file replaced under the
# same name would be served from the cache. Rendering never repeats, so the cache only costs.
pyvips.cache_set_max(0)

# Example images come from folders and clients nobody vouches for, and libvips picks a loader
# by a file's bytes, not its name: a ".png" holding SVG was drawn by librsvg, one in libvips'
# own format mapped as its header says, a CSV or matrix read as pixels. Only the formats
# pictures come in are read; every other loader is blocked for the whole process (a blocked
# loader's format is "not a known file format"). Unblocking a loader unblocks its file,
# buffer and source variants.
PICTURE_LOADERS = ("Jpeg", "Uhdr", "Png", "Webp", "Nsgif", "Tiff", "Heif")
PICTURE_FORMATS = "JPEG, PNG, WebP, GIF, TIFF, HEIF, AVIF"
pyvips.operation_block_set("VipsForeignLoad", True)
for _loader in PICTURE_LOADERS:
    pyvips.operation_block_set(f"VipsForeignLoad{_loader}", False)

# libvips reports every operation at INFO level (about eight lines per rendition) and pyvips
# forwards them to logging: at the service's INFO level they were most of the log. Keep its
# warnings and errors.
logging.getLogger("pyvips").setLevel(logging.WARNING)


# A rendition's WebP bytes and its size.
_Encoded = tuple[bytes, tuple[int, int]]
# Encodes the given qualities of one decoded image.
_Encoder = Callable[[list[str]], dict[str, _Encoded]]


@dataclass(frozen=True)
class ImageInfo:
    """What the header of an image says, orientation already applied."""

    width: int
    height: int
    loader: str
    # Whether it carries an ICC profile of its own (Display P3, Adobe RGB, sRGB, CMYK).
    has_profile: bool = False


def read_image_info(
    source: Path, max_pixels: int = DEFAULT_MAX_PIXELS, shown: str | None = None
) -> ImageInfo:
    """Read only the header. Refusals name the file `shown` (by default its own name): an
    upload is read from a copy the server named, which the person never saw.

    Raises ImageError if it is not an image, ImageTooLarge over the pixel limit or wider than
    MAX_STORED_WIDTH.
    """
    name = shown or source.name
    try:
        header = pyvips.Image.new_from_file(str(source), access="sequential")
        loader = str(header.get("vips-loader"))
    except pyvips.Error as exc:
        problem = _first_line(exc, source, name)
        if "is not a known file format" in problem:  # text, a model, anything not a picture
            raise ImageError(
                f"{name} is not an image: its bytes are in no image format read here"
                f" ({PICTURE_FORMATS})"
            ) from exc
        raise ImageError(f"{name} is not a readable image: {problem}") from exc
    width, height = header.width, header.height
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"{name} has {width}x{height} = {width * height} pixels, over the limit of {max_pixels}"
        )
    if width > MAX_STORED_WIDTH:
        raise ImageTooLarge(f"{name} is {width} pixels wide, over the limit of {MAX_STORED_WIDTH}")
    orientation = header.get("orientation") if header.get_typeof("orientation") else 1
    if orientation in _TRANSPOSING_ORIENTATIONS:
        width, height = height, width
    return ImageInfo(width, height, loader, bool(header.get_typeof("icc-profile-data")))


def rendition_sizes(width: int, height: int) -> dict[str, tuple[int, int]]:
    """Target sizes: the largest rendition fits in HIGH_MAX_PIXELS and in WebP's longest side
    (never upscaled); the others scale its sides by their registered factor."""
    scale = min(
        1.0,
        math.sqrt(HIGH_MAX_PIXELS / (width * height)),
        WEBP_MAX_SIDE / width,
        WEBP_MAX_SIDE / height,
    )
    high_w = max(1, math.floor(width * scale))
    high_h = max(1, math.floor(height * scale))
    return {
        r.name: (max(1, round(high_w * r.scale)), max(1, round(high_h * r.scale)))
        for r in registered()
    }


def render_renditions(
    source: Path,
    targets: Mapping[str, Path],
    max_pixels: int = DEFAULT_MAX_PIXELS,
    helper: CpuPool | None = None,
    shown: str | None = None,
) -> dict[str, tuple[int, int]]:
    """Write the high, medium and low WebP renditions of `source` to `targets[quality]`.

    Decodes the source once (with shrink-on-load), honours EXIF orientation, keeps alpha and
    strips metadata. All files appear or none does: each is written under a temporary name and
    renamed into place only when all were encoded. The largest registered rendition is decoded
    first; the others are shrunk from it. The first is encoded in the calling thread, the
    others on `helper` (the CPU pool the caller runs on) when it has idle workers, else in
    the calling thread too. Returns the size of each rendition. Refusals name the file
    `shown` (read_image_info). Raises ImageError, ImageTooLarge.
    """
    name = shown or source.name
    info = read_image_info(source, max_pixels, name)
    sizes = rendition_sizes(info.width, info.height)
    largest = registered()[0]
    try:
        decoded = _decode_high(source, *sizes[largest.name], to_srgb=info.has_profile)
    except pyvips.Error as exc:
        raise ImageError(f"{name} could not be decoded: {_first_line(exc, source, name)}") from exc
    return _encode_all(decoded, largest.scale, targets, name, helper)


def fill_renditions(
    source: Path,
    source_quality: str,
    targets: Mapping[str, Path],
    helper: CpuPool | None = None,
) -> dict[str, tuple[int, int]]:
    """Render `targets` (qualities missing from an image) from one of its existing
    renditions, `source` of quality `source_quality`; sizes follow the registry's scales
    relative to it, never larger than it; encodes on `helper` as render_renditions does.
    Raises ImageError."""
    try:
        decoded = pyvips.Image.new_from_file(str(source), access="sequential", fail_on="error")
        decoded = decoded.copy_memory()
    except pyvips.Error as exc:
        raise ImageError(f"{source.name} could not be decoded: {_first_line(exc, source)}") from exc
    return _encode_all(decoded, rendition(source_quality).scale, targets, source.name, helper)


def _encode_all(
    decoded: pyvips.Image,
    decoded_scale: float,
    targets: Mapping[str, Path],
    what: str,
    helper: CpuPool | None = None,
) -> dict[str, tuple[int, int]]:
    if not targets:
        return {}
    encode = functools.partial(_encode, decoded, decoded_scale)
    first, *rest = targets
    later = _hand_out(helper, encode, rest)
    try:
        encoded = encode([first])
        encoded |= _result_or_own(later, encode, rest)
        _write_all({quality: data for quality, (data, _size) in encoded.items()}, targets)
    except pyvips.Error as exc:
        raise ImageError(f"{what} could not be rendered: {_first_line(exc)}") from exc
    finally:
        if later is not None:
            later.cancel()
    return {quality: size for quality, (_data, size) in encoded.items()}


def _encode(
    decoded: pyvips.Image, decoded_scale: float, qualities: list[str]
) -> dict[str, _Encoded]:
    """The WebP bytes and size of each quality, from `decoded` (of scale `decoded_scale`)."""
    encoded: dict[str, _Encoded] = {}
    for quality in qualities:
        entry = rendition(quality)
        image = _shrink(decoded, min(1.0, entry.scale / decoded_scale))
        data = image.webpsave_buffer(**webp_options(quality))
        encoded[quality] = (data, (image.width, image.height))
    return encoded


def webp_options(quality: str) -> dict[str, Any]:
    """libvips' webpsave options of a registered quality (alpha_q counts only for a picture
    with alpha)."""
    entry = rendition(quality)
    return {
        "Q": entry.webp_quality,
        "effort": entry.effort,
        "alpha_q": entry.alpha_q,
        "keep": "none",
    }


def _write_all(data: Mapping[str, bytes], targets: Mapping[str, Path]) -> None:
    """Every target holds its quality's bytes, or (on any error) none changed: each is written
    beside its target and synced, then all are renamed into place."""
    temporaries: dict[str, Path] = {}
    try:
        for quality, target in targets.items():
            temporary = _temporary_beside(target)
            temporaries[quality] = temporary
            # Written by Python, not libvips, so a full disk is an OSError with its errno
            # rather than a libvips message that would read like a broken image; on the disk
            # before it is renamed into place (durability).
            write_synced(temporary, data[quality])
        _rename_all(temporaries, targets)
        sync_folders({target.parent for target in targets.values()})
    finally:
        for temporary in temporaries.values():
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()


def _hand_out(
    helper: CpuPool | None, encode: _Encoder, qualities: list[str]
) -> Future[dict[str, _Encoded]] | None:
    """The encodes of `qualities` queued on `helper` (the CPU pool) as one task, to run beside
    the caller's own encode, if a worker of the pool is idle: a rendering alone on the pool
    (C=1) takes ~1.3-1.4x less wall time, and one among many is not slowed by a second task
    competing for the same cores (BENCHMARKS.md, "Renditions")."""
    if helper is None or not qualities or not helper.has_idle_worker():
        return None
    try:
        return helper.submit(encode, qualities)
    except RuntimeError:  # the pool is shutting down: the caller encodes them
        return None


def _result_or_own(
    future: Future[dict[str, _Encoded]] | None, encode: _Encoder, qualities: list[str]
) -> dict[str, _Encoded]:
    """What the helper encoded, or, if no worker has taken it up yet, the caller's own
    encode. Never waits on a task still queued, so a pool whose workers all render cannot
    deadlock on itself."""
    if future is None or future.cancel():
        return encode(qualities)
    return future.result()


def verify_image(source: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Decode the whole image cheaply (shrink-on-load to a thumbnail) to prove it is not
    truncated or corrupt. Raises ImageError, ImageTooLarge."""
    info = read_image_info(source, max_pixels)
    try:
        pyvips.Image.thumbnail(str(source), 64, fail_on="error").avg()
    except pyvips.Error as exc:
        raise ImageError(f"{source.name} could not be decoded: {_first_line(exc, source)}") from exc
    return info


def _decode_high(source: Path, width: int, height: int, *, to_srgb: bool) -> pyvips.Image:
    # Renditions carry no ICC profile (keep="none"), so browsers read their numbers as sRGB:
    # an image with a profile of its own (`to_srgb`: Display P3, Adobe RGB) is converted into
    # sRGB. One without a profile is taken as sRGB already and left as it is (asked to convert
    # it, libvips' thumbnail took 2-3x as long for the same pixels). The size is forced to
    # the one rendition_sizes gave (at most its rounding off the aspect): fitted into the box,
    # a side of a few pixels rounded down would shrink the whole picture by as much (17000x2
    # into 16383x1 gave 8500x1).
    convert = {"export_profile": "srgb"} if to_srgb else {}
    image = pyvips.Image.thumbnail(
        str(source), width, height=height, size="force", fail_on="error", **convert
    )
    if image.format not in ("uchar", "char"):
        # 16-bit and float sources: convert to 8-bit sRGB so WebP gets scaled, not clipped, values.
        image = image.colourspace("srgb")
    # Decode once into memory; medium and low are made from this, not from the file again.
    return image.copy_memory()


def _shrink(image: pyvips.Image, factor: float) -> pyvips.Image:
    if factor >= 1.0:
        return image
    width = max(1, round(image.width * factor))
    height = max(1, round(image.height * factor))
    # thumbnail_image premultiplies alpha before resampling, so edges keep their colour.
    return image.thumbnail_image(width, height=height, size="force")


def _temporary_beside(target: Path) -> Path:
    return target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")


def _rename_all(temporaries: Mapping[str, Path], targets: Mapping[str, Path]) -> None:
    done: list[Path] = []
    try:
        for quality, temporary in temporaries.items():
            os.replace(temporary, targets[quality])
            done.append(targets[quality])
    except OSError:
        for path in done:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
        raise


def _first_line(exc: pyvips.Error, source: Path | None = None, shown: str | None = None) -> str:
    """libvips' message, its first line, with `source` said as `shown` (by default its name)
    and every other quoted absolute path cut to the file's name: the message goes to clients,
    and the data directory is none of theirs (loaders name the file quoted or not)."""
    text = str(getattr(exc, "detail", "") or exc.message).strip()
    line = text.splitlines()[0] if text else "unknown libvips error"
    if source is not None:
        # A loader's "<path>: bad seek to 1024": the sentence around it names the file already.
        line = line.removeprefix(f"{source}: ").replace(str(source), shown or source.name)
    return _QUOTED_PATH.sub(lambda found: f'"{os.path.basename(found[1])}"', line)


_QUOTED_PATH = re.compile(r'"(/[^"]*)"')
