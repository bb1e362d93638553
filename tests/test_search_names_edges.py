"""Edges of the names-first search (storage.search.name_tiers_sql) and of the name order
(search.name_order) that a review found; each test failed on b0415e4 / 3799d6d, before the fix
(a BLOB name stopped the library opening; names whose key found models their words do not
match; a kept ranking shared by two typed forms; numbers of 100 digits or more)."""

from __future__ import annotations

import contextlib
import sqlite3
import unicodedata
from pathlib import Path

import pytest

from modelshelf.storage import Storage, search
from modelshelf.storage.counts import MatchCounts
from modelshelf.storage.listing import read_page
from modelshelf.storage.model_filter import ModelFilter
from modelshelf.storage.word_chars import TOKENIZER, fts5_keeps_in_a_word
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


# A BLOB another program wrote as a name is no name to sort by (records and search_document
# read one too: see test_record_reads); name_order raised TypeError inside refresh_stale, so
# the library did not open and no write could commit.
async def test_a_library_with_a_blob_name_still_opens(tmp_path: Path) -> None:
    path = tmp_path / "modelshelf.db"
    storage = Storage(path)
    await storage.open()
    await storage.close()
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        db.execute("INSERT INTO models(sha256, name) VALUES (?, 'Dragon')", (fake_sha(1),))
        db.execute("INSERT INTO models(sha256, name) VALUES (?, ?)", (fake_sha(2), b"blob name"))
    await storage.open()
    try:
        async with storage.read() as conn:
            total, records = await read_page(conn, ModelFilter(), 50, 0, MatchCounts(lambda: 0))
        assert total == 2 and len(records) == 2
    finally:
        await storage.close()


# Every model a name tier finds is a match of the query's words, or the page holds a model
# `total` does not count: (a) an emoji newer than SQLite's unicode61 tables (U+1F970) is
# inside a word for FTS5 and between words for WORD; (b) New Tai Lue vowel signs (U+19B0..)
# are letters for Python and separators for FTS5, so the query word is an empty phrase that
# matches nothing; such names get no key (storage.word_chars). (c) The typed words kept all
# of a query's words: 32 "d"s then "knight" had tiered names of 32 "d"s without "knight".
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


# The order of a search depends on its words as typed, repeats kept: what is kept of
# "dragon dragon" (storage.counts) is not the order of "dragon", nor the other way round.
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


# A number's length is written with its own length first, so no length is too long to sort.
def test_name_order_reads_numbers_of_a_hundred_digits_by_value() -> None:
    smaller, larger = search.name_order("a " + "9" * 99), search.name_order("a 1" + "0" * 99)
    assert smaller is not None and larger is not None
    assert smaller < larger


@pytest.mark.parametrize(
    "digits", ["\u0663", "\u096a", "\uff13"]
)  # 3 Arabic-Indic, 4 Devanagari, 3
def test_digits_of_other_scripts_sort_by_value(digits: str) -> None:
    value = int(unicodedata.numeric(digits))
    assert search.name_order(f"v{digits}") == search.name_order(f"v{value}")
    assert search.name_order(f"v{digits}") < search.name_order("v10")  # type: ignore[operator]


@pytest.mark.parametrize(
    ("char", "inside"),
    [("a", True), ("7", True), ("-", False), (" ", False), ("\U0001f970", True)],
    ids=["letter", "digit", "hyphen", "space", "emoji-newer-than-sqlite"],
)
def test_fts5_is_asked_what_it_keeps_inside_a_word(char: str, inside: bool) -> None:
    assert fts5_keeps_in_a_word(char) is inside


async def test_the_probe_tokenizes_as_the_index_does(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "modelshelf.db")
    await storage.open()
    await storage.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "modelshelf.db")) as db:
        (sql,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'model_search'").fetchone()
    assert f"tokenize = '{TOKENIZER}'" in sql
