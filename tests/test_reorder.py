"""POST /api/images/reorder through the real app: order[i] becomes seq i, files move with
their images, and a stale or wrong order changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelshelf.integrity import check_library
from modelshelf.renditions import qualities
from tests.conftest import Client, shelf_of
from tests.editing import UNKNOWN, A, B, assert_error, build, call, get_model, snapshot, width_for
from tests.factories import LegacyLibrary, image_size

REORDER = "/api/images/reorder"


def name(seq: int, sha: str = A) -> str:
    return f"{sha}_{seq}.webp"


def widths(data_dir: Path, count: int, quality: str = "high") -> list[int]:
    return [image_size(data_dir / "images" / f"{A}_{s}_{quality}.webp")[0] for s in range(count)]


@pytest.fixture
async def library(client: Client, legacy: LegacyLibrary) -> Client:
    await build(client, legacy, images=4)
    return client


@pytest.mark.parametrize(
    "order",
    [[1, 0, 2, 3], [3, 2, 1, 0], [1, 2, 3, 0], [0, 1, 3, 2], [2, 0, 3, 1]],
    ids=str,
)
async def test_after_a_reorder_order_i_is_seq_i(
    library: Client, data_dir: Path, order: list[int]
) -> None:
    status, answer, headers = await call(
        library, "POST", REORDER, {"hash": A, "order": [name(s) for s in order]}
    )
    assert status == 200, answer
    assert answer == [name(s) for s in range(4)]
    for quality in qualities():
        shrink = {"high": 1, "medium": 0.66, "low": 0.33}.get(quality, 1)
        assert widths(data_dir, 4, quality) == [round(width_for(s) * shrink) for s in order]
    record, etag = await get_model(library, A)
    assert record["images"] == answer
    assert headers["ETag"] == etag
    assert check_library(data_dir) == []


async def test_the_cover_is_seq_0(library: Client, data_dir: Path) -> None:
    await call(library, "POST", REORDER, {"hash": A, "order": [name(s) for s in (2, 0, 1, 3)]})
    cover = await library.get(f"/api/images/{A}.webp")
    assert cover.status == 200
    assert (data_dir / "images" / f"{A}_0_high.webp").read_bytes() == await cover.read()
    assert widths(data_dir, 1) == [width_for(2)]


async def test_the_plain_name_means_seq_0_and_upper_case_hash_is_accepted(
    library: Client, data_dir: Path
) -> None:
    order = [name(1), f"{A}.webp", name(3), name(2)]
    status, answer, _ = await call(library, "POST", REORDER, {"hash": A.upper(), "order": order})
    assert status == 200, answer
    assert widths(data_dir, 4) == [width_for(s) for s in (1, 0, 3, 2)]


async def test_the_same_order_changes_nothing(library: Client, data_dir: Path) -> None:
    before = snapshot(data_dir)
    status, answer, _ = await call(
        library, "POST", REORDER, {"hash": A, "order": [name(s) for s in range(4)]}
    )
    assert (status, answer) == (200, [name(s) for s in range(4)])
    assert snapshot(data_dir) == before


async def test_a_reorder_is_saved_in_history_with_the_old_order(library: Client) -> None:
    before, _ = await get_model(library, A)
    await call(library, "POST", REORDER, {"hash": A, "order": [name(s) for s in (3, 2, 1, 0)]})
    _, history, _ = await call(library, "GET", f"/api/models/{A}/history")
    assert history["entries"][0]["action"] == "reorder"
    assert history["entries"][0]["before"] == before


@pytest.mark.parametrize(
    "order",
    [
        [1, 0, 2],  # one missing
        [1, 0, 2, 3, 4],  # one that does not exist
        [1, 0, 2, 2],  # a repeat
        [1, 1, 2, 3],
        [],
        [0, 1, 2, ("other", 0)],  # another model's image
    ],
    ids=["missing", "extra", "repeat-last", "repeat", "empty", "other-model"],
)
async def test_an_order_that_is_not_exactly_the_current_images_is_409(
    library: Client, data_dir: Path, order: list[Any]
) -> None:
    before = snapshot(data_dir)
    names = [name(s[1], B) if isinstance(s, tuple) else name(s) for s in order]
    status, answer, _ = await call(library, "POST", REORDER, {"hash": A, "order": names})
    assert status == 409, answer
    assert_error(answer, "Conflict")
    assert answer["images"] == [name(s) for s in range(4)]
    assert snapshot(data_dir) == before


@pytest.mark.parametrize(
    "body",
    [
        {"hash": A},
        {"order": [name(0)]},
        {"hash": "xyz", "order": []},
        {"hash": A, "order": "a"},
        {"hash": A, "order": [1]},
        {"hash": A, "order": ["../../etc/passwd"]},
        {"hash": A, "order": [f"{A}_0_high.webp"]},
        {"hash": A, "order": [], "extra": 1},
    ],
)
async def test_a_malformed_reorder_is_400_and_changes_nothing(
    library: Client, data_dir: Path, body: dict[str, Any]
) -> None:
    before = snapshot(data_dir)
    status, answer, _ = await call(library, "POST", REORDER, body)
    assert status == 400, answer
    assert snapshot(data_dir) == before


async def test_reordering_an_unknown_model_is_404(library: Client) -> None:
    status, answer, _ = await call(library, "POST", REORDER, {"hash": UNKNOWN, "order": []})
    assert status == 404
    assert_error(answer, "Not Found")


async def test_a_model_without_images_reorders_an_empty_list(
    client: Client, legacy: LegacyLibrary
) -> None:
    await build(client, legacy, images=0)
    status, answer, _ = await call(client, "POST", REORDER, {"hash": A, "order": []})
    assert (status, answer) == (200, [])


async def writer_statements(client: Client, order: list[int]) -> list[str]:
    """The statements the single writer runs for a reorder of model A to `order`."""
    storage = shelf_of(client).storage
    traced: list[str] = []
    async with storage.write() as writer:
        await writer.set_trace_callback(traced.append)
    try:
        status, answer, _ = await call(
            client, "POST", REORDER, {"hash": A, "order": [name(s) for s in order]}
        )
    finally:
        async with storage.write() as writer:
            await writer.set_trace_callback(None)
    assert status == 200, answer
    return traced[1:-1]  # without the COMMIT and BEGIN of the trace's own transactions


async def test_a_reorder_runs_as_many_statements_however_many_images_move(
    library: Client, data_dir: Path
) -> None:
    # The single writer is held for the whole change: moving 300 images must not cost it a
    # statement (a trip to its thread) each.
    two_move = await writer_statements(library, [1, 0, 2, 3])
    all_move = await writer_statements(library, [3, 2, 0, 1])
    assert len(all_move) == len(two_move), (two_move, all_move)
    assert widths(data_dir, 4) == [width_for(s) for s in (3, 2, 1, 0)]  # after both
    assert check_library(data_dir) == []
