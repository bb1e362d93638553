"""The rendition registry: the one place that says which WebP renditions an example image has.

Everything else derives from `RENDITIONS` at call time: the file-name pattern, the `quality`
query parameter and its OpenAPI enum, what the file journal moves, what recovery and
`modelshelf check` call a complete set, and what the start-up backfill renders. Adding a
quality is one entry here; the next start renders it for every existing image.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

# The largest rendition fits in this many pixels (never upscaled).
HIGH_MAX_PIXELS = 2_000_000


@dataclass(frozen=True)
class Rendition:
    """One rendition: `scale` is its side length relative to the largest one (1.0)."""

    name: str
    scale: float
    webp_quality: int
    # libvips' WebP `effort` (0 fastest .. 6 smallest).
    effort: int = 4
    # libwebp's alpha quality: 100 codes the alpha plane losslessly, lower quantises it to
    # fewer levels first (only a picture with alpha has one).
    alpha_q: int = 100


# Chosen by bench/renditions.py (BENCHMARKS.md, "Renditions"): libwebp's effort 2 instead of its
# default 4 encodes about twice as fast; Q one lower for high and medium keeps the total size
# within +5% and the mean PSNR within 0.3 dB of the former Q 80/60/45 at effort 4 (not on every
# source: images with alpha lose most, up to +16% bytes or -0.6 dB for one rendition).
# alpha_q 80 (BENCHMARKS.md, "Renditions", sixth round): libwebp quantises the alpha plane to 96
# levels before coding it losslessly. Coding it whole was most of the encode of a picture with
# a soft alpha edge; quantised, that encode took 1.2-2.2x less CPU in 5-16% fewer bytes (an
# alpha of fewer than 96 levels is left as it was), composites over grey, black or white moved
# by 0.01 dB at most, and no level of an alpha ramp moves by more than one (the alpha plane
# alone loses 0.8-2.3 dB, at 50-56 dB).
RENDITIONS: tuple[Rendition, ...] = (
    Rendition("high", 1.0, 79, effort=2, alpha_q=80),
    Rendition("medium", 0.66, 59, effort=2, alpha_q=80),
    Rendition("low", 0.33, 45, effort=2, alpha_q=80),
)

DEFAULT_QUALITY = "high"


def registered() -> tuple[Rendition, ...]:
    """The registry, largest rendition first. Read it through this function (never bind the
    tuple at import time) so that every part of the service sees the same registry."""
    return RENDITIONS


def qualities() -> tuple[str, ...]:
    """The names of the registered renditions, largest first."""
    return tuple(r.name for r in registered())


def rendition(name: str) -> Rendition:
    """The registered rendition called `name`. Raises KeyError for an unknown one."""
    for entry in registered():
        if entry.name == name:
            return entry
    raise KeyError(name)


def rendition_file_name(sha256: str, seq: int, quality: str) -> str:
    """The file name of one rendition in the images folder (fixed by the contract)."""
    return f"{sha256}_{seq}_{quality}.webp"


def rendition_file_pattern() -> re.Pattern[str]:
    """Matches rendition file names of the registered qualities: groups hash, seq, quality."""
    return _file_pattern(qualities())


@functools.cache
def _file_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(n) for n in names)
    return re.compile(rf"([0-9a-f]{{64}})_(0|[1-9][0-9]*)_({alternatives})\.webp")
