"""A model's images' version alone (the Images-Version header of GET /api/models/{sha256}): an
image's name is its place, so a page holding gestures on its pictures tells by it whether a
change made elsewhere (met as a 412) moved them, or only touched the tags or the name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import Client
from tests.editing import A, build, call, history
from tests.factories import LegacyLibrary, make_image
from tests.test_conditional_upload import upload
from tests.test_edit_races import PENDING, library_copy


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


async def test_an_upload_changes_the_images_version(library: Client, tmp_path: Path) -> None:
    _, images = await images_version(library)
    picture = make_image(tmp_path / "upload.png", width=50, height=20).read_bytes()
    assert (await upload(library, A, picture))[0] == 200
    assert (await images_version(library))[1] != images


@pytest.mark.parametrize("strategy", ["override", "merge"])
async def test_an_import_that_brings_an_image_changes_the_images_version(
    aiohttp_client: Any, tmp_path_factory: pytest.TempPathFactory, data_dir: Path, strategy: str
) -> None:
    """Override puts the pending image in seq 0's place (the names stay the same: only the
    version tells), merge adds it at the end."""
    client, sha = await library_copy(aiohttp_client, tmp_path_factory, data_dir)
    before = await client.get(f"/api/models/{sha}")
    body = {"id": PENDING, "conf_strategy": strategy}
    status, answer, _ = await call(client, "POST", "/api/migration/import_a_model", body)
    assert status == 200, answer
    after = await client.get(f"/api/models/{sha}")
    assert after.headers["Images-Version"] != before.headers["Images-Version"]


async def test_a_restore_leaves_the_images_version(library: Client) -> None:
    """A restore puts back fields, meta_json and tags, never images."""
    _, images = await images_version(library)
    assert (await call(library, "PATCH", f"/api/models/{A}", {"name": "New"}))[0] == 200
    entry = (await history(library, A))[0]["id"]
    status, answer, _ = await call(
        library, "POST", f"/api/models/{A}/history/{entry}/restore", None
    )
    assert status == 200, answer
    assert (await images_version(library))[1] == images


async def test_a_deletes_answer_carries_the_versions_it_left(library: Client) -> None:
    """Without them a page could not tell a reorder made elsewhere between its delete's
    answer and its reading of the model after it (as it does for its moves since 4e4cee0)."""
    status, answer, headers = await call(library, "DELETE", f"/api/images/{A}_1.webp", None)
    assert status == 200, answer
    assert answer == {"status": "success", "deleted": f"{A}_1.webp"}
    assert (headers.get("ETag"), headers.get("Images-Version")) == await images_version(library)


async def test_an_uploads_answer_carries_the_versions_it_left(
    library: Client, tmp_path: Path
) -> None:
    picture = make_image(tmp_path / "upload.png", width=50, height=20).read_bytes()
    form = aiohttp.FormData()
    form.add_field("sha256", A)
    form.add_field("image", picture, filename="u.png", content_type="image/png")
    response = await library.post("/api/images/upload", data=form)
    assert response.status == 200, await response.text()
    assert await response.json() == {"status": "success", "name": f"{A}_3.webp"}
    versions = (response.headers.get("ETag"), response.headers.get("Images-Version"))
    assert versions == await images_version(library)


async def test_a_reorders_answer_carries_the_versions_it_left(library: Client) -> None:
    """As a delete's and an upload's do: the order of the pictures is what the version tells."""
    order = [f"{A}_2.webp", f"{A}_0.webp", f"{A}_1.webp"]
    body = {"hash": A, "order": order}
    status, answer, headers = await call(library, "POST", "/api/images/reorder", body)
    assert status == 200, answer
    assert (headers.get("ETag"), headers.get("Images-Version")) == await images_version(library)
