"""POST /api/tags/{id}/merge through the real app: every model and pending model carrying a
tag carries the surviving tag instead (once), the merged tag is gone, each model is saved in
history first (restore undoes it model by model), the search index, the tag filter and the
tag counts follow, and an edit of the same model keeps its place in the order of changes."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Client, migrate, shelf_of
from tests.editing import (
    A,
    B,
    assert_error,
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
from tests.factories import LegacyLibrary
from tests.test_edit_races import gated_file_ops, until

LORA, ANIME, CHECKPOINT = 1, 2, 3


@pytest.fixture
async def library(client: Client, legacy: LegacyLibrary) -> Client:
    """A: lora, anime; B: anime, checkpoint."""
    await build(client, legacy)
    status, _, _ = await call(
        client, "PUT", f"/api/models/{B}/tags", {"tags": ["checkpoint", "anime"]}
    )
    assert status == 200
    return client


async def merge(client: Client, tag_id: Any, body: Any) -> tuple[int, Any]:
    status, answer, _ = await call(client, "POST", f"/api/tags/{tag_id}/merge", body)
    return status, answer


async def test_merge_moves_every_model_to_the_surviving_tag(
    library: Client, data_dir: Path
) -> None:
    status, answer = await merge(library, ANIME, {"into": LORA})

    assert (status, answer) == (200, {"tag": {"id": LORA, "name": "lora"}, "models": 2})
    assert tag_names((await get_model(library, A))[0]) == ["lora"]
    assert tag_names((await get_model(library, B))[0]) == ["checkpoint", "lora"]
    assert rows(data_dir, "SELECT count(*) FROM tags WHERE id = ?", ANIME) == [(0,)]
    # A carried both: one link to the surviving tag, never two.
    assert rows(data_dir, "SELECT model_hash, tag_id FROM model_tags ORDER BY 1, 2") == sorted(
        [(A, LORA), (B, LORA), (B, CHECKPOINT)]
    )


async def test_pending_models_carry_the_surviving_tag_too(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    legacy.add_tag(7, "queued")
    legacy.add_tag(8, "waiting")
    legacy.add_model(5, tags=[7])
    legacy.add_model(6, tags=[7, 8])
    await migrate(client, legacy)

    status, answer = await merge(client, 7, {"into": 8})

    assert (status, answer) == (200, {"tag": {"id": 8, "name": "waiting"}, "models": 0})
    assert rows(data_dir, "SELECT model_id, tag_id FROM pending_model_tags ORDER BY 1") == [
        (5, 8),
        (6, 8),
    ]
    assert rows(data_dir, "SELECT count(*) FROM tags WHERE id = 7") == [(0,)]


async def test_every_model_is_saved_in_history_first_and_restore_undoes_the_merge(
    library: Client,
) -> None:
    before = {sha: (await get_model(library, sha))[0] for sha in (A, B)}
    assert (await merge(library, ANIME, {"into": LORA}))[0] == 200

    for sha in (A, B):
        entries = await history(library, sha)
        assert (entries[0]["action"], entries[0]["before"]) == ("tag_merged", before[sha])
        status, restored, _ = await call(
            library, "POST", f"/api/models/{sha}/history/{entries[0]['id']}/restore"
        )
        assert status == 200, restored
        assert tag_names(restored) == tag_names(before[sha])
    # The merged tag's name is a tag again (a new one), carried by both models as before.
    assert (await tag_counts(library))["anime"] == 2
    assert tag_names((await get_model(library, A))[0]) == ["anime", "lora"]


async def test_search_the_tag_filter_and_tag_counts_follow(library: Client) -> None:
    status, created, _ = await call(library, "POST", "/api/tags", {"name": "Watercolour"})
    assert status == 201
    assert await listed(library, {"q": "watercolour"}) == []

    assert (await merge(library, CHECKPOINT, {"into": created["id"]}))[0] == 200

    assert await listed(library, {"q": "watercolour"}) == [B]
    assert await listed(library, {"tag": "watercolour"}) == [B]
    assert await listed(library, {"tag": "checkpoint"}) == []
    assert await tag_counts(library) == {"anime": 2, "lora": 1, "watercolour": 1}


@pytest.mark.parametrize(
    ("tag_id", "body", "expected"),
    [
        (999, {"into": LORA}, 404),
        (ANIME, {"into": 999}, 404),
        (ANIME, {"into": ANIME}, 400),
        (999, {"into": 999}, 400),
        ("abc", {"into": LORA}, 400),
        ("99999999999999999999", {"into": LORA}, 400),
        (ANIME, {"into": "1"}, 400),
        (ANIME, {"into": 1.5}, 400),
        (ANIME, {"into": True}, 400),
        (ANIME, {"into": None}, 400),
        (ANIME, {"into": 2**63}, 400),
        (ANIME, {}, 400),
        (ANIME, {"into": LORA, "name": "x"}, 400),
        (ANIME, [LORA], 400),
        (ANIME, None, 400),
    ],
    ids=[
        "unknown-tag",
        "unknown-into",
        "into-itself",
        "unknown-into-itself",
        "id-not-a-number",
        "id-past-64-bits",
        "into-text",
        "into-fraction",
        "into-boolean",
        "into-null",
        "into-past-64-bits",
        "no-into",
        "unknown-field",
        "list",
        "no-body",
    ],
)
async def test_a_bad_merge_is_answered_and_changes_nothing(
    library: Client, data_dir: Path, tag_id: Any, body: Any, expected: int
) -> None:
    before = snapshot(data_dir)
    status, answer = await merge(library, tag_id, body)
    assert status == expected, answer
    assert_error(answer, {400: "Bad Request", 404: "Not Found"}[expected])
    if expected == 404:
        assert answer["detail"] == "no tag with id 999"
    assert snapshot(data_dir) == before


async def test_a_merge_that_fails_before_its_commit_changes_nothing(
    library: Client, data_dir: Path
) -> None:
    before = snapshot(data_dir)
    with disk_full_before_commit():
        status, answer = await merge(library, ANIME, {"into": LORA})
    assert status == 507, answer
    assert snapshot(data_dir) == before


async def test_an_edit_of_a_model_and_a_merge_of_its_tag_apply_in_the_order_they_ran(
    library: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A reorder of A commits and holds A's lock until its files move (held at the gate); a
    # PUT of A's tags queues for the lock. The merge, which edits no model's files and takes
    # no model's lock (as renaming and deleting a tag do not), runs meanwhile: it comes after
    # the reorder and before the PUT, and neither undoes the other.
    shelf = shelf_of(library)
    order = [f"{A}_2.webp", f"{A}_1.webp", f"{A}_0.webp"]
    with gated_file_ops(shelf, monkeypatch) as gate:
        reorder = asyncio.create_task(
            call(library, "POST", "/api/images/reorder", {"hash": A, "order": order})
        )
        await gate.wait_reached()
        body = {"tags": ["anime", "lora", "put"]}
        put = asyncio.create_task(call(library, "PUT", f"/api/models/{A}/tags", body))
        await until(lambda: shelf.model_locks.waiting(A) == 1, "the PUT queued")
        assert await merge(library, ANIME, {"into": LORA}) == (
            200,
            {"tag": {"id": LORA, "name": "lora"}, "models": 2},
        )
        gate.open()
        assert (await reorder)[0] == 200
        assert (await put)[0] == 200

    entries = await history(library, A)
    assert [e["action"] for e in entries] == ["tags", "tag_merged", "reorder"]
    assert tag_names(entries[0]["before"]) == ["lora"]  # the PUT came after the merge
    # The PUT named `anime` after the merge: a new tag of that name.
    assert tag_names((await get_model(library, A))[0]) == ["anime", "lora", "put"]
    assert (await tag_counts(library))["anime"] == 1
