"""The list of tags, at a collector's size: a long list becomes records and JSON in the reads
pool, off the event loop (10,000 tags took 30 ms there: bench/ui_scale.py); the answer is the
same, every tag by name with its count; a short list is answered on the loop."""

from __future__ import annotations

import pytest

from modelshelf.web.parsing import INLINE_RECORDS
from tests.conftest import Client, shelf_of
from tests.editing import call
from tests.test_edit_races import pool_jobs

MANY = INLINE_RECORDS + 50


async def make_tags(client: Client, count: int) -> list[str]:
    names = [f"tag {n:04d}" for n in range(count)]
    for name in names:
        status, body, _ = await call(client, "POST", "/api/tags", {"name": name})
        assert status == 201, body
    return names


async def test_a_long_tag_list_is_built_off_the_event_loop(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = await make_tags(client, MANY)
    with pool_jobs(shelf_of(client).executors.reads, monkeypatch) as work:
        status, body, _ = await call(client, "GET", "/api/tags")
    assert status == 200
    assert body == {
        "tags": [{"id": n + 1, "name": name, "models": 0} for n, name in enumerate(names)]
    }
    assert work, "nothing of the answer was made in the reads pool"


async def test_a_short_tag_list_stays_on_the_loop(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    await make_tags(client, 3)
    with pool_jobs(shelf_of(client).executors.reads, monkeypatch) as work:
        status, body, _ = await call(client, "GET", "/api/tags")
    assert status == 200
    assert [t["name"] for t in body["tags"]] == ["tag 0000", "tag 0001", "tag 0002"]
    assert work == []
