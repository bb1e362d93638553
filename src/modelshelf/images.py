"""Example-image renditions with pyvips. Everything here is synchronous and blocking: call it
from a thread executor (libvips releases the GIL while it works)."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pyvips

from modelshelf.errors import ImageError, ImageTooLarge

QUALITIES = ("high", "medium", "low")
# Chosen by bench/renditions.py (BENCHMARKS.md, "Renditions"): libwebp's effort 2 instead of its
# default 4 encodes about twice as fast; Q one lower for high and medium keeps the total size
# within +5% and the mean PSNR within 0.3 dB of the former Q 80/60/45 at effort 4 (not on every
# source: images with alpha lose most, up to +16% bytes or -0.6 dB for one rendition).
WEBP_QUALITY = {"high": 79, "medium": 59, "low": 45}
WEBP_OPTIONS: dict[str, dict[str, int | bool]] = {
    "high": {"effort": 2},
    "medium": {"effort": 2},
    "low": {"effort": 2},
}
LINEAR_SCALE = {"high": 1.0, "medium": 0.66, "low": 0.33}
HIGH_MAX_PIXELS = 2_000_000
DEFAULT_MAX_PIXELS = 100_000_000
# Orientations 5-8 turn the picture by 90 degrees, so its displayed width is its stored height.
_TRANSPOSING_ORIENTATIONS = {5, 6, 7, 8}

# libvips caches operations by their arguments, file names included; a file replaced under the
# same name would be served from the cache. Rendering never repeats, so the cache only costs.
pyvips.cache_set_max(0)

# libvips reports every operation at INFO level (about eight lines per rendition) and pyvips
# forwards them to logging: at the service's INFO level they were most of the log. Keep its
# warnings and errors.
logging.getLogger("pyvips").setLevel(logging.WARNING)


@dataclass(frozen=True)
class ImageInfo:
    """What the header of an image says, orientation already applied."""

    width: int
    height: int
    loader: str
    has_alpha: bool


def read_image_info(source: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Read only the header.

    Raises ImageError if it is not an image, ImageTooLarge over the pixel limit.
    """
    try:
        header = pyvips.Image.new_from_file(str(source), access="sequential")
        loader = str(header.get("vips-loader"))
    except pyvips.Error as exc:
        raise ImageError(f"{source.name} is not a readable image: {_first_line(exc)}") from exc
    width, height = header.width, header.height
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"{source.name} has {width}x{height} = {width * height} pixels, "
            f"over the limit of {max_pixels}"
        )
    orientation = header.get("orientation") if header.get_typeof("orientation") else 1
    if orientation in _TRANSPOSING_ORIENTATIONS:
        width, height = height, width
    return ImageInfo(width, height, loader, bool(header.hasalpha()))


def rendition_sizes(width: int, height: int) -> dict[str, tuple[int, int]]:
    """Target sizes: high fits in 2 megapixels (never upscaled), medium/low scale high's sides."""
    scale = min(1.0, math.sqrt(HIGH_MAX_PIXELS / (width * height)))
    high_w = max(1, math.floor(width * scale))
    high_h = max(1, math.floor(height * scale))
    return {
        q: (max(1, round(high_w * f)), max(1, round(high_h * f))) for q, f in LINEAR_SCALE.items()
    }


def render_renditions(
    source: Path, targets: Mapping[str, Path], max_pixels: int = DEFAULT_MAX_PIXELS
) -> dict[str, tuple[int, int]]:
    """Write the high, medium and low WebP renditions of `source` to `targets[quality]`.

    Decodes the source once: the pixel limit is checked on the header alone, and the one real
    decode (with shrink-on-load, failing on any error, so a truncated or corrupt file is refused)
    makes high in memory; medium and low are made from high. Honours EXIF orientation, keeps
    alpha and strips metadata. All three files appear or none does: each is written under a
    temporary name and renamed into place only when all three were encoded.
    Returns the size of each rendition. Raises ImageError, ImageTooLarge.
    """
    info = read_image_info(source, max_pixels)
    sizes = rendition_sizes(info.width, info.height)
    temporaries: dict[str, Path] = {}
    try:
        high = _decode_high(source, *sizes["high"])
        # One after another in this thread. Encoding medium and low on a second thread saved no
        # CPU, and its throughput on the shared 2-core bench machine went up in one run and down
        # in another (BENCHMARKS.md, "Renditions"): not worth a pool of its own yet.
        for quality in QUALITIES:
            image = high if quality == "high" else _shrink(high, quality)
            sizes[quality] = (image.width, image.height)
            encoded = image.webpsave_buffer(
                Q=WEBP_QUALITY[quality], keep="none", **WEBP_OPTIONS[quality]
            )
            temporary = _temporary_beside(targets[quality])
            temporaries[quality] = temporary
            # Written by Python, not libvips, so a full disk is an OSError with its errno
            # rather than a libvips message that would read like a broken image.
            temporary.write_bytes(encoded)
        _rename_all(temporaries, targets)
    except pyvips.Error as exc:
        raise ImageError(f"{source.name} could not be rendered: {_first_line(exc)}") from exc
    finally:
        for temporary in temporaries.values():
            with contextlib.suppress(FileNotFoundError):
                temporary.unlink()
    return sizes


def verify_image(source: Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Decode the whole image cheaply (shrink-on-load to a thumbnail) to prove it is not
    truncated or corrupt. Raises ImageError, ImageTooLarge."""
    info = read_image_info(source, max_pixels)
    try:
        pyvips.Image.thumbnail(str(source), 64, fail_on="error").avg()
    except pyvips.Error as exc:
        raise ImageError(f"{source.name} could not be decoded: {_first_line(exc)}") from exc
    return info


def _decode_high(source: Path, width: int, height: int) -> pyvips.Image:
    image = pyvips.Image.thumbnail(str(source), width, height=height, size="down", fail_on="error")
    if image.format not in ("uchar", "char"):
        # 16-bit and float sources: convert to 8-bit sRGB so WebP gets scaled, not clipped, values.
        image = image.colourspace("srgb")
    # Decode once into memory; medium and low are made from this, not from the file again.
    return image.copy_memory()


def _shrink(high: pyvips.Image, quality: str) -> pyvips.Image:
    factor = LINEAR_SCALE[quality]
    width = max(1, round(high.width * factor))
    height = max(1, round(high.height * factor))
    # thumbnail_image premultiplies alpha before resampling, so edges keep their colour.
    return high.thumbnail_image(width, height=height, size="force")


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


def _first_line(exc: pyvips.Error) -> str:
    text = str(getattr(exc, "detail", "") or exc.message).strip()
    return text.splitlines()[0] if text else "unknown libvips error"
