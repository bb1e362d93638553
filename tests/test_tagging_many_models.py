"""POST /api/models/tags through the real app: tags added to and removed from many models in
one atomic change, each model whose tags change saved in history first (restore undoes it),
the search index, the tag filter and the tag counts following, and edits of the same model
queued in the order they came."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from modelshelf.domain.bulk_tagging import MAX_MODELS
from modelshelf.records import SHA256_ANY_CASE
from modelshelf.web.openapi import build_openapi
from tests.conftest import Client, migrate, shelf_of
from tests.editing import (
    UNKNOWN,
    A,
    B,
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
    tag_names,
)
from tests.factories import LegacyLibrary, fake_sha
from tests.test_edit_races import gated_file_ops, until

TAG_MANY = "/api/models/tags"


@pytest.fixture
async def library(client: Client, legacy: LegacyLibrary) -> Client:
    """A: lora, anime (3 images); B: checkpoint (1 image)."""
    await build(client, legacy)
    return client


async def tag_many(client: Client, body: Any) -> tuple[int, Any]:
    status, answer, _ = await call(client, "POST", TAG_MANY, body)
    return status, answer


async def test_tags_are_added_and_removed_on_every_model_and_each_is_reported(
    library: Client, data_dir: Path
) -> None:
    status, answer = await tag_many(
        library,
        {"hashes": [A, B, UNKNOWN, A], "add": ["  Style ", "Anime"], "remove": ["LORA", "nosuch"]},
    )
    assert status == 200, answer
    assert answer == {"changed": [A, B], "unchanged": [], "not_found": [UNKNOWN]}
    assert tag_names((await get_model(library, A))[0]) == ["anime", "style"]
    assert tag_names((await get_model(library, B))[0]) == ["anime", "checkpoint", "style"]
    # The same tag `anime` (id 2), one new tag `style`; a name to remove that is no tag is not
    # made one.
    assert rows(data_dir, "SELECT id FROM tags WHERE name = 'anime'") == [(2,)]
    assert rows(data_dir, "SELECT count(*) FROM tags WHERE name = 'style'") == [(1,)]
    assert rows(data_dir, "SELECT count(*) FROM tags WHERE name = 'nosuch'") == [(0,)]


async def test_models_that_have_the_tags_already_are_unchanged_and_get_no_history(
    library: Client,
) -> None:
    status, answer = await tag_many(
        library, {"hashes": [B, A], "add": ["Anime", "lora"], "remove": ["checkpoint"]}
    )
    assert (status, answer) == (200, {"changed": [B], "unchanged": [A], "not_found": []})
    assert await history(library, A) == []
    assert [e["action"] for e in await history(library, B)] == ["tags"]
    assert tag_names((await get_model(library, B))[0]) == ["anime", "lora"]


@pytest.mark.parametrize(
    ("body", "answer"),
    [
        ({"hashes": [A, UNKNOWN], "add": ["anime"]}, ([], [A], [UNKNOWN])),
        ({"hashes": [UNKNOWN], "add": ["brand new"]}, ([], [], [UNKNOWN])),
        ({"hashes": [A], "remove": ["nosuch", "checkpoint"]}, ([], [A], [])),
        ({"hashes": [B, A]}, ([], [B, A], [])),
    ],
    ids=["has-it", "unknown-model", "not-carried", "no-names"],
)
async def test_a_request_that_changes_no_model_writes_nothing(
    library: Client, data_dir: Path, body: Any, answer: tuple[list[str], ...]
) -> None:
    before = snapshot(data_dir)
    status, got = await tag_many(library, body)
    assert status == 200, got
    assert got == dict(zip(("changed", "unchanged", "not_found"), answer, strict=True))
    assert snapshot(data_dir) == before


async def test_hashes_in_upper_case_are_read_in_lower_case(library: Client) -> None:
    status, answer = await tag_many(library, {"hashes": [A.upper()], "add": ["x"]})
    assert (status, answer) == (200, {"changed": [A], "unchanged": [], "not_found": []})


async def test_every_changed_model_is_saved_in_history_first_and_restore_undoes_it(
    library: Client,
) -> None:
    before_a, _ = await get_model(library, A)
    before_b, _ = await get_model(library, B)
    status, _ = await tag_many(library, {"hashes": [A, B], "add": ["style"], "remove": ["anime"]})
    assert status == 200

    for sha, before in ((A, before_a), (B, before_b)):
        entries = await history(library, sha)
        assert [(e["action"], e["before"]) for e in entries] == [("tags", before)]
        status, restored, _ = await call(
            library, "POST", f"/api/models/{sha}/history/{entries[0]['id']}/restore"
        )
        assert status == 200, restored
        assert tag_names(restored) == tag_names(before)
    assert tag_names((await get_model(library, A))[0]) == ["anime", "lora"]


async def test_search_the_tag_filter_and_tag_counts_follow(library: Client) -> None:
    assert await listed(library, {"q": "watercolour"}) == []
    status, _ = await tag_many(
        library, {"hashes": [A, B], "add": ["Watercolour"], "remove": ["lora"]}
    )
    assert status == 200
    assert await listed(library, {"q": "watercolour"}) == sorted([A, B])
    assert await listed(library, {"tag": "watercolour"}) == sorted([A, B])
    assert await listed(library, {"tag": "lora"}) == []
    counts = await tag_counts(library)
    assert (counts["watercolour"], counts["lora"], counts["anime"]) == (2, 0, 1)


async def test_the_most_models_a_request_may_name_are_tagged_in_one_change(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    # In debug mode (make test) this also proves that saving a thousand records in history,
    # each with some metadata, does not hold up the event loop (conftest).
    legacy.add_tag(1, "old")
    hashes = [fake_sha(5000 + i) for i in range(MAX_MODELS)]
    meta = {"description": "words " * 200, "civitai": {f"k{i}": "v" * 40 for i in range(50)}}
    for i, sha in enumerate(hashes):
        legacy.add_model(i + 1, hash_hex=sha, tags=[1], extra=meta)
    await migrate(client, legacy)

    status, answer = await tag_many(client, {"hashes": hashes, "add": ["new"], "remove": ["old"]})

    assert status == 200, answer
    assert answer == {"changed": hashes, "unchanged": [], "not_found": []}
    assert rows(data_dir, "SELECT strategy, count(*) FROM model_history GROUP BY 1") == [
        ("tags", MAX_MODELS)
    ]
    assert (await tag_counts(client))["new"] == MAX_MODELS
    assert (await tag_counts(client))["old"] == 0


async def test_unknown_hashes_up_to_the_most_a_request_may_name_are_reported(
    library: Client,
) -> None:
    unknown = [fake_sha(5000 + i) for i in range(MAX_MODELS - 1)]
    status, answer = await tag_many(library, {"hashes": [*unknown, A], "add": ["many"]})
    assert status == 200, answer
    assert answer == {"changed": [A], "unchanged": [], "not_found": unknown}


def test_the_published_schema_says_how_many_models_and_what_a_hash_is() -> None:
    schema = build_openapi()["components"]["schemas"]["ModelsTagsRequest"]["properties"]
    assert schema["hashes"]["maxItems"] == MAX_MODELS
    assert schema["hashes"]["minItems"] == 1
    assert schema["hashes"]["items"]["pattern"] == SHA256_ANY_CASE


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"add": ["x"]},
        {"hashes": [], "add": ["x"]},
        {"hashes": A, "add": ["x"]},
        {"hashes": [5], "add": ["x"]},
        {"hashes": ["xyz"], "add": ["x"]},
        {"hashes": [A[:-1]], "add": ["x"]},
        {"hashes": [A + "0"], "add": ["x"]},
        {"hashes": [fake_sha(7000 + i) for i in range(MAX_MODELS + 1)], "add": ["x"]},
        {"hashes": [A], "add": "x"},
        {"hashes": [A], "add": [""]},
        {"hashes": [A], "add": ["   "]},
        {"hashes": [A], "add": ["a\nb"]},
        {"hashes": [A], "add": ["x" * 101]},
        {"hashes": [A], "add": ["t"] * 501},
        {"hashes": [A], "remove": [None]},
        {"hashes": [A], "add": ["Anime"], "remove": [" anime"]},
        {"hashes": [A], "add": ["x"], "tags": ["y"]},
        [A],
        "x",
        None,
    ],
    ids=[
        "empty",
        "no-hashes",
        "no-hash",
        "hashes-text",
        "hash-number",
        "hash-not-hex",
        "hash-short",
        "hash-long",
        "too-many",
        "add-text",
        "name-empty",
        "name-space",
        "name-control",
        "name-long",
        "too-many-names",
        "name-null",
        "added-and-removed",
        "unknown-field",
        "list",
        "text",
        "null",
    ],
)
async def test_a_bad_body_is_400_and_changes_nothing(
    library: Client, data_dir: Path, body: Any
) -> None:
    await assert_refused_unchanged(library, data_dir, TAG_MANY, body)


async def test_a_change_that_fails_before_its_commit_changes_no_model(
    library: Client, data_dir: Path
) -> None:
    before = snapshot(data_dir)
    with disk_full_before_commit():
        status, answer = await tag_many(
            library, {"hashes": [A, B], "add": ["style"], "remove": ["lora"]}
        )
    assert status == 507, answer
    assert snapshot(data_dir) == before


async def test_edits_of_the_same_model_queued_behind_a_change_run_in_the_order_they_came(
    library: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A reorder of A commits and holds A's lock until its files move (held at the gate); the
    # bulk request, then a PUT of A's tags, queue for that lock in this order.
    shelf = shelf_of(library)
    order = [f"{A}_2.webp", f"{A}_1.webp", f"{A}_0.webp"]
    with gated_file_ops(shelf, monkeypatch) as gate:
        reorder = asyncio.create_task(
            call(library, "POST", "/api/images/reorder", {"hash": A, "order": order})
        )
        await gate.wait_reached()
        bulk = asyncio.create_task(
            tag_many(library, {"hashes": [B, A], "add": ["bulk"], "remove": ["anime"]})
        )
        await until(lambda: shelf.model_locks.waiting(A) == 1, "the bulk request queued")
        put = asyncio.create_task(call(library, "PUT", f"/api/models/{A}/tags", {"tags": ["put"]}))
        await until(lambda: shelf.model_locks.waiting(A) == 2, "the PUT queued")
        gate.open()
        assert (await reorder)[0] == 200
        assert await bulk == (200, {"changed": [B, A], "unchanged": [], "not_found": []})
        assert (await put)[0] == 200

    entries = await history(library, A)
    assert [e["action"] for e in entries] == ["tags", "tags", "reorder"]
    assert tag_names(entries[1]["before"]) == ["anime", "lora"]
    assert tag_names(entries[0]["before"]) == ["bulk", "lora"]  # the PUT came after the bulk
    assert tag_names((await get_model(library, A))[0]) == ["put"]
