"""Stage 2: promoting a pending model by id, every branch and its database and file effects."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from modelshelf.domain.meta import merge_meta_json
from modelshelf.integrity import check_library
from modelshelf.renditions import qualities
from tests.conftest import (
    IMPORT,
    Client,
    MakeClient,
    assert_error_body,
    migrate,
    paused_at,
    post_import,
    shelf_of,
)
from tests.factories import HASHED, Library, image_size, query, snapshot

QUALITIES = qualities()
PREVIEW = "/api/migration/preview_import"
BATCH = "/api/migration/import_models"


# --- no conflict ------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", [None, "override", "merge", "delete"])
async def test_without_conflict_every_strategy_imports(
    client: Client, lib: Library, data_dir: Path, strategy: str | None
) -> None:
    lib.tag(3, "lora")
    sha = lib.model(10, content=1, tags=[3], extra={"description": "d", "images": ["/media/x"]})
    await migrate(client, lib.legacy)
    status, body = await post_import(client, 10, strategy)
    assert (status, body) == (200, {"status": "success", "sha256": sha, "action_taken": "imported"})
    model = await (await client.get(f"/api/models/{sha}")).json()
    assert model["path"] == str(lib.models_dir / "m10.safetensors")
    assert model["meta_json"] == {"description": "d"}
    assert model["tags"] == [{"id": 3, "name": "lora"}]
    assert model["images"] == [f"{sha}_0.webp"]
    for q in QUALITIES:
        assert (data_dir / "images" / f"{sha}_0_{q}.webp").is_file()
    assert query(data_dir, "SELECT count(*) FROM pending_import") == [(0,)]
    assert query(data_dir, "SELECT count(*) FROM pending_model_tags") == [(0,)]
    assert not (data_dir / "images" / "pending" / "10.png").exists()


async def test_import_without_image_has_no_images(client: Client, lib: Library) -> None:
    sha = lib.model(10, content=1, image=None)
    await migrate(client, lib.legacy)
    assert (await post_import(client, 10))[0] == 200
    assert await (await client.post("/api/images/get_sample_imgs", json={"hash": sha})).json() == []


# --- conflicts --------------------------------------------------------------------------------


@pytest.fixture
async def conflict(client: Client, lib: Library, data_dir: Path) -> dict[str, Any]:
    """Model 1 is in the library (one image, tags 1 and 2); pending 2 has the same content."""
    lib.tag(1, "checkpoint")
    lib.tag(2, "anime")
    lib.tag(5, "new")
    sha = lib.model(
        1,
        content=7,
        hashed=True,
        tags=[1, 2],
        image=(400, 300),
        name="Original",
        type="checkpoint",
        extra={"description": "old", "links": ["a"], "prompts": {"positive": "cat"}},
    )
    lib.model(
        2,
        content=7,
        tags=[2, 5],
        image=(90, 160),
        name="Renamed",
        type="",
        extra={
            "description": "new",
            "links": ["b"],
            "prompts": {"positive": "dog", "negative": "blur"},
            "extra": 1,
        },
    )
    with lib.legacy.connect() as conn:  # an empty column the merge may fill
        conn.execute("UPDATE models SET size_bytes = NULL WHERE id = 1")
    await migrate(client, lib.legacy)
    return {"sha": sha, "before": snapshot(data_dir, ignore=HASHED)}


async def test_conflict_without_strategy_is_409_with_both_records_and_changes_nothing(
    client: Client, conflict: dict[str, Any], data_dir: Path
) -> None:
    status, body = await post_import(client, 2)
    assert status == 409
    assert body["error"] == "Conflict" and body["detail"]
    assert body["existing"]["sha256"] == conflict["sha"]
    assert body["existing"]["images"] == [f"{conflict['sha']}_0.webp"]
    assert {t["name"] for t in body["existing"]["tags"]} == {"checkpoint", "anime"}
    assert body["pending"]["id"] == 2
    assert body["pending"]["images"] == ["pending/2"]
    assert {t["name"] for t in body["pending"]["tags"]} == {"anime", "new"}
    assert snapshot(data_dir, ignore=HASHED) == conflict["before"]


async def test_override_takes_pending_fields_unions_tags_and_replaces_seq_0(
    client: Client, conflict: dict[str, Any], data_dir: Path
) -> None:
    sha = conflict["sha"]
    status, body = await post_import(client, 2, "override")
    assert (status, body["action_taken"]) == (200, "overridden")
    model = await (await client.get(f"/api/models/{sha}")).json()
    assert model["name"] == "Renamed"
    assert model["type"] == ""
    assert model["meta_json"] == {
        "description": "new",
        "links": ["b"],
        "prompts": {"positive": "dog", "negative": "blur"},
        "extra": 1,
    }
    assert {t["name"] for t in model["tags"]} == {"checkpoint", "anime", "new"}
    assert model["images"] == [f"{sha}_0.webp"]
    assert image_size(data_dir / "images" / f"{sha}_0_high.webp") == (90, 160)
    history = query(data_dir, "SELECT pending_id, strategy, previous FROM model_history")
    assert history[0][:2] == (2, "override")
    assert json.loads(history[0][2])["name"] == "Original"
    assert query(data_dir, "SELECT count(*) FROM pending_import") == [(0,)]


async def test_override_without_pending_image_keeps_seq_0(
    client: Client, lib: Library, data_dir: Path
) -> None:
    sha = lib.model(1, content=7, hashed=True, image=(400, 300))
    lib.model(2, content=7, image=None)
    await migrate(client, lib.legacy)
    before = (data_dir / "images" / f"{sha}_0_high.webp").read_bytes()
    assert (await post_import(client, 2, "override"))[0] == 200
    assert (data_dir / "images" / f"{sha}_0_high.webp").read_bytes() == before


async def test_merge_fills_gaps_keeps_existing_values_and_adds_the_image_at_the_next_seq(
    client: Client, conflict: dict[str, Any], data_dir: Path
) -> None:
    sha = conflict["sha"]
    status, body = await post_import(client, 2, "merge")
    assert (status, body["action_taken"]) == (200, "merged")
    model = await (await client.get(f"/api/models/{sha}")).json()
    assert model["name"] == "Original"
    assert model["type"] == "checkpoint"
    assert model["size_bytes"] == 1234  # was NULL: taken from pending
    assert model["meta_json"] == {
        "description": "old",
        "links": ["a", "b"],
        "prompts": {"positive": "cat", "negative": "blur"},
        "extra": 1,
    }
    assert {t["name"] for t in model["tags"]} == {"checkpoint", "anime", "new"}
    assert model["images"] == [f"{sha}_0.webp", f"{sha}_1.webp"]
    assert image_size(data_dir / "images" / f"{sha}_0_high.webp") == (400, 300)
    assert image_size(data_dir / "images" / f"{sha}_1_high.webp") == (90, 160)
    assert query(data_dir, "SELECT strategy FROM model_history") == [("merge",)]


def test_merge_of_metadata_holding_long_lists_takes_time_in_proportion() -> None:
    """Lists merge item by item: each pending item was compared with every item the list
    held, so two lists of 30,000 words (420 KB of meta_json, well within what stage 1 takes)
    held the whole service for minutes; now they merge at once. (The merge itself, without
    the app: a whole import of metadata this large still holds the event loop for about
    0.14 s in one callback, over the debug mode's 0.1 s, so it is no test of the app.)"""
    words = 30_000
    existing = {"words": [f"a{i}" for i in range(words)]}
    pending = {"words": [f"a{i}" for i in range(0, 2 * words, 2)], "other": 1}
    merged = merge_meta_json(existing, pending)
    expected = [f"a{i}" for i in range(words)] + [f"a{i}" for i in range(words, 2 * words, 2)]
    assert merged == {"words": expected, "other": 1}


async def test_delete_removes_pending_and_its_image_and_leaves_the_model(
    client: Client, conflict: dict[str, Any], data_dir: Path
) -> None:
    model_before = await (await client.get(f"/api/models/{conflict['sha']}")).json()
    status, body = await post_import(client, 2, "delete")
    assert (status, body["action_taken"]) == (200, "deleted")
    assert await (await client.get(f"/api/models/{conflict['sha']}")).json() == model_before
    assert query(data_dir, "SELECT count(*) FROM pending_import") == [(0,)]
    assert not (data_dir / "images" / "pending" / "2.png").exists()
    assert query(data_dir, "SELECT count(*) FROM model_history") == [(0,)]


async def test_hikaze_clients_may_send_conflict_strategy(
    client: Client, conflict: dict[str, Any]
) -> None:
    response = await client.post(IMPORT, json={"id": 2, "conflict_strategy": "delete"})
    assert response.status == 200
    assert (await response.json())["action_taken"] == "deleted"


# --- errors leave everything as it was --------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"id": "2"}, id="id-as-string"),
        pytest.param({"id": True}, id="id-as-bool"),
        pytest.param({"id": 2.5}, id="id-as-float"),
        pytest.param({"id": 2**63}, id="id-beyond-64-bits"),
        pytest.param({}, id="missing-id"),
        pytest.param({"id": 2, "conf_strategy": "replace"}, id="unknown-strategy"),
        pytest.param({"id": 2, "conf_stratgy": "merge"}, id="misspelt-field"),
        pytest.param(
            {"id": 2, "conf_strategy": "merge", "conflict_strategy": "delete"},
            id="both-names-disagree",
        ),
        pytest.param([2], id="not-an-object"),
    ],
)
async def test_bad_bodies_are_400_and_change_nothing(
    client: Client, conflict: dict[str, Any], data_dir: Path, body: Any
) -> None:
    response = await client.post(IMPORT, json=body)
    assert response.status == 400
    assert_error_body(await response.json(), 400)
    assert snapshot(data_dir, ignore=HASHED) == conflict["before"]


@pytest.mark.parametrize(
    ("path", "body", "where"),
    [
        (IMPORT, {"id": 2, "conflict_strategy": "replace"}, "conflict_strategy: "),
        (PREVIEW, {"id": 2, "conflict_strategy": 1}, "conflict_strategy: "),
        (BATCH, {"id": "2"}, "id: "),
        (BATCH, {"id": [2, "x"]}, "id.1: "),
        (BATCH, {"id": [], "conflict_strategy": "merge"}, "id: "),
        (BATCH, {"ids": [2], "conflict_strategy": "keep"}, "conflict_strategy: "),
    ],
    ids=[
        "import-strategy",
        "preview-strategy",
        "batch-id",
        "batch-id-item",
        "batch-empty",
        "batch-strategy",
    ],
)
async def test_a_bad_value_under_a_hikaze_name_is_400_naming_the_field_sent(
    client: Client, conflict: dict[str, Any], data_dir: Path, path: str, body: Any, where: str
) -> None:
    # A Hikaze Model Manager 2 client sends `conflict_strategy` and `id`; the detail must name
    # the field it sent, not the one the service reads it as.
    response = await client.post(path, json=body)
    assert response.status == 400
    answer = await response.json()
    assert_error_body(answer, 400)
    assert answer["detail"].startswith(where), answer
    assert snapshot(data_dir, ignore=HASHED) == conflict["before"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (IMPORT, {"id": 2, "conf_strategy": "delete", "conflict_strategy": "delete"}),
        (BATCH, {"ids": [2], "id": [2], "conflict_strategy": "delete"}),
    ],
    ids=["import", "batch"],
)
async def test_both_names_sent_alike_are_read_once(
    client: Client, conflict: dict[str, Any], path: str, body: Any
) -> None:
    response = await client.post(path, json=body)
    assert response.status in (200, 207), await response.text()
    assert "deleted" in await response.text()


async def test_unknown_id_is_404(client: Client) -> None:
    status, body = await post_import(client, 12345)
    assert status == 404
    assert_error_body(body, 404, "no pending model with id 12345")


async def test_missing_model_file_is_422_and_pending_stays_untouched(
    client: Client, lib: Library, data_dir: Path
) -> None:
    lib.tag(4, "x")
    lib.model(3, content=1, tags=[4])
    await migrate(client, lib.legacy)
    (lib.models_dir / "m3.safetensors").unlink()
    before = snapshot(data_dir, ignore=HASHED)
    status, body = await post_import(client, 3, "merge")
    assert status == 422
    assert_error_body(body, 422, "m3.safetensors")
    assert snapshot(data_dir, ignore=HASHED) == before
    # The lock was released: the same id can be tried again at once.
    assert await post_import(client, 3) == (422, body)


async def test_corrupt_pending_image_is_422_and_nothing_is_imported(
    client: Client, lib: Library, data_dir: Path
) -> None:
    lib.model(3, content=1)
    await migrate(client, lib.legacy)
    (data_dir / "images" / "pending" / "3.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    before = snapshot(data_dir, ignore=HASHED)
    status, body = await post_import(client, 3)
    assert status == 422
    assert_error_body(body, 422, "the image of pending model 3 cannot be used")
    assert snapshot(data_dir, ignore=HASHED) == before


async def test_a_pending_image_over_the_pixel_limit_is_422_like_a_corrupt_one(
    make_client: MakeClient, lib: Library, data_dir: Path
) -> None:
    """The pixel limit was lowered after stage 1 copied the original: the import (and its
    preview) cannot use it. That is an image to replace, as a corrupt one is, not a request
    too large (413): the request was a few bytes."""
    lib.model(3, content=1, image=(400, 300))
    builder = await make_client()
    await migrate(builder, lib.legacy)
    await builder.close()
    client = await make_client(max_image_pixels=1000)
    before = snapshot(data_dir, ignore=HASHED)
    for path in (PREVIEW, IMPORT):
        response = await client.post(path, json={"id": 3})
        assert response.status == 422, await response.text()
        assert_error_body(await response.json(), 422, "images/pending/3.png")
    assert snapshot(data_dir, ignore=HASHED) == before


async def test_model_file_changing_during_hashing_is_refused(
    client: Client, lib: Library, data_dir: Path
) -> None:
    lib.model(3, content=1)
    await migrate(client, lib.legacy)
    before = snapshot(data_dir, ignore=HASHED)
    with paused_at("hash.reading") as reading:  # the file is open and being read
        task = asyncio.create_task(post_import(client, 3))
        await reading.reached.wait()
        with (lib.models_dir / "m3.safetensors").open("ab") as handle:
            handle.write(b"changed")
    status, body = await task
    assert (status, body["error"]) == (422, "Unprocessable Entity"), body
    assert "changed while it was being hashed" in body["detail"]
    assert snapshot(data_dir, ignore=HASHED) == before


# --- locks and concurrency --------------------------------------------------------------------


async def test_second_request_for_an_id_being_imported_is_423_at_once(
    client: Client, lib: Library
) -> None:
    lib.model(3, content=1)
    await migrate(client, lib.legacy)
    shelf = shelf_of(client)
    with paused_at("hash.reading") as hashing:
        first = asyncio.create_task(post_import(client, 3))
        await hashing.reached.wait()
        status, body = await post_import(client, 3)
        assert (status, body["error"]) == (423, "Locked")
        assert body["detail"] == "pending model 3 is being processed by another request"
        assert not first.done()
    assert (await first)[0] == 200
    assert len(shelf.pending_locks) == 0 and len(shelf.model_locks) == 0


async def test_identical_files_imported_concurrently_without_strategy(
    client: Client, lib: Library, data_dir: Path
) -> None:
    sha = lib.model(1, content=9, image=(50, 50))
    lib.model(2, content=9, image=(70, 30))
    await migrate(client, lib.legacy)
    results = await asyncio.gather(post_import(client, 1), post_import(client, 2))
    assert sorted(status for status, _ in results) == [200, 409]
    assert query(data_dir, "SELECT sha256 FROM models") == [(sha,)]
    assert query(data_dir, "SELECT count(*) FROM pending_import") == [(1,)]


async def test_identical_files_merged_concurrently_keep_both_images(
    client: Client, lib: Library, data_dir: Path
) -> None:
    sha = lib.model(1, content=9, image=(50, 50))
    lib.model(2, content=9, image=(70, 30))
    await migrate(client, lib.legacy)
    results = await asyncio.gather(post_import(client, 1, "merge"), post_import(client, 2, "merge"))
    assert sorted(body["action_taken"] for _, body in results) == ["imported", "merged"]
    sizes = {image_size(data_dir / "images" / f"{sha}_{seq}_high.webp") for seq in (0, 1)}
    assert sizes == {(50, 50), (70, 30)}
    assert query(data_dir, "SELECT seq FROM images ORDER BY seq") == [(0,), (1,)]


async def test_many_concurrent_merges_into_one_model_lose_nothing(
    client: Client, lib: Library, data_dir: Path
) -> None:
    for i in range(1, 9):
        lib.tag(i, f"t{i}")
        sha = lib.model(i, content=5, tags=[i], image=(20 + i, 20))
    await migrate(client, lib.legacy)
    results = await asyncio.gather(*(post_import(client, i, "merge") for i in range(1, 9)))
    assert all(status == 200 for status, _ in results)
    model = await (await client.get(f"/api/models/{sha}")).json()
    assert {t["id"] for t in model["tags"]} == set(range(1, 9))
    assert len(model["images"]) == 8
    widths = {image_size(data_dir / "images" / f"{sha}_{s}_high.webp")[0] for s in range(8)}
    assert widths == {20 + i for i in range(1, 9)}


async def test_retry_after_409_uses_the_cached_digest(
    client: Client, conflict: dict[str, Any], data_dir: Path
) -> None:
    await post_import(client, 2)
    cached = query(data_dir, "SELECT path, hashed_at FROM hash_cache")
    assert (await post_import(client, 2, "merge"))[0] == 200
    assert query(data_dir, "SELECT path, hashed_at FROM hash_cache") == cached


async def test_client_hanging_up_mid_import_lets_the_import_finish_whole(
    client: Client, lib: Library, data_dir: Path
) -> None:
    sha = lib.model(3, content=1)
    await migrate(client, lib.legacy)
    shelf = shelf_of(client)
    with paused_at("hash.reading") as hashing:
        request = asyncio.create_task(client.post(IMPORT, json={"id": 3}))
        await hashing.reached.wait()
        request.cancel()
        with pytest.raises(asyncio.CancelledError):
            await request
    await shelf.drain()
    assert query(data_dir, "SELECT sha256 FROM models") == [(sha,)]
    assert query(data_dir, "SELECT id FROM pending_import") == []
    assert all((data_dir / "images" / f"{sha}_0_{q}.webp").is_file() for q in QUALITIES)
    assert not shelf.pending_locks.is_locked(3)
    assert check_library(data_dir) == []


# --- batch ------------------------------------------------------------------------------------


async def test_batch_reports_a_result_per_id(
    client: Client, conflict: dict[str, Any], lib: Library
) -> None:
    lib.model(20, content=20)
    lib.model(21, content=21)
    await migrate(client, lib.legacy)
    (lib.models_dir / "m21.safetensors").unlink()
    shelf = shelf_of(client)
    lib.model(22, content=22)
    await migrate(client, lib.legacy)
    async with shelf.pending_locks.hold_now(22):
        response = await client.post(
            "/api/migration/import_models", json={"id": [2, 20, 21, 22, 999, 20]}
        )
    assert response.status == 207
    body = await response.json()
    results = {r["id"]: r["result"] for r in body["results"]}
    assert results == {2: "conflict", 20: "success", 21: "failed", 22: "locked", 999: "not_found"}
    assert body["counts"] == {"success": 1, "conflict": 1, "locked": 1, "not_found": 1, "failed": 1}


async def test_batch_with_strategy_resolves_conflicts(
    client: Client, conflict: dict[str, Any]
) -> None:
    response = await client.post(
        "/api/migration/import_models", json={"ids": [2], "conf_strategy": "merge"}
    )
    body = await response.json()
    assert body["results"][0]["action_taken"] == "merged"


@pytest.mark.parametrize(
    "body",
    [
        {"ids": []},
        {"ids": "1"},
        {"ids": [1, "2"]},
        {"ids": [1], "id": [2]},
        {"ids": [-(2**63) - 1]},
        {},
    ],
)
async def test_batch_bad_bodies_are_400(client: Client, body: dict[str, Any]) -> None:
    response = await client.post("/api/migration/import_models", json=body)
    assert response.status == 400
    assert_error_body(await response.json(), 400)
