"""POST /api/models/restore through the real app: the delete of many models undone in one
atomic change, each model restored from its newest delete history entry as POST
.../history/{id}/restore restores one (fields, meta_json and tags back, not its images; the
restore saved in history); models in the library left as they are, hashes never deleted
reported; a bad body or a failed change leaving everything as it was."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelshelf.domain.bulk_tagging import MAX_MODELS
from tests.conftest import Client, migrate
from tests.editing import (
    BAD_HASH_LISTS,
    UNKNOWN,
    A,
    B,
    assert_error,
    assert_hash_list_schema,
    assert_refused_unchanged,
    build,
    call,
    disk_full_before_commit,
    get_model,
    history,
    listed,
    rows,
    snapshot,
    tag_counts,
)
from tests.factories import LegacyLibrary, fake_sha

RESTORE_MANY = "/api/models/restore"
C = fake_sha(103)
FIELDS = ("name", "type", "path", "size_bytes", "created_at", "meta_json", "tags")


@pytest.fixture
async def library(client: Client, legacy: LegacyLibrary) -> Client:
    """A (lora, three images, tags lora + anime), B (checkpoint, one image, tag checkpoint)
    and C (no image, tag anime)."""
    legacy.add_model(3, hash_hex=C, type="lora", name="Gamma", tags=[2])
    await build(client, legacy)
    return client


async def post(client: Client, path: str, body: Any) -> tuple[int, Any]:
    status, answer, _ = await call(client, "POST", path, body)
    return status, answer


async def records(client: Client, hashes: list[str]) -> dict[str, dict[str, Any]]:
    return {sha: (await get_model(client, sha))[0] for sha in hashes}


async def test_deleted_models_come_back_with_their_fields_meta_and_tags_but_no_images(
    library: Client,
) -> None:
    before = await records(library, [A, C])
    assert (await post(library, "/api/models/delete", {"hashes": [A, C]}))[0] == 200

    status, answer = await post(library, RESTORE_MANY, {"hashes": [C, A, A.upper()]})

    assert status == 200, answer
    assert answer == {"changed": [C, A], "unchanged": [], "not_found": []}
    after = await records(library, [A, C])
    for sha in (A, C):
        assert {k: after[sha][k] for k in FIELDS} == {k: before[sha][k] for k in FIELDS}
        assert after[sha]["images"] == []
    assert await listed(library, {"q": "gamma"}) == [C]
    assert await tag_counts(library) == {"lora": 1, "anime": 2, "checkpoint": 1}


async def test_each_restore_is_saved_in_history_and_can_itself_be_undone(
    library: Client,
) -> None:
    assert (await post(library, "/api/models/delete", {"hashes": [A]}))[0] == 200
    deleted = (await history(library, A))[0]

    assert (await post(library, RESTORE_MANY, {"hashes": [A]}))[0] == 200

    entries = await history(library, A)
    assert [e["action"] for e in entries] == ["restore", "delete"]
    assert entries[0]["before"] == deleted["before"]


async def test_the_newest_delete_is_the_one_undone(library: Client) -> None:
    assert (await post(library, "/api/models/delete", {"hashes": [C]}))[0] == 200
    assert (await post(library, RESTORE_MANY, {"hashes": [C]}))[0] == 200
    status, _, _ = await call(library, "PATCH", f"/api/models/{C}", {"name": "Gamma Two"})
    assert status == 200
    assert (await post(library, "/api/models/delete", {"hashes": [C]}))[0] == 200

    assert (await post(library, RESTORE_MANY, {"hashes": [C]}))[0] == 200

    assert (await get_model(library, C))[0]["name"] == "Gamma Two"


async def test_a_model_in_the_library_is_unchanged_and_one_never_deleted_is_not_found(
    library: Client, data_dir: Path
) -> None:
    assert (await post(library, "/api/models/delete", {"hashes": [C]}))[0] == 200
    before_b = (await get_model(library, B))[0]

    status, answer = await post(library, RESTORE_MANY, {"hashes": [B, C, UNKNOWN]})

    assert status == 200, answer
    assert answer == {"changed": [C], "unchanged": [B], "not_found": [UNKNOWN]}
    assert (await get_model(library, B))[0] == before_b
    assert rows(data_dir, "SELECT strategy FROM model_history WHERE model_hash = ?", B) == []


async def test_a_model_brought_back_meanwhile_is_not_overwritten(library: Client) -> None:
    assert (await post(library, "/api/models/delete", {"hashes": [C]}))[0] == 200
    entry = (await history(library, C))[0]["id"]
    status, _, _ = await call(library, "POST", f"/api/models/{C}/history/{entry}/restore")
    assert status == 200
    status, _, _ = await call(library, "PATCH", f"/api/models/{C}", {"name": "Kept"})
    assert status == 200

    status, answer = await post(library, RESTORE_MANY, {"hashes": [C]})

    assert (status, answer) == (200, {"changed": [], "unchanged": [C], "not_found": []})
    assert (await get_model(library, C))[0]["name"] == "Kept"


async def test_a_tag_deleted_since_is_made_again(library: Client) -> None:
    assert (await post(library, "/api/models/delete", {"hashes": [C]}))[0] == 200
    tags = (await (await library.get("/api/tags")).json())["tags"]
    anime = next(t["id"] for t in tags if t["name"] == "anime")
    assert (await library.delete(f"/api/tags/{anime}")).status == 200

    assert (await post(library, RESTORE_MANY, {"hashes": [C]}))[0] == 200

    assert [t["name"] for t in (await get_model(library, C))[0]["tags"]] == ["anime"]


async def test_a_change_that_fails_before_its_commit_restores_nothing(
    library: Client, data_dir: Path
) -> None:
    assert (await post(library, "/api/models/delete", {"hashes": [A, C]}))[0] == 200
    before = snapshot(data_dir)
    with disk_full_before_commit():
        status, answer = await post(library, RESTORE_MANY, {"hashes": [A, C]})
    assert status == 507, answer
    assert_error(answer, "Insufficient Storage")
    assert snapshot(data_dir) == before


async def test_the_most_models_a_request_may_name_are_restored_in_one_change(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    hashes = [fake_sha(5000 + i) for i in range(MAX_MODELS)]
    meta = {"description": "words " * 50, "civitai": {f"k{i}": "v" * 40 for i in range(50)}}
    for i, sha in enumerate(hashes):
        legacy.add_model(i + 1, hash_hex=sha, type="lora", extra=meta)
    await migrate(client, legacy)
    assert (await post(client, "/api/models/delete", {"hashes": hashes}))[0] == 200

    status, answer = await post(client, RESTORE_MANY, {"hashes": hashes})

    assert status == 200, answer
    assert answer == {"changed": hashes, "unchanged": [], "not_found": []}
    assert rows(data_dir, "SELECT count(*) FROM models") == [(MAX_MODELS,)]
    assert rows(data_dir, "SELECT strategy, count(*) FROM model_history GROUP BY 1") == [
        ("delete", MAX_MODELS),
        ("restore", MAX_MODELS),
    ]
    found = await (await client.get("/api/models", params={"q": "words", "limit": "1"})).json()
    assert found["total"] == MAX_MODELS


def test_the_published_schema_says_how_many_models_and_what_a_hash_is() -> None:
    assert_hash_list_schema("ModelsRestoreRequest")


@pytest.mark.parametrize("body", BAD_HASH_LISTS)
async def test_a_bad_body_is_400_and_restores_nothing(
    library: Client, data_dir: Path, body: Any
) -> None:
    assert (await post(library, "/api/models/delete", {"hashes": [A]}))[0] == 200
    await assert_refused_unchanged(library, data_dir, RESTORE_MANY, body)
