"""A model's history and restore through the real app: entries newest first, rows written by a
promotion read like the others, restore puts back fields, meta_json and tags as a change that
can itself be undone, and a deleted model comes back without its images."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from modelshelf.integrity import check_library
from tests.conftest import Client, migrate
from tests.editing import (
    UNKNOWN,
    A,
    B,
    assert_error,
    build,
    call,
    get_model,
    rows,
    snapshot,
    tag_names,
)
from tests.factories import LegacyLibrary, make_model_file

HISTORY = f"/api/models/{A}/history"


@pytest.fixture
async def library(client: Client, legacy: LegacyLibrary) -> Client:
    await build(client, legacy)
    return client


async def entries(client: Client, sha: str = A) -> list[dict[str, Any]]:
    status, body, _ = await call(client, "GET", f"/api/models/{sha}/history")
    assert status == 200, body
    result: list[dict[str, Any]] = body["entries"]
    return result


async def restore(client: Client, entry_id: int, sha: str = A) -> tuple[int, Any]:
    status, body, _ = await call(client, "POST", f"/api/models/{sha}/history/{entry_id}/restore")
    return status, body


async def test_history_lists_entries_newest_first_with_what_the_model_was(
    library: Client,
) -> None:
    first, _ = await get_model(library, A)
    await call(library, "PATCH", f"/api/models/{A}", {"name": "Second"})
    second, _ = await get_model(library, A)
    await call(library, "PUT", f"/api/models/{A}/tags", {"tags": ["x"]})

    found = await entries(library)

    assert [e["action"] for e in found] == ["tags", "edit"]
    assert [e["before"] for e in found] == [second, first]
    assert found[0]["id"] > found[1]["id"]
    assert found[0]["at"] >= found[1]["at"] > 1_700_000_000_000
    assert set(found[0]) == {"id", "at", "action", "before"}


async def test_a_model_without_changes_has_an_empty_history(library: Client) -> None:
    assert await entries(library) == []


@pytest.mark.parametrize(("sha", "expected"), [(UNKNOWN, 404), ("nothex", 400)])
async def test_history_of_an_unknown_or_malformed_hash(
    library: Client, sha: str, expected: int
) -> None:
    status, body, _ = await call(library, "GET", f"/api/models/{sha}/history")
    assert status == expected
    assert_error(body, {404: "Not Found", 400: "Bad Request"}[expected])


@pytest.mark.parametrize("strategy", ["override", "merge"])
async def test_entries_written_by_a_promotion_read_like_the_others(
    client: Client, legacy: LegacyLibrary, models_dir: Path, strategy: str
) -> None:
    legacy.add_tag(1, "old")
    legacy.add_tag(2, "new")
    sha = make_model_file(models_dir / "a.safetensors", seed=8)
    make_model_file(models_dir / "b.safetensors", seed=8)
    legacy.add_model(1, hash_hex=sha, name="Before", tags=[1], extra={"description": "d"})
    legacy.add_model(2, path=str(models_dir / "b.safetensors"), name="After", tags=[2])
    await migrate(client, legacy)
    before, _ = await get_model(client, sha)
    status, _, _ = await call(
        client, "POST", "/api/migration/import_a_model", {"id": 2, "conf_strategy": strategy}
    )
    assert status == 200

    found = await entries(client, sha)

    assert [(e["action"], e["before"]) for e in found] == [(strategy, before)]
    status, restored = await restore(client, found[0]["id"], sha)
    assert status == 200
    assert restored["name"] == "Before" and tag_names(restored) == ["old"]


async def test_a_malformed_history_row_is_read_as_far_as_it_goes(
    library: Client, data_dir: Path
) -> None:
    with sqlite3.connect(data_dir / "modelshelf.db") as conn:
        conn.execute(
            "INSERT INTO model_history(model_hash, pending_id, strategy, changed_at, previous,"
            " pending) VALUES (?, NULL, 'override', 5, ?, '{}')",
            (A, json.dumps({"name": "Old", "size_bytes": "big", "tags": [{"id": "x"}, 3]})),
        )
        conn.execute(
            "INSERT INTO model_history(model_hash, pending_id, strategy, changed_at, previous,"
            " pending) VALUES (?, NULL, 'merge', 6, 'not json', '{}')",
            (A,),
        )
    found = await entries(library)
    assert [e["action"] for e in found] == ["merge", "override"]
    assert found[0]["before"]["name"] is None
    assert found[1]["before"]["name"] == "Old"
    assert found[1]["before"]["size_bytes"] is None
    assert found[1]["before"]["tags"] == []


# --- restore ------------------------------------------------------------------------------------


async def test_restore_puts_back_fields_meta_and_tags_and_is_itself_recorded(
    library: Client, data_dir: Path
) -> None:
    original, _ = await get_model(library, A)
    await call(
        library,
        "PATCH",
        f"/api/models/{A}",
        {"name": "Changed", "type": "vae", "meta_json": {"description": None, "x": 1}},
    )
    await call(library, "PUT", f"/api/models/{A}/tags", {"tags": ["other"]})
    changed, _ = await get_model(library, A)
    oldest = (await entries(library))[-1]

    status, restored = await restore(library, oldest["id"])

    assert status == 200, restored
    assert restored["note"] is None
    del restored["note"]
    assert restored == original == (await get_model(library, A))[0]
    latest = (await entries(library))[0]
    assert (latest["action"], latest["before"]) == ("restore", changed)
    # ...so the restore can be undone.
    status, undone = await restore(library, latest["id"])
    assert status == 200
    assert {k: v for k, v in undone.items() if k != "note"} == changed
    assert check_library(data_dir) == []


async def test_restore_puts_back_a_number_the_model_now_holds_as_the_boolean_it_equals(
    library: Client,
) -> None:
    # A's nested.k is 1; Python holds 1 == True, JSON does not: the entry's 1 comes back.
    await call(library, "PATCH", f"/api/models/{A}", {"meta_json": {"nested": {"k": 2}}})
    await call(library, "PATCH", f"/api/models/{A}", {"meta_json": {"nested": {"k": True}}})
    oldest = (await entries(library))[-1]
    assert json.dumps(oldest["before"]["meta_json"]["nested"]) == '{"k": 1}'

    status, restored = await restore(library, oldest["id"])

    assert status == 200, restored
    record, _ = await get_model(library, A)
    for meta in (restored["meta_json"], record["meta_json"]):
        assert json.dumps(meta["nested"]) == '{"k": 1}'
    assert (await entries(library))[0]["action"] == "restore"


async def test_restore_leaves_the_images_as_they_are(library: Client, data_dir: Path) -> None:
    await call(library, "PATCH", f"/api/models/{A}", {"name": "x"})
    order = [f"{A}_2.webp", f"{A}_0.webp", f"{A}_1.webp"]
    await call(library, "POST", "/api/images/reorder", {"hash": A, "order": order})
    files = {p.name: p.read_bytes() for p in (data_dir / "images").glob(f"{A}_*")}
    entry = (await entries(library))[-1]
    status, _ = await restore(library, entry["id"])
    assert status == 200
    assert {p.name: p.read_bytes() for p in (data_dir / "images").glob(f"{A}_*")} == files


async def test_restoring_the_current_state_changes_nothing(library: Client, data_dir: Path) -> None:
    await call(library, "PATCH", f"/api/models/{A}", {"name": "x"})
    await call(library, "PATCH", f"/api/models/{A}", {"name": "Alpha Anime"})
    before = snapshot(data_dir)
    entry = (await entries(library))[-1]  # the state before "x": the current one
    status, body = await restore(library, entry["id"])
    assert status == 200
    assert body["name"] == "Alpha Anime"
    assert snapshot(data_dir) == before


async def test_a_deleted_model_comes_back_without_images_and_says_so(
    library: Client, data_dir: Path
) -> None:
    original, _ = await get_model(library, A)
    await call(library, "DELETE", "/api/tags/2")  # one of its tags is gone meanwhile
    await call(library, "DELETE", f"/api/models/{A}")
    deleted = (await entries(library))[0]
    assert deleted["action"] == "delete"

    status, restored = await restore(library, deleted["id"])

    assert status == 200, restored
    assert "images" in restored["note"] and "deleted" in restored["note"]
    assert restored["images"] == []
    record, _ = await get_model(library, A)
    assert record["images"] == []
    assert tag_names(record) == ["lora"]
    assert {k: record[k] for k in ("name", "type", "path", "meta_json", "created_at")} == {
        k: original[k] for k in ("name", "type", "path", "meta_json", "created_at")
    }
    # The entry from before the tag was deleted brings the tag back, by name.
    tag_entry = next(e for e in await entries(library) if e["action"] == "tag_deleted")
    status, again = await restore(library, tag_entry["id"])
    assert status == 200
    assert tag_names(again) == ["anime", "lora"]
    assert rows(data_dir, "SELECT count(*) FROM tags WHERE name = 'anime'") == [(1,)]
    assert check_library(data_dir) == []


async def test_bringing_a_deleted_model_back_is_recorded_and_can_be_undone(
    library: Client, data_dir: Path
) -> None:
    await call(library, "PATCH", f"/api/models/{A}", {"name": "First"})
    await call(library, "PATCH", f"/api/models/{A}", {"name": "Second"})
    await call(library, "DELETE", f"/api/models/{A}")
    older = next(e for e in await entries(library) if e["before"]["name"] == "First")

    status, restored = await restore(library, older["id"])  # an older version than the delete's

    assert (status, restored["name"]) == (200, "First")
    listed = re.search(r"\((\d+) (was|were) listed", restored["note"])
    assert listed and (listed[1] == "1") == (listed[2] == "was"), restored["note"]
    newest = (await entries(library))[0]
    assert (newest["action"], newest["before"]["name"]) == ("restore", "Second")
    status, undone = await restore(library, newest["id"])  # back to the model as deleted
    assert (status, undone["name"]) == (200, "Second")
    assert check_library(data_dir) == []


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (f"/api/models/{A}/history/999/restore", 404),
        (f"/api/models/{UNKNOWN}/history/1/restore", 404),
        (f"/api/models/{A}/history/abc/restore", 400),
        (f"/api/models/{A}/history/-1/restore", 404),  # any 64-bit integer is an id
        ("/api/models/nothex/history/1/restore", 400),
    ],
)
async def test_restore_of_an_unknown_entry_is_answered_and_changes_nothing(
    library: Client, data_dir: Path, path: str, expected: int
) -> None:
    before = snapshot(data_dir)
    status, body, _ = await call(library, "POST", path)
    assert status == expected, body
    assert snapshot(data_dir) == before


async def test_an_entry_of_another_model_cannot_be_restored_onto_this_one(
    library: Client, data_dir: Path
) -> None:
    await call(library, "PATCH", f"/api/models/{B}", {"name": "b2"})
    entry = (await entries(library, B))[0]
    before = snapshot(data_dir)
    status, body = await restore(library, entry["id"], A)
    assert status == 404
    assert_error(body, "Not Found")
    assert snapshot(data_dir) == before
