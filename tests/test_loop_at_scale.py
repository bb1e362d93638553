"""Big but legal inputs keep their work off the event loop: a request over a model whose
meta_json holds hundreds of kilobytes merges, parses and writes it in a pool's thread, and no
callback of the loop comes near the CPU time that work takes (tests/loop_watch.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from modelshelf.domain import edits as edits_module
from modelshelf.domain import file_facts, revisions, strategies
from modelshelf.domain.meta import merge_meta_json
from modelshelf.storage.rows import dump_meta, parse_meta
from modelshelf.web import parsing
from modelshelf.web.edit_bodies import ModelPatchRequest
from tests.conftest import Client, MakeClient, migrate, post_import
from tests.factories import Library
from tests.loop_watch import Calls, cpu_time_of, loop_callbacks, watch_calls
from tests.model_folders import kohya_lora_metadata, write_safetensors
from tests.scanning import model, scan, sha256_of, start

PENDING = "/api/migration/pending_models"
BATCH = "/api/migration/import_models"
PREVIEW = "/api/migration/preview_import"
WORDS = 30_000


def trigger_words(prefix: str) -> list[str]:
    return [f"{prefix}{i}" for i in range(WORDS)]


def long_lists(prefix: str) -> dict[str, Any]:
    """Two lists of 30,000 trigger words: about 420 KB of meta_json with the other's."""
    return {"trigger_words": trigger_words(prefix), "tags_seen": trigger_words(prefix + "t")}


async def test_merging_an_import_of_long_lists_runs_off_the_loop(
    client: Client, lib: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A merge of two lists of 30,000 words ran on the event loop (about 0.14 s in one
    callback): every client waited for it."""
    lib.model(1, content=7, hashed=True, extra=long_lists("a"))
    lib.model(2, content=7, extra=long_lists("b"))
    await migrate(client, lib.legacy)
    merge_cost = cpu_time_of(lambda: merge_meta_json(long_lists("a"), long_lists("b")))
    calls = Calls()
    watch_calls(monkeypatch, calls, strategies, "merge_meta_json")
    with loop_callbacks(monkeypatch) as callbacks:
        status, body = await post_import(client, 2, "merge")
    assert (status, body["action_taken"]) == (200, "merged"), body
    assert calls.made and not calls.any_on_loop
    assert callbacks.held_less_than(merge_cost / 3), f"merge {merge_cost:.4f} s; {callbacks}"


def tag_frequency(tags: int) -> dict[str, Any]:
    """A kohya LoRA's tag counts as a scan keeps them: 10,000 tags make about 1 MB of JSON."""
    return {"ss_tag_frequency": {f"tag number {i}": "x" * 90 for i in range(tags)}}


def json_cost(meta: dict[str, Any]) -> float:
    """The CPU time, here, of one parse and one serialisation of `meta`: the yardstick."""
    text = dump_meta(meta)
    return cpu_time_of(lambda: dump_meta(parse_meta(text)))


async def test_reading_a_model_of_megabytes_of_metadata_runs_off_the_loop(
    client: Client, lib: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GET of a model whose meta_json is 2 MB (a scan keeps a kohya header's tag counts as
    they are) parsed it, digested it for its ETag and serialised it in one callback of the
    loop: about twice the time of a parse and a serialisation of it."""
    meta = tag_frequency(20_000)
    sha = lib.model(1, content=7, hashed=True, extra=meta)
    await migrate(client, lib.legacy)
    yardstick = json_cost(meta)
    calls = Calls()
    watch_calls(monkeypatch, calls, revisions, "version_of")
    with loop_callbacks(monkeypatch) as callbacks:
        response = await client.get(f"/api/models/{sha}")
        body = await response.json()
    assert (
        response.status == 200 and body["meta_json"]["ss_tag_frequency"] == meta["ss_tag_frequency"]
    )
    assert calls.made and not calls.any_on_loop
    assert callbacks.held_less_than(yardstick / 3), f"parse+dump {yardstick:.4f} s; {callbacks}"


async def test_patching_a_model_of_a_megabyte_of_metadata_runs_off_the_loop(
    client: Client, lib: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PATCH of one key of a model whose meta_json is 1 MB applied the merge patch, checked
    the size limit, compared the records and digested the new version on the loop: about
    3.5 times a parse and a serialisation of it, in one callback."""
    meta = tag_frequency(9_000)
    sha = lib.model(1, content=7, hashed=True, extra=meta)
    await migrate(client, lib.legacy)
    yardstick = json_cost(meta)
    calls = Calls()
    watch_calls(monkeypatch, calls, edits_module, "apply_merge_patch")
    with loop_callbacks(monkeypatch) as callbacks:
        response = await client.patch(f"/api/models/{sha}", json={"meta_json": {"notes": "n"}})
        body = await response.json()
    assert response.status == 200, body
    assert body["meta_json"] == meta | {"notes": "n"}
    assert calls.made and not calls.any_on_loop
    assert callbacks.held_less_than(yardstick / 3), f"parse+dump {yardstick:.4f} s; {callbacks}"


async def test_a_page_of_models_of_long_metadata_is_serialised_off_the_loop(
    client: Client, lib: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page of 100 models (as many as a page serialised inline may hold) whose meta_json is
    100 KB each was serialised on the event loop: 10 MB of JSON in one callback."""
    meta = tag_frequency(1_000)
    for legacy_id in range(1, 101):
        lib.model(legacy_id, content=legacy_id, hashed=True, image=None, size=1024, extra=meta)
    await migrate(client, lib.legacy)
    yardstick = cpu_time_of(lambda: dump_meta({"models": [meta] * 100}))
    calls = Calls()
    watch_calls(monkeypatch, calls, parsing, "encode_json")
    with loop_callbacks(monkeypatch) as callbacks:
        response = await client.get("/api/models", params={"limit": "100"})
        body = await response.json()
    assert response.status == 200 and len(body["models"]) == 100
    assert all(m["meta_json"] == meta for m in body["models"])
    assert calls.made and not calls.any_on_loop
    assert callbacks.held_less_than(yardstick / 3), f"dump {yardstick:.4f} s; {callbacks}"


@pytest.mark.parametrize("checks", ["false", "true"])
async def test_a_queue_of_pending_models_of_long_metadata_is_serialised_off_the_loop(
    client: Client, lib: Library, monkeypatch: pytest.MonkeyPatch, checks: str
) -> None:
    """The pending queue (fewer than 100 models, so serialised inline) of 20 models whose
    meta_json is 420 KB each was serialised on the event loop: 8.8 MB of JSON in one
    callback."""
    meta = tag_frequency(4_000)
    for legacy_id in range(1, 21):
        lib.model(legacy_id, content=legacy_id, image=None, size=1024, extra=meta)
    await migrate(client, lib.legacy)
    yardstick = cpu_time_of(lambda: dump_meta({"models": [meta] * 20}))
    calls = Calls()
    watch_calls(monkeypatch, calls, parsing, "encode_json")
    with loop_callbacks(monkeypatch) as callbacks:
        response = await client.get(PENDING, params={"checks": checks})
        body = await response.json()
    assert response.status == 200 and len(body["models"]) == 20
    assert all(m["meta_json"] == meta for m in body["models"])
    assert calls.made and not calls.any_on_loop
    assert callbacks.held_less_than(yardstick / 3), f"dump {yardstick:.4f} s; {callbacks}"


async def test_a_scan_of_a_lora_of_megabytes_of_header_metadata_runs_off_the_loop(
    make_client: MakeClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A scan of a LoRA whose kohya header counts 60,000 tags (1.7 MB of metadata, which the
    scan keeps under file_metadata) held the event loop about 0.12 s in one callback, when
    the model was new and again when the file changed: what the scan last wrote was parsed,
    compared with what the files say now and written back, all on the loop."""
    counts = {"5_x": {f"tag number {i}": i for i in range(60_000)}}
    lora = write_safetensors(tmp_path / "loras" / "big.safetensors", kohya(counts))
    client = await start(make_client, loras=tmp_path / "loras")
    yardstick = json_cost({"ss_tag_frequency": counts})
    calls = Calls()
    watch_calls(monkeypatch, calls, file_facts, "refresh_file_meta")
    for change in ("new", "changed"):
        if change == "changed":
            counts["5_x"]["one more"] = 1
            write_safetensors(lora, kohya(counts))
            os.utime(lora, ns=(lora.stat().st_atime_ns, lora.stat().st_mtime_ns + 10**9))
        with loop_callbacks(monkeypatch) as callbacks:
            await scan(client)
        meta = (await model(client, sha256_of(lora)))["meta_json"]
        assert meta["file_metadata"]["ss_tag_frequency"] == counts, change
        assert calls.made and not calls.any_on_loop, change
        assert callbacks.held_less_than(yardstick / 3), f"{change}: {yardstick:.4f} s; {callbacks}"


def kohya(counts: dict[str, Any]) -> dict[str, str]:
    return kohya_lora_metadata(ss_tag_frequency=json.dumps(counts))


async def test_a_conflict_over_models_of_megabytes_of_metadata_is_answered_off_the_loop(
    client: Client, lib: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An import without a strategy of a pending model whose content is in the library
    answers 409 with both records. With 1.7 MB of meta_json each (a kohya header's 60,000
    tag counts), the records were dumped and the answer serialised on the event loop: about
    0.2 s in one callback. A batch import, which reports only the sentence, dumped both
    records too."""
    held, brought = tag_counts(60_000), tag_counts(60_001)
    lib.model(1, content=7, hashed=True, extra=held)
    lib.model(2, content=7, extra=brought)
    await migrate(client, lib.legacy)
    yardstick = json_cost(held)
    with loop_callbacks(monkeypatch) as callbacks:
        status, body = await post_import(client, 2)
    assert status == 409, body
    assert (body["existing"]["meta_json"], body["pending"]["meta_json"]) == (held, brought)
    assert callbacks.held_less_than(yardstick / 3), f"parse+dump {yardstick:.4f} s; {callbacks}"
    with loop_callbacks(monkeypatch) as callbacks:
        response = await client.post(BATCH, json={"ids": [2]})
        results = (await response.json())["results"]
    assert response.status == 207 and [r["result"] for r in results] == ["conflict"]
    assert callbacks.held_less_than(yardstick / 3), f"parse+dump {yardstick:.4f} s; {callbacks}"


def tag_counts(tags: int) -> dict[str, Any]:
    """A kohya header's tag counts as a scan keeps them: 60,000 make about 1.7 MB of JSON."""
    return {"ss_tag_frequency": {"5_x": {f"tag number {i}": i for i in range(tags)}}}


async def test_a_preview_of_a_merge_of_megabytes_of_metadata_is_serialised_off_the_loop(
    client: Client, lib: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The preview of a merge answers three records (the result, the model, the pending
    record): with 1.7 MB of meta_json each (a kohya header's tag counts) they were
    serialised on the event loop, about 30 ms in one callback, more than half a parse and a
    serialisation of one of them."""
    held, brought = tag_counts(60_000), tag_counts(60_001)
    lib.model(1, content=7, hashed=True, extra=held)
    lib.model(2, content=7, extra=brought)
    await migrate(client, lib.legacy)
    yardstick = json_cost(held)
    calls = Calls()
    watch_calls(monkeypatch, calls, parsing, "encode_json")
    with loop_callbacks(monkeypatch) as callbacks:
        response = await client.post(PREVIEW, json={"id": 2, "conf_strategy": "merge"})
        body = await response.json()
    assert response.status == 200, body
    assert body["result"]["meta_json"] == brought  # the counts held, and the one more
    assert calls.made and not calls.any_on_loop
    assert callbacks.held_less_than(yardstick / 3), f"parse+dump {yardstick:.4f} s; {callbacks}"


async def test_stage_one_of_rows_of_megabytes_of_metadata_runs_off_the_loop(
    client: Client, lib: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stage 1 of legacy rows whose meta_json is 1.7 MB (a kohya header's tag counts, as a
    Hikaze library keeps them) serialised each pending row's metadata on the event loop."""
    counts = tag_counts(60_000)
    lib.model(1, content=1, image=None, extra=counts)  # unhashed: pending
    lib.model(2, content=2, hashed=True, image=None, extra=counts)  # hashed: a model
    yardstick = json_cost(counts)
    with loop_callbacks(monkeypatch) as callbacks:
        report = await migrate(client, lib.legacy)
    assert report["db_migration"]["pending_created"] == 1, report
    assert report["db_migration"]["models_imported"] == 1, report
    assert callbacks.held_less_than(yardstick / 3), f"parse+dump {yardstick:.4f} s; {callbacks}"


async def test_restoring_a_model_of_megabytes_of_metadata_runs_off_the_loop(
    client: Client, lib: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Restoring a history entry of a model whose meta_json is 1.7 MB (a kohya header's tag
    counts) parsed the entry's record and compared it with the model's on the event loop:
    about 0.17 s in one callback. Restoring it deleted (one, or many at once) parsed the
    record there too."""
    counts = tag_counts(60_000)
    sha = lib.model(1, content=7, hashed=True, extra=counts)
    await migrate(client, lib.legacy)
    tagged = await client.put(f"/api/models/{sha}/tags", json={"tags": ["new"]})
    assert tagged.status == 200
    yardstick = json_cost(counts)
    calls = Calls()
    watch_calls(monkeypatch, calls, revisions, "record_from_history")
    asked = [
        ("POST", f"/api/models/{sha}/history/1/restore", None),
        ("DELETE", f"/api/models/{sha}", None),
        ("POST", "/api/models/restore", {"hashes": [sha]}),
        ("DELETE", f"/api/models/{sha}", None),
        ("POST", f"/api/models/{sha}/history/1/restore", None),
    ]
    for method, path, body in asked:
        with loop_callbacks(monkeypatch) as callbacks:
            response = await client.request(method, path, json=body)
            answer = await response.read()
        assert response.status == 200, answer[:300]
        assert callbacks.held_less_than(yardstick / 3), f"{method} {path}: {callbacks}"
    model = await (await client.get(f"/api/models/{sha}")).json()
    assert (model["meta_json"], model["tags"]) == (counts, [])
    assert calls.made and not calls.any_on_loop


async def test_deleting_a_model_of_megabytes_of_metadata_answers_off_the_loop(
    client: Client, lib: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DELETE of a model answers the record removed: with 1.7 MB of meta_json (a kohya
    header's tag counts) it was serialised on the event loop, whatever its length."""
    counts = tag_counts(60_000)
    sha = lib.model(1, content=7, hashed=True, extra=counts)
    await migrate(client, lib.legacy)
    yardstick = json_cost(counts)
    calls = Calls()
    watch_calls(monkeypatch, calls, parsing, "encode_json")
    with loop_callbacks(monkeypatch) as callbacks:
        response = await client.delete(f"/api/models/{sha}")
        body = await response.json()
    assert response.status == 200 and body["meta_json"] == counts
    assert calls.made and not calls.any_on_loop
    assert callbacks.held_less_than(yardstick / 3), f"parse+dump {yardstick:.4f} s; {callbacks}"


async def test_a_body_of_nearly_a_megabyte_is_read_off_the_loop(
    client: Client, lib: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PATCH whose body is nearly the megabyte a request may carry (client_max_size) was
    parsed twice on the loop (the repeated-key check, then pydantic) in one callback, which
    every other client waited for (12.3 ms for 464 KB, BENCHMARKS.md)."""
    sha = lib.model(1, content=7, hashed=True)
    await migrate(client, lib.legacy)
    notes = tag_frequency(9_000)  # about 1 MB of JSON
    raw = json.dumps({"meta_json": {"notes": notes}}).encode()
    assert 900_000 < len(raw) < 1024 * 1024
    yardstick = cpu_time_of(lambda: parsing.read_body(raw, ModelPatchRequest))
    calls = Calls()
    watch_calls(monkeypatch, calls, parsing, "read_body")
    with loop_callbacks(monkeypatch) as callbacks:
        response = await client.patch(
            f"/api/models/{sha}", data=raw, headers={"Content-Type": "application/json"}
        )
        body = await response.json()
    assert response.status == 200, body
    assert body["meta_json"]["notes"] == notes
    assert calls.made and not calls.any_on_loop
    assert callbacks.held_less_than(yardstick / 3), f"parse {yardstick:.4f} s; {callbacks}"


async def test_a_page_of_models_of_long_metadata_cut_to_meta_keys_is_built_off_the_loop(
    client: Client, lib: Library, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The web UI asks every page with ?meta_keys=base_model. Since pages are read as their
    records' JSON, such a page validated those records again from their JSON in one callback
    of the loop to cut their meta_json: for 100 models of 100 KB of meta_json each, 10 MB."""
    meta = tag_frequency(1_000) | {"base_model": "SDXL 1.0"}
    for legacy_id in range(1, 101):
        lib.model(legacy_id, content=legacy_id, hashed=True, image=None, size=1024, extra=meta)
    await migrate(client, lib.legacy)
    yardstick = cpu_time_of(lambda: dump_meta({"models": [meta] * 100}))
    with loop_callbacks(monkeypatch) as callbacks:
        response = await client.get(
            "/api/models", params={"limit": "100", "meta_keys": "base_model"}
        )
        body = await response.json()
    assert response.status == 200 and len(body["models"]) == 100
    assert all(m["meta_json"] == {"base_model": "SDXL 1.0"} for m in body["models"])
    assert callbacks.held_less_than(yardstick / 3), f"dump {yardstick:.4f} s; {callbacks}"
