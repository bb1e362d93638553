"""Rendition benchmark: WebP settings chosen by measurement, and render_renditions old against new.

Run from the repository root after `make bench-deps` (numpy, the `bench` extra):

    .venv/bin/python bench/renditions.py [settings] [shrink] [parallel] [speedup] [helper] [all]
        [where] [alpha]
        [--sources DIR] [--repeat 3] [--old-commit 2207d8e] [--quick]

Sources. Eleven images of the sizes models ship with (1024x1536, 2048x2048, 2048x3072,
4096x4096), photograph-like and illustration-like, PNG and JPEG (Q 92), with and without alpha.
No package ships images that large, so they are generated reproducibly with libvips' seeded
Perlin, Worley and Gaussian noise generators: a photograph is an out-of-focus gradient
background with textured, shaded, soft-edged objects and sensor grain; an illustration is flat,
cel-shaded colour regions with dark outlines. They are written once to --sources (a temporary
folder by default) and reused; their SHA256 prefixes are printed, so a run on the same libvips
can be checked to have used the same pictures.

Quality. Every figure is measured against a reference downscale of the source: the full-size
decode resized to the rendition's size with lanczos3 (premultiplied when there is alpha), never
encoded. PSNR is over RGB, SSIM (Gaussian window, sigma 1.5) over luma, both in numpy; images
with alpha are composited over mid-grey first, as a viewer would show them.

Parts:
  settings  each candidate WebP setting per quality (effort 0-6, Q offsets around today's,
            smart_subsample, smart_deblock, presets, alpha_q) on the renditions made today's way:
            CPU time (process time, min of --repeat; once only for a setting more than twice
            as slow as the fastest so far), wall time, bytes, PSNR and SSIM. The chosen setting
            per quality is the fastest whose total size is within +5% and whose mean PSNR and
            SSIM are within 0.3 dB and 0.005 of today's (of those within 5% of the fastest, the
            best mean PSNR), and at least 5% faster than today's (else today's stays). The
            fastest within those bounds on EVERY source is printed too.
  shrink    ways of making medium and low from high: CPU of the shrink, and quality of the
            renditions after encoding with today's setting.
  parallel  the three encodes of one image in parallel (high in the caller, medium and low on a
            pool) against one after another, at C=1 and at C=32 images in flight on a pool of 2
            workers (the service's CPU pool on this machine).
  speedup   render_renditions of --old-commit (loaded from `git show`) against the working tree's
            (run on a CPU pool of 2 that is also its helper, as the service runs it), on the
            PNG and JPEG sources, in the same run: CPU and wall per image at C=1, images/s at
            C=32, bytes and quality against the reference.
  helper    the same figures for the working tree's render_renditions with every encode in the
            calling thread (the "old" columns) against it on a CPU pool of 2 that is also its
            helper ("new"): what handing the smaller renditions to idle workers gives.
  where, alpha  (not in `all`) where render_renditions spends its CPU step by step, and the
            quality of alpha under WebP's alpha_q: see bench/renditions_where.py.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib.util
import math
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pyvips

from modelshelf import images
from modelshelf.executors import CpuPool
from modelshelf.images import rendition_sizes
from modelshelf.renditions import qualities, rendition

QUALITIES = qualities()

ROOT = Path(__file__).resolve().parents[1]
GENERATOR_VERSION = 1
MAX_PSNR_LOSS = 0.3
MAX_SSIM_LOSS = 0.005
MAX_SIZE_RATIO = 1.05
GREY = 128.0
POOL_WORKERS = 2
TARGET_PNG = 2.0
TARGET_JPEG = 1.3
MIN_GAIN = 1.05
# The settings of render_renditions at 2207d8e: WebP Q per quality, libwebp's default effort 4.
PARTS = ("settings", "shrink", "parallel", "speedup", "helper")
# Parts in bench/renditions_where.py, run only when named.
NAMED_PARTS = ("where", "alpha")
TODAY_Q = {"high": 80, "medium": 60, "low": 45}

# --- sources ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    kind: str  # "photo" or "illustration"
    width: int
    height: int
    fmt: str  # "png" or "jpg"
    alpha: bool
    seed: int

    @property
    def name(self) -> str:
        alpha = "-alpha" if self.alpha else ""
        return f"{self.kind}{alpha}-{self.width}x{self.height}.{self.fmt}"


SOURCES = (
    Source("photo", 1024, 1536, "png", False, 1),
    Source("photo", 1024, 1536, "jpg", False, 1),
    Source("illustration", 1024, 1536, "png", False, 2),
    Source("illustration", 1024, 1536, "png", True, 3),
    Source("photo", 2048, 2048, "png", True, 4),
    Source("photo", 2048, 3072, "png", False, 5),
    Source("photo", 2048, 3072, "jpg", False, 5),
    Source("illustration", 2048, 3072, "png", False, 6),
    Source("illustration", 2048, 3072, "jpg", False, 6),
    Source("photo", 4096, 4096, "jpg", False, 7),
    Source("illustration", 4096, 4096, "png", False, 8),
)
QUICK = ("photo-1024x1536.png", "photo-1024x1536.jpg", "illustration-alpha-1024x1536.png")


def perlin(w: int, h: int, cell: int, seed: int) -> pyvips.Image:
    """Perlin noise with a standard deviation of about 1."""
    return pyvips.Image.perlin(w, h, cell_size=max(2, cell), seed=seed) / 0.21


def fbm(w: int, h: int, cell: int, seed: int, octaves: int, gain: float) -> pyvips.Image:
    """Fractal noise: octaves of Perlin noise, each half the cell size and `gain` as strong."""
    layers = [
        perlin(w, h, cell >> i, seed * 31 + i) * gain**i for i in range(octaves) if cell >> i >= 2
    ]
    total = math.sqrt(sum(gain ** (2 * i) for i in range(len(layers))))
    return sum(layers[1:], layers[0]) / total


def gradient(w: int, h: int, rng: random.Random, scale: float = 1.0) -> pyvips.Image:
    top, bottom = random_colour(rng), random_colour(rng)
    y = pyvips.Image.xyz(w, h)[1] / h
    return (y * [b - t for t, b in zip(top, bottom, strict=True)] + top) * scale


def random_colour(rng: random.Random, low: int = 40, high: int = 215) -> list[int]:
    return [rng.randint(low, high) for _ in range(3)]


def over(base: pyvips.Image, mask: pyvips.Image, layer: pyvips.Image) -> pyvips.Image:
    return mask * layer + (1 - mask) * base


def union(coverage: pyvips.Image | None, mask: pyvips.Image) -> pyvips.Image:
    return mask if coverage is None else coverage + mask - coverage * mask


def photo(w: int, h: int, seed: int) -> tuple[pyvips.Image, pyvips.Image]:
    """Out-of-focus background, four layers of textured objects, grain. Returns the picture and
    the coverage of its objects (the alpha of a cut-out)."""
    rng = random.Random(seed)
    s = max(w, h)
    base = (gradient(w, h, rng, 0.8) + fbm(w, h, s // 4, seed, 3, 0.6) * 25).gaussblur(4)
    coverage = None
    for layer in range(4):
        shape = fbm(w, h, s // (3 + 2 * layer), seed * 10 + layer, 4, 0.5) > 0.6 + 0.2 * layer
        mask = (shape / 255.0).gaussblur(1.0 + layer * 0.5)
        detail = fbm(w, h, rng.choice([64, 128, 256]), seed * 100 + layer, 7, 0.8)
        worley = pyvips.Image.worley(w, h, cell_size=rng.choice([3, 5, 8]), seed=seed + layer)
        shade = fbm(w, h, s // 3, seed * 7 + layer, 2, 0.6) * 25
        texture = detail * rng.uniform(12, 30) + (worley - 3) * rng.uniform(1.0, 4.0) + shade
        base = over(base, mask, texture + random_colour(rng, 20, 170))
        coverage = union(coverage, mask)
    grain = pyvips.Image.gaussnoise(w, h, sigma=2.0, seed=seed)
    return base + grain, coverage


def illustration(w: int, h: int, seed: int) -> tuple[pyvips.Image, pyvips.Image]:
    """Five layers of flat, cel-shaded shapes with highlights and dark outlines."""
    rng = random.Random(seed)
    s = max(w, h)
    base = gradient(w, h, rng)
    coverage = None
    for layer in range(5):
        hard = fbm(w, h, s // (3 + 2 * layer), seed * 10 + layer, 4, 0.45) > 0.5 + 0.15 * layer
        mask = (hard / 255.0).gaussblur(0.6)
        wide = (hard / 255.0).gaussblur(1.6)
        outline = (((wide > 0.08) & (wide < 0.92)) / 255.0).gaussblur(0.6)
        shadow = (
            1 - ((fbm(w, h, s // 6, seed * 9 + layer, 2, 0.6) > 0.4) / 255.0).gaussblur(0.6) * 0.28
        )
        light = ((fbm(w, h, s // 10, seed * 5 + layer, 2, 0.6) > 1.4) / 255.0).gaussblur(0.6) * 40
        base = over(base, mask, shadow * random_colour(rng) + light)
        base = over(base, outline, base * 0 + [30, 24, 36])
        coverage = union(coverage, mask)
    return base, coverage


def generate(source: Source) -> pyvips.Image:
    make = photo if source.kind == "photo" else illustration
    picture, coverage = make(source.width, source.height, source.seed)
    if source.alpha:
        picture = picture.bandjoin(coverage * 255)
    return picture.cast("uchar").copy(interpretation="srgb").copy_memory()


def ensure_sources(folder: Path, chosen: Sequence[Source]) -> dict[str, Path]:
    """Write the sources that are not in `folder` yet; print what each one is."""
    folder.mkdir(parents=True, exist_ok=True)
    made: dict[tuple[str, int, int, bool, int], pyvips.Image] = {}
    paths = {}
    print(f"sources in {folder} (generator v{GENERATOR_VERSION})")
    for source in chosen:
        path = folder / source.name
        state = "cached"
        if not path.exists():
            key = (source.kind, source.width, source.height, source.alpha, source.seed)
            if key not in made:
                made[key] = generate(source)
            save = {"png": {}, "jpg": {"Q": 92}}[source.fmt]
            made[key].write_to_file(str(path.with_suffix(".tmp." + source.fmt)), **save)
            path.with_suffix(".tmp." + source.fmt).rename(path)
            state = "generated"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
        size = path.stat().st_size / 2**20
        print(f"  {source.name:38} {size:6.2f} MiB  sha256 {digest}  {state}")
        paths[source.name] = path
    return paths


# --- quality ----------------------------------------------------------------------------------


def pixels(image: pyvips.Image) -> np.ndarray:
    """RGB as float32, composited over mid-grey when there is alpha."""
    array = np.ndarray(
        buffer=image.write_to_memory(),
        dtype=np.uint8,
        shape=(image.height, image.width, image.bands),
    ).astype(np.float32)
    if image.bands == 4:
        alpha = array[:, :, 3:4] / 255.0
        return array[:, :, :3] * alpha + GREY * (1.0 - alpha)
    return array


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return 99.0 if mse == 0 else 10 * math.log10(255.0**2 / mse)


def _gaussian(sigma: float = 1.5, radius: int = 5) -> np.ndarray:
    x = np.arange(-radius, radius + 1, dtype=np.float32)
    kernel = np.exp(-(x**2) / (2 * sigma**2))
    return kernel / kernel.sum()


KERNEL = _gaussian()


def _blur(m: np.ndarray) -> np.ndarray:
    """Separable Gaussian blur over the valid region."""
    r = len(KERNEL) // 2
    h, w = m.shape
    rows = sum(k * m[:, i : i + w - 2 * r] for i, k in enumerate(KERNEL))
    return sum(k * rows[i : i + h - 2 * r, :] for i, k in enumerate(KERNEL))


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of the luma of two RGB arrays (Wang et al. 2004, Gaussian window)."""
    x = a[:, :, 0] * 0.299 + a[:, :, 1] * 0.587 + a[:, :, 2] * 0.114
    y = b[:, :, 0] * 0.299 + b[:, :, 1] * 0.587 + b[:, :, 2] * 0.114
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mx, my = _blur(x), _blur(y)
    sxx, syy, sxy = _blur(x * x) - mx * mx, _blur(y * y) - my * my, _blur(x * y) - mx * my
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    return float(np.mean(num / ((mx * mx + my * my + c1) * (sxx + syy + c2))))


@dataclass
class Reference:
    """The reference downscale of one source: at the rendition sizes render_renditions gave
    at 2207d8e (`sizes`), and at any other size a rendition comes in (code that rounds a
    side the other way, a pixel off, is scored against the reference of its own size)."""

    sizes: dict[str, tuple[int, int]]
    full: pyvips.Image  # the decoded source, upright (premultiplied when it has alpha)
    alpha: bool
    arrays: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)

    def score(self, quality: str, image: pyvips.Image) -> tuple[float, float]:
        got = pixels(image)
        want = self.at(image.width, image.height)
        return psnr(want, got), ssim(want, got)

    def at(self, w: int, h: int) -> np.ndarray:
        if (w, h) not in self.arrays:
            self.arrays[w, h] = pixels(self.picture(w, h))
        return self.arrays[w, h]

    def picture(self, w: int, h: int) -> pyvips.Image:
        """The reference downscale at `w` x `h`, alpha not composited."""
        out = self.full.resize(w / self.full.width, vscale=h / self.full.height, kernel="lanczos3")
        # The scale times the size can land a hair over a whole number, which libvips rounds up.
        out = out.crop(0, 0, w, h) if (out.width, out.height) != (w, h) else out
        out = out.unpremultiply() if self.alpha else out
        return out.cast("uchar")


def reference(path: Path) -> Reference:
    """The reference downscales of a source, first at the sizes render_renditions gave it."""
    full = pyvips.Image.new_from_file(str(path)).autorot()
    alpha = full.hasalpha()
    pictures = today_pictures(path)
    ref = Reference(
        {q: (p.width, p.height) for q, p in pictures.items()},
        (full.premultiply() if alpha else full).copy_memory(),
        alpha,
    )
    for w, h in ref.sizes.values():
        ref.at(w, h)
    return ref


# --- timing -----------------------------------------------------------------------------------


@dataclass
class Timed:
    cpu: float = math.inf
    wall: float = math.inf
    result: Any = None


def timed(action: Callable[[], Any], repeat: int, give_up_over: float = math.inf) -> Timed:
    """Process CPU time (every thread, libvips' own included) and wall time, min of `repeat`;
    only one run when the first took more than `give_up_over` CPU seconds."""
    best = Timed()
    for attempt in range(repeat):
        if attempt and best.cpu > give_up_over:
            break
        cpu, wall = time.process_time(), time.perf_counter()
        best.result = action()
        best.cpu = min(best.cpu, time.process_time() - cpu)
        best.wall = min(best.wall, time.perf_counter() - wall)
    return best


def load_line(label: str) -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {label}: {one:.2f} {five:.2f} {fifteen:.2f} ({os.cpu_count()} cpus)"


# --- settings ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Setting:
    label: str
    options: tuple[tuple[str, Any], ...] = ()
    dq: int = 0

    def kwargs(self, quality: str) -> dict[str, Any]:
        return {"Q": TODAY_Q[quality] + self.dq, "keep": "none", **dict(self.options)}


TODAY = Setting("today: effort 4")


def candidates() -> list[Setting]:
    found = [TODAY]
    found += [Setting(f"effort {e}", (("effort", e),)) for e in (0, 1, 2, 3, 5, 6)]
    found += [
        Setting(f"effort {e}, Q{dq:+d}", (("effort", e),), dq)
        for e in (1, 2, 3)
        for dq in (-3, -2, -1, 1, 2)
    ]
    for e in (2, 4):
        found += [
            Setting(f"effort {e}, smart_subsample", (("effort", e), ("smart_subsample", True))),
            Setting(f"effort {e}, smart_deblock", (("effort", e), ("smart_deblock", True))),
            Setting(f"effort {e}, alpha_q 90", (("effort", e), ("alpha_q", 90))),
            Setting(f"effort {e}, preset photo", (("effort", e), ("preset", "photo"))),
            Setting(f"effort {e}, preset drawing", (("effort", e), ("preset", "drawing"))),
        ]
    return found


def today_pictures(path: Path) -> dict[str, pyvips.Image]:
    """The three rendition pictures made as render_renditions made them at 2207d8e."""
    header = pyvips.Image.new_from_file(str(path), access="sequential")
    w, h = rendition_sizes(header.width, header.height)["high"]
    high = pyvips.Image.thumbnail(str(path), w, height=h, size="down", fail_on="error")
    high = high.copy_memory()
    pictures = {"high": high}
    for quality in ("medium", "low"):
        w = max(1, round(high.width * rendition(quality).scale))
        h = max(1, round(high.height * rendition(quality).scale))
        pictures[quality] = high.thumbnail_image(w, height=h, size="force").copy_memory()
    return pictures


@dataclass
class Row:
    cpu: float
    wall: float
    size: int
    psnr: float
    ssim: float


def measure_settings(
    paths: Mapping[str, Path],
    refs: Mapping[str, Reference],
    settings: Sequence[Setting],
    repeat: int,
) -> dict[tuple[str, str], dict[str, Row]]:
    """rows[(quality, label)][source] for every setting on every source."""
    rows: dict[tuple[str, str], dict[str, Row]] = {}
    for name, path in paths.items():
        pictures = today_pictures(path)
        for quality in QUALITIES:
            slow = math.inf
            for setting in settings:
                kwargs = setting.kwargs(quality)
                encode = lambda p=pictures[quality], k=kwargs: p.webpsave_buffer(**k)  # noqa: E731
                # A setting twice as slow as today's is out of the race: one run is enough.
                done = timed(encode, repeat, give_up_over=slow)
                slow = min(slow, 2 * done.cpu)
                decoded = pyvips.Image.new_from_buffer(done.result, "")
                quality_psnr, quality_ssim = refs[name].score(quality, decoded)
                row = Row(done.cpu, done.wall, len(done.result), quality_psnr, quality_ssim)
                rows.setdefault((quality, setting.label), {})[name] = row
        print(f"  measured {name}", file=sys.stderr)
    return rows


@dataclass
class Summary:
    label: str
    cpu: float
    wall: float
    size: int
    worst_size: float
    size_ratio: float
    mean_dpsnr: float
    worst_dpsnr: float
    mean_dssim: float
    worst_dssim: float

    @property
    def within(self) -> bool:
        """Within the bounds on every source."""
        return (
            self.worst_dpsnr >= -MAX_PSNR_LOSS
            and self.worst_dssim >= -MAX_SSIM_LOSS
            and self.worst_size <= MAX_SIZE_RATIO
        )

    @property
    def within_on_average(self) -> bool:
        """Within the bounds on the total size and the mean scores only."""
        return (
            self.mean_dpsnr >= -MAX_PSNR_LOSS
            and self.mean_dssim >= -MAX_SSIM_LOSS
            and self.size_ratio <= MAX_SIZE_RATIO
        )


def summarise(label: str, rows: Mapping[str, Row], base: Mapping[str, Row]) -> Summary:
    dpsnr = [rows[n].psnr - base[n].psnr for n in rows]
    dssim = [rows[n].ssim - base[n].ssim for n in rows]
    size = sum(r.size for r in rows.values())
    return Summary(
        label,
        cpu=sum(r.cpu for r in rows.values()),
        wall=sum(r.wall for r in rows.values()),
        size=size,
        worst_size=max(rows[n].size / base[n].size for n in rows),
        size_ratio=size / sum(r.size for r in base.values()),
        mean_dpsnr=sum(dpsnr) / len(dpsnr),
        worst_dpsnr=min(dpsnr),
        mean_dssim=sum(dssim) / len(dssim),
        worst_dssim=min(dssim),
    )


def fastest(summaries: Sequence[Summary], rule: Callable[[Summary], bool]) -> Summary:
    """The fastest summary that keeps `rule`, so that noise in the timings does not pick a
    setting: of those within MIN_GAIN of the fastest, the one with the best mean PSNR; and
    today's (the first) unless that one is at least MIN_GAIN faster than today's."""
    base = summaries[0]
    kept = [s for s in summaries if rule(s)]
    quickest = min(s.cpu for s in kept)
    best = max((s for s in kept if s.cpu <= MIN_GAIN * quickest), key=lambda s: s.mean_dpsnr)
    return best if base.cpu >= MIN_GAIN * best.cpu else base


def print_settings(quality: str, summaries: Sequence[Summary]) -> Summary:
    base = summaries[0]
    print(f"\n{quality} (today: Q {TODAY_Q[quality]}, effort 4), sums over the sources")
    print(
        f"  {'setting':32} {'cpu ms':>8} {'x fast':>6} {'wall ms':>8} {'KiB':>8} {'size':>6}"
        f" {'worst':>6} {'dPSNR':>6} {'worst':>6} {'wSSIM':>7}  in bounds"
    )
    for s in summaries:
        print(
            f"  {s.label:32} {s.cpu * 1000:8.1f} {base.cpu / s.cpu:6.2f} {s.wall * 1000:8.1f}"
            f" {s.size / 1024:8.1f} {s.size / base.size:6.3f} {s.worst_size:6.3f}"
            f" {s.mean_dpsnr:+6.2f} {s.worst_dpsnr:+6.2f} {s.worst_dssim:+7.4f}"
            f"  {'yes' if s.within else 'no'}{'' if s.within_on_average else ' (avg: no)'}"
        )
    strict = fastest(summaries, lambda s: s.within)
    print(
        f"  fastest in bounds on every source: {strict.label}"
        f" ({base.cpu / strict.cpu:.2f}x as fast)"
    )
    chosen = fastest(summaries, lambda s: s.within_on_average)
    print(
        f"  chosen, fastest in bounds on the totals and means: {chosen.label}"
        f" ({base.cpu / chosen.cpu:.2f}x as fast, size {chosen.size_ratio:.3f},"
        f" worst source {chosen.worst_size:.3f} and {chosen.worst_dpsnr:+.2f} dB)"
    )
    return chosen


def run_settings(paths: Mapping[str, Path], refs: Mapping[str, Reference], repeat: int) -> None:
    settings = candidates()
    print(
        f"\n== settings: {len(settings)} candidates x {len(paths)} sources x 3 qualities;"
        f" CPU and wall are min of {repeat}; size = bytes / today's (total, worst source);"
        f" dPSNR mean and worst, wSSIM worst, against today's on the same source"
    )
    rows = measure_settings(paths, refs, settings, repeat)
    chosen = {}
    for quality in QUALITIES:
        base = rows[(quality, TODAY.label)]
        summaries = [summarise(s.label, rows[(quality, s.label)], base) for s in settings]
        chosen[quality] = print_settings(quality, summaries)
    print("\nchosen, as options for webpsave:")
    for quality in QUALITIES:
        setting = next(s for s in settings if s.label == chosen[quality].label)
        print(f"  {quality}: {setting.kwargs(quality)}")


# --- shrink path ------------------------------------------------------------------------------


def shrink_thumbnail(high: pyvips.Image, size: tuple[int, int]) -> pyvips.Image:
    return high.thumbnail_image(size[0], height=size[1], size="force")


def shrink_resize(kernel: str) -> Callable[[pyvips.Image, tuple[int, int]], pyvips.Image]:
    def shrink(high: pyvips.Image, size: tuple[int, int]) -> pyvips.Image:
        alpha = high.hasalpha()
        start = high.premultiply() if alpha else high
        out = start.resize(size[0] / high.width, vscale=size[1] / high.height, kernel=kernel)
        out = out.crop(0, 0, *size) if (out.width, out.height) != size else out
        return (out.unpremultiply() if alpha else out).cast("uchar")

    return shrink


SHRINKS: dict[str, Callable[[pyvips.Image, tuple[int, int]], pyvips.Image]] = {
    "thumbnail_image (today)": shrink_thumbnail,
    "resize lanczos3, premultiplied": shrink_resize("lanczos3"),
    "resize cubic, premultiplied": shrink_resize("cubic"),
    "resize linear, premultiplied": shrink_resize("linear"),
}


def run_shrink(paths: Mapping[str, Path], refs: Mapping[str, Reference], repeat: int) -> None:
    print(
        "\n== shrink: medium and low made from high; CPU of the shrink alone, summed over the"
        " sources; quality of the renditions encoded with today's setting, worst source and"
        " quality against today's shrink"
    )
    totals: dict[str, list[float]] = {label: [0.0, 0.0, 0.0] for label in SHRINKS}
    for name, path in paths.items():
        sizes = refs[name].sizes
        high = today_pictures(path)["high"]
        base: dict[str, tuple[float, float]] = {}
        for label, shrink in SHRINKS.items():
            both = functools.partial(shrink_both, shrink, high, sizes)
            done = timed(both, repeat)
            scores = {
                q: refs[name].score(q, encoded(done.result[q], TODAY.kwargs(q)))
                for q in ("medium", "low")
            }
            base = base or scores
            row = totals[label]
            row[0] += done.cpu
            row[1] = min(row[1], *(scores[q][0] - base[q][0] for q in scores))
            row[2] = min(row[2], *(scores[q][1] - base[q][1] for q in scores))
    print(f"  {'shrink':34} {'cpu ms':>8} {'worst dPSNR':>12} {'worst dSSIM':>12}")
    for label, (cpu, dpsnr, dssim) in totals.items():
        print(f"  {label:34} {cpu * 1000:8.1f} {dpsnr:+12.2f} {dssim:+12.4f}")


def shrink_both(
    shrink: Callable[[pyvips.Image, tuple[int, int]], pyvips.Image],
    high: pyvips.Image,
    sizes: Mapping[str, tuple[int, int]],
) -> dict[str, pyvips.Image]:
    return {q: shrink(high, sizes[q]).copy_memory() for q in ("medium", "low")}


def encoded(picture: pyvips.Image, kwargs: Mapping[str, Any]) -> pyvips.Image:
    """`picture` after a round trip through WebP."""
    return pyvips.Image.new_from_buffer(picture.webpsave_buffer(**kwargs), "")


# --- parallel ---------------------------------------------------------------------------------


def render_prototype(
    path: Path, out: Path, options: Mapping[str, Mapping[str, Any]], pool: Executor | None
) -> None:
    """The render flow with the working tree's settings; medium and low encoded on `pool`
    while the caller encodes high, or all three in the caller when `pool` is None."""
    pictures = today_pictures(path)

    def encode(quality: str) -> bytes:
        data: bytes = pictures[quality].webpsave_buffer(
            Q=rendition(quality).webp_quality, keep="none", **options[quality]
        )
        return data

    later = {q: pool.submit(encode, q) for q in ("medium", "low")} if pool else {}
    encoded = {"high": encode("high")}
    for quality in ("medium", "low"):
        encoded[quality] = later[quality].result() if pool else encode(quality)
    for quality, data in encoded.items():
        (out / f"{path.stem}_{quality}.webp").write_bytes(data)


def throughput(
    jobs: Sequence[Callable[[], Any]], concurrency: int, workers: int = POOL_WORKERS
) -> tuple[float, float]:
    """Images per second and CPU seconds per image for `jobs`, `concurrency` in flight."""
    cpu, wall = time.process_time(), time.perf_counter()
    if concurrency == 1:
        for job in jobs:
            job()
    else:
        with ThreadPoolExecutor(min(workers, concurrency)) as runner:
            for future in [runner.submit(job) for job in jobs]:
                future.result()
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return len(jobs) / wall, cpu / len(jobs)


def batch(
    paths: Sequence[Path], count: int, render: Callable[[Path], Any]
) -> list[Callable[[], Any]]:
    return [functools.partial(render, paths[i % len(paths)]) for i in range(count)]


def run_parallel(paths: Mapping[str, Path], rounds: int) -> None:
    chosen = [p for n, p in paths.items() if n.endswith((".png", ".jpg"))]
    options = {q: {"effort": rendition(q).effort} for q in QUALITIES}
    shown = {q: {"Q": rendition(q).webp_quality, **options[q]} for q in QUALITIES}
    print(
        f"\n== parallel: {len(chosen)} sources, working tree's settings {shown};"
        f" serial and parallel alternate, {rounds} rounds; pool of {POOL_WORKERS} workers"
    )
    with tempfile.TemporaryDirectory() as scratch, ThreadPoolExecutor(2) as encoders:
        out = Path(scratch)
        variants: dict[str, Callable[[Path], Any]] = {
            "one image per worker": lambda p: render_prototype(p, out, options, None),
            "3 encodes in parallel": lambda p: render_prototype(p, out, options, encoders),
        }
        print(f"  {'variant':26} {'C':>3} {'images/s':>9} {'cpu s/image':>12}")
        for concurrency, count in ((1, len(chosen)), (32, 32)):
            results: dict[str, list[tuple[float, float]]] = {v: [] for v in variants}
            for _ in range(rounds):
                for label, render in variants.items():
                    jobs = batch(chosen, count, render)
                    results[label].append(throughput(jobs, concurrency))
            for label, found in results.items():
                rate = max(r for r, _ in found)
                cpu = min(c for _, c in found)
                print(f"  {label:26} {concurrency:3d} {rate:9.2f} {cpu:12.3f}")


# --- speed-up ---------------------------------------------------------------------------------


def load_old_images(commit: str) -> ModuleType:
    text = subprocess.run(
        ["git", "show", f"{commit}:src/modelshelf/images.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    with tempfile.TemporaryDirectory(prefix="old-renditions-") as folder:
        path = Path(folder) / "old_images.py"
        path.write_text(text)
        spec = importlib.util.spec_from_file_location("old_images", path)
        if spec is None or spec.loader is None:
            raise RuntimeError("cannot load the old images module")
        module = importlib.util.module_from_spec(spec)
        sys.modules["old_images"] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return module


def time_alternating(actions: Mapping[str, Callable[[], Any]], repeat: int) -> dict[str, Timed]:
    """Each action once per round, `repeat` rounds; min CPU and wall per action."""
    best = {label: Timed() for label in actions}
    for _ in range(repeat):
        for label, action in actions.items():
            done = timed(action, 1)
            best[label].cpu = min(best[label].cpu, done.cpu)
            best[label].wall = min(best[label].wall, done.wall)
    return best


def targets_in(folder: Path, path: Path) -> dict[str, Path]:
    folder.mkdir(exist_ok=True)
    return {q: folder / f"{path.stem}_{q}.webp" for q in QUALITIES}


def scores_of(ref: Reference, targets: Mapping[str, Path]) -> dict[str, tuple[float, float]]:
    return {q: ref.score(q, pyvips.Image.new_from_file(str(t))) for q, t in targets.items()}


def size_of(targets: Mapping[str, Path]) -> int:
    return sum(t.stat().st_size for t in targets.values())


def speedup_row(
    renders: Mapping[str, Callable[..., Any]], path: Path, out: Path, ref: Reference, repeat: int
) -> tuple[float, float, str]:
    """Old and new on one source: CPU ratio, wall ratio, and the printed row."""
    targets = {label: targets_in(out / label, path) for label in renders}
    done = time_alternating(
        {
            label: functools.partial(render, path, targets[label])
            for label, render in renders.items()
        },
        repeat,
    )
    a, b = done["old"], done["new"]
    old_scores, new_scores = scores_of(ref, targets["old"]), scores_of(ref, targets["new"])
    dpsnr = min(new_scores[q][0] - old_scores[q][0] for q in QUALITIES)
    dssim = min(new_scores[q][1] - old_scores[q][1] for q in QUALITIES)
    size = size_of(targets["new"]) / size_of(targets["old"])
    row = (
        f"  {path.name:38} {a.cpu * 1000:8.1f} {b.cpu * 1000:8.1f} {a.cpu / b.cpu:6.2f}"
        f" {a.wall * 1000:9.1f} {b.wall * 1000:9.1f} {a.wall / b.wall:6.2f}"
        f" {size:6.3f} {dpsnr:+6.2f} {dssim:+7.4f}"
    )
    return a.cpu / b.cpu, a.wall / b.wall, row


def on_pool(render: Callable[..., Any], pool: CpuPool) -> Callable[..., Any]:
    """`render` run as the service runs the working tree's: on a worker of its CPU pool,
    which is also the helper the smaller renditions are handed to while a worker is idle."""

    def run(path: Path, targets: Mapping[str, Path]) -> Any:
        return pool.submit(render, path, targets, helper=pool).result()

    return run


def run_speedup(
    paths: Mapping[str, Path], refs: Mapping[str, Reference], repeat: int, commit: str
) -> None:
    with CpuPool(POOL_WORKERS) as cpu_pool:
        renders = {
            "old": load_old_images(commit).render_renditions,
            "new": on_pool(images.render_renditions, cpu_pool),
        }
        title = (
            f"render_renditions at {commit} (old) against the working tree (new, on a CPU pool"
            f" of {POOL_WORKERS} that is also its helper, as the service runs it)"
        )
        run_speedup_parts(paths, refs, repeat, title, renders)


def run_helper(paths: Mapping[str, Path], refs: Mapping[str, Reference], repeat: int) -> None:
    """The working tree's render_renditions alone in the calling thread ("old" columns)
    against it on a CPU pool of 2 that is also its helper ("new")."""
    with CpuPool(POOL_WORKERS) as cpu_pool:
        renders = {
            "old": images.render_renditions,
            "new": on_pool(images.render_renditions, cpu_pool),
        }
        title = (
            "the working tree's render_renditions, every encode in the caller (old), against it"
            f" on a CPU pool of {POOL_WORKERS} that is also its helper (new)"
        )
        run_speedup_parts(paths, refs, repeat, title, renders)


def run_speedup_parts(
    paths: Mapping[str, Path],
    refs: Mapping[str, Reference],
    repeat: int,
    title: str,
    renders: Mapping[str, Callable[..., Any]],
) -> None:
    print(
        f"\n== speed-up: {title}, alternating, min of {repeat} runs each; C=1. size, dPSNR and"
        " dSSIM (worst quality): new against old, quality against the reference"
    )
    print(
        f"  {'source':38} {'old cpu':>8} {'new cpu':>8} {'x cpu':>6} {'old wall':>9}"
        f" {'new wall':>9} {'x wall':>6} {'size':>6} {'dPSNR':>6} {'dSSIM':>7}"
    )
    ratios: dict[str, list[tuple[float, float]]] = {"png": [], "jpg": []}
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        for path in paths.values():
            cpu, wall, row = speedup_row(renders, path, out, refs[path.name], repeat)
            ratios[path.suffix.lstrip(".")].append((cpu, wall))
            print(row)
        for kind, target in (("png", TARGET_PNG), ("jpg", TARGET_JPEG)):
            print_geomean(kind, ratios[kind], target)
        run_speedup_c32(renders, list(paths.values()), out)


def run_speedup_c32(
    renders: Mapping[str, Callable[..., Any]], paths: Sequence[Path], out: Path
) -> None:
    found: dict[str, list[tuple[float, float]]] = {label: [] for label in renders}
    for _ in range(2):
        for label, render in renders.items():

            def one(path: Path, r: Callable[..., Any] = render, folder: Path = out / label) -> None:
                r(path, targets_in(folder, path))

            found[label].append(throughput(batch(paths, 32, one), 32))
    rate = {label: max(r for r, _ in runs) for label, runs in found.items()}
    cpu = {label: min(c for _, c in runs) for label, runs in found.items()}
    print(
        f"  C=32 images in flight on a pool of {POOL_WORKERS} (best of 2 alternating):"
        f" old {rate['old']:.2f} images/s ({cpu['old']:.3f} CPU s/image),"
        f" new {rate['new']:.2f} images/s ({cpu['new']:.3f} CPU s/image):"
        f" {rate['new'] / rate['old']:.2f}x images/s, {cpu['old'] / cpu['new']:.2f}x CPU"
    )


def print_geomean(kind: str, ratios: Sequence[tuple[float, float]], target: float) -> None:
    if not ratios:
        return
    cpu = math.exp(sum(math.log(c) for c, _ in ratios) / len(ratios))
    wall = math.exp(sum(math.log(w) for _, w in ratios) / len(ratios))

    def verdict(ratio: float) -> str:
        return "MET" if ratio >= target else "MISSED"

    print(
        f"  {kind.upper()} sources, geometric mean (target >= {target}x):"
        f" CPU {cpu:.2f}x {verdict(cpu)}, wall at C=1 {wall:.2f}x {verdict(wall)}"
    )


# --- main -------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "parts",
        nargs="*",
        default=["all"],
        choices=["sources", *PARTS, *NAMED_PARTS, "all"],
    )
    parser.add_argument(
        "--sources",
        type=Path,
        default=Path(tempfile.gettempdir()) / f"modelshelf-bench-renditions-v{GENERATOR_VERSION}",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the parallel part")
    parser.add_argument("--old-commit", default="2207d8e")
    parser.add_argument("--quick", action="store_true", help=f"only {', '.join(QUICK)}")
    parser.add_argument("--only", default="", help="only these sources, by name, comma-separated")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    print(
        f"rendition benchmark: libvips {pyvips.version(0)}.{pyvips.version(1)}."
        f"{pyvips.version(2)}, numpy {np.__version__}, Python {sys.version.split()[0]}"
    )
    print(load_line("at start"))
    chosen = [s for s in SOURCES if not args.quick or s.name in QUICK]
    chosen = [s for s in chosen if not args.only or s.name in args.only.split(",")]
    paths = ensure_sources(args.sources, chosen)
    parts = [
        part for asked in args.parts for part in {"all": PARTS, "sources": ()}.get(asked, (asked,))
    ]
    refs = {name: reference(path) for name, path in paths.items()} if parts else {}
    for part in parts:
        if part == "settings":
            run_settings(paths, refs, args.repeat)
        elif part == "shrink":
            run_shrink(paths, refs, args.repeat)
        elif part == "parallel":
            run_parallel(paths, args.rounds)
        elif part == "speedup":
            run_speedup(paths, refs, args.repeat, args.old_commit)
        elif part == "helper":
            run_helper(paths, refs, args.repeat)
        elif part == "where":
            import renditions_where

            renditions_where.run_where(paths, args.repeat)
        elif part == "alpha":
            import renditions_where

            renditions_where.run_alpha(paths, refs, args.repeat, today_pictures)
    print(load_line("at end"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
