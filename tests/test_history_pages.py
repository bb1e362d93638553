"""A long history a page at a time (`limit`, `before`; both optional): pages put together are
the whole history, newest first, as the answer without them; a deleted model's history pages
as well; malformed values are 400. The web UI asks for 21 entries, then older ones."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Client
from tests.editing import UNKNOWN, A, assert_error, build, call
from tests.factories import LegacyLibrary

EDITS = 45


@pytest.fixture
async def edited(client: Client, legacy: LegacyLibrary) -> Client:
    await build(client, legacy)
    for n in range(EDITS):
        status, body, _ = await call(client, "PATCH", f"/api/models/{A}", {"name": f"v{n}"})
        assert status == 200, body
    return client


async def page(client: Client, query: str, sha: str = A) -> list[dict[str, Any]]:
    status, body, _ = await call(client, "GET", f"/api/models/{sha}/history?{query}")
    assert status == 200, body
    assert set(body) == {"entries"}
    entries: list[dict[str, Any]] = body["entries"]
    return entries


async def test_pages_put_together_are_the_whole_history(edited: Client) -> None:
    whole = await page(edited, "")
    assert len(whole) == EDITS

    first = await page(edited, "limit=20")
    second = await page(edited, f"limit=20&before={first[-1]['id']}")
    third = await page(edited, f"limit=20&before={second[-1]['id']}")

    assert [len(first), len(second), len(third)] == [20, 20, 5]
    assert first + second + third == whole
    assert await page(edited, f"before={whole[9]['id']}") == whole[10:]


async def test_a_deleted_models_history_pages_past_its_end_to_nothing(edited: Client) -> None:
    status, _, _ = await call(edited, "DELETE", f"/api/models/{A}")
    assert status == 200
    whole = await page(edited, "")

    assert await page(edited, "limit=1") == whole[:1]
    assert await page(edited, f"before={whole[-1]['id']}") == []
    status, body, _ = await call(edited, "GET", f"/api/models/{UNKNOWN}/history?before=5")
    assert status == 404
    assert_error(body, "Not Found")


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=x", "before=x", "before=1.5"])
async def test_malformed_page_parameters_are_refused(edited: Client, query: str) -> None:
    status, body, _ = await call(edited, "GET", f"/api/models/{A}/history?{query}")
    assert status == 400
    assert_error(body, "Bad Request")
