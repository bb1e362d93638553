"""POST /api/images/upload honours If-Match with the model's ETag, as the other changes of a
model do (contract part 2, "Editing the library"): an upload from a page that missed a reorder
made elsewhere is refused with 412 and changes nothing, so the page learns that the pictures
moved instead of keeping them where they no longer are. Through the real app."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from modelshelf.domain.shelf import Shelf
from modelshelf.web.openapi import build_openapi
from tests.conftest import Client, shelf_of
from tests.editing import UNKNOWN, A, assert_error, build, call, get_model, history, snapshot
from tests.factories import LegacyLibrary, make_image
from tests.test_edit_races import PoolGate, gated_pool

REVERSED = [f"{A}_2.webp", f"{A}_1.webp", f"{A}_0.webp"]


@pytest.fixture
async def library(client: Client, legacy: LegacyLibrary) -> Client:
    await build(client, legacy)
    return client


@pytest.fixture
def picture(tmp_path: Path) -> bytes:
    return make_image(tmp_path / "upload.png", width=120, height=20).read_bytes()


async def upload(client: Client, sha256: str, data: bytes, **headers: str) -> tuple[int, Any]:
    form = aiohttp.FormData()
    form.add_field("sha256", sha256)
    form.add_field("image", data, filename="u.png", content_type="image/png")
    response = await client.post("/api/images/upload", data=form, headers=headers)
    return response.status, await response.json()


async def reorder_elsewhere(client: Client) -> None:
    status, answer, _ = await call(
        client, "POST", "/api/images/reorder", {"hash": A, "order": REVERSED}
    )
    assert status == 200, answer


@pytest.mark.parametrize("stale", ['"0000"', 'W/"{etag}"', '"0000", "1111"'])
async def test_an_upload_with_a_stale_if_match_is_412_and_changes_nothing(
    library: Client, data_dir: Path, picture: bytes, stale: str
) -> None:
    _, etag = await get_model(library, A)
    before = snapshot(data_dir)
    status, answer = await upload(
        library, A, picture, **{"If-Match": stale.format(etag=etag.strip('"'))}
    )
    assert status == 412, answer
    assert_error(answer, "Precondition Failed")
    assert answer["etag"] == etag
    assert snapshot(data_dir) == before


async def test_an_upload_from_a_page_that_missed_a_reorder_is_412_and_adds_nothing(
    library: Client, data_dir: Path, picture: bytes
) -> None:
    record, etag = await get_model(library, A)
    entries = await history(library, A)
    await reorder_elsewhere(library)
    before = snapshot(data_dir)
    status, answer = await upload(library, A, picture, **{"If-Match": etag})
    assert status == 412, answer
    assert_error(answer, "Precondition Failed")
    # No file, no row, no history entry: the page reads the model again and knows where
    # each picture is before it adds one.
    assert snapshot(data_dir) == before
    assert len((await get_model(library, A))[0]["images"]) == len(record["images"])
    assert len(await history(library, A)) == len(entries) + 1  # the reorder's, no other


@pytest.mark.parametrize("form", ["{etag}", '"0000", {etag}', "*"])
async def test_an_upload_with_a_matching_if_match_adds_the_image(
    library: Client, picture: bytes, form: str
) -> None:
    record, etag = await get_model(library, A)
    status, answer = await upload(library, A, picture, **{"If-Match": form.format(etag=etag)})
    assert status == 200, answer
    assert answer["name"] == f"{A}_{len(record['images'])}.webp"
    after, new_etag = await get_model(library, A)
    assert after["images"] == [*record["images"], answer["name"]]
    assert new_etag != etag


async def test_an_upload_without_if_match_is_as_before(library: Client, picture: bytes) -> None:
    record, _ = await get_model(library, A)
    await reorder_elsewhere(library)
    status, answer = await upload(library, A, picture)
    assert status == 200, answer
    assert (await get_model(library, A))[0]["images"][-1] == answer["name"]
    assert answer["name"] == f"{A}_{len(record['images'])}.webp"


@pytest.mark.parametrize("header", ["abc", '"unterminated', ""])
async def test_an_upload_with_a_malformed_if_match_is_400_and_changes_nothing(
    library: Client, data_dir: Path, picture: bytes, header: str
) -> None:
    before = snapshot(data_dir)
    status, answer = await upload(library, A, picture, **{"If-Match": header})
    assert status == 400, answer
    assert_error(answer, "Bad Request")
    assert snapshot(data_dir) == before


async def test_an_upload_to_an_unknown_model_with_if_match_is_404(
    library: Client, picture: bytes
) -> None:
    status, answer = await upload(library, UNKNOWN, picture, **{"If-Match": "*"})
    assert status == 404, answer
    assert_error(answer, "Not Found")


def settled(data_dir: Path) -> dict[str, Any]:
    """`snapshot` without the uploads still in staging (taken while one is received)."""
    seen = snapshot(data_dir)
    seen["files"] = {k: v for k, v in seen["files"].items() if "/.staging/" not in k}
    return seen


@contextmanager
def held_renderings(shelf: Shelf, monkeypatch: pytest.MonkeyPatch) -> Iterator[PoolGate]:
    """Holds the CPU pool's renderings of uploaded images until `open()`."""

    def picks(fn: Any) -> bool:
        return getattr(fn, "__name__", "") == "render_into"

    gate = PoolGate("upload reached its rendering")
    with gated_pool(shelf.executors.cpu, monkeypatch, picks, gate) as held:
        yield held


async def test_a_reorder_committed_while_the_upload_renders_makes_it_412(
    library: Client, data_dir: Path, picture: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The precondition is decided in the upload's change, under the model's lock: a version
    read before the rendering (which holds no lock) would let a reorder made meanwhile by
    another client slip through, the page's idea of the pictures' places wrong again."""
    record, etag = await get_model(library, A)
    with held_renderings(shelf_of(library), monkeypatch) as gate:
        sent = asyncio.create_task(upload(library, A, picture, **{"If-Match": etag}))
        await gate.wait_reached()
        await reorder_elsewhere(library)
        before = settled(data_dir)
        gate.open()
        status, answer = await sent
    assert status == 412, answer
    assert settled(data_dir) == before
    assert len((await get_model(library, A))[0]["images"]) == len(record["images"])


def test_the_published_upload_takes_if_match_and_may_answer_412() -> None:
    operation = build_openapi()["paths"]["/api/images/upload"]["post"]
    headers = [p["name"] for p in operation["parameters"] if p["in"] == "header"]
    assert headers == ["If-Match"]
    assert "412" in operation["responses"]
