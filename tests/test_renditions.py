"""The rendition engine (modelshelf.images) as plain synchronous functions on real files."""

from __future__ import annotations

import contextlib
import os
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import pyvips

from modelshelf.errors import ImageError, ImageTooLarge
from modelshelf.executors import CpuPool
from modelshelf.images import read_image_info, render_renditions, verify_image
from modelshelf.renditions import HIGH_MAX_PIXELS, qualities
from tests.factories import make_image

RED = (200, 30, 30)
BLUE = (0, 0, 255)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def targets(folder: Path, stem: str = "img") -> dict[str, Path]:
    return {q: folder / f"{stem}_{q}.webp" for q in qualities()}


def load(path: Path) -> pyvips.Image:
    return pyvips.Image.new_from_file(str(path))


def pixel(image: pyvips.Image, x: int, y: int) -> list[float]:
    return [float(v) for v in image.getpoint(x, y)]


def near(actual: list[float], expected: tuple[int, ...], tolerance: float = 24) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=False))


def png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header claims width x height but which holds no pixel data at all: reading
    its header is instant, decoding it fails."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")
    )
    return path


# --- sizes ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("width", "height"),
    [
        (3000, 2000),  # 6 MP landscape: scaled down to 2 MP
        (1000, 4000),  # 4 MP portrait
        (1415, 1414),  # just over 2 MP
        (1000, 1000),  # 1 MP: kept as it is
        (640, 480),
        (37, 23),  # tiny: never upscaled
        (1, 1),
    ],
)
def test_high_fits_two_megapixels_keeps_aspect_and_is_never_upscaled(
    tmp_path: Path, out: Path, width: int, height: int
) -> None:
    source = make_image(tmp_path / "src.png", width, height)
    sizes = render_renditions(source, targets(out))

    high_w, high_h = sizes["high"]
    written = load(out / "img_high.webp")
    assert (written.width, written.height) == (high_w, high_h)
    assert high_w * high_h <= HIGH_MAX_PIXELS
    assert high_w <= width
    assert high_h <= height
    assert abs(high_h - high_w * height / width) <= 1, "aspect ratio changed"
    if width * height > HIGH_MAX_PIXELS:
        assert high_w * high_h >= 0.99 * HIGH_MAX_PIXELS, "scaled down more than needed"
    else:
        assert (high_w, high_h) == (width, height)


@pytest.mark.parametrize(("width", "height"), [(3000, 2000), (1000, 4000), (640, 480), (37, 23)])
def test_medium_and_low_are_two_thirds_and_one_third_of_high(
    tmp_path: Path, out: Path, width: int, height: int
) -> None:
    source = make_image(tmp_path / "src.jpg", width, height)
    sizes = render_renditions(source, targets(out))

    high_w, high_h = sizes["high"]
    for quality, factor in (("medium", 0.66), ("low", 0.33)):
        w, h = sizes[quality]
        assert abs(w - high_w * factor) <= 1, (quality, w, high_w)
        assert abs(h - high_h * factor) <= 1, (quality, h, high_h)


def test_returned_sizes_are_the_sizes_of_the_written_files(tmp_path: Path, out: Path) -> None:
    source = make_image(tmp_path / "src.png", 2500, 1200)
    sizes = render_renditions(source, targets(out))

    for quality, path in targets(out).items():
        image = load(path)
        assert (image.width, image.height) == sizes[quality]


# --- output format ----------------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["jpg", "png", "webp", "gif", "tif"])
def test_every_common_input_becomes_three_webp_files(tmp_path: Path, out: Path, ext: str) -> None:
    source = make_image(tmp_path / f"src.{ext}", 120, 80)
    render_renditions(source, targets(out))

    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in targets(out).values())
    for path in targets(out).values():
        data = path.read_bytes()
        assert data[:4] == b"RIFF"
        assert data[8:12] == b"WEBP"
        assert load(path).get("vips-loader") == "webpload"


@pytest.mark.parametrize("ext", ["jpg", "png", "webp", "gif", "tif"])
def test_colours_survive_rendering(tmp_path: Path, out: Path, ext: str) -> None:
    source = make_image(tmp_path / f"src.{ext}", 120, 80, colour=RED)
    render_renditions(source, targets(out))

    high = load(out / "img_high.webp")
    assert near(pixel(high, 20, 40), RED), pixel(high, 20, 40)
    assert near(pixel(high, 100, 40), BLUE), pixel(high, 100, 40)


@pytest.mark.parametrize("ext", ["jpg", "png"])
def test_a_display_p3_image_is_converted_to_srgb(tmp_path: Path, out: Path, ext: str) -> None:
    # Phones and Macs save Display P3 with its ICC profile. Renditions carry no profile, so
    # browsers show their numbers as sRGB: the numbers must be sRGB, not P3's own.
    srgb = load(make_image(tmp_path / "srgb.png", 120, 80, colour=RED))
    p3 = srgb.icc_transform("p3", input_profile="srgb")
    source = tmp_path / f"p3.{ext}"
    p3.write_to_file(str(source))
    assert not near(pixel(load(source), 20, 40), RED, tolerance=8), "P3 numbers differ from sRGB"

    render_renditions(source, targets(out))

    for quality, path in targets(out).items():
        image = load(path)
        assert near(pixel(image, 10, 20), RED, tolerance=8), (quality, pixel(image, 10, 20))


def test_png_with_alpha_keeps_its_transparency(tmp_path: Path, out: Path) -> None:
    source = make_image(tmp_path / "src.png", 100, 80, alpha=True)
    render_renditions(source, targets(out))

    for quality, path in targets(out).items():
        image = load(path)
        assert image.hasalpha(), quality
        assert image.bands == 4
        top = pixel(image, image.width // 4, 1)
        bottom = pixel(image, image.width // 4, image.height - 2)
        assert top[3] < 10, f"{quality}: top half should be transparent, alpha {top[3]}"
        assert bottom[3] > 245, f"{quality}: bottom half should be opaque, alpha {bottom[3]}"
        assert near(bottom[:3], RED)


def test_alpha_is_kept_within_one_level(tmp_path: Path, out: Path) -> None:
    """libwebp may quantise the alpha plane (alpha_q below 100) to save CPU, but never so far
    that a soft edge bands: every level of a ramp comes back within one step."""
    width, height = 600, 90
    ramp = (pyvips.Image.xyz(width, height)[0] * (255.0 / (width - 1))).cast("uchar")
    colour = (pyvips.Image.black(width, height, bands=3) + list(RED)).cast("uchar")
    picture = colour.bandjoin(ramp).copy(interpretation="srgb")
    source = tmp_path / "ramp.png"
    picture.write_to_file(str(source))
    render_renditions(source, targets(out))

    for quality, path in targets(out).items():
        image = load(path)
        shrunk = picture.thumbnail_image(image.width, height=image.height, size="force")
        difference = (image[3].cast("int") - shrunk[3].cast("int")).abs()
        assert difference.max() <= 1, (quality, difference.max(), difference.avg())


def test_jpeg_renditions_have_no_alpha_band(tmp_path: Path, out: Path) -> None:
    source = make_image(tmp_path / "src.jpg", 100, 80)
    render_renditions(source, targets(out))

    for path in targets(out).values():
        image = load(path)
        assert not image.hasalpha()
        assert image.bands == 3


# --- orientation, animation, deep colour --------------------------------------------------------


def test_exif_orientation_6_turns_a_landscape_jpeg_into_a_portrait_rendition(
    tmp_path: Path, out: Path
) -> None:
    # Stored 400x200, left half red, right half blue. Orientation 6 means "rotate 90 degrees
    # clockwise to display": the red left half ends up on top.
    source = make_image(tmp_path / "src.jpg", 400, 200, orientation=6)
    assert load(source).get("orientation") == 6
    sizes = render_renditions(source, targets(out))

    assert sizes["high"] == (200, 400)
    high = load(out / "img_high.webp")
    assert (high.width, high.height) == (200, 400)
    assert near(pixel(high, 100, 50), RED), pixel(high, 100, 50)
    assert near(pixel(high, 100, 350), BLUE), pixel(high, 100, 350)
    low = load(out / "img_low.webp")
    assert low.height > low.width
    assert near(pixel(low, low.width // 2, low.height // 6), RED)
    assert near(pixel(low, low.width // 2, low.height * 5 // 6), BLUE)


def test_exif_orientation_3_turns_the_picture_upside_down(tmp_path: Path, out: Path) -> None:
    source = make_image(tmp_path / "src.jpg", 400, 200, orientation=3)
    render_renditions(source, targets(out))

    high = load(out / "img_high.webp")
    assert (high.width, high.height) == (400, 200)
    assert near(pixel(high, 50, 100), BLUE), pixel(high, 50, 100)
    assert near(pixel(high, 350, 100), RED), pixel(high, 350, 100)


def test_read_image_info_reports_the_displayed_orientation(tmp_path: Path) -> None:
    source = make_image(tmp_path / "src.jpg", 400, 200, orientation=6)
    info = read_image_info(source)
    assert (info.width, info.height) == (200, 400)
    assert info.loader.startswith("jpegload")


def test_animated_gif_renders_its_first_frame(tmp_path: Path, out: Path) -> None:
    red = pyvips.Image.black(40, 30, bands=3).new_from_image([255, 0, 0]).cast("uchar")
    green = pyvips.Image.black(40, 30, bands=3).new_from_image([0, 255, 0]).cast("uchar")
    frames = red.join(green, "vertical").copy(interpretation="srgb")
    frames.set_type(pyvips.GValue.gint_type, "page-height", 30)
    source = tmp_path / "anim.gif"
    frames.gifsave(str(source))
    assert pyvips.Image.new_from_file(str(source), n=-1).get("n-pages") == 2

    sizes = render_renditions(source, targets(out))

    assert sizes["high"] == (40, 30), "the frames must not be stacked into one tall image"
    high = load(out / "img_high.webp")
    assert near(pixel(high, 20, 15), (255, 0, 0)), pixel(high, 20, 15)
    assert near(pixel(high, 20, 28), (255, 0, 0)), "the second frame leaked in"


def test_webp_input_is_rendered(tmp_path: Path, out: Path) -> None:
    source = make_image(tmp_path / "src.webp", 300, 150, alpha=True)
    sizes = render_renditions(source, targets(out))

    assert sizes["high"] == (300, 150)
    assert load(out / "img_high.webp").hasalpha()


def test_sixteen_bit_png_is_scaled_to_eight_bits_not_clipped(tmp_path: Path, out: Path) -> None:
    eight = load(make_image(tmp_path / "src8.png", 60, 40, colour=RED))
    sixteen = (eight.cast("ushort") * 257).cast("ushort").copy(interpretation="rgb16")
    source = tmp_path / "src16.png"
    sixteen.pngsave(str(source), bitdepth=16)
    assert load(source).format == "ushort"

    render_renditions(source, targets(out))

    high = load(out / "img_high.webp")
    assert high.format == "uchar"
    # 200*257 clipped to 8 bits would be 255; scaled properly it is 200 again.
    assert near(pixel(high, 10, 20), RED, tolerance=8), pixel(high, 10, 20)
    assert near(pixel(high, 50, 20), BLUE, tolerance=8), pixel(high, 50, 20)


# --- metadata ---------------------------------------------------------------------------------


@pytest.mark.parametrize("ext", ["jpg", "png", "webp"])
def test_metadata_is_stripped_from_every_rendition(tmp_path: Path, out: Path, ext: str) -> None:
    source = make_image(tmp_path / f"src.{ext}", 200, 100, orientation=1)
    with_meta = load(source).copy()
    with_meta.set_type(pyvips.GValue.gstr_type, "exif-ifd0-ImageDescription", "secret place")
    with_meta.write_to_file(str(source))
    fields = set(load(source).get_fields())
    assert fields & {"exif-data", "xmp-data"}, f"the source should carry metadata: {fields}"

    render_renditions(source, targets(out))

    for quality, path in targets(out).items():
        assert b"secret place" not in path.read_bytes(), quality
        fields = set(load(path).get_fields())
        leaked = {f for f in fields if f.startswith(("exif", "xmp", "iptc", "icc", "orientation"))}
        assert not leaked, f"{quality}: {leaked}"
        chunks = path.read_bytes()
        assert b"EXIF" not in chunks
        assert b"XMP " not in chunks


# --- decompression bombs ----------------------------------------------------------------------


def test_image_over_the_pixel_limit_is_refused(tmp_path: Path, out: Path) -> None:
    source = make_image(tmp_path / "src.png", 200, 100)
    with pytest.raises(ImageTooLarge, match="20000"):
        render_renditions(source, targets(out), max_pixels=19_999)
    assert list(out.iterdir()) == []


def test_image_exactly_at_the_pixel_limit_is_accepted(tmp_path: Path, out: Path) -> None:
    source = make_image(tmp_path / "src.png", 200, 100)
    assert render_renditions(source, targets(out), max_pixels=20_000)["high"] == (200, 100)


def test_bomb_guard_answers_from_the_header_before_any_decoding(tmp_path: Path, out: Path) -> None:
    # 900 megapixels announced, no pixel data: decoding would fail with ImageError, so getting
    # ImageTooLarge proves the limit was checked on the header alone.
    bomb = png_header_only(tmp_path / "bomb.png", 30_000, 30_000)
    with pytest.raises(ImageTooLarge):
        render_renditions(bomb, targets(out))
    with pytest.raises(ImageTooLarge):
        verify_image(bomb)
    with pytest.raises(ImageTooLarge):
        read_image_info(bomb)
    assert list(out.iterdir()) == []
    # With a limit that lets it through, the missing data is found when decoding.
    with pytest.raises(ImageError):
        render_renditions(bomb, targets(out), max_pixels=10**10)
    assert list(out.iterdir()) == []


def test_default_limit_is_one_hundred_megapixels(tmp_path: Path, out: Path) -> None:
    with pytest.raises(ImageTooLarge, match="100000000"):
        read_image_info(png_header_only(tmp_path / "b.png", 10_001, 10_000))


def test_an_image_wider_than_the_side_limit_is_refused_from_its_header(
    tmp_path: Path, out: Path
) -> None:
    # libvips decodes a picture in strips of whole lines: memory and time grow with the width,
    # whatever the pixel count. 10,000,000 x 10 is within the pixel limit and its PNG takes
    # 292 KB, yet rendering it took 5 GB and 16 s (a tiled TIFF 2,000,000 x 50, 126 s).
    bomb = png_header_only(tmp_path / "strip.png", 10_000_000, 10)
    with pytest.raises(ImageTooLarge, match="10000000 pixels wide, over the limit of 65535"):
        read_image_info(bomb)
    with pytest.raises(ImageTooLarge):
        render_renditions(bomb, targets(out))
    with pytest.raises(ImageTooLarge):
        verify_image(bomb)
    assert list(out.iterdir()) == []
    # At the limit, and tall (decoded a few lines at a time, as cheap as any), it is read.
    assert read_image_info(png_header_only(tmp_path / "at.png", 65_535, 10)).width == 65_535
    assert read_image_info(png_header_only(tmp_path / "tall.png", 10, 10_000_000)).height == (
        10_000_000
    )


# --- bad inputs -------------------------------------------------------------------------------


def _truncated(ext: str) -> Callable[[Path], bytes]:
    def build(folder: Path) -> bytes:
        data = make_image(folder / f"good.{ext}", 300, 200).read_bytes()
        return data[: len(data) // 2]

    return build


def _flipped(ext: str) -> Callable[[Path], bytes]:
    def build(folder: Path) -> bytes:
        data = bytearray(make_image(folder / f"good.{ext}", 300, 200).read_bytes())
        start = len(data) // 3
        for i in range(start, start + 40):
            data[i] ^= 0xFF
        return bytes(data)

    return build


def _head(ext: str) -> Callable[[Path], bytes]:
    def build(folder: Path) -> bytes:
        return make_image(folder / f"good.{ext}", 300, 200).read_bytes()[:40]

    return build


BAD_INPUTS: dict[str, Callable[[Path], bytes]] = {
    "truncated.jpg": _truncated("jpg"),
    "truncated.png": _truncated("png"),
    "truncated.webp": _truncated("webp"),
    "truncated.gif": _truncated("gif"),
    "corrupt-data.png": _flipped("png"),
    "corrupt-data.webp": _flipped("webp"),
    "header-only.jpg": _head("jpg"),
    "header-only.png": _head("png"),
    "header-only.gif": _head("gif"),
    "empty.png": lambda folder: b"",
    "text.jpg": lambda folder: b"this is not an image\n" * 20,
    "html.png": lambda folder: b"<!doctype html><html><body>hello</body></html>",
    "zeros.webp": lambda folder: b"\0" * 4096,
    "model.safetensors": lambda folder: b'{"__metadata__":{}}' + os.urandom(2048),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_is_an_image_error_and_leaves_no_file(
    tmp_path: Path, out: Path, name: str
) -> None:
    source = tmp_path / "bad" / name
    source.parent.mkdir()
    source.write_bytes(BAD_INPUTS[name](tmp_path / "bad"))

    with pytest.raises(ImageError):
        render_renditions(source, targets(out))
    assert list(out.iterdir()) == [], "nothing, not even a temporary file, may be left"


def _vips_format(folder: Path) -> bytes:
    pyvips.Image.black(64, 48).vipssave(str(folder / "native.v"))
    return (folder / "native.v").read_bytes()


# Formats libvips can read that no example image comes in: each named as a picture, as a
# sidecar folder or a client may name anything.
NO_PICTURE_FORMATS: dict[str, Callable[[Path], bytes]] = {
    "drawing.png": lambda folder: (
        b'<svg xmlns="http://www.w3.org/2000/svg" width="640" height="480">'
        b'<rect width="640" height="480" fill="red"/></svg>'
    ),
    "native.png": _vips_format,
}


@pytest.mark.parametrize("name", list(NO_PICTURE_FORMATS))
def test_a_format_pictures_do_not_come_in_is_not_read(tmp_path: Path, out: Path, name: str) -> None:
    source = tmp_path / "bad" / name
    source.parent.mkdir()
    source.write_bytes(NO_PICTURE_FORMATS[name](tmp_path / "bad"))

    with pytest.raises(ImageError, match="is not an image"):
        render_renditions(source, targets(out))
    with pytest.raises(ImageError, match="is not an image"):
        verify_image(source)
    assert list(out.iterdir()) == []


@pytest.mark.parametrize("ext", ["jpg", "png", "webp", "gif", "tif", "avif"])
def test_every_format_pictures_come_in_is_read(tmp_path: Path, out: Path, ext: str) -> None:
    sizes = render_renditions(make_image(tmp_path / f"ok.{ext}", 90, 60), targets(out))
    assert sizes["high"] == (90, 60)


@pytest.mark.parametrize("name", ["truncated.jpg", "truncated.png", "corrupt-data.png", "text.jpg"])
def test_verify_image_rejects_what_cannot_be_decoded(tmp_path: Path, name: str) -> None:
    source = tmp_path / name
    source.write_bytes(BAD_INPUTS[name](tmp_path))
    with pytest.raises(ImageError):
        verify_image(source)


@pytest.mark.parametrize("ext", ["jpg", "png", "webp", "gif"])
def test_verify_image_accepts_a_whole_image(tmp_path: Path, ext: str) -> None:
    info = verify_image(make_image(tmp_path / f"ok.{ext}", 90, 60))
    assert (info.width, info.height) == (90, 60)


# --- one decode -------------------------------------------------------------------------------

PROC_IO = Path("/proc/self/io")
needs_proc_io = pytest.mark.skipif(not PROC_IO.exists(), reason="needs Linux's /proc/self/io")


def bytes_read() -> int:
    """Bytes this process has read with read(2) so far. libvips reads PNG files that way (JPEG
    and WebP it maps), so each decode of a PNG source shows as the file's size once more."""
    fields = dict(line.split(": ") for line in PROC_IO.read_text().splitlines())
    return int(fields["rchar"])


def noisy_png(path: Path, width: int = 600, height: int = 400) -> Path:
    """A PNG of random pixels: it does not compress, so decoding it reads its every byte."""
    bands = [pyvips.Image.gaussnoise(width, height, sigma=60, seed=seed) for seed in range(3)]
    image = (bands[0].bandjoin(bands[1:]) + 128).cast("uchar").copy(interpretation="srgb")
    image.pngsave(str(path))
    return path


@needs_proc_io
def test_a_png_source_is_decoded_once(tmp_path: Path, out: Path) -> None:
    source = noisy_png(tmp_path / "src.png")
    size = source.stat().st_size

    before = bytes_read()
    render_renditions(source, targets(out))
    read = bytes_read() - before

    assert size <= read < 1.5 * size, f"read {read} bytes of a {size}-byte file"
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in targets(out).values())


@needs_proc_io
def test_a_truncated_png_is_refused_by_its_one_decode(tmp_path: Path, out: Path) -> None:
    whole = noisy_png(tmp_path / "whole.png").read_bytes()
    source = tmp_path / "truncated.png"
    source.write_bytes(whole[: len(whole) * 3 // 4])
    size = source.stat().st_size

    before = bytes_read()
    with pytest.raises(ImageError, match=r"truncated\.png"):
        render_renditions(source, targets(out))
    read = bytes_read() - before

    assert read < 1.5 * size, f"read {read} bytes of a {size}-byte file"
    assert list(out.iterdir()) == []


# --- encoding ---------------------------------------------------------------------------------


WEBP_MAX_SIDE = 16_383


@pytest.mark.parametrize(("width", "height"), [(17_000, 2), (30_000, 10), (10, 30_000)])
def test_an_image_longer_than_webp_allows_is_shrunk_to_fit(
    tmp_path: Path, out: Path, width: int, height: int
) -> None:
    # WebP stops at 16383 pixels a side. A panorama or a strip longer than that is a picture
    # like any other: its renditions are made to fit, not refused.
    source = make_image(tmp_path / "long.png", width, height)
    sizes = render_renditions(source, targets(out))

    for quality, path in targets(out).items():
        image = load(path)
        assert (image.width, image.height) == sizes[quality]
        assert max(image.width, image.height) <= WEBP_MAX_SIDE, quality
    long_side = max(sizes["high"])
    assert long_side >= WEBP_MAX_SIDE * 0.9, "shrunk more than WebP needs"
    assert (sizes["high"][0] > sizes["high"][1]) == (width > height), "orientation lost"


def test_images_rendered_from_many_threads_at_once_are_each_right(
    tmp_path: Path, out: Path
) -> None:
    colours = [(200, 30, 30), (30, 200, 30), (200, 200, 30), (30, 30, 30), (240, 240, 240)] * 2
    sources = [
        make_image(tmp_path / f"src{i}.png", 300 + 10 * i, 200, colour=colour)
        for i, colour in enumerate(colours)
    ]
    with ThreadPoolExecutor(4) as pool:
        sizes = list(
            pool.map(lambda i: render_renditions(sources[i], targets(out, f"img{i}")), range(10))
        )

    for i, colour in enumerate(colours):
        assert sizes[i]["high"] == (300 + 10 * i, 200)
        for quality, path in targets(out, f"img{i}").items():
            image = load(path)
            assert (image.width, image.height) == sizes[i][quality]
            assert near(pixel(image, image.width // 4, image.height // 2), colour), (i, quality)


def test_missing_source_is_an_image_error(tmp_path: Path, out: Path) -> None:
    with pytest.raises(ImageError):
        render_renditions(tmp_path / "nowhere.png", targets(out))
    assert list(out.iterdir()) == []


def test_failure_after_some_renames_removes_the_files_already_placed(
    tmp_path: Path, out: Path
) -> None:
    # The low target cannot be replaced (a non-empty directory sits there): high and medium,
    # already renamed into place, must be taken back so that no incomplete set is visible.
    source = make_image(tmp_path / "src.png", 120, 80)
    blocker = out / "img_low.webp"
    blocker.mkdir()
    (blocker / "keep").write_bytes(b"x")

    with pytest.raises(OSError):  # noqa: PT011 - any OS error; what matters is what is left
        render_renditions(source, targets(out))

    assert sorted(p.name for p in out.iterdir()) == ["img_low.webp"]
    assert [p.name for p in blocker.iterdir()] == ["keep"]


def test_failure_leaves_existing_files_of_other_images_alone(tmp_path: Path, out: Path) -> None:
    good = make_image(tmp_path / "good.png", 50, 40)
    render_renditions(good, targets(out, "other"))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = tmp_path / "bad.png"
    bad.write_bytes(BAD_INPUTS["truncated.png"](tmp_path))

    with pytest.raises(ImageError):
        render_renditions(bad, targets(out, "img"))

    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_rendering_over_existing_files_replaces_them(tmp_path: Path, out: Path) -> None:
    render_renditions(make_image(tmp_path / "a.png", 50, 40), targets(out))
    render_renditions(make_image(tmp_path / "b.png", 80, 30), targets(out))

    assert load(out / "img_high.webp").width == 80
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in targets(out).values())


# --- the smaller renditions encoded on the CPU pool beside the caller ---------------------------


@contextlib.contextmanager
def idle_pool() -> Iterator[CpuPool]:
    with CpuPool(2) as pool:
        yield pool


@contextlib.contextmanager
def busy_pool() -> Iterator[CpuPool]:
    """A pool whose one worker is taken until the rendering is over: the caller must encode
    everything itself."""
    release = threading.Event()
    with CpuPool(1) as pool:
        pool.submit(release.wait)
        try:
            yield pool
        finally:
            release.set()


@contextlib.contextmanager
def closed_pool() -> Iterator[CpuPool]:
    pool = CpuPool(2)
    pool.shutdown()
    yield pool


HELPERS: dict[str, Callable[[], contextlib.AbstractContextManager[CpuPool]]] = {
    "idle": idle_pool,
    "busy": busy_pool,
    "shut down": closed_pool,
}


@pytest.mark.parametrize("helper", list(HELPERS))
@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_a_helper_pool_writes_the_same_files_as_the_caller_alone(
    tmp_path: Path, ext: str, helper: str
) -> None:
    source = make_image(tmp_path / f"src.{ext}", 900, 600, alpha=ext == "png")
    alone, helped = tmp_path / "alone", tmp_path / "helped"
    alone.mkdir()
    helped.mkdir()
    expected = render_renditions(source, targets(alone))

    with HELPERS[helper]() as pool:
        sizes = render_renditions(source, targets(helped), helper=pool)

    assert sizes == expected
    for quality in qualities():
        assert targets(helped)[quality].read_bytes() == targets(alone)[quality].read_bytes()
    assert sorted(p.name for p in helped.iterdir()) == sorted(p.name for p in alone.iterdir())


@pytest.mark.parametrize("workers", [1, 2])
def test_a_rendering_on_the_pool_that_is_its_own_helper_finishes(
    tmp_path: Path, out: Path, workers: int
) -> None:
    source = make_image(tmp_path / "src.png", 900, 600)
    with CpuPool(workers) as pool:
        done = pool.submit(render_renditions, source, targets(out), helper=pool)
        sizes = done.result(timeout=60)  # a deadlock would fail here, not hang the suite
    assert set(sizes) == set(qualities())
    assert all(path.exists() for path in targets(out).values())


@pytest.mark.parametrize("name", ["truncated.png", "corrupt-data.png", "text.jpg"])
def test_bad_input_with_a_helper_is_an_image_error_and_leaves_no_file(
    tmp_path: Path, out: Path, name: str
) -> None:
    source = tmp_path / "bad" / name
    source.parent.mkdir()
    source.write_bytes(BAD_INPUTS[name](tmp_path / "bad"))

    with CpuPool(2) as pool, pytest.raises(ImageError):
        render_renditions(source, targets(out), helper=pool)
    assert list(out.iterdir()) == []
