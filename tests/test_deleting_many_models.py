"""POST /api/models/delete through the real app: many models deleted in one atomic change, each
as DELETE /api/models/{sha256} deletes one (record, tag links, renditions; never the model
files), each saved in history first so that a restore brings it back without its images;
unknown hashes reported, not refused; a bad body or a failed change leaving everything as
it was."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelshelf.domain.bulk_tagging import MAX_MODELS
from modelshelf.renditions import qualities
from tests.conftest import Client, MakeClient, migrate
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
from tests.factories import LegacyLibrary, fake_sha, make_model_file
from tests.model_folders import kohya_lora_metadata, write_safetensors
from tests.scanning import model, scan, sha256_of, start

DELETE_MANY = "/api/models/delete"
C = fake_sha(103)


@pytest.fixture
async def library(client: Client, legacy: LegacyLibrary) -> Client:
    """A (lora, three images, tags lora + anime), B (checkpoint, one image, tag checkpoint)
    and C (no image, tag anime)."""
    legacy.add_model(3, hash_hex=C, type="lora", name="Gamma", tags=[2])
    await build(client, legacy)
    return client


async def delete_many(client: Client, body: Any) -> tuple[int, Any]:
    status, answer, _ = await call(client, "POST", DELETE_MANY, body)
    return status, answer


def rendition_files(data_dir: Path, sha: str) -> list[str]:
    return sorted(p.name for p in (data_dir / "images").glob(f"{sha}_*"))


async def test_every_model_named_is_deleted_and_each_is_reported_once_in_order(
    library: Client, data_dir: Path
) -> None:
    assert len(rendition_files(data_dir, A)) == 3 * len(qualities())

    status, answer = await delete_many(library, {"hashes": [C, A, UNKNOWN, A.upper()]})

    assert status == 200, answer
    assert answer == {"changed": [C, A], "unchanged": [], "not_found": [UNKNOWN]}
    for sha in (A, C):
        assert (await library.get(f"/api/models/{sha}")).status == 404
        assert rendition_files(data_dir, sha) == []
    assert rows(data_dir, "SELECT count(*) FROM images WHERE model_hash != ?", B) == [(0,)]
    assert rows(data_dir, "SELECT DISTINCT model_hash FROM model_tags") == [(B,)]
    assert len(rendition_files(data_dir, B)) == len(qualities())
    assert await listed(library, {}) == [B]
    assert await tag_counts(library) == {"lora": 0, "anime": 0, "checkpoint": 1}
    assert await listed(library, {"q": "gamma"}) == []


async def test_each_deleted_model_is_in_history_and_a_restore_brings_one_back_without_images(
    library: Client,
) -> None:
    before = {sha: (await get_model(library, sha))[0] for sha in (A, C)}
    assert (await delete_many(library, {"hashes": [A, C]}))[0] == 200

    for sha in (A, C):
        entries = await history(library, sha)
        assert [(e["action"], e["before"]) for e in entries] == [("delete", before[sha])]
    entry = (await history(library, A))[0]["id"]
    status, restored, _ = await call(library, "POST", f"/api/models/{A}/history/{entry}/restore")

    assert status == 200, restored
    assert restored["images"] == [] and "image" in restored["note"]
    assert {k: restored[k] for k in ("name", "type", "meta_json")} == {
        k: before[A][k] for k in ("name", "type", "meta_json")
    }
    assert restored["tags"] == before[A]["tags"]
    assert (await library.get(f"/api/models/{C}")).status == 404


async def test_the_model_files_on_disk_are_never_touched(
    client: Client, legacy: LegacyLibrary, models_dir: Path
) -> None:
    paths = [models_dir / f"m{i}.safetensors" for i in range(2)]
    hashes = [make_model_file(path, seed=10 + i) for i, path in enumerate(paths)]
    for i, (path, sha) in enumerate(zip(paths, hashes, strict=True)):
        legacy.add_model(i + 1, hash_hex=sha, path=str(path))
    await migrate(client, legacy)
    contents = [path.read_bytes() for path in paths]

    assert (await delete_many(client, {"hashes": hashes}))[0] == 200
    assert [path.read_bytes() for path in paths] == contents


async def test_a_request_naming_no_model_of_the_library_writes_nothing(
    library: Client, data_dir: Path
) -> None:
    before = snapshot(data_dir)
    status, answer = await delete_many(library, {"hashes": [UNKNOWN, fake_sha(998)]})
    assert (status, answer) == (
        200,
        {"changed": [], "unchanged": [], "not_found": [UNKNOWN, fake_sha(998)]},
    )
    assert snapshot(data_dir) == before


async def test_a_change_that_fails_before_its_commit_deletes_nothing(
    library: Client, data_dir: Path
) -> None:
    before = snapshot(data_dir)
    with disk_full_before_commit():
        status, answer = await delete_many(library, {"hashes": [A, B, C]})
    assert status == 507, answer
    assert_error(answer, "Insufficient Storage")
    assert snapshot(data_dir) == before


async def test_the_most_models_a_request_may_name_are_deleted_in_one_change(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    hashes = [fake_sha(5000 + i) for i in range(MAX_MODELS)]
    for i, sha in enumerate(hashes):
        legacy.add_model(i + 1, hash_hex=sha, type="lora", extra={"description": "words " * 50})
    await migrate(client, legacy)

    status, answer = await delete_many(client, {"hashes": hashes})

    assert status == 200, answer
    assert answer == {"changed": hashes, "unchanged": [], "not_found": []}
    assert rows(data_dir, "SELECT count(*) FROM models") == [(0,)]
    assert rows(data_dir, "SELECT strategy, count(*) FROM model_history GROUP BY 1") == [
        ("delete", MAX_MODELS)
    ]


def test_the_published_schema_says_how_many_models_and_what_a_hash_is() -> None:
    assert_hash_list_schema("ModelsDeleteRequest")


@pytest.mark.parametrize("body", BAD_HASH_LISTS)
async def test_a_bad_body_is_400_and_deletes_nothing(
    library: Client, data_dir: Path, body: Any
) -> None:
    await assert_refused_unchanged(library, data_dir, DELETE_MANY, body)


async def test_a_model_whose_file_is_still_in_a_scanned_folder_comes_back_at_the_next_scan(
    make_client: MakeClient, tmp_path: Path
) -> None:
    lora = write_safetensors(tmp_path / "loras" / "cat.safetensors", kohya_lora_metadata())
    client = await start(make_client, loras=tmp_path / "loras")
    await scan(client)
    sha = sha256_of(lora)
    assert (await delete_many(client, {"hashes": [sha]}))[1]["changed"] == [sha]

    result = await scan(client)

    assert result["counts"]["models_created"] == 1, result["counts"]
    assert (await model(client, sha))["sha256"] == sha
