"""A model's images' version alone (the Images-Version header of GET /api/models/{sha256}): an
image's name is its place, so a page holding gestures on its pictures tells by it whether a
change made elsewhere (met as a 412) moved them, or only touched the tags or the name."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Client
from tests.editing import A, build, call
from tests.factories import LegacyLibrary


@pytest.fixture
async def library(client: Client, legacy: LegacyLibrary) -> Client:
    await build(client, legacy)
    return client


async def images_version(client: Client) -> tuple[str, str]:
    response = await client.get(f"/api/models/{A}")
    assert response.status == 200, await response.text()
    return response.headers["ETag"], response.headers["Images-Version"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", f"/api/models/{A}", {"name": "New"}),
        ("PATCH", f"/api/models/{A}", {"meta_json": {"notes": "x"}}),
        ("PUT", f"/api/models/{A}/tags", {"tags": ["lora"]}),
    ],
    ids=["name", "meta", "tags"],
)
async def test_a_change_that_leaves_the_images_leaves_their_version(
    library: Client, method: str, path: str, body: Any
) -> None:
    etag, images = await images_version(library)
    status, answer, _ = await call(library, method, path, body)
    assert status == 200, answer
    assert await images_version(library) != (etag, images)
    assert (await images_version(library))[1] == images


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        (
            "POST",
            "/api/images/reorder",
            {"hash": A, "order": [f"{A}_1.webp", f"{A}_0.webp", f"{A}_2.webp"]},
        ),
        ("DELETE", f"/api/images/{A}_2.webp", None),
    ],
    ids=["reorder", "image-deleted"],
)
async def test_a_change_of_the_images_changes_their_version(
    library: Client, method: str, path: str, body: Any
) -> None:
    _, images = await images_version(library)
    status, answer, _ = await call(library, method, path, body)
    assert status == 200, answer
    assert (await images_version(library))[1] != images


async def test_a_304_carries_the_images_version(library: Client) -> None:
    etag, images = await images_version(library)
    response = await library.get(f"/api/models/{A}", headers={"If-None-Match": etag})
    assert response.status == 304
    assert response.headers["Images-Version"] == images
