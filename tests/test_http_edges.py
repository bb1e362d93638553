"""The edges of HTTP: bodies that arrive in many small reads or never finish, fields given
twice, cache-busting query parameters, ranges and preconditions that cannot be met, clients
that hang up, and error answers that are always the JSON error body."""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest
import pyvips

from tests.conftest import Client, MakeClient, migrate
from tests.factories import LegacyLibrary, fake_sha, make_image, make_model_file

H = fake_sha(1)
BOUNDARY = "edge-boundary"


async def hashed_model(client: Client, legacy: LegacyLibrary) -> str:
    legacy.add_model(1, hash_hex=H, images=[legacy.image("a.png", width=80, height=60)])
    await migrate(client, legacy)
    return H


def form_part(name: str, value: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
    return f"--{BOUNDARY}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"


def form_body(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


async def let_the_server_read() -> None:
    """Give the server, on this same loop, its turns to read what was sent and to wait for
    more: no wall-clock wait, only loop iterations."""
    for _ in range(50):
        await asyncio.sleep(0)


async def send_in_pieces(
    client: Client, head: str, pieces: list[bytes], ready: Callable[[], bool] = lambda: True
) -> tuple[int, dict[str, str], bytes]:
    """Send a request head, then its body in `pieces`, each a separate network write the
    server reads before the next one is sent (once `ready()` says the handler is reading).
    Returns status, headers and body."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        length = sum(len(p) for p in pieces)
        writer.write(f"{head}Content-Length: {length}\r\nConnection: close\r\n\r\n".encode())
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            while not ready():
                await asyncio.sleep(0)
            await let_the_server_read()
        response = await reader.read()
    finally:
        writer.close()
        await writer.wait_closed()
    head_bytes, _, body = response.partition(b"\r\n\r\n")
    lines = head_bytes.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ")[1]), headers, body


UPLOAD_HEAD = (
    "POST /api/images/upload HTTP/1.1\r\nHost: localhost\r\n"
    f"Content-Type: multipart/form-data; boundary={BOUNDARY}\r\n"
)


async def test_a_sha256_field_split_across_network_reads_is_read_whole(
    client: Client, legacy: LegacyLibrary, tmp_path: Path, data_dir: Path
) -> None:
    sha256 = await hashed_model(client, legacy)
    image = make_image(tmp_path / "up.png", 50, 40).read_bytes()
    body = form_body(form_part("sha256", sha256.encode()), form_part("image", image, "u.png"))
    cut = body.index(sha256.encode()) + 10  # ten characters of the hash, then the rest later
    pieces = [body[:cut], body[cut : cut + 7], body[cut + 7 :]]

    staging = data_dir / "images" / ".staging"
    status, _, answer = await send_in_pieces(
        client, UPLOAD_HEAD, pieces, ready=lambda: any(staging.iterdir())
    )

    assert status == 200, answer
    assert json.loads(answer)["name"] == f"{sha256}_1.webp"


@pytest.mark.parametrize("field", ["sha256", "image"])
async def test_a_field_given_twice_is_400(
    client: Client, legacy: LegacyLibrary, tmp_path: Path, field: str
) -> None:
    sha256 = await hashed_model(client, legacy)
    image = make_image(tmp_path / "up.png", 50, 40).read_bytes()
    parts = [form_part("sha256", sha256.encode()), form_part("image", image, "u.png")]
    parts.append(parts[0] if field == "sha256" else parts[1])
    response = await client.post(
        "/api/images/upload",
        data=form_body(*parts),
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert response.status == 400
    body = await response.json()
    assert body["error"] == "Bad Request" and "twice" in body["detail"]
    listing = await client.post("/api/images/get_sample_imgs", json={"hash": sha256})
    assert await listing.json() == [f"{sha256}_0.webp"]


async def test_a_sha256_field_over_its_size_cap_is_400(
    client: Client, legacy: LegacyLibrary, tmp_path: Path
) -> None:
    sha256 = await hashed_model(client, legacy)
    image = make_image(tmp_path / "up.png", 50, 40).read_bytes()
    long_value = (sha256 + " " * 20_000).encode()
    response = await client.post(
        "/api/images/upload",
        data=form_body(form_part("sha256", long_value), form_part("image", image, "u.png")),
        headers={"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"},
    )
    assert response.status == 400
    assert "longer than" in (await response.json())["detail"]


# --- model paths that are not paths ------------------------------------------------------------

NOT_PATHS = {
    "nul": "/models/a\x00b.safetensors",
    "unknown-user": "~nosuchuser-modelshelf/model.safetensors",
    "too-long": "/" + "a" * 5000 + ".safetensors",
    "a-folder": "/",
}


@pytest.mark.parametrize("path", list(NOT_PATHS.values()), ids=list(NOT_PATHS))
async def test_a_model_path_that_is_not_a_path_is_422_alone_and_failed_in_a_batch(
    client: Client, legacy: LegacyLibrary, path: str
) -> None:
    legacy.add_model(5, hash_hex="", path=path)
    await migrate(client, legacy)

    single = await client.post("/api/migration/import_a_model", json={"id": 5})
    batch = await client.post("/api/migration/import_models", json={"ids": [5]})

    assert single.status == 422, await single.text()
    detail = (await single.json())["detail"]
    assert detail
    (result,) = (await batch.json())["results"]
    assert (result["result"], result["detail"]) == ("failed", detail)
    pending = await (await client.get("/api/migration/pending_models")).json()
    assert [m["id"] for m in pending["models"]] == [5]


# --- query parameters, preconditions, ranges ----------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"/api/images/{H}_0.webp?rev=3",
        f"/api/images/{H}_0.webp?quality=low&v=abc&_=1700000000",
        "/api/models?rev=7&limit=5",
        f"/api/models/{H}?v=2",
        "/api/tags?rev=1",
        "/api/migration/pending_models?cachebust=x",
    ],
)
async def test_unknown_query_parameters_on_a_get_are_ignored(
    client: Client, legacy: LegacyLibrary, url: str
) -> None:
    await hashed_model(client, legacy)
    response = await client.get(url)
    assert response.status == 200, await response.text()


async def test_a_failed_precondition_is_412_with_the_json_error_body(
    client: Client, legacy: LegacyLibrary
) -> None:
    sha256 = await hashed_model(client, legacy)
    url = f"/api/images/{sha256}_0.webp"
    etag = (await client.get(url)).headers["ETag"]
    assert (await client.get(url, headers={"If-Match": etag})).status == 200
    response = await client.get(url, headers={"If-Match": '"not-the-etag"'})
    assert response.status == 412
    body = await response.json()
    assert body["error"] == "Precondition Failed" and "If-Match" in body["detail"]


async def image_of_kind(client: Client, legacy: LegacyLibrary, image: str) -> str:
    """The URL of a library model's first rendition, or of a pending model's original."""
    await hashed_model(client, legacy)
    legacy.add_model(2, hash_hex="", images=[legacy.image("p.png", width=20, height=20)])
    await migrate(client, legacy)
    return f"/api/images/{H}_0.webp" if image == "rendition" else "/api/images/pending/2"


@pytest.mark.parametrize("image", ["rendition", "pending"])
@pytest.mark.parametrize("header", ["bytes=999999-", "bytes=abc", "bytes=-0"])
async def test_an_unsatisfiable_range_is_416_with_the_json_error_body(
    client: Client, legacy: LegacyLibrary, image: str, header: str
) -> None:
    url = await image_of_kind(client, legacy, image)
    response = await client.get(url, headers={"Range": header})
    assert response.status == 416
    assert (await response.json())["error"] == "Requested Range Not Satisfiable"
    assert response.headers["Content-Range"].startswith("bytes */")


@pytest.mark.parametrize("image", ["rendition", "pending"])
@pytest.mark.parametrize("header", ["lines=1-2", "items=0-0", "bytes=0-1,4-5", "bytes=0-0, -1"])
async def test_a_range_in_another_unit_or_of_several_ranges_gets_the_whole_file(
    client: Client, legacy: LegacyLibrary, image: str, header: str
) -> None:
    """RFC 9110 14.2: an unknown range unit is ignored; several ranges may be."""
    url = await image_of_kind(client, legacy, image)
    whole = await (await client.get(url)).read()
    response = await client.get(url, headers={"Range": header})
    assert response.status == 200
    assert "Content-Range" not in response.headers
    assert await response.read() == whole


async def test_a_not_modified_answer_wins_over_an_unsatisfiable_range(
    client: Client, legacy: LegacyLibrary
) -> None:
    sha256 = await hashed_model(client, legacy)
    url = f"/api/images/{sha256}_0.webp"
    etag = (await client.get(url)).headers["ETag"]
    response = await client.get(url, headers={"If-None-Match": etag, "Range": "bytes=99999-"})
    assert response.status == 304


@pytest.mark.parametrize("image", ["rendition", "pending"])
@pytest.mark.parametrize(
    "if_range", ['"another-version"', "W/{etag}", "not a validator"], ids=["other", "weak", "junk"]
)
async def test_a_range_whose_if_range_is_not_this_version_is_answered_with_the_whole_file(
    client: Client, legacy: LegacyLibrary, image: str, if_range: str
) -> None:
    url = await image_of_kind(client, legacy, image)
    whole = await client.get(url)
    data, etag = await whole.read(), whole.headers["ETag"]

    response = await client.get(
        url, headers={"Range": "bytes=4-", "If-Range": if_range.format(etag=etag)}
    )

    assert response.status == 200
    assert "Content-Range" not in response.headers
    assert await response.read() == data


async def test_a_range_whose_if_range_is_this_version_is_answered_with_those_bytes(
    client: Client, legacy: LegacyLibrary
) -> None:
    sha256 = await hashed_model(client, legacy)
    whole = await client.get(f"/api/images/{sha256}_0.webp")
    data, etag = await whole.read(), whole.headers["ETag"]

    response = await client.get(
        f"/api/images/{sha256}_0.webp", headers={"Range": "bytes=4-", "If-Range": etag}
    )

    assert response.status == 206
    assert await response.read() == data[4:]


async def test_a_download_resumed_after_a_reorder_gets_the_new_image_whole_not_spliced(
    client: Client, legacy: LegacyLibrary
) -> None:
    images = [legacy.image("a.png", width=80, height=60), legacy.image("b.png", width=30)]
    legacy.add_model(1, hash_hex=H, images=images)
    await migrate(client, legacy)
    url = f"/api/images/{H}_0.webp"
    first = await client.get(url)
    etag = first.headers["ETag"]
    order = [f"{H}_1.webp", f"{H}_0.webp"]
    reordered = await client.post("/api/images/reorder", json={"hash": H, "order": order})
    assert reordered.status == 200
    now = await (await client.get(url)).read()

    resumed = await client.get(url, headers={"Range": "bytes=10-", "If-Range": etag})

    assert resumed.status == 200
    assert await resumed.read() == now


# --- pending originals are served as what they are ----------------------------------------------


def encoded(format_: str) -> bytes:
    image = pyvips.Image.black(24, 16, bands=3).new_from_image([10, 200, 30]).cast("uchar")
    match format_:
        case "webp":
            return bytes(image.webpsave_buffer())
        case "avif":
            return bytes(image.heifsave_buffer(compression="av1"))
        case "gif":
            return bytes(image.gifsave_buffer())
        case "tiff":
            return bytes(image.tiffsave_buffer())
        case _:
            return bytes(image.pngsave_buffer())


@pytest.mark.parametrize(
    ("file_name", "format_", "media_type"),
    [
        ("x.webp", "webp", "image/webp"),
        ("x.avif", "avif", "image/avif"),
        ("x.gif", "gif", "image/gif"),
        ("x.tif", "tiff", "image/tiff"),
        ("png-named.jpg", "png", "image/png"),  # the content decides, not the name
    ],
)
async def test_pending_originals_are_served_with_the_media_type_of_their_content(
    client: Client, legacy: LegacyLibrary, file_name: str, format_: str, media_type: str
) -> None:
    (legacy.images_dir / file_name).write_bytes(encoded(format_))
    legacy.add_model(3, hash_hex="", images=[file_name])
    report = await migrate(client, legacy)
    assert report["image_migration"]["pending_images_copied"] == 1, report
    response = await client.get("/api/images/pending/3")
    assert response.status == 200
    assert response.headers["Content-Type"] == media_type
    assert await response.read() == (legacy.images_dir / file_name).read_bytes()


# --- a body that never finishes arriving ---------------------------------------------------------


async def trickle(client: Client, head: str, length: int, sent: bytes) -> tuple[int, bytes]:
    """Announce a body of `length` bytes, send `sent`, then nothing more; the answer."""
    reader, writer = await asyncio.open_connection(client.server.host, client.server.port)
    try:
        writer.write(f"{head}Content-Length: {length}\r\n\r\n".encode() + sent)
        await writer.drain()
        head_bytes = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        length_line = next(
            line for line in head_bytes.split(b"\r\n") if line.lower().startswith(b"content-length")
        )
        body = await reader.readexactly(int(length_line.split(b":")[1]))
        assert b"connection: close" in head_bytes.lower()
    finally:
        writer.close()
        await writer.wait_closed()
    return int(head_bytes.split(b" ")[1]), body


@pytest.mark.parametrize("endpoint", ["json", "upload"])
async def test_a_body_that_trickles_in_is_cut_off_with_408(
    make_client: MakeClient, data_dir: Path, endpoint: str
) -> None:
    client = await make_client(body_timeout=0.3)
    if endpoint == "json":
        head = (
            "POST /api/migration/import_a_model HTTP/1.1\r\nHost: x\r\n"
            "Content-Type: application/json\r\n"
        )
        sent = b'{"id": '
    else:
        head = UPLOAD_HEAD
        sent = form_part("sha256", H.encode()) + f"--{BOUNDARY}\r\n".encode()
    started = asyncio.get_running_loop().time()

    status, body = await trickle(client, head, 10_000, sent)

    assert status == 408
    answer = json.loads(body)
    assert answer["error"] == "Request Timeout" and "0.3 s" in answer["detail"]
    assert asyncio.get_running_loop().time() - started < 5
    staging = data_dir / "images" / ".staging"
    assert not any(staging.iterdir())


# --- the advice for a corrupt pending image holds ------------------------------------------------


@pytest.mark.parametrize("remedy", ["remove", "replace-same-name", "replace-other-format"])
async def test_the_advice_for_a_corrupt_pending_image_is_true_without_a_restart(
    client: Client, legacy: LegacyLibrary, data_dir: Path, models_dir: Path, remedy: str
) -> None:
    make_model_file(models_dir / "m.bin", size=8192, seed=4)
    legacy.add_model(4, path=str(models_dir / "m.bin"), images=[legacy.image("p.png")])
    await migrate(client, legacy)
    original = data_dir / "images" / "pending" / "4.png"
    original.write_bytes(b"\x89PNG\r\n\x1a\n" + b"broken" * 100)

    refused = await client.post("/api/migration/import_a_model", json={"id": 4})
    assert refused.status == 422
    assert "remove images/pending/4.png" in (await refused.json())["detail"]

    if remedy == "remove":
        original.unlink()
    elif remedy == "replace-same-name":
        make_image(original, 30, 20)
    else:
        original.unlink()
        make_image(original.with_suffix(".jpg"), 30, 20)
    imported = await client.post("/api/migration/import_a_model", json={"id": 4})

    assert imported.status == 200, await imported.text()
    sha256 = (await imported.json())["sha256"]
    images = await (await client.post("/api/images/get_sample_imgs", json={"hash": sha256})).json()
    assert len(images) == (0 if remedy == "remove" else 1)
    assert not any((data_dir / "images" / "pending").iterdir())


@pytest.mark.parametrize(
    ("method", "path", "content_type"),
    [
        ("PATCH", f"/api/models/{H}", "application/json"),
        ("POST", "/api/tags", "application/json"),
        ("POST", "/api/images/get_sample_imgs", "application/json"),
        ("POST", "/api/migration/import_a_model", "application/json"),
        ("POST", "/api/images/upload", f"multipart/form-data; boundary={BOUNDARY}"),
    ],
)
@pytest.mark.parametrize(
    ("coding", "body"),
    [
        ("gzip", gzip.compress(b'{"name": "zipped"}')),
        ("gzip", b"not gzip at all"),
        ("deflate", zlib.compress(b'{"name": "zipped"}')),
        ("br", b"\x0b\x02\x80{}\x03"),
    ],
    ids=["gzip", "not-gzip", "deflate", "br"],
)
async def test_a_body_with_a_content_encoding_is_415_and_changes_nothing(
    client: Client,
    legacy: LegacyLibrary,
    caplog: pytest.LogCaptureFixture,
    method: str,
    path: str,
    content_type: str,
    coding: str,
    body: bytes,
) -> None:
    """Bodies are taken as they are: decoded, a small one could inflate to gigabytes."""
    await hashed_model(client, legacy)
    before = await (await client.get(f"/api/models/{H}")).json()
    headers = {"Content-Type": content_type, "Content-Encoding": coding}
    response = await client.request(method, path, data=body, headers=headers)
    assert response.status == 415, await response.text()
    answer = await response.json()
    assert answer["error"] == "Unsupported Media Type" and coding in answer["detail"]
    assert response.headers["Accept-Encoding"] == "identity"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert await (await client.get(f"/api/models/{H}")).json() == before


@pytest.mark.parametrize("coding", ["identity", " Identity "])
async def test_a_body_said_to_be_identity_is_taken(client: Client, coding: str) -> None:
    headers = {"Content-Type": "application/json", "Content-Encoding": coding}
    response = await client.post("/api/tags", data=b'{"name": "plain"}', headers=headers)
    assert response.status == 201, await response.text()


async def test_a_line_break_encoded_in_a_path_cannot_forge_a_line_of_the_server_log(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    forged = "2026-01-01 00:00:00,000 WARNING modelshelf: FORGED"
    path = "/api/models/x%0A" + forged.replace(" ", "%20")
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
    with caplog.at_level(logging.INFO):
        response = await client.patch(path, data=b"not gzip at all", headers=headers)
    assert response.status == 415
    logged = [r.getMessage() for r in caplog.records if r.name.startswith("modelshelf")]
    assert any("body refused" in line for line in logged), logged
    log_lines = [part for message in logged for part in message.splitlines()]
    assert not [line for line in log_lines if line.startswith(forged)], logged


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/api/images/upload", {"POST"}),
        ("DELETE", "/api/images/reorder", {"POST"}),
        ("HEAD", "/api/images/get_sample_imgs", {"POST"}),
        ("PATCH", "/api/models/get_types", {"GET", "HEAD"}),
    ],
)
async def test_a_fixed_path_is_never_taken_for_a_name_beside_it(
    client: Client, method: str, path: str, allowed: set[str]
) -> None:
    response = await client.request(method, path)
    assert response.status == 405
    assert {m.strip() for m in response.headers["Allow"].split(",")} == allowed


async def test_a_name_that_is_no_image_is_still_400(client: Client) -> None:
    response = await client.get("/api/images/uploads")
    assert response.status == 400


async def test_the_folder_of_the_pending_images_is_no_endpoint(client: Client) -> None:
    response = await client.get("/api/images/pending")
    assert response.status == 404
    assert (await response.json())["detail"] == "no such endpoint"


async def test_an_unknown_expectation_is_417_with_the_json_error_body(
    client: Client, legacy: LegacyLibrary
) -> None:
    await hashed_model(client, legacy)
    response = await client.get(f"/api/models/{H}", headers={"Expect": "bogus"})
    assert response.status == 417
    body = await response.json()
    assert body["error"] == "Expectation Failed" and "bogus" in body["detail"]
    continued = await client.post(
        "/api/tags", json={"name": "continued"}, headers={"Expect": "100-continue"}
    )
    assert continued.status == 201, await continued.text()


VISIBLE_WORDS = "needs a character other than white space, and no control or invisible characters"


@pytest.mark.parametrize(
    ("method", "path", "body", "detail"),
    [
        ("PUT", f"/api/models/{H}/tags", {"tags": ["ok", "   "]}, f"tags.1: {VISIBLE_WORDS}"),
        ("PUT", f"/api/models/{H}/tags", {"tags": ["a\nb"]}, f"tags.0: {VISIBLE_WORDS}"),
        ("POST", "/api/tags", {"name": "\u3000"}, f"name: {VISIBLE_WORDS}"),
        ("PATCH", "/api/tags/1", {"name": "a\x85b"}, f"name: {VISIBLE_WORDS}"),
        ("POST", "/api/models/tags", {"hashes": [H], "add": [" "]}, f"add.0: {VISIBLE_WORDS}"),
        (
            "POST",
            "/api/models/tags",
            {"hashes": [H, "xyz"]},
            "hashes.1: should be a SHA256: 64 hex characters",
        ),
        ("PATCH", f"/api/models/{H}", {"name": "a\x00b"}, f"name: {VISIBLE_WORDS}"),
        (
            "POST",
            "/api/models/edit",
            {"hashes": [H], "type": "\x00"},
            f"type: {VISIBLE_WORDS}",
        ),
        (
            "POST",
            "/api/images/reorder",
            {"hash": H, "order": [f"{H}_0.png"]},
            "order.0: should be an image name: <sha256>_<seq>.webp or <sha256>.webp",
        ),
        (
            "POST",
            "/api/images/get_sample_imgs",
            {"hash": H[:-1]},
            "hash: should be a SHA256: 64 hex characters",
        ),
    ],
    ids=[
        "tag-blank",
        "tag-newline",
        "new-tag-ideographic-space",
        "rename-tag-c1-control",
        "bulk-tag-blank",
        "bulk-hash",
        "name-nul",
        "bulk-type-nul",
        "reorder-name",
        "sample-hash",
    ],
)
async def test_a_field_that_does_not_match_its_pattern_is_400_saying_what_it_needs(
    client: Client, method: str, path: str, body: dict[str, object], detail: str
) -> None:
    # The detail is for a person: what the field needs, not the regex that checks it (the tag
    # name's spells out every control and space character by its code point).
    response = await client.request(method, path, json=body)
    assert response.status == 400
    assert await response.json() == {"error": "Bad Request", "detail": detail}
