"""POST /api/models/edit through the real app: a type and a meta_json merge patch applied to
many models in one atomic change, each as PATCH applies them; each model that changes saved
in history first as PATCH saves it (restore undoes it), the others not written; the search
index and the base-model filter following; a base model set so staying the person's when a
later scan reads the files; edits of the same model queued in the order they came."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from modelshelf.domain.bulk_tagging import MAX_MODELS
from modelshelf.records import SHA256_ANY_CASE
from modelshelf.web.openapi import build_openapi
from tests.conftest import Client, MakeClient, migrate, shelf_of
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
)
from tests.factories import LegacyLibrary, fake_sha
from tests.model_folders import (
    civitai_version,
    kohya_lora_metadata,
    later,
    write_civitai_info,
    write_safetensors,
)
from tests.scanning import model, scan, sha256_of, start
from tests.test_edit_races import gated_file_ops, until

EDIT_MANY = "/api/models/edit"


@pytest.fixture
async def library(client: Client, legacy: LegacyLibrary) -> Client:
    """A: lora, meta_json with description, trigger_words and nested; B: checkpoint, meta_json
    with a description; neither has notes."""
    await build(client, legacy)
    return client


async def edit_many(client: Client, body: Any) -> tuple[int, Any]:
    status, answer, _ = await call(client, "POST", EDIT_MANY, body)
    return status, answer


async def fields(client: Client, sha: str) -> tuple[str | None, dict[str, Any]]:
    """A model's (type, meta_json)."""
    record, _ = await get_model(client, sha)
    return record["type"], record["meta_json"]


@pytest.mark.parametrize(
    ("patch", "type_of", "meta_added"),
    [
        ({"meta_json": {"base_model": "SDXL 1.0"}}, {}, {"base_model": "SDXL 1.0"}),
        ({"type": "lycoris"}, {A: "lycoris", B: "lycoris"}, {}),
        ({"type": None}, {A: None, B: None}, {}),
        (
            {"type": "lycoris", "meta_json": {"base_model": "Pony", "notes": "mine"}},
            {A: "lycoris", B: "lycoris"},
            {"base_model": "Pony", "notes": "mine"},
        ),
    ],
    ids=["base-model", "type", "type-null", "both"],
)
async def test_every_model_named_is_edited_and_each_is_reported_once_in_order(
    library: Client, patch: dict[str, Any], type_of: dict[str, str | None], meta_added: Any
) -> None:
    before = {sha: await fields(library, sha) for sha in (A, B)}
    names = {sha: (await get_model(library, sha))[0]["name"] for sha in (A, B)}

    status, answer = await edit_many(library, {"hashes": [B, A, UNKNOWN, B], **patch})

    assert status == 200, answer
    assert answer == {"changed": [B, A], "unchanged": [], "not_found": [UNKNOWN]}
    for sha in (A, B):
        kind, meta = before[sha]
        assert await fields(library, sha) == (type_of.get(sha, kind), meta | meta_added)
        assert (await get_model(library, sha))[0]["name"] == names[sha]


async def test_objects_in_the_patch_merge_and_a_null_removes_a_key(library: Client) -> None:
    _, meta = await fields(library, A)
    assert meta["description"] == "bright colours" and meta["nested"] == {"k": 1}

    status, answer = await edit_many(
        library, {"hashes": [A], "meta_json": {"description": None, "nested": {"j": 2}}}
    )

    assert (status, answer) == (200, {"changed": [A], "unchanged": [], "not_found": []})
    _, after = await fields(library, A)
    assert "description" not in after
    assert after["nested"] == {"k": 1, "j": 2}
    assert after["trigger_words"] == meta["trigger_words"]


async def test_a_number_becoming_the_boolean_it_equals_in_python_is_a_change(
    library: Client,
) -> None:
    # A's nested.k is 1, and Python holds 1 == True; JSON does not.
    status, answer = await edit_many(library, {"hashes": [A], "meta_json": {"nested": {"k": True}}})

    assert (status, answer) == (200, {"changed": [A], "unchanged": [], "not_found": []})
    _, after = await fields(library, A)
    assert after["nested"]["k"] is True
    assert [e["action"] for e in await history(library, A)] == ["edit"]


@pytest.mark.parametrize(
    ("body", "answer"),
    [
        ({"hashes": [A, UNKNOWN], "type": "lora"}, ([], [A], [UNKNOWN])),
        ({"hashes": [UNKNOWN], "type": "lycoris"}, ([], [], [UNKNOWN])),
        ({"hashes": [B, A], "meta_json": {}}, ([], [B, A], [])),
        ({"hashes": [B, A], "meta_json": {"notes": None}}, ([], [B, A], [])),
        ({"hashes": [A], "meta_json": {"description": "bright colours"}}, ([], [A], [])),
    ],
    ids=["same-type", "unknown-model", "empty-patch", "remove-absent", "same-value"],
)
async def test_a_request_that_changes_no_model_writes_nothing(
    library: Client, data_dir: Path, body: Any, answer: tuple[list[str], ...]
) -> None:
    before = snapshot(data_dir)
    status, got = await edit_many(library, body)
    assert status == 200, got
    assert got == dict(zip(("changed", "unchanged", "not_found"), answer, strict=True))
    assert snapshot(data_dir) == before


async def test_only_the_models_that_change_are_saved_in_history(library: Client) -> None:
    status, answer = await edit_many(library, {"hashes": [A, B], "type": "lora"})
    assert (status, answer) == (200, {"changed": [B], "unchanged": [A], "not_found": []})
    assert await history(library, A) == []
    assert [e["action"] for e in await history(library, B)] == ["edit"]


async def test_hashes_in_upper_case_are_read_in_lower_case(library: Client) -> None:
    status, answer = await edit_many(library, {"hashes": [A.upper(), A], "type": "x"})
    assert (status, answer) == (200, {"changed": [A], "unchanged": [], "not_found": []})


async def test_every_changed_model_is_saved_in_history_first_and_restore_undoes_one(
    library: Client,
) -> None:
    before = {sha: (await get_model(library, sha))[0] for sha in (A, B)}
    patch = {"type": "lycoris", "meta_json": {"base_model": "SDXL 1.0"}}
    status, _ = await edit_many(library, {"hashes": [A, B], **patch})
    assert status == 200

    for sha in (A, B):
        entries = await history(library, sha)
        assert [(e["action"], e["before"]) for e in entries] == [("edit", before[sha])]
    entry = (await history(library, A))[0]["id"]
    status, restored, _ = await call(library, "POST", f"/api/models/{A}/history/{entry}/restore")
    assert status == 200, restored
    assert await fields(library, A) == (before[A]["type"], before[A]["meta_json"])
    assert await fields(library, B) == (
        "lycoris",
        before[B]["meta_json"] | {"base_model": "SDXL 1.0"},
    )


async def test_history_keeps_what_a_patch_of_one_model_keeps(
    library: Client, data_dir: Path
) -> None:
    patch = {"type": "lycoris", "meta_json": {"base_model": "SDXL 1.0", "notes": None}}
    assert (await edit_many(library, {"hashes": [A], **patch}))[0] == 200
    assert (await call(library, "PATCH", f"/api/models/{B}", patch))[0] == 200

    kept = dict(rows(data_dir, "SELECT model_hash, pending FROM model_history"))
    assert json.loads(kept[A]) == json.loads(kept[B])
    assert json.loads(kept[A]) == {"columns": {"type": "lycoris"}, "meta_json": patch["meta_json"]}


async def test_search_and_the_base_model_filter_follow_at_once(library: Client) -> None:
    assert await listed(library, {"q": "watercolour"}) == []
    assert await listed(library, {"base_model": "SDXL 1.0"}) == []
    meta = {"base_model": "SDXL 1.0", "description": "Watercolour"}

    assert (await edit_many(library, {"hashes": [A, B], "meta_json": meta}))[0] == 200
    assert await listed(library, {"q": "watercolour"}) == sorted([A, B])
    assert await listed(library, {"base_model": "SDXL 1.0"}) == sorted([A, B])

    unset = {"base_model": None, "description": None}
    assert (await edit_many(library, {"hashes": [B], "meta_json": unset}))[0] == 200
    assert await listed(library, {"q": "watercolour"}) == [A]
    assert await listed(library, {"base_model": "SDXL 1.0"}) == [A]


@pytest.mark.parametrize("scan_wrote", [True, False], ids=["over-the-scans", "where-none"])
async def test_a_base_model_set_on_many_stays_when_a_later_scan_reads_the_files(
    make_client: MakeClient, tmp_path: Path, scan_wrote: bool
) -> None:
    # Two LoRAs whose files say the base model ("Pony", in a Civitai sidecar), or say none.
    loras = [
        write_safetensors(
            tmp_path / "loras" / f"{name}.safetensors",
            kohya_lora_metadata(ss_base_model_version="", ss_output_name=name),
        )
        for name in ("cat", "dog")
    ]
    for lora in loras if scan_wrote else []:
        write_civitai_info(lora, civitai_version(base_model="Pony"))
    client = await start(make_client, loras=tmp_path / "loras")
    await scan(client)
    hashes = [sha256_of(lora) for lora in loras]
    said = "Pony" if scan_wrote else None
    assert [(await model(client, h))["meta_json"].get("base_model") for h in hashes] == [said] * 2

    body = {"hashes": hashes, "meta_json": {"base_model": "Illustrious"}}
    assert (await edit_many(client, body))[0] == 200
    for lora in loras:  # the files now say another base model
        later(write_civitai_info(lora, civitai_version(base_model="NoobAI")))
    result = await scan(client)

    assert result["counts"]["metadata_read"] == 2
    for h in hashes:
        meta = (await model(client, h))["meta_json"]
        assert meta["base_model"] == "Illustrious"
        assert meta["civitai"]["baseModel"] == "NoobAI"  # a key the person did not set


async def test_the_most_models_a_request_may_name_are_edited_in_one_change(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    # In debug mode (make test) this also proves that reading, patching and writing a thousand
    # models with some metadata, and saving them in history, does not hold up the event loop.
    hashes = [fake_sha(5000 + i) for i in range(MAX_MODELS)]
    meta = {"description": "words " * 200, "civitai": {f"k{i}": "v" * 40 for i in range(50)}}
    for i, sha in enumerate(hashes):
        legacy.add_model(i + 1, hash_hex=sha, type="lora", extra=meta)
    await migrate(client, legacy)

    body = {"hashes": hashes, "type": "lycoris", "meta_json": {"base_model": "SDXL 1.0"}}
    status, answer = await edit_many(client, body)

    assert status == 200, answer
    assert answer == {"changed": hashes, "unchanged": [], "not_found": []}
    assert rows(data_dir, "SELECT strategy, count(*) FROM model_history GROUP BY 1") == [
        ("edit", MAX_MODELS)
    ]
    assert rows(
        data_dir,
        "SELECT type, meta_json ->> '$.base_model', meta_json ->> '$.description', count(*)"
        " FROM models GROUP BY 1, 2, 3",
    ) == [("lycoris", "SDXL 1.0", meta["description"], MAX_MODELS)]


def test_the_published_schema_says_how_many_models_and_what_a_hash_is() -> None:
    schema = build_openapi()["components"]["schemas"]["ModelsEditRequest"]
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {"hashes", "type", "meta_json"}
    hashes = schema["properties"]["hashes"]
    assert (hashes["minItems"], hashes["maxItems"]) == (1, MAX_MODELS)
    assert hashes["items"]["pattern"] == SHA256_ANY_CASE


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"hashes": [A]},
        {"type": "lora"},
        {"hashes": [], "type": "lora"},
        {"hashes": [fake_sha(7000 + i) for i in range(MAX_MODELS + 1)], "type": "lora"},
        {"hashes": A, "type": "lora"},
        {"hashes": [5], "type": "lora"},
        {"hashes": ["xyz"], "type": "lora"},
        {"hashes": [A[:-1]], "type": "lora"},
        {"hashes": [A, B + "0"], "type": "lora"},
        {"hashes": [A], "name": "Same"},
        {"hashes": [A], "name": "Same", "type": "lora"},
        {"hashes": [A], "type": "lora", "tags": ["x"]},
        {"hashes": [A], "meta_json": "x"},
        {"hashes": [A], "meta_json": ["base_model"]},
        {"hashes": [A], "meta_json": None},
        {"hashes": [A], "meta_json": {"x": float("nan")}},
        {"hashes": [A], "type": 5},
        {"hashes": [A], "type": "x" * 101},
        {"hashes": [A], "type": "a\x00b"},
        {"hashes": [A], "type": ""},
        {"hashes": [A], "type": " "},
        [A],
        "x",
        None,
    ],
    ids=[
        "empty",
        "neither-type-nor-meta",
        "no-hashes",
        "no-hash",
        "too-many",
        "hashes-text",
        "hash-number",
        "hash-not-hex",
        "hash-short",
        "hash-long",
        "name",
        "name-and-type",
        "unknown-field",
        "meta-text",
        "meta-list",
        "meta-null",
        "meta-nan",
        "type-number",
        "type-long",
        "type-nul",
        "type-empty",
        "type-blank",
        "list",
        "text",
        "null",
    ],
)
async def test_a_bad_body_is_400_and_changes_nothing(
    library: Client, data_dir: Path, body: Any
) -> None:
    await assert_refused_unchanged(library, data_dir, EDIT_MANY, body)


async def test_a_change_that_fails_before_its_commit_changes_no_model(
    library: Client, data_dir: Path
) -> None:
    before = snapshot(data_dir)
    with disk_full_before_commit():
        status, answer = await edit_many(
            library, {"hashes": [A, B], "type": "lycoris", "meta_json": {"base_model": "X"}}
        )
    assert status == 507, answer
    assert snapshot(data_dir) == before


async def test_edits_of_the_same_model_queued_behind_a_change_run_in_the_order_they_came(
    library: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A reorder of A commits and holds A's lock until its files move (held at the gate); the
    # bulk edit, then a PATCH of A, queue for that lock in this order.
    shelf = shelf_of(library)
    order = [f"{A}_2.webp", f"{A}_1.webp", f"{A}_0.webp"]
    with gated_file_ops(shelf, monkeypatch) as gate:
        reorder = asyncio.create_task(
            call(library, "POST", "/api/images/reorder", {"hash": A, "order": order})
        )
        await gate.wait_reached()
        bulk = asyncio.create_task(
            edit_many(library, {"hashes": [B, A], "type": "bulk", "meta_json": {"notes": "b"}})
        )
        await until(lambda: shelf.model_locks.waiting(A) == 1, "the bulk edit queued")
        patch = asyncio.create_task(
            call(library, "PATCH", f"/api/models/{A}", {"type": "patch", "meta_json": {"x": 1}})
        )
        await until(lambda: shelf.model_locks.waiting(A) == 2, "the PATCH queued")
        gate.open()
        assert (await reorder)[0] == 200
        assert await bulk == (200, {"changed": [B, A], "unchanged": [], "not_found": []})
        assert (await patch)[0] == 200

    entries = await history(library, A)
    assert [e["action"] for e in entries] == ["edit", "edit", "reorder"]
    assert entries[1]["before"]["type"] == "lora"
    assert entries[0]["before"]["type"] == "bulk"  # the PATCH came after the bulk edit
    assert entries[0]["before"]["meta_json"]["notes"] == "b"
    assert await fields(library, A) == ("patch", entries[0]["before"]["meta_json"] | {"x": 1})
