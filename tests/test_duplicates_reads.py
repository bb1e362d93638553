"""The library-wide duplicates at a collector's size: the groups become records in the reads
pool, never on the event loop (2,000 groups took 36 ms there: bench/ui_scale.py); the answer
is the same, most wasted bytes first."""

from __future__ import annotations

import threading

import pytest
from pydantic import model_validator

from modelshelf.storage import model_files
from modelshelf.web import duplicates_api
from modelshelf.web.duplicates_bodies import DuplicateGroupBody
from tests.conftest import Client, shelf_of
from tests.editing import call

GROUPS = 30


async def copies(client: Client) -> None:
    """GROUPS contents, content n at n + 2 paths (no model rows: a name is null then)."""
    async with shelf_of(client).changes.change() as change:
        for n in range(GROUPS):
            sha = f"{n:064x}"
            for k in range(n + 2):
                where = model_files.Location(
                    f"/m/{n:02d}/{k}.safetensors", sha, "lora", 1000, 1, 100 * n + k, 1
                )
                await model_files.save_location(change.tx, where, 1)


async def test_duplicate_groups_become_records_off_the_event_loop(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    await copies(client)
    threads: set[str] = set()

    class Watched(DuplicateGroupBody):
        @model_validator(mode="after")
        def _made_where(self) -> Watched:
            threads.add(threading.current_thread().name)
            return self

    monkeypatch.setattr(duplicates_api, "DuplicateGroupBody", Watched)
    status, body, _ = await call(client, "GET", "/api/duplicates")

    assert status == 200
    assert [len(g["files"]) for g in body["groups"]] == list(range(GROUPS + 1, 1, -1))
    assert body["groups"][0] == {
        "sha256": f"{GROUPS - 1:064x}",
        "name": None,
        "size_bytes": 1000,
        "files": sorted(f"/m/{GROUPS - 1}/{k}.safetensors" for k in range(GROUPS + 1)),
        "wasted_bytes": 1000 * GROUPS,
    }
    assert body["wasted_bytes"] == sum(1000 * (n + 1) for n in range(GROUPS))
    assert threads and threading.main_thread().name not in threads, threads
