"""Review findings on b0415e4 (names first in a search) and 3799d6d (name order by value).
Each test fails on the reviewed tree and says what should hold."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from modelshelf.storage import Storage, search
from modelshelf.storage.counts import MatchCounts
from modelshelf.storage.listing import ModelFilter, read_page
from tests.conftest import Client
from tests.editing import call
from tests.factories import fake_sha
from tests.test_search_names_first import library, names, sha  # noqa: F401 (fixture)


async def page(client: Client, **params: str) -> tuple[int, list[str]]:
    response = await client.get("/api/models", params=params)
    body = await response.json()
    assert response.status == 200, body
    return int(body["total"]), [m["name"] for m in body["models"]]


async def rename(client: Client, n: int, name: str) -> None:
    status, body, _ = await call(client, "PATCH", f"/api/models/{sha(n)}", {"name": name})
    assert status == 200, body


# 1. search.name_order is given the raw `models.name`; another program may write a BLOB there
# (records and search_document read one: see test_record_reads). name_order calls
# unicodedata.normalize on the bytes: TypeError inside refresh_stale, so the library no longer
# opens (and every later write of the service would fail the same way). bbd216e opened it.
async def test_a_library_with_a_blob_name_still_opens(tmp_path: Path) -> None:
    path = tmp_path / "modelshelf.db"
    storage = Storage(path)
    await storage.open()
    await storage.close()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("INSERT INTO models(sha256, name) VALUES (?, 'Dragon')", (fake_sha(1),))
        db.execute("INSERT INTO models(sha256, name) VALUES (?, ?)", (fake_sha(2), b"blob name"))
    await storage.open()  # raised TypeError: normalize() argument 2 must be str
    try:
        async with storage.read() as conn:
            total, records = await read_page(conn, ModelFilter(), 50, 0, MatchCounts(lambda: 0))
        assert total == 2 and len(records) == 2
    finally:
        await storage.close()


# 2. The claim "every row a name tier finds is an FTS5 match" fails: (a) emoji newer than
# SQLite's unicode61 tables (U+1F970, Unicode 11) are token characters for FTS5 but not WORD
# characters, so "Dragon🥰Knight" is one FTS5 token and the name_key "dragon knight";
# (b) New Tai Lue vowel signs (U+19B0..U+19C9) are letters for Python and separators for
# FTS5, so the query word "ᦰ" is an empty phrase that matches nothing; (c) typed_words keeps
# repeats before cutting at MAX_WORDS and query_words removes them first, so 32 "d"s then
# "knight" tiers names beginning with 32 "d"s that lack "knight". Each time the model is on
# the page but not counted in `total` (and is no match of the words).
@pytest.mark.parametrize(
    ("name", "query"),
    [
        ("Dragon\U0001f970Knight", "dragon knight"),
        ("Dragon \u19b0", "dragon \u19b0"),
        (" ".join(["D"] * 32), "d " * 32 + "knight"),
    ],
    ids=["newer-emoji-inside-a-word", "tai-lue-vowel-sign", "33-words-with-repeats"],
)
@pytest.mark.parametrize("filters", [{}, {"type": "lora"}], ids=["index-alone", "with-type"])
async def test_a_model_a_name_tier_finds_is_a_match(
    library: Client,  # noqa: F811
    name: str,
    query: str,
    filters: dict[str, str],
) -> None:
    await rename(library, 6, name)
    total, found = await page(library, q=query, **filters)
    assert name not in found
    assert total == len(found)


# 3. The kept ranking (storage.counts) is keyed by ModelFilter.count_key, which holds `words`
# (repeats removed) but not `typed` (repeats kept), while the name tiers rank by `typed`. So
# "dragon" and "dragon dragon" share one kept ranking: whichever is asked first decides the
# order of the other (here "dragon" listed "Dragon Dragon" first and "Dragon" last, after
# "dragon dragon" was asked; fresh, "Dragon" comes first).
@pytest.mark.parametrize(
    ("before", "query", "first"),
    [("dragon dragon", "dragon", "Dragon"), ("dragon", "dragon dragon", "Dragon Dragon")],
)
async def test_a_query_is_not_ranked_by_the_kept_ranking_of_another_typed_form(
    library: Client,  # noqa: F811
    before: str,
    query: str,
    first: str,
) -> None:
    await rename(library, 6, "Dragon Dragon")
    await names(library, before)  # keeps its ranking
    assert (await names(library, query))[0] == first


# 4. (Minor) name_order writes a number's length as min(len, 99): a number of 100 or more
# digits sorts by its leading digits against a shorter one, so 10**99 sorts before 10**99 - 1.
def test_name_order_reads_numbers_of_a_hundred_digits_by_value() -> None:
    smaller, larger = search.name_order("a " + "9" * 99), search.name_order("a 1" + "0" * 99)
    assert smaller is not None and larger is not None
    assert smaller < larger
