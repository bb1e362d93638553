"""Taking a pending model out of the queue without importing it: DELETE
/api/migration/pending_models/{id} removes its record, tag links and original image (in
whatever format is on disk), never its model file, and is refused while it is being imported."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from modelshelf.crashpoints import CRASH_EXIT_CODE, ENVIRONMENT_VARIABLE
from modelshelf.integrity import check_library
from tests.conftest import Client, assert_error_body, migrate, paused_at, post_import, shelf_of
from tests.editing import disk_full_before_commit
from tests.factories import (
    HASHED,
    LegacyLibrary,
    Library,
    make_image,
    make_model_file,
    query,
    snapshot,
)
from tests.server import ServerProcess

PENDING = "/api/migration/pending_models"


async def discard(client: Client, pending_id: Any) -> tuple[int, Any]:
    response = await client.delete(f"{PENDING}/{pending_id}")
    return response.status, await response.json()


async def pending_ids(client: Client) -> list[int]:
    return [m["id"] for m in (await (await client.get(PENDING)).json())["models"]]


async def test_a_pending_model_whose_file_is_gone_can_be_taken_out_of_the_queue(
    client: Client, lib: Library, data_dir: Path
) -> None:
    lib.tag(4, "anime")
    lib.model(3, content=1, tags=[4], name="Gone")
    lib.model(5, content=2, tags=[4])
    await migrate(client, lib.legacy)
    (lib.models_dir / "m3.safetensors").unlink()
    assert (await post_import(client, 3))[0] == 422  # it can never be imported
    listed = {m["id"]: m for m in (await (await client.get(PENDING)).json())["models"]}

    status, body = await discard(client, 3)

    assert (status, body) == (200, listed[3])  # the record as it was
    assert await pending_ids(client) == [5]
    assert query(data_dir, "SELECT model_id FROM pending_model_tags") == [(5,)]
    assert not (data_dir / "images" / "pending" / "3.png").exists()
    assert (data_dir / "images" / "pending" / "5.png").is_file()
    assert query(data_dir, "SELECT name FROM tags") == [("anime",)]  # the tag itself stays
    assert check_library(data_dir) == []
    assert (await post_import(client, 3))[0] == 404


async def test_the_model_file_is_never_touched(
    client: Client, lib: Library, data_dir: Path
) -> None:
    lib.model(3, content=1)
    await migrate(client, lib.legacy)
    before = (lib.models_dir / "m3.safetensors").read_bytes()
    assert (await discard(client, 3))[0] == 200
    assert (lib.models_dir / "m3.safetensors").read_bytes() == before
    assert query(data_dir, "SELECT count(*) FROM models") == [(0,)]


async def test_an_original_replaced_by_hand_in_another_format_goes_too(
    client: Client, lib: Library, data_dir: Path
) -> None:
    lib.model(3, content=1)
    await migrate(client, lib.legacy)
    pending_dir = data_dir / "images" / "pending"
    (pending_dir / "3.png").unlink()
    make_image(pending_dir / "3.jpg", 40, 30)
    assert (await discard(client, 3))[0] == 200
    assert sorted(p.name for p in pending_dir.iterdir()) == []
    assert check_library(data_dir) == []


@pytest.mark.parametrize(
    ("raw", "status"),
    [("12345", 404), ("abc", 400), ("1.5", 400), (str(2**64), 400), ("-", 400)],
)
async def test_an_unknown_or_malformed_id_changes_nothing(
    client: Client, lib: Library, data_dir: Path, raw: str, status: int
) -> None:
    lib.model(3, content=1)
    await migrate(client, lib.legacy)
    before = snapshot(data_dir, ignore=HASHED)
    answer, body = await discard(client, raw)
    assert answer == status
    assert_error_body(body, status)
    assert snapshot(data_dir, ignore=HASHED) == before


async def test_a_pending_model_being_imported_is_locked_and_the_import_finishes(
    client: Client, lib: Library, data_dir: Path
) -> None:
    sha = lib.model(3, content=1)
    await migrate(client, lib.legacy)
    with paused_at("hash.reading") as hashing:
        importing = asyncio.create_task(post_import(client, 3))
        await hashing.reached.wait()
        status, body = await discard(client, 3)
        assert (status, body["error"]) == (423, "Locked")
    assert (await importing)[:1] == (200,)
    assert query(data_dir, "SELECT sha256 FROM models") == [(sha,)]
    assert len(shelf_of(client).pending_locks) == 0


DISCARD_POINTS = [
    "change.before_commit",
    "change.after_commit",
    "fileop.before",
    "change.carried_out",
]


@pytest.mark.slow
@pytest.mark.parametrize("point", DISCARD_POINTS)
async def test_a_discard_cut_by_a_crash_is_all_or_nothing(
    data_dir: Path, legacy: LegacyLibrary, models_dir: Path, tmp_path: Path, point: str
) -> None:
    make_model_file(models_dir / "m3.safetensors", seed=3)
    legacy.add_model(
        3, hash_hex="", path=str(models_dir / "m3.safetensors"), images=[legacy.image("m3.png")]
    )
    legacy.migrate_with_cli(data_dir, data_dir / "no-config")
    original = data_dir / "images" / "pending" / "3.png"
    assert original.is_file()
    server = ServerProcess(data_dir, tmp_path / "server.log", **{ENVIRONMENT_VARIABLE: point})
    server.start()
    try:
        with contextlib.suppress(aiohttp.ClientError):
            async with (
                aiohttp.ClientSession() as session,
                session.delete(f"{server.url}{PENDING}/3") as response,
            ):
                pytest.fail(f"answered {response.status}: the crash point was never reached")
        assert server.wait(30) == CRASH_EXIT_CODE
    finally:
        server.kill()

    with ServerProcess(data_dir, tmp_path / "server.log") as again:  # start-up recovery runs
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"{again.url}{PENDING}") as response,
        ):
            listed = [m["id"] for m in (await response.json())["models"]]
    assert check_library(data_dir) == [], again.log()
    assert (listed, original.is_file()) in (([3], True), ([], False)), point
    assert (models_dir / "m3.safetensors").is_file()


# --- POST /api/migration/discard_models: many at once ------------------------------------------

DISCARD_MANY = "/api/migration/discard_models"


async def discard_many(client: Client, body: Any) -> tuple[int, Any]:
    response = await client.post(DISCARD_MANY, json=body)
    return response.status, await response.json()


async def test_many_pending_models_are_discarded_in_one_change_each_said_once_in_order(
    client: Client, lib: Library, data_dir: Path
) -> None:
    lib.tag(4, "anime")
    for pending_id in (3, 5, 7):
        lib.model(pending_id, content=pending_id, tags=[4])
    await migrate(client, lib.legacy)
    pending_dir = data_dir / "images" / "pending"
    (pending_dir / "5.png").unlink()
    make_image(pending_dir / "5.jpg", 40, 30)  # replaced by hand in another format
    models = [(lib.models_dir / f"m{i}.safetensors").read_bytes() for i in (3, 5, 7)]

    status, body = await discard_many(client, {"ids": [7, 12345, 3, 7, 5]})

    assert (status, body) == (200, {"discarded": [7, 3, 5], "locked": [], "not_found": [12345]})
    assert await pending_ids(client) == []
    assert sorted(p.name for p in pending_dir.iterdir()) == []
    assert query(data_dir, "SELECT count(*) FROM pending_model_tags") == [(0,)]
    assert [(lib.models_dir / f"m{i}.safetensors").read_bytes() for i in (3, 5, 7)] == models
    assert check_library(data_dir) == []


async def test_a_pending_model_being_imported_is_left_in_the_queue_and_said(
    client: Client, lib: Library, data_dir: Path
) -> None:
    sha = lib.model(3, content=1)
    lib.model(5, content=2)
    await migrate(client, lib.legacy)
    with paused_at("hash.reading") as hashing:
        importing = asyncio.create_task(post_import(client, 3))
        await hashing.reached.wait()
        status, body = await discard_many(client, {"ids": [3, 5]})
        assert (status, body) == (200, {"discarded": [5], "locked": [3], "not_found": []})
    assert (await importing)[:1] == (200,)
    assert query(data_dir, "SELECT sha256 FROM models") == [(sha,)]
    assert await pending_ids(client) == []
    assert len(shelf_of(client).pending_locks) == 0


async def test_a_discard_of_many_that_fails_before_its_commit_changes_nothing(
    client: Client, lib: Library, data_dir: Path
) -> None:
    lib.model(3, content=1)
    lib.model(5, content=2)
    await migrate(client, lib.legacy)
    before = snapshot(data_dir, ignore=HASHED)
    with disk_full_before_commit():
        status, body = await discard_many(client, {"ids": [3, 5]})
    assert status == 507, body
    assert snapshot(data_dir, ignore=HASHED) == before
    assert len(shelf_of(client).pending_locks) == 0


@pytest.mark.parametrize(
    "body",
    [{}, {"ids": []}, {"ids": "3"}, {"ids": [1.5]}, {"ids": [2**64]}, {"ids": [3], "x": 1}, [3]],
    ids=["empty", "no-id", "text", "fraction", "too-large", "unknown-field", "list"],
)
async def test_a_bad_discard_of_many_is_400_and_changes_nothing(
    client: Client, lib: Library, data_dir: Path, body: Any
) -> None:
    lib.model(3, content=1)
    await migrate(client, lib.legacy)
    before = snapshot(data_dir, ignore=HASHED)
    status, answer = await discard_many(client, body)
    assert status == 400, answer
    assert_error_body(answer, 400)
    assert snapshot(data_dir, ignore=HASHED) == before
