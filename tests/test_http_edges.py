"""The edges of HTTP: bodies that arrive in many small reads or never finish, fields given
twice, cache-busting query parameters, ranges and preconditions that cannot be met, clients
that hang up, and error answers that are always the JSON error body."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Client, migrate
from tests.factories import LegacyLibrary, fake_sha, make_image

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
