"""Example images and the library read API through the real app: listing, serving, uploading,
deleting, the start-up index repair, traversal attempts, and reverse-proxy settings."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import time
import uuid
from email.utils import formatdate
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pyvips
from aiohttp import web
from yarl import URL

from modelshelf.app import create_app
from modelshelf.config import Settings
from modelshelf.integrity import check_library
from modelshelf.renditions import qualities
from tests.conftest import (
    Client,
    MakeClient,
    Prepared,
    assert_error_body,
    migrate,
    paused_at,
    post_import,
    shelf_of,
)
from tests.factories import LegacyLibrary, fake_sha, image_size, make_image, make_model_file

H = fake_sha(1)
H2 = fake_sha(2)
UNKNOWN = fake_sha(999)
QUALITIES = qualities()
SECRET = b"TOP-SECRET-OUTSIDE-THE-IMAGES-FOLDER"


# --- helpers ----------------------------------------------------------------------------------


def images_dir(client: Client) -> Path:
    return shelf_of(client).folder.root


def rendition(client: Client, sha256: str, seq: int, quality: str = "high") -> Path:
    return images_dir(client) / f"{sha256}_{seq}_{quality}.webp"


def names(sha256: str, count: int) -> list[str]:
    return [f"{sha256}_{i}.webp" for i in range(count)]


def seqs_on_disk(client: Client, sha256: str) -> set[int]:
    """The seqs of a model that have at least one rendition in the images folder."""
    return {int(p.name.split("_")[1]) for p in images_dir(client).glob(f"{sha256}_*_*.webp")}


def width_for(i: int) -> int:
    """Image i of a test model is (40 + 4i) x 30, so its files can be told apart by size."""
    return 40 + 4 * i


def add_hashed(
    legacy: LegacyLibrary,
    legacy_id: int,
    sha256: str,
    count: int,
    *,
    type: str = "checkpoint",
    tags: list[int] | None = None,
    name: str | None = None,
) -> None:
    images = [
        legacy.image(f"m{legacy_id}_{i}.png", width=width_for(i), height=30) for i in range(count)
    ]
    legacy.add_model(
        legacy_id, hash_hex=sha256, type=type, tags=tags or [], images=images, name=name
    )


async def model_with_images(client: Client, legacy: LegacyLibrary, count: int) -> str:
    """Model H with `count` images (image i is width_for(i) wide), brought in by stage 1."""
    add_hashed(legacy, 1, H, count)
    await migrate(client, legacy)
    return H


def png_bytes(tmp_path: Path, width: int, height: int = 30, ext: str = "png") -> bytes:
    return make_image(tmp_path / f"upload_{width}x{height}.{ext}", width, height).read_bytes()


def noise_png(width: int, height: int) -> bytes:
    """A PNG that does not compress: its size in bytes is well over width * height."""
    noise = pyvips.Image.gaussnoise(width, height, sigma=80, mean=128).cast("uchar")
    data: bytes = noise.bandjoin([noise, noise]).copy(interpretation="srgb").pngsave_buffer()
    return data


async def listing(client: Client, sha256: str) -> list[str]:
    response = await client.post("/api/images/get_sample_imgs", json={"hash": sha256})
    body = await response.json()
    assert response.status == 200, body
    assert isinstance(body, list)
    return body


async def upload(
    client: Client,
    sha256: str | None,
    data: bytes | None,
    *,
    filename: str = "photo.png",
) -> aiohttp.ClientResponse:
    form = aiohttp.FormData()
    if sha256 is not None:
        form.add_field("sha256", sha256)
    if data is not None:
        form.add_field("image", data, filename=filename, content_type="image/png")
    return await client.post("/api/images/upload", data=form)


async def raw_get(client: Client, raw_target: str) -> tuple[int, bytes]:
    """Send `GET raw_target` byte for byte over a socket (no client-side normalisation or
    re-encoding), return the status and the whole response (head and body)."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(
            f"GET {raw_target} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode(
                "latin-1"
            )
        )
        await writer.drain()
        response = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    status = int(response.split(b" ", 2)[1])
    return status, response


def names_under(folder: Path) -> set[str]:
    return {p.name for p in folder.rglob("*")}


def staging_is_empty(client: Client) -> bool:
    staging = shelf_of(client).folder.staging_dir
    return not staging.exists() or not any(staging.iterdir())


# --- POST /api/images/get_sample_imgs ---------------------------------------------------------


async def test_listing_orders_by_seq_as_a_number(client: Client, legacy: LegacyLibrary) -> None:
    sha = await model_with_images(client, legacy, 12)

    assert await listing(client, sha) == names(sha, 12)
    # The listing is in numeric order (_2 before _10), and each name is the image listed at
    # that position in the legacy library.
    assert image_size(rendition(client, sha, 10)) == (width_for(10), 30)
    assert image_size(rendition(client, sha, 2)) == (width_for(2), 30)


async def test_listing_of_an_unknown_hash_is_empty(client: Client) -> None:
    assert await listing(client, UNKNOWN) == []


async def test_listing_of_a_model_without_images_is_empty(
    client: Client, legacy: LegacyLibrary
) -> None:
    add_hashed(legacy, 1, H, 0)
    await migrate(client, legacy)
    assert await listing(client, H) == []


async def test_listing_accepts_the_hash_in_upper_case(
    client: Client, legacy: LegacyLibrary
) -> None:
    sha = await model_with_images(client, legacy, 2)
    assert await listing(client, sha.upper()) == names(sha, 2)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"hash": "g" * 64}, id="non-hex"),
        pytest.param({"hash": "a" * 63}, id="short"),
        pytest.param({"hash": "a" * 65}, id="long"),
        pytest.param({"hash": ""}, id="empty"),
        pytest.param({"hash": " " + "a" * 63}, id="space"),
        pytest.param({"hash": "../" + "a" * 61}, id="traversal"),
        pytest.param({"hash": 12345}, id="number"),
        pytest.param({"hash": None}, id="null"),
        pytest.param({"hash": ["a" * 64]}, id="list"),
        pytest.param({"hash": {"value": "a" * 64}}, id="object"),
        pytest.param({}, id="missing"),
        pytest.param({"hash": "a" * 64, "seq": 1}, id="extra-field"),
        pytest.param({"sha256": "a" * 64}, id="wrong-field-name"),
        pytest.param([], id="array"),
        pytest.param("a" * 64, id="bare-string"),
    ],
)
async def test_listing_rejects_a_bad_body_with_400(client: Client, body: Any) -> None:
    response = await client.post("/api/images/get_sample_imgs", json=body)
    assert response.status == 400
    assert_error_body(await response.json(), 400)


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b'{"hash": "' + b"a" * 64, b"hash=" + b"a" * 64, b"\xff\xfe", b"null", b"   "],
    ids=["empty", "brace", "unterminated", "form", "binary", "null", "blank"],
)
async def test_listing_rejects_malformed_json_with_400(client: Client, raw: bytes) -> None:
    response = await client.post(
        "/api/images/get_sample_imgs", data=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status == 400
    assert_error_body(await response.json(), 400)


async def test_a_body_over_client_max_size_is_413(make_client: MakeClient) -> None:
    client = await make_client(client_max_size=2048)
    response = await client.post(
        "/api/images/get_sample_imgs", json={"hash": "a" * 64, "pad": "x" * 4000}
    )
    assert response.status == 413
    answer = await response.json()
    assert_error_body(answer, 413)
    assert "2,048 bytes" in answer["detail"]


# --- GET /api/images/{name} -------------------------------------------------------------------


async def test_image_is_served_as_webp_with_the_file_bytes(
    client: Client, legacy: LegacyLibrary
) -> None:
    sha = await model_with_images(client, legacy, 2)
    response = await client.get(f"/api/images/{sha}_1.webp", params={"quality": "medium"})

    assert response.status == 200
    assert response.headers["Content-Type"] == "image/webp"
    assert await response.read() == rendition(client, sha, 1, "medium").read_bytes()


async def test_name_without_seq_means_seq_0(client: Client, legacy: LegacyLibrary) -> None:
    sha = await model_with_images(client, legacy, 2)
    plain = await client.get(f"/api/images/{sha}.webp")
    zero = await client.get(f"/api/images/{sha}_0.webp")

    assert plain.status == zero.status == 200
    assert await plain.read() == await zero.read() == rendition(client, sha, 0).read_bytes()


async def test_quality_defaults_to_high(client: Client, legacy: LegacyLibrary) -> None:
    sha = await model_with_images(client, legacy, 1)
    default = await (await client.get(f"/api/images/{sha}_0.webp")).read()
    high = await (await client.get(f"/api/images/{sha}_0.webp?quality=high")).read()
    assert default == high == rendition(client, sha, 0, "high").read_bytes()


async def test_each_quality_serves_its_own_rendition(
    client: Client, legacy: LegacyLibrary, tmp_path: Path
) -> None:
    legacy.add_model(1, hash_hex=H, images=[legacy.image("big.png", width=600, height=300)])
    await migrate(client, legacy)

    sizes = {}
    for quality in QUALITIES:
        response = await client.get(f"/api/images/{H}_0.webp", params={"quality": quality})
        assert response.status == 200
        served = tmp_path / f"served_{quality}.webp"
        served.write_bytes(await response.read())
        sizes[quality] = image_size(served)
    assert sizes == {"high": (600, 300), "medium": (396, 198), "low": (198, 99)}


async def test_image_has_validators_and_cache_control(
    client: Client, legacy: LegacyLibrary
) -> None:
    sha = await model_with_images(client, legacy, 1)
    response = await client.get(f"/api/images/{sha}_0.webp")

    assert response.headers["ETag"]
    assert response.headers["Last-Modified"]
    assert response.headers["Cache-Control"]
    assert response.headers["Accept-Ranges"] == "bytes"
    # The name stays the same when the content is replaced (delete-and-shift), so a cache may
    # keep it but must revalidate.
    assert "immutable" not in response.headers["Cache-Control"]


async def test_if_none_match_revalidates_with_304(client: Client, legacy: LegacyLibrary) -> None:
    sha = await model_with_images(client, legacy, 1)
    first = await client.get(f"/api/images/{sha}_0.webp")
    etag = first.headers["ETag"]

    again = await client.get(f"/api/images/{sha}_0.webp", headers={"If-None-Match": etag})
    assert again.status == 304
    assert await again.read() == b""

    other = await client.get(f"/api/images/{sha}_0.webp", headers={"If-None-Match": '"other"'})
    assert other.status == 200


async def test_if_modified_since_revalidates_with_304(
    client: Client, legacy: LegacyLibrary
) -> None:
    sha = await model_with_images(client, legacy, 1)
    first = await client.get(f"/api/images/{sha}_0.webp")
    last_modified = first.headers["Last-Modified"]

    again = await client.get(
        f"/api/images/{sha}_0.webp", headers={"If-Modified-Since": last_modified}
    )
    assert again.status == 304

    long_ago = formatdate(time.time() - 86400 * 365, usegmt=True)
    stale = await client.get(f"/api/images/{sha}_0.webp", headers={"If-Modified-Since": long_ago})
    assert stale.status == 200


async def test_head_answers_headers_without_a_body(client: Client, legacy: LegacyLibrary) -> None:
    sha = await model_with_images(client, legacy, 1)
    response = await client.head(f"/api/images/{sha}_0.webp?quality=low")

    assert response.status == 200
    assert response.headers["Content-Type"] == "image/webp"
    assert (
        int(response.headers["Content-Length"]) == rendition(client, sha, 0, "low").stat().st_size
    )
    assert response.headers["ETag"]
    assert await response.read() == b""


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [("bytes=0-9", 0, 9), ("bytes=10-", 10, None), ("bytes=-7", None, None), ("bytes=3-3", 3, 3)],
)
async def test_range_request_answers_206_with_those_bytes(
    client: Client, legacy: LegacyLibrary, header: str, first: int | None, last: int | None
) -> None:
    sha = await model_with_images(client, legacy, 1)
    data = rendition(client, sha, 0).read_bytes()
    size = len(data)
    if first is None:  # suffix range: the last 7 bytes
        first, last = size - 7, size - 1
    elif last is None:
        last = size - 1

    response = await client.get(f"/api/images/{sha}_0.webp", headers={"Range": header})

    assert response.status == 206
    assert response.headers["Content-Range"] == f"bytes {first}-{last}/{size}"
    assert await response.read() == data[first : last + 1]


async def test_unsatisfiable_range_is_416(client: Client, legacy: LegacyLibrary) -> None:
    sha = await model_with_images(client, legacy, 1)
    response = await client.get(f"/api/images/{sha}_0.webp", headers={"Range": "bytes=999999-"})
    assert response.status == 416
    assert_error_body(await response.json(), 416)
    assert response.headers["Content-Range"].startswith("bytes */")


@pytest.mark.parametrize(
    "query", ["quality=ultra", "quality=HIGH", "quality=", "quality=ultra&size=2"]
)
async def test_bad_quality_is_400(client: Client, legacy: LegacyLibrary, query: str) -> None:
    sha = await model_with_images(client, legacy, 1)
    response = await client.get(URL(f"/api/images/{sha}_0.webp?{query}", encoded=True))
    assert response.status == 400
    assert_error_body(await response.json(), 400)


@pytest.mark.parametrize("name", [f"{H}_1.webp", f"{UNKNOWN}_0.webp", f"{UNKNOWN}.webp"])
async def test_missing_image_is_404(client: Client, legacy: LegacyLibrary, name: str) -> None:
    await model_with_images(client, legacy, 1)
    response = await client.get(f"/api/images/{name}")
    assert response.status == 404
    assert_error_body(await response.json(), 404)


# --- traversal --------------------------------------------------------------------------------


SEQ0 = f"{H}_0.webp"
TRAVERSALS = [
    "..%2F..%2Fsecret.webp",
    "..%2f..%2fsecret.webp",
    "%2e%2e%2f%2e%2e%2fsecret.webp",
    "%2E%2E%2F%2E%2E%2Fsecret.webp",
    "%2e%2e",
    "..",
    "..%2Fmodelshelf.db",
    "..%5C..%5Csecret.webp",
    "..%5c..%5csecret.webp",
    "..\\..\\secret.webp",
    "%252e%252e%252fsecret.webp",
    "%c0%ae%c0%ae%c0%afsecret.webp",
    "%2Fetc%2Fpasswd",
    "%2F{secret}",
    "{secret}",
    "%00",
    f"{SEQ0}%00",
    f"{SEQ0}%00.png",
    f"{H}%00_0.webp",
    f"{H.upper()}_0.webp",
    f"{H.upper()}.webp",
    f"{SEQ0}.bak",
    f"{SEQ0}x",
    f"{SEQ0}%2F",
    f"{SEQ0}%2F..%2F..%2Fsecret.webp",
    f"{H}_0_high.webp",
    f"{H}_00.webp",
    f"{H}_-1.webp",
    f"{H}_+1.webp",
    f"{H}_1e3.webp",
    f"{H}_%20.webp",
    f"{H}_%EF%BC%90.webp",  # a full-width zero
    f"{H}_4294967296.webp",
    f"{H}_5.webp",  # a symlink out of the folder sits under this name
    f"{H[:-1]}.webp",
    f"{H}a.webp",
    ".staging",
    ".staging%2F",
    "pending",
    "pending%2F2.png",
    "pending%2F..%2F..%2F..%2Fsecret.webp",
    "pending/..%2F..%2F..%2Fsecret.webp",
    "pending/2.png",
    "pending/-1",
    "pending/%C2%B2",  # superscript two: str.isdigit() says yes, int() says no
    "pending/%EF%BC%92",  # a full-width two
    "pending/2%00",
    "pending/%2e%2e",
    "pending/99999999999999999999999",
    "pending/7",  # a symlink out of the folder sits under this name
    "x" * 5000,
]


async def build_trap(client: Client, legacy: LegacyLibrary) -> None:
    add_hashed(legacy, 1, H, 1)
    legacy.add_model(2, hash_hex="", images=[legacy.image("pending2.png", width=20, height=20)])
    legacy.add_model(7, hash_hex="", images=[legacy.image("pending7.png", width=20, height=20)])
    await migrate(client, legacy)
    outside = images_dir(client).parent.parent / "secret.webp"
    outside.write_bytes(SECRET)
    for quality in QUALITIES:
        rendition(client, H, 5, quality).symlink_to(outside)
    pending7 = images_dir(client) / "pending" / "7.png"
    assert pending7.is_file()
    pending7.unlink()
    pending7.symlink_to(outside)


@pytest.fixture
async def trap(prepared: Prepared, tmp_path: Path, data_dir: Path) -> Client:
    """A library with images to find, symlinks out of the images folder, and files outside it
    worth stealing (beside the data directory and inside it)."""
    client = await prepared("trap", build_trap)
    (tmp_path / "secret.webp").write_bytes(SECRET)
    (data_dir / "secret.webp").write_bytes(SECRET)
    return client


@pytest.mark.parametrize("vector", TRAVERSALS)
async def test_traversal_never_reads_outside_the_images_folder(
    trap: Client, tmp_path: Path, vector: str
) -> None:
    target = "/api/images/" + vector.format(secret=str(tmp_path / "secret.webp").lstrip("/"))
    status, response = await raw_get(trap, target)

    assert status in (400, 404), response[:300]
    assert_error_body(json.loads(response.split(b"\r\n\r\n", 1)[1]), status)
    assert SECRET not in response
    assert b"SQLite format" not in response


@pytest.mark.parametrize("vector", ["..%2F..%2Fsecret.webp", f"{H}_5.webp", "pending/7"])
async def test_traversal_through_the_client_library_is_refused_too(
    trap: Client, vector: str
) -> None:
    response = await trap.get(URL(f"/api/images/{vector}", encoded=True))
    assert response.status in (400, 404)
    body = await response.read()
    assert_error_body(json.loads(body), response.status)
    assert SECRET not in body


async def test_symlinked_rendition_is_404_even_when_listed(trap: Client, tmp_path: Path) -> None:
    # Replace a real, indexed rendition by a symlink to an outside file.
    high = rendition(trap, H, 0, "high")
    high.unlink()
    high.symlink_to(tmp_path / "secret.webp")
    assert await listing(trap, H) == names(H, 1)

    response = await trap.get(f"/api/images/{H}_0.webp")
    assert response.status == 404
    body = await response.read()
    assert_error_body(json.loads(body), 404, f"no image {H}_0.webp")
    assert SECRET not in body


# --- GET /api/images/pending/{id} -------------------------------------------------------------


async def test_pending_image_serves_the_original_bytes(
    client: Client, legacy: LegacyLibrary
) -> None:
    original = legacy.image("cat.jpg", width=70, height=50)
    legacy.add_model(12, hash_hex="", images=[original])
    await migrate(client, legacy)

    response = await client.get("/api/images/pending/12")

    assert response.status == 200
    assert response.headers["Content-Type"] == "image/jpeg"
    assert response.headers["ETag"]
    assert await response.read() == (legacy.images_dir / original).read_bytes()


@pytest.mark.parametrize(
    ("pending_id", "detail"),
    [
        (3, "pending model 3 has no image"),
        (4, "no pending model with id 4"),
        (5, "no pending model with id 5"),  # imported meanwhile
        (123456, "no pending model with id 123456"),
    ],
    ids=["no-image", "unknown", "imported", "far"],
)
async def test_pending_image_of_unknown_id_is_404_saying_which_is_missing(
    client: Client, legacy: LegacyLibrary, tmp_path: Path, pending_id: int, detail: str
) -> None:
    legacy.add_model(3, hash_hex="")  # pending, without an image
    model_file = tmp_path / "five.bin"
    make_model_file(model_file, size=256, seed=5)
    legacy.add_model(5, path=str(model_file), images=[legacy.image("five.png")])
    await migrate(client, legacy)
    assert (await post_import(client, 5))[0] == 200

    response = await client.get(f"/api/images/pending/{pending_id}")

    assert response.status == 404
    assert await response.json() == {"error": "Not Found", "detail": detail}


@pytest.mark.parametrize(
    "raw", ["abc", "1.5", "+3", "3-", "--3", "0x10", "%20", "1%201", "9223372036854775808"]
)
async def test_pending_image_with_a_non_numeric_id_is_400(client: Client, raw: str) -> None:
    response = await client.get(URL(f"/api/images/pending/{raw}", encoded=True))
    assert response.status == 400
    assert_error_body(await response.json(), 400)


# --- POST /api/images/upload ------------------------------------------------------------------


async def test_upload_adds_the_next_seq_with_three_renditions(
    client: Client, legacy: LegacyLibrary, tmp_path: Path
) -> None:
    sha = await model_with_images(client, legacy, 2)
    response = await upload(client, sha, png_bytes(tmp_path, 90, 60))

    assert response.status == 200
    assert await response.json() == {"status": "success", "name": f"{sha}_2.webp"}
    for quality in QUALITIES:
        assert rendition(client, sha, 2, quality).is_file()
    assert image_size(rendition(client, sha, 2)) == (90, 60)
    assert await listing(client, sha) == names(sha, 3)
    served = await client.get(f"/api/images/{sha}_2.webp")
    assert await served.read() == rendition(client, sha, 2).read_bytes()
    assert staging_is_empty(client)


@pytest.mark.parametrize("ext", ["jpg", "webp", "gif"])
async def test_upload_accepts_common_formats(
    client: Client, legacy: LegacyLibrary, tmp_path: Path, ext: str
) -> None:
    sha = await model_with_images(client, legacy, 0)
    response = await upload(client, sha, png_bytes(tmp_path, 50, 40, ext), filename=f"a.{ext}")
    assert response.status == 200
    assert (await response.json())["name"] == f"{sha}_0.webp"
    assert image_size(rendition(client, sha, 0)) == (50, 40)


@pytest.mark.parametrize("depth", [3, 40])
async def test_upload_ignores_the_client_file_name(
    client: Client, legacy: LegacyLibrary, tmp_path: Path, data_dir: Path, depth: int
) -> None:
    """A file name that climbs out of staging (a few levels, or up to / and into the system's
    temporary folder) or is absolute names nothing: the upload lands as the next seq."""
    sha = await model_with_images(client, legacy, 0)
    outside = Path(tempfile.gettempdir()) / f"escaped-{uuid.uuid4().hex}.webp"
    climbing = "../" * depth + str(outside).lstrip("/")
    for seq, name in enumerate([climbing, str(outside)]):
        response = await upload(client, sha, png_bytes(tmp_path, 50, 40), filename=name)
        assert (response.status, await response.json()) == (
            200,
            {"status": "success", "name": f"{sha}_{seq}.webp"},
        )
        assert not outside.exists()
    assert not any("escaped" in n for n in names_under(tmp_path))


async def test_upload_to_an_unknown_model_is_404(client: Client, tmp_path: Path) -> None:
    response = await upload(client, UNKNOWN, png_bytes(tmp_path, 50, 40))
    assert response.status == 404
    assert_error_body(await response.json(), 404)
    assert not list(images_dir(client).glob("*.webp"))
    assert staging_is_empty(client)


async def test_upload_over_the_size_limit_is_413(
    make_client: MakeClient, legacy: LegacyLibrary, tmp_path: Path
) -> None:
    client = await make_client(upload_max_bytes=20_000)
    sha = await model_with_images(client, legacy, 0)
    big = noise_png(200, 200)
    assert len(big) > 20_000

    response = await upload(client, sha, big)

    assert response.status == 413
    assert_error_body(await response.json(), 413)
    assert await listing(client, sha) == []
    assert not list(images_dir(client).glob("*.webp"))
    assert staging_is_empty(client)
    # Under the limit the same client accepts it.
    small = await upload(client, sha, png_bytes(tmp_path, 50, 40))
    assert small.status == 200


async def test_upload_over_the_pixel_limit_is_413(
    make_client: MakeClient, legacy: LegacyLibrary, tmp_path: Path
) -> None:
    client = await make_client(max_image_pixels=5_000)
    sha = await model_with_images(client, legacy, 0)
    response = await upload(client, sha, png_bytes(tmp_path, 100, 100))
    assert response.status == 413
    assert_error_body(await response.json(), 413, "100x100 = 10000 pixels, over the limit of 5000")
    assert await listing(client, sha) == []
    assert staging_is_empty(client)


async def upload_as_sent(
    client: Client, sha256: str, data: bytes, filename: str | None
) -> aiohttp.ClientResponse:
    """An upload whose image part carries `filename` as a browser writes it (aiohttp's own
    form percent-encodes it), or no file name at all."""
    boundary = "b0undary"
    named = "" if filename is None else f'; filename="{filename}"'
    body = (
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="sha256"\r\n\r\n{sha256}\r\n'
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="image"{named}\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return await client.post(
        "/api/images/upload",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )


def truncated(tmp_path: Path, ext: str) -> bytes:
    data = png_bytes(tmp_path, 300, 200, ext)
    return data[: len(data) // 2]


PIXELS_5000 = {"max_image_pixels": 5_000}
BYTES_20000 = {"upload_max_bytes": 20_000}
# Each refusal of an upload: its status, the settings that refuse it, the bytes sent.
REFUSED_UPLOADS: dict[str, tuple[int, dict[str, int], Any]] = {
    "too-many-pixels": (413, PIXELS_5000, lambda tmp_path: png_bytes(tmp_path, 100, 100)),
    "too-many-bytes": (413, BYTES_20000, lambda tmp_path: noise_png(200, 200)),
    "no-image": (400, {}, lambda tmp_path: b"not an image at all\n" * 10),
    "truncated-jpeg": (400, {}, lambda tmp_path: truncated(tmp_path, "jpg")),
    "truncated-avif": (400, {}, lambda tmp_path: truncated(tmp_path, "avif")),
}


@pytest.mark.parametrize(
    ("filename", "said"),
    [
        ("holiday.png", "holiday.png"),
        # An old browser sent its whole path (backslashes escaped in the quoted name).
        ("C:\\\\Users\\\\me\\\\holiday.png", "holiday.png"),
        ("../../holiday.png", "holiday.png"),
        (None, "the uploaded image"),
        ("", "the uploaded image"),
    ],
    ids=["name", "windows-path", "climbing", "none", "empty"],
)
@pytest.mark.parametrize("refusal", list(REFUSED_UPLOADS))
async def test_a_refused_upload_is_named_as_the_client_sent_it(
    make_client: MakeClient,
    legacy: LegacyLibrary,
    tmp_path: Path,
    refusal: str,
    filename: str | None,
    said: str,
) -> None:
    """A refusal of an upload named the server's staged copy ("upload has 100x100 = 10000
    pixels"), a name the person never gave: it names the file as their client sent it."""
    status, settings, data = REFUSED_UPLOADS[refusal]
    client = await make_client(**settings)
    sha = await model_with_images(client, legacy, 0)

    response = await upload_as_sent(client, sha, data(tmp_path), filename)

    body = await response.json()
    assert response.status == status, body
    assert_error_body(body, status, f"{said} ")
    assert body["detail"].startswith(f"{said} "), body["detail"]
    # Said once, and the staged copy's name ("upload") nowhere.
    assert "upload" not in body["detail"].removeprefix(said), body["detail"]
    assert said not in body["detail"].removeprefix(said), body["detail"]
    assert "/" not in body["detail"] and "\\" not in body["detail"]
    assert await listing(client, sha) == []
    assert staging_is_empty(client)


@pytest.mark.parametrize(
    "data",
    [b"not an image at all", b"", b"\x89PNG\r\n\x1a\n" + b"\0" * 100, b"<svg"],
    ids=["text", "empty", "png-signature-only", "fragment"],
)
async def test_upload_of_a_non_image_is_400(
    client: Client, legacy: LegacyLibrary, data: bytes
) -> None:
    sha = await model_with_images(client, legacy, 1)
    response = await upload(client, sha, data)
    assert response.status == 400
    body = await response.json()
    assert_error_body(body, 400)
    assert str(shelf_of(client).folder.staging_dir) not in body["detail"]  # no server paths
    assert "/" not in body["detail"]
    if data == b"not an image at all":  # said in words, not as libvips' "VipsForeignLoad: ..."
        assert "is not an image: its bytes are in no image format" in body["detail"]
    assert await listing(client, sha) == names(sha, 1)
    assert not rendition(client, sha, 1).exists()
    assert staging_is_empty(client)


@pytest.mark.parametrize("ext", ["jpg", "avif"])
async def test_upload_of_a_truncated_image_is_400(
    client: Client, legacy: LegacyLibrary, tmp_path: Path, ext: str
) -> None:
    sha = await model_with_images(client, legacy, 0)
    data = png_bytes(tmp_path, 300, 200, ext)
    response = await upload(client, sha, data[: len(data) // 2])
    assert response.status == 400
    body = await response.json()
    assert_error_body(body, 400, "photo.png ")  # as the client named it, not the staged copy
    assert "/" not in body["detail"]  # no server path (an AVIF loader names it unquoted)
    assert await listing(client, sha) == []


@pytest.mark.parametrize(("with_sha", "with_image"), [(True, False), (False, True), (False, False)])
async def test_upload_without_both_fields_is_400(
    client: Client, legacy: LegacyLibrary, tmp_path: Path, with_sha: bool, with_image: bool
) -> None:
    sha = await model_with_images(client, legacy, 0)
    response = await upload(
        client, sha if with_sha else None, png_bytes(tmp_path, 50, 40) if with_image else None
    )
    assert response.status == 400
    assert_error_body(await response.json(), 400)
    assert await listing(client, sha) == []
    assert staging_is_empty(client)


@pytest.mark.parametrize("bad", ["nothex", "a" * 63, "../" + "a" * 61, "a" * 200])
async def test_upload_with_a_malformed_sha256_is_400(
    client: Client, tmp_path: Path, bad: str
) -> None:
    response = await upload(client, bad, png_bytes(tmp_path, 50, 40))
    assert response.status == 400
    body = await response.json()
    assert_error_body(body, 400)
    # The field takes either case: the detail names it and does not ask for lower case.
    assert "'sha256'" in body["detail"]
    assert "lowercase" not in body["detail"]
    assert staging_is_empty(client)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"sha256": "' + b"a" * 64 + b'"}'),
        ("text/plain", b"hello"),
        ("application/octet-stream", b"\x89PNG\r\n"),
        ("multipart/form-data", b"--x\r\n"),  # no boundary
        ("multipart/form-data; boundary=zzz", b"garbage without any boundary"),
        ("multipart/form-data; boundary=zzz", b""),
    ],
)
async def test_upload_of_a_non_multipart_body_is_400(
    client: Client, content_type: str, body: bytes
) -> None:
    response = await client.post(
        "/api/images/upload", data=body, headers={"Content-Type": content_type}
    )
    assert response.status == 400
    assert_error_body(await response.json(), 400)
    assert staging_is_empty(client)


@pytest.mark.parametrize("body", [b"", b"\x89PNG\r\n\x1a\n"])
async def test_upload_without_a_content_type_says_which_one_it_needs(
    client: Client, body: bytes
) -> None:
    response = await client.post(
        "/api/images/upload", data=body, skip_auto_headers=["Content-Type"]
    )
    assert response.status == 400
    assert_error_body(
        await response.json(), 400, "no Content-Type; send multipart/form-data with a boundary"
    )
    assert staging_is_empty(client)


async def test_upload_broken_after_the_image_part_leaves_nothing_in_staging(
    client: Client, tmp_path: Path
) -> None:
    boundary = "b0undary"
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="image"; filename="x.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png_bytes(tmp_path, 40)
        + (
            f"\r\n--{boundary}\r\n"
            'Content-Disposition: form-data; name="\x0cbroken"\r\n\r\n'
            f"x\r\n--{boundary}--\r\n"
        ).encode()
    )
    response = await client.post(
        "/api/images/upload",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert response.status == 400
    assert_error_body(await response.json(), 400)
    assert staging_is_empty(client)


async def test_concurrent_uploads_get_distinct_dense_seqs(
    client: Client, legacy: LegacyLibrary, tmp_path: Path
) -> None:
    sha = await model_with_images(client, legacy, 0)
    widths = [30 + 7 * i for i in range(8)]
    bodies = [png_bytes(tmp_path, w, 20 + i) for i, w in enumerate(widths)]

    responses = await asyncio.gather(*(upload(client, sha, b) for b in bodies))

    answers = [await r.json() for r in responses]
    assert [r.status for r in responses] == [200] * 8, answers
    uploaded_names = [a["name"] for a in answers]
    assert sorted(uploaded_names, key=lambda n: int(n.rsplit("_", 1)[1][:-5])) == names(sha, 8)
    for i, name in enumerate(uploaded_names):
        seq = int(name.removesuffix(".webp").rsplit("_", 1)[1])
        assert image_size(rendition(client, sha, seq)) == (widths[i], 20 + i), name
        assert image_size(rendition(client, sha, seq, "low"))[0] == round(widths[i] * 0.33)
    assert await listing(client, sha) == names(sha, 8)
    assert staging_is_empty(client)


# --- DELETE /api/images/{hash}_{seq}.webp ------------------------------------------------------


async def test_delete_removes_the_image_and_shifts_later_seqs_down(
    client: Client, legacy: LegacyLibrary
) -> None:
    sha = await model_with_images(client, legacy, 4)

    response = await client.delete(f"/api/images/{sha}_1.webp")

    assert response.status == 200
    assert (await response.json())["status"] == "success"
    assert await listing(client, sha) == names(sha, 3)
    assert [image_size(rendition(client, sha, s))[0] for s in range(3)] == [
        width_for(0),
        width_for(2),
        width_for(3),
    ]
    for quality in QUALITIES:
        assert not rendition(client, sha, 3, quality).exists()
        assert image_size(rendition(client, sha, 2, quality))[0] == round(
            width_for(3) * {"high": 1, "medium": 0.66, "low": 0.33}[quality]
        )
    model = await (await client.get(f"/api/models/{sha}")).json()
    assert model["images"] == names(sha, 3)


async def test_delete_of_the_last_image_leaves_the_others(
    client: Client, legacy: LegacyLibrary
) -> None:
    sha = await model_with_images(client, legacy, 3)
    response = await client.delete(f"/api/images/{sha}_2.webp")
    assert response.status == 200
    assert await listing(client, sha) == names(sha, 2)
    assert sorted(p.name for p in images_dir(client).glob(f"{sha}_*")) == sorted(
        f"{sha}_{s}_{q}.webp" for s in range(2) for q in QUALITIES
    )


async def test_delete_by_plain_name_deletes_seq_0(client: Client, legacy: LegacyLibrary) -> None:
    sha = await model_with_images(client, legacy, 2)
    response = await client.delete(f"/api/images/{sha}.webp")
    assert response.status == 200
    assert await listing(client, sha) == names(sha, 1)
    assert image_size(rendition(client, sha, 0))[0] == width_for(1)


@pytest.mark.parametrize("name", [f"{H}_3.webp", f"{UNKNOWN}_0.webp"])
async def test_delete_of_a_missing_image_is_404(
    client: Client, legacy: LegacyLibrary, name: str
) -> None:
    sha = await model_with_images(client, legacy, 3)
    response = await client.delete(f"/api/images/{name}")
    assert response.status == 404
    assert_error_body(await response.json(), 404)
    assert await listing(client, sha) == names(sha, 3)


@pytest.mark.parametrize("name", ["..%2F..%2Fsecret.webp", f"{H}_0_high.webp", f"{H}_x.webp"])
async def test_delete_with_a_bad_name_is_400(
    client: Client, legacy: LegacyLibrary, name: str
) -> None:
    sha = await model_with_images(client, legacy, 1)
    response = await client.delete(URL(f"/api/images/{name}", encoded=True))
    assert response.status == 400
    assert_error_body(await response.json(), 400, "is not an image name")
    assert await listing(client, sha) == names(sha, 1)


async def test_delete_of_the_pending_folder_is_no_endpoint(
    client: Client, legacy: LegacyLibrary
) -> None:
    sha = await model_with_images(client, legacy, 1)
    response = await client.delete("/api/images/pending")
    assert response.status == 404
    assert_error_body(await response.json(), 404, "no such endpoint")
    assert await listing(client, sha) == names(sha, 1)


async def test_delete_with_shift_never_shows_a_gap_or_duplicate_to_a_concurrent_listing(
    client: Client, legacy: LegacyLibrary
) -> None:
    """Each delete is held in the middle of its shift, when its rows are committed and the
    files of the deleted image and of every later one are moved aside: the folder has a gap.
    A listing asked for right then waits for the shift to end and shows the sequence after the
    delete, dense, every name backed by its files. (A poller counting how many listings ran
    while the deletes went on only measured the machine's scheduling: on a loaded machine one
    listing could span two deletes, and the count fell short though no listing was wrong.)"""
    sha = await model_with_images(client, legacy, 8)
    locks = shelf_of(client).model_locks
    count = 8
    for seq in (0, 3, 0, 4, 1, 0):
        with paused_at("renumber.moved_out") as moving:
            delete = asyncio.create_task(client.delete(f"/api/images/{sha}_{seq}.webp"))
            await moving.reached.wait()
            assert seqs_on_disk(client, sha) == set(range(seq)), "the shift is not half done"
            listed = asyncio.create_task(listing(client, sha))
            # Until the listing waits for the delete (or, wrongly, answers during it).
            while locks.waiting(sha) == 0 and not listed.done():
                await asyncio.sleep(0)
            assert not listed.done(), "a listing answered while the files were moved aside"
        assert (await delete).status == 200
        count -= 1
        assert await listed == names(sha, count)
        assert seqs_on_disk(client, sha) == set(range(count))
        assert all(rendition(client, sha, s, q).is_file() for s in range(count) for q in QUALITIES)

    assert await listing(client, sha) == names(sha, 2)
    # Widths of the survivors: 0 1 2 3 4 5 6 7 -> del 0 -> 1 2 3 4 5 6 7 -> del 3 (4) -> 1 2 3 5 6 7
    # -> del 0 -> 2 3 5 6 7 -> del 4 (7) -> 2 3 5 6 -> del 1 (3) -> 2 5 6 -> del 0 -> 5 6
    assert [image_size(rendition(client, sha, s))[0] for s in range(2)] == [
        width_for(5),
        width_for(6),
    ]


async def test_concurrent_deletes_and_listing_keep_the_sequence_dense(
    client: Client, legacy: LegacyLibrary
) -> None:
    sha = await model_with_images(client, legacy, 10)

    results = await asyncio.gather(
        *(client.delete(f"/api/images/{sha}_0.webp") for _ in range(4)),
        *(client.post("/api/images/get_sample_imgs", json={"hash": sha}) for _ in range(6)),
    )

    deletes, lists = results[:4], results[4:]
    assert [r.status for r in deletes] == [200] * 4
    for response in lists:
        got = await response.json()
        assert got == names(sha, len(got))
    assert await listing(client, sha) == names(sha, 6)
    assert sorted(image_size(rendition(client, sha, s))[0] for s in range(6)) == [
        width_for(i) for i in range(4, 10)
    ]
    leftovers = sorted(p.name for p in images_dir(client).glob(f"{sha}_*"))
    assert len(leftovers) == 6 * 3


async def test_after_a_shift_the_old_validators_no_longer_match(
    client: Client, legacy: LegacyLibrary
) -> None:
    sha = await model_with_images(client, legacy, 2)
    # Image 0 was written two days ago, image 1 a year ago. (Dates a second apart could not
    # be told apart: HTTP dates have a resolution of one second.)
    two_days_ago, year_ago = time.time() - 2 * 86400, time.time() - 365 * 86400
    for quality in QUALITIES:
        os.utime(rendition(client, sha, 0, quality), (two_days_ago, two_days_ago))
        os.utime(rendition(client, sha, 1, quality), (year_ago, year_ago))
    before = await client.get(f"/api/images/{sha}_0.webp")
    etag, last_modified = before.headers["ETag"], before.headers["Last-Modified"]

    assert (await client.delete(f"/api/images/{sha}_0.webp")).status == 200

    by_etag = await client.get(f"/api/images/{sha}_0.webp", headers={"If-None-Match": etag})
    assert by_etag.status == 200
    by_date = await client.get(
        f"/api/images/{sha}_0.webp", headers={"If-Modified-Since": last_modified}
    )
    assert by_date.status == 200, "the new content under the old name must not look older"
    assert await by_date.read() == rendition(client, sha, 0).read_bytes()


# --- the index after changes made while the service was down -------------------------------------


async def test_listing_follows_files_added_and_removed_while_down(
    make_client: MakeClient, legacy: LegacyLibrary
) -> None:
    client = await make_client()
    add_hashed(legacy, 1, H, 2)
    add_hashed(legacy, 2, H2, 3)
    await migrate(client, legacy)
    folder = images_dir(client)
    await client.close()

    # Added: a whole set for H seq 2, and only the high rendition of H seq 3.
    for quality in QUALITIES:
        shutil.copyfile(folder / f"{H}_0_{quality}.webp", folder / f"{H}_2_{quality}.webp")
    shutil.copyfile(folder / f"{H}_1_high.webp", folder / f"{H}_3_high.webp")
    # Removed: the last image of H2, entirely.
    for quality in QUALITIES:
        (folder / f"{H2}_2_{quality}.webp").unlink()

    client = await make_client()

    assert await listing(client, H) == names(H, 4)
    assert await listing(client, H2) == names(H2, 2)
    served = await client.get(f"/api/images/{H}_2.webp")
    assert served.status == 200
    assert await served.read() == (folder / f"{H}_0_high.webp").read_bytes()
    model = await (await client.get(f"/api/models/{H2}")).json()
    assert model["images"] == names(H2, 2)
    # The renditions seq 3 lacks are rendered from the one it has.
    await shelf_of(client).maintenance
    high_w, high_h = image_size(folder / f"{H}_3_high.webp")
    assert image_size(folder / f"{H}_3_low.webp") == (round(high_w * 0.33), round(high_h * 0.33))
    response = await upload(client, H, png_bytes(folder.parent, 66, 33))
    assert (await response.json())["name"] == f"{H}_4.webp"
    assert image_size(folder / f"{H}_4_high.webp") == (66, 33)


async def test_a_rendition_deleted_while_down_is_rendered_again_at_start(
    make_client: MakeClient, legacy: LegacyLibrary
) -> None:
    client = await make_client()
    add_hashed(legacy, 1, H, 2)
    await migrate(client, legacy)
    folder = images_dir(client)
    medium = (folder / f"{H}_1_medium.webp").read_bytes()
    await client.close()

    (folder / f"{H}_1_low.webp").unlink()
    (folder / f"{H}_1_medium.webp").unlink()

    client = await make_client()
    assert await listing(client, H) == names(H, 2)
    assert await shelf_of(client).maintenance == 1
    expected = pyvips.Image.new_from_buffer(medium, "")
    assert image_size(folder / f"{H}_1_medium.webp") == (expected.width, expected.height)
    assert (await client.get(f"/api/images/{H}_1.webp?quality=low")).status == 200
    assert check_library(shelf_of(client).settings.data_dir) == []


async def test_a_gap_left_by_files_deleted_while_down_is_closed_at_start(
    make_client: MakeClient, legacy: LegacyLibrary
) -> None:
    client = await make_client()
    add_hashed(legacy, 1, H, 3)
    await migrate(client, legacy)
    folder = images_dir(client)
    last = (folder / f"{H}_2_high.webp").read_bytes()
    await client.close()

    for quality in QUALITIES:
        (folder / f"{H}_0_{quality}.webp").unlink()

    client = await make_client()
    assert await listing(client, H) == names(H, 2)
    assert (folder / f"{H}_1_high.webp").read_bytes() == last
    assert not (folder / f"{H}_2_high.webp").exists()
    assert check_library(shelf_of(client).settings.data_dir) == []


async def test_listing_is_empty_after_every_file_was_removed_while_down(
    make_client: MakeClient, legacy: LegacyLibrary
) -> None:
    client = await make_client()
    add_hashed(legacy, 1, H, 3)
    await migrate(client, legacy)
    folder = images_dir(client)
    await client.close()

    for path in folder.glob(f"{H}_*"):
        path.unlink()

    client = await make_client()
    assert await listing(client, H) == []
    model = await (await client.get(f"/api/models/{H}")).json()
    assert model["images"] == []


async def test_files_of_a_model_added_while_down_are_listed(
    make_client: MakeClient, legacy: LegacyLibrary
) -> None:
    client = await make_client()
    add_hashed(legacy, 1, H, 1)
    add_hashed(legacy, 2, H2, 0)
    await migrate(client, legacy)
    folder = images_dir(client)
    await client.close()

    for seq in range(11):
        for quality in QUALITIES:
            os.link(folder / f"{H}_0_{quality}.webp", folder / f"{H2}_{seq}_{quality}.webp")

    client = await make_client()
    assert await listing(client, H2) == names(H2, 11)
    assert await listing(client, H) == names(H, 1)


# --- the library read API ---------------------------------------------------------------------


MODELS = [
    # legacy id, sha, name, type, tags, images
    (1, fake_sha(11), "Golden Anime", "checkpoint", [1, 3], 2),
    (2, fake_sha(12), "Beta Realistic", "checkpoint", [1], 0),
    (3, fake_sha(13), "Gamma 50% Style", "lora", [2, 3, 4], 1),
    (4, fake_sha(14), "delta detail", "lora", [2], 0),
    (5, fake_sha(15), "Epsilon_Anime", "lora", [2, 3], 0),
]


async def build_library(client: Client, legacy: LegacyLibrary) -> None:
    for tag_id, name in [(1, "checkpoint"), (2, "lora"), (3, "anime"), (4, "style")]:
        legacy.add_tag(tag_id, name)
    for legacy_id, sha, name, type_, tags, count in MODELS:
        add_hashed(legacy, legacy_id, sha, count, type=type_, tags=tags, name=name)
    await migrate(client, legacy)


@pytest.fixture
async def library(prepared: Prepared) -> Client:
    return await prepared("library", build_library)


async def models_page(client: Client, **params: Any) -> dict[str, Any]:
    response = await client.get("/api/models", params={k: str(v) for k, v in params.items()})
    body: dict[str, Any] = await response.json()
    assert response.status == 200, body
    return body


def model_names(page: dict[str, Any]) -> list[str]:
    return [m["name"] for m in page["models"]]


async def test_models_lists_everything_with_total(library: Client) -> None:
    page = await models_page(library)
    assert page["total"] == 5
    assert sorted(model_names(page)) == sorted(m[2] for m in MODELS)
    first = next(m for m in page["models"] if m["sha256"] == fake_sha(11))
    assert first["images"] == names(fake_sha(11), 2)
    assert {t["name"] for t in first["tags"]} == {"checkpoint", "anime"}


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"type": "lora"}, {"Gamma 50% Style", "delta detail", "Epsilon_Anime"}),
        ({"type": "checkpoint"}, {"Golden Anime", "Beta Realistic"}),
        ({"type": "vae"}, set()),
        ({"tag": "anime"}, {"Golden Anime", "Gamma 50% Style", "Epsilon_Anime"}),
        ({"tag": "style"}, {"Gamma 50% Style"}),
        ({"tag": "nope"}, set()),
        # Full text (tests/test_search.py has the rest): words as prefixes, tags included.
        ({"q": "anime"}, {"Golden Anime", "Gamma 50% Style", "Epsilon_Anime"}),
        ({"q": "DETAIL"}, {"delta detail"}),
        ({"q": "50%"}, {"Gamma 50% Style"}),
        ({"q": "model_3"}, {"Gamma 50% Style"}),  # the path is searched too
        ({"type": "lora", "tag": "anime"}, {"Gamma 50% Style", "Epsilon_Anime"}),
        ({"type": "lora", "tag": "anime", "q": "eps"}, {"Epsilon_Anime"}),
    ],
)
async def test_models_filters_by_type_tag_and_text(
    library: Client, params: dict[str, str], expected: set[str]
) -> None:
    page = await models_page(library, **params)
    assert set(model_names(page)) == expected
    assert page["total"] == len(expected)


async def test_models_pages_cover_everything_once_in_a_stable_order(library: Client) -> None:
    whole = model_names(await models_page(library, limit=500))
    assert whole == sorted(whole, key=str.lower)
    pages = []
    for offset in (0, 2, 4, 6):
        page = await models_page(library, limit=2, offset=offset)
        assert page["total"] == 5
        assert page["limit"] == 2
        assert page["offset"] == offset
        pages.append(model_names(page))
    assert pages == [whole[0:2], whole[2:4], whole[4:5], []]


async def test_filtered_pages_count_only_matches(library: Client) -> None:
    page = await models_page(library, type="lora", limit=1, offset=1)
    assert page["total"] == 3
    assert len(page["models"]) == 1


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=abc",
        "limit=100000",
        "offset=-1",
        "offset=x",
        "sort=rank",
        "order=up",
        "missing=perhaps",
        "limit=1.5",
    ],
)
async def test_models_rejects_bad_query_with_400(library: Client, query: str) -> None:
    response = await library.get(f"/api/models?{query}")
    assert response.status == 400
    assert_error_body(await response.json(), 400)


async def test_model_answers_the_full_record(library: Client) -> None:
    sha = fake_sha(13)
    response = await library.get(f"/api/models/{sha}")
    assert response.status == 200
    record = await response.json()
    assert record["sha256"] == sha
    assert record["name"] == "Gamma 50% Style"
    assert record["type"] == "lora"
    assert record["path"] == "/models/lora/model_3.safetensors"
    assert record["size_bytes"] == 1234
    assert record["created_at"] == 1_700_000_000_000
    assert record["meta_json"] == {"description": "model 3"}
    assert sorted(record["tags"], key=lambda t: t["id"]) == [
        {"id": 2, "name": "lora"},
        {"id": 3, "name": "anime"},
        {"id": 4, "name": "style"},
    ]
    assert record["images"] == names(sha, 1)


@pytest.mark.parametrize("bad", ["xyz", "a" * 63, "G" * 64, "g" * 64, "a" * 65])
async def test_model_with_a_malformed_hash_is_400(library: Client, bad: str) -> None:
    response = await library.get(f"/api/models/{bad}")
    assert response.status == 400
    assert_error_body(await response.json(), 400)


@pytest.mark.parametrize("spelling", [UNKNOWN, UNKNOWN.upper()])
async def test_unknown_model_is_404(library: Client, spelling: str) -> None:
    response = await library.get(f"/api/models/{spelling}")
    assert response.status == 404
    assert_error_body(await response.json(), 404)


async def test_tags_lists_every_tag_with_its_model_count(library: Client) -> None:
    response = await library.get("/api/tags")
    assert response.status == 200
    tags = (await response.json())["tags"]
    assert {t["name"]: (t["id"], t["models"]) for t in tags} == {
        "checkpoint": (1, 2),
        "lora": (2, 3),
        "anime": (3, 3),
        "style": (4, 1),
    }


async def test_types_lists_the_types_in_use(library: Client) -> None:
    response = await library.get("/api/models/get_types")
    assert response.status == 200
    assert await response.json() == {"types": ["checkpoint", "lora"]}


async def test_empty_library_answers_empty_lists(client: Client) -> None:
    assert (await models_page(client)) == {"models": [], "total": 0, "limit": 50, "offset": 0}
    assert await (await client.get("/api/tags")).json() == {"tags": []}
    assert await (await client.get("/api/models/get_types")).json() == {"types": []}


# --- behind a reverse proxy -------------------------------------------------------------------


async def echo(request: web.Request) -> web.Response:
    return web.json_response(
        {"remote": request.remote, "scheme": request.scheme, "host": request.host}
    )


@pytest.fixture
def start_with_echo(aiohttp_client: Any, settings: Settings) -> Any:
    """The real app (real middlewares, as configured) plus a test-only route that echoes what
    the handler sees of the peer."""

    async def start(**overrides: Any) -> Client:
        app = create_app(settings.model_copy(update=overrides))
        app.router.add_get("/test/echo", echo)
        client: Client = await aiohttp_client(app)
        return client

    return start


FORWARDED = {
    "X-Forwarded-For": "203.0.113.7",
    "X-Forwarded-Proto": "https",
    "X-Forwarded-Host": "shelf.example.org",
}


async def test_forwarded_headers_from_a_trusted_proxy_are_honoured(start_with_echo: Any) -> None:
    client = await start_with_echo(trusted_proxies=["127.0.0.1"])
    response = await client.get("/test/echo", headers=FORWARDED)
    assert await response.json() == {
        "remote": "203.0.113.7",
        "scheme": "https",
        "host": "shelf.example.org",
    }


async def test_a_trusted_network_is_honoured(start_with_echo: Any) -> None:
    client = await start_with_echo(trusted_proxies=["127.0.0.0/8", "::1"])
    response = await client.get("/test/echo", headers=FORWARDED)
    assert (await response.json())["remote"] == "203.0.113.7"


@pytest.mark.parametrize("trusted", [["10.0.0.0/8"], ["192.168.1.1"], []])
async def test_forwarded_headers_from_an_untrusted_peer_are_ignored(
    start_with_echo: Any, trusted: list[str]
) -> None:
    client = await start_with_echo(trusted_proxies=trusted)
    response = await client.get("/test/echo", headers=FORWARDED)
    seen = await response.json()
    assert seen["remote"] == "127.0.0.1"
    assert seen["scheme"] == "http"
    assert seen["host"] != "shelf.example.org"


async def test_addresses_a_client_prepends_are_not_believed(start_with_echo: Any) -> None:
    # The client sent "X-Forwarded-For: 6.6.6.6"; the trusted proxy appended the real address.
    client = await start_with_echo(trusted_proxies=["127.0.0.1"])
    response = await client.get(
        "/test/echo", headers={**FORWARDED, "X-Forwarded-For": "6.6.6.6, 198.51.100.2"}
    )
    assert (await response.json())["remote"] == "198.51.100.2"


async def test_a_chain_of_trusted_proxies_is_walked_back_to_the_client(
    start_with_echo: Any,
) -> None:
    client = await start_with_echo(trusted_proxies=["127.0.0.1", "10.0.0.0/8"])
    response = await client.get(
        "/test/echo", headers={**FORWARDED, "X-Forwarded-For": "198.51.100.2, 10.1.2.3"}
    )
    assert (await response.json())["remote"] == "198.51.100.2"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-For": "not-an-address"},
        {"X-Forwarded-For": "203.0.113.7, 999.1.1.1"},
    ],
)
async def test_malformed_forwarded_headers_from_a_trusted_proxy_are_400(
    start_with_echo: Any, headers: dict[str, str]
) -> None:
    client = await start_with_echo(trusted_proxies=["127.0.0.1"])
    response = await client.get("/test/echo", headers=headers)
    assert response.status == 400
    assert_error_body(await response.json(), 400)


async def test_repeated_forwarded_headers_from_a_trusted_proxy_are_400(
    start_with_echo: Any,
) -> None:
    client = await start_with_echo(trusted_proxies=["127.0.0.1"])
    response = await client.get(
        "/test/echo",
        headers=[("X-Forwarded-For", "203.0.113.7"), ("X-Forwarded-For", "203.0.113.8")],
    )
    assert response.status == 400
    assert_error_body(await response.json(), 400)


async def test_the_api_works_behind_a_trusted_proxy(
    make_client: MakeClient, legacy: LegacyLibrary
) -> None:
    client = await make_client(trusted_proxies=["127.0.0.1"])
    sha = await model_with_images(client, legacy, 1)
    response = await client.post(
        "/api/images/get_sample_imgs", json={"hash": sha}, headers=FORWARDED
    )
    assert await response.json() == names(sha, 1)
    image = await client.get(f"/api/images/{sha}_0.webp", headers=FORWARDED)
    assert image.status == 200


async def test_path_prefix_serves_the_api_under_it(make_client: MakeClient) -> None:
    client = await make_client(path_prefix="/shelf")
    response = await client.get("/shelf/api/health")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}
    listed = await client.post("/shelf/api/images/get_sample_imgs", json={"hash": UNKNOWN})
    assert await listed.json() == []
    outside = await client.get("/api/health")
    assert outside.status == 404
    assert_error_body(await outside.json(), 404)
