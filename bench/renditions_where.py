"""Two parts of bench/renditions.py: where render_renditions spends its CPU (`where`), and the
quality of a picture's alpha under WebP's `alpha_q` (`alpha`). Run them through
bench/renditions.py (`.venv/bin/python bench/renditions.py where alpha`).

where  Per source, the CPU (process time, every thread, min of --repeat) of each step the
       working tree's render_renditions takes, in the calling thread: the header, the decode
       alone (into memory), the decode with the shrink to high (`thumbnail`, as the code does
       it), the shrinks of medium and low from high, and each quality's WebP encode with
       2207d8e's settings (Q 80/60/45, effort 4, alpha lossless) and with the working tree's.
       The decode and the shrinks are the same in both codes, so the ratio of the old code's
       CPU to the new one's is about x = (fixed + old encodes) / (fixed + new encodes), fixed
       being the header, the decode to high and the shrinks; the last column is the share of
       the old encodes' CPU the new ones would have to stay under for 2x.
alpha  On the sources with alpha: each quality encoded with 2207d8e's settings (alpha
       lossless), the working tree's, and the working tree's with `alpha_q` 100..50 (libwebp
       quantises the alpha plane to fewer levels before its lossless coding). CPU, bytes and
       the bench's scores (composited over mid-grey) against the old encode, and two views
       the grey composite hides: the PSNR of the alpha plane itself against the reference's,
       and the worst of the composites over black and over white.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyvips

from modelshelf import images
from modelshelf.renditions import qualities, rendition

QUALITIES = qualities()
OLD_Q = {"high": 80, "medium": 60, "low": 45}
ALPHA_QS = (100, 90, 80, 75, 70, 60, 50)


def cpu_ms(action: Callable[[], Any], repeat: int) -> float:
    best = math.inf
    for _ in range(repeat):
        start = time.process_time()
        action()
        best = min(best, time.process_time() - start)
    return best * 1000


def old_options(quality: str) -> dict[str, Any]:
    return {"Q": OLD_Q[quality], "keep": "none"}


def pictures_now(path: Path) -> dict[str, pyvips.Image]:
    """The three pictures the working tree's render_renditions encodes, in memory."""
    info = images.read_image_info(path)
    sizes = images.rendition_sizes(info.width, info.height)
    high = images._decode_high(path, *sizes["high"], to_srgb=info.has_profile)
    return {q: images._shrink(high, rendition(q).scale).copy_memory() for q in QUALITIES}


def steps(path: Path, repeat: int) -> tuple[float, float, float, float, float, float]:
    """CPU ms of the header, the decode alone, the decode to high, the shrinks, the old
    encodes and the new ones."""
    info = images.read_image_info(path)
    sizes = images.rendition_sizes(info.width, info.height)
    pictures = pictures_now(path)
    high = pictures["high"]
    header = cpu_ms(lambda: images.read_image_info(path), repeat)
    decode = cpu_ms(
        lambda: pyvips.Image.new_from_file(
            str(path), access="sequential", fail_on="error"
        ).copy_memory(),
        repeat,
    )
    to_high = cpu_ms(
        lambda: images._decode_high(path, *sizes["high"], to_srgb=info.has_profile), repeat
    )
    shrink = cpu_ms(
        lambda: [images._shrink(high, rendition(q).scale).copy_memory() for q in QUALITIES],
        repeat,
    )
    old_enc = sum(
        cpu_ms(lambda q=q: pictures[q].webpsave_buffer(**old_options(q)), repeat) for q in QUALITIES
    )
    new_enc = sum(
        cpu_ms(lambda q=q: pictures[q].webpsave_buffer(**images.webp_options(q)), repeat)
        for q in QUALITIES
    )
    return header, decode, to_high, shrink, old_enc, new_enc


def run_where(paths: Mapping[str, Path], repeat: int) -> None:
    print(
        f"\n== where: the CPU of each step of render_renditions, in the calling thread, min of"
        f" {repeat} (ms); encodes: old = 2207d8e's settings, new = the working tree's"
    )
    print(
        f"  {'source':34} {'header':>6} {'decode':>6} {'d+high':>6} {'shrink':>6}"
        f" {'old enc':>7} {'new enc':>7} {'x enc':>5} {'fixed':>6} {'x':>5} {'2x needs':>8}"
    )
    caps: dict[str, list[float]] = {"png": [], "jpg": []}
    for name, path in paths.items():
        header, decode, to_high, shrink, old_enc, new_enc = steps(path, repeat)
        fixed = header + to_high + shrink
        cap = (fixed + old_enc) / (fixed + new_enc)
        # new encodes under this share of the old ones' CPU give 2x
        needs = ((fixed + old_enc) / 2 - fixed) / old_enc
        caps[path.suffix.lstrip(".")].append(cap)
        print(
            f"  {name:34} {header:6.1f} {decode:6.1f} {to_high:6.1f} {shrink:6.1f}"
            f" {old_enc:7.1f} {new_enc:7.1f} {old_enc / new_enc:5.2f} {fixed:6.1f} {cap:5.2f}"
            f" {needs:8.2f}"
        )
    for kind, found in caps.items():
        if found:
            mean = math.exp(sum(math.log(c) for c in found) / len(found))
            print(f"  {kind.upper()} sources, geometric mean of x: {mean:.2f}")


def over(array: np.ndarray, background: float) -> np.ndarray:
    rgb, alpha = array[:, :, :3], array[:, :, 3:4] / 255.0
    return rgb * alpha + background * (1.0 - alpha)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return 99.0 if mse == 0 else 10 * math.log10(255.0**2 / mse)


def rgba(image: pyvips.Image) -> np.ndarray:
    return np.ndarray(
        buffer=image.write_to_memory(),
        dtype=np.uint8,
        shape=(image.height, image.width, image.bands),
    ).astype(np.float32)


def alpha_scores(reference: np.ndarray, data: bytes) -> tuple[float, float]:
    """PSNR of the alpha plane, and the worst PSNR of the composites over black and white."""
    got = rgba(pyvips.Image.new_from_buffer(data, ""))
    plane = psnr(reference[:, :, 3], got[:, :, 3])
    composites = min(psnr(over(reference, bg), over(got, bg)) for bg in (0.0, 255.0))
    return plane, composites


def run_alpha(
    paths: Mapping[str, Path],
    refs: Mapping[str, Any],
    repeat: int,
    old_pictures: Callable[[Path], dict[str, pyvips.Image]],
) -> None:
    """`old_pictures`: the three pictures as 2207d8e made them (the bench's today_pictures)."""
    chosen = {n: p for n, p in paths.items() if pyvips.Image.new_from_file(str(p)).hasalpha()}
    print(
        f"\n== alpha: {len(chosen)} sources with alpha; CPU min of {repeat}; size, dPSNR and"
        " dSSIM (over mid-grey, as the bench scores) against 2207d8e's encode of its own"
        " picture; aPSNR: the alpha plane against the reference's; bw: the worst of the"
        " composites over black and over white, against the reference's"
    )
    print(
        f"  {'source, quality, setting':52} {'cpu ms':>7} {'x old':>5} {'size':>6}"
        f" {'dPSNR':>6} {'dSSIM':>7} {'aPSNR':>6} {'bw':>6}"
    )
    for name, path in chosen.items():
        ref = refs[name]
        now = pictures_now(path)
        before = old_pictures(path)
        for quality in QUALITIES:
            rows: list[tuple[str, pyvips.Image, dict[str, Any]]] = [
                (f"2207d8e: Q {OLD_Q[quality]}, effort 4", before[quality], old_options(quality))
            ]
            base = images.webp_options(quality)
            rows += [
                (f"now: {base}", now[quality], base),
                *((f"  alpha_q {aq}", now[quality], {**base, "alpha_q": aq}) for aq in ALPHA_QS),
            ]
            first: tuple[float, int, float, float] | None = None
            for label, picture, options in rows:
                data = picture.webpsave_buffer(**options)
                ms = cpu_ms(lambda p=picture, o=options: p.webpsave_buffer(**o), repeat)
                score = ref.score(quality, pyvips.Image.new_from_buffer(data, ""))
                want = rgba(ref.picture(picture.width, picture.height))
                plane, bw = alpha_scores(want, data)
                if first is None:
                    first = (ms, len(data), *score)
                print(
                    f"  {name[:22] + ' ' + quality + ' ' + label:52.52} {ms:7.1f}"
                    f" {first[0] / ms:5.2f} {len(data) / first[1]:6.3f}"
                    f" {score[0] - first[2]:+6.2f} {score[1] - first[3]:+7.4f}"
                    f" {plane:6.2f} {bw:6.2f}"
                )
