"""The full-text index's rows (storage.search_rows): built from what was read of each model,
on the writer connection's thread, so that a bulk edit does not hold the event loop while it
parses and folds the text of a thousand models."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from typing import Any

import pytest

from modelshelf.storage import search_rows
from modelshelf.storage.search_rows import BuiltRows, SourceRows, build_rows
from tests.conftest import Client, migrate
from tests.factories import LegacyLibrary, fake_sha

Calls = list[tuple[bool, int]]


def test_build_rows_indexes_each_model_read_and_drops_those_gone() -> None:
    kept, gone = fake_sha(1), fake_sha(2)
    meta = {"base_model": "Pony", "description": "<p>Ink &amp; wash</p>", "trigger_words": ["ink"]}
    read = SourceRows(
        rows=[(kept, "loras/ink.safetensors", "Ink Wash v10", json.dumps(meta))],
        tags={kept: ["style"]},
        locations={kept: ["other/ink.safetensors"]},
    )

    built = build_rows([(7, kept), (8, gone)], read)

    assert built == BuiltRows(
        texts=[
            (
                7,
                "ink wash v10",
                "loras/ink.safetensors other/ink.safetensors",
                " ink & wash ",
                "ink",
                "style",
            )
        ],
        facts=[("Pony", "ink wash v10", "ink wash v1210", "ink wash v1210", 7)],
        gone=[8],
    )


def test_a_model_whose_meta_is_no_json_is_indexed_by_its_other_fields() -> None:
    sha = fake_sha(3)
    read = SourceRows(rows=[(sha, None, "Broken", "{not json")], tags={}, locations={})
    built = build_rows([(1, sha)], read)
    assert built.texts == [(1, "broken", "", "", "", "")]
    assert built.facts == [(None, "broken", "broken", "broken", 1)]


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """Each build_rows call of the service: (whether it ran on the event loop's thread, how
    many rows it built)."""
    made: Calls = []
    real = search_rows.build_rows

    def recorded(docs: Sequence[tuple[int, str]], read: SourceRows) -> BuiltRows:
        made.append((threading.current_thread() is threading.main_thread(), len(docs)))
        return real(docs, read)

    monkeypatch.setattr(search_rows, "build_rows", recorded)
    return made


async def library_of(client: Client, legacy: LegacyLibrary, count: int) -> list[str]:
    hashes = [fake_sha(9000 + i) for i in range(count)]
    for i, sha in enumerate(hashes):
        legacy.add_model(i + 1, hash_hex=sha, name=f"Model {i}", extra={"base_model": "Pony"})
    await migrate(client, legacy)
    return hashes


async def found(client: Client, query: str) -> Any:
    response = await client.get("/api/models", params={"q": query, "limit": "1"})
    assert response.status == 200
    return (await response.json())["total"]


@pytest.mark.parametrize("count", [1, 600])
async def test_a_change_builds_its_index_rows_off_the_event_loop(
    client: Client, legacy: LegacyLibrary, calls: Calls, count: int
) -> None:
    hashes = await library_of(client, legacy, count)
    calls.clear()

    response = await client.post("/api/models/tags", json={"hashes": hashes, "add": ["inked"]})

    assert response.status == 200, await response.text()
    # Built in chunks of 500 rows, none of them on the event loop's thread.
    assert calls == [(False, n) for n in ([count] if count <= 500 else [500, count - 500])]
    assert await found(client, "inked") == count
