"""The order and total of a search (the name tiers, then bm25 with the column weights or, for
a broad search, names holding the words and the rest by name; ties by index row) are those
ModelFilter.order_by spells out whichever way a page is read: counted and ranked in one pass
for a search with filters met for the first time, or ranked alone when its total is kept."""

from __future__ import annotations

import contextlib
import random
import sqlite3
from typing import Any

import pytest

from modelshelf.storage import search
from modelshelf.storage.model_filter import ModelFilter
from tests.conftest import Client, migrate, shelf_of
from tests.factories import LegacyLibrary, fake_sha

WORDS = ["pixel", "noir", "anime", "portrait", "pine", "pixie", "castle", "neon"]
TYPES = ["lora", "checkpoint"]
TAGS = {1: "style", 2: "character"}
COUNT = 60


@pytest.fixture
async def library(client: Client, legacy: LegacyLibrary) -> Client:
    """60 models whose words repeat unevenly, so scores differ and some tie."""
    rng = random.Random(7)
    for tag_id, name in TAGS.items():
        legacy.add_tag(tag_id, name)
    for i in range(1, COUNT + 1):
        legacy.add_model(
            i,
            hash_hex=fake_sha(500 + i),
            name=f"{rng.choice(WORDS)} {i}",
            type=TYPES[i % 2],
            extra={
                "description": " ".join(rng.choices(WORDS, k=rng.randint(0, 12))),
                "base_model": "SD 1.5" if i % 3 else "SDXL 1.0",
            },
            tags=rng.sample(sorted(TAGS), rng.randint(0, 2)),
        )
    await migrate(client, legacy)
    return client


def expected(client: Client, where: ModelFilter) -> list[str]:
    """Every match in the contract's order, straight from the database file."""
    sql, params = where.select("m.sha256", ordered=where.sorted_by_name())
    order, order_params = where.order_by()
    with contextlib.closing(sqlite3.connect(shelf_of(client).storage.path)) as conn:
        return [r[0] for r in conn.execute(f"{sql} ORDER BY {order}", [*params, *order_params])]


async def page(client: Client, params: dict[str, str], limit: int, offset: int) -> Any:
    response = await client.get(
        "/api/models", params={**params, "limit": str(limit), "offset": str(offset)}
    )
    body = await response.json()
    assert response.status == 200, body
    return body["total"], [m["sha256"] for m in body["models"]]


@pytest.mark.parametrize(
    "params",
    [
        {"q": "pi", "type": "lora"},
        {"q": "pixel", "type": "checkpoint"},
        {"q": "p n", "tag": "style"},
        {"q": "neon", "base_model": "sd 1.5"},
        {"q": "c", "missing": "true"},
        {"q": "pi"},
        {"q": "1", "missing": "true"},
        {"q": "pixel"},  # names that begin with the word rank first (search.name_tiers_sql)
        {"q": "pix", "type": "lora"},
    ],
)
@pytest.mark.parametrize(("limit", "offset"), [(50, 0), (7, 14), (10, 200)])
async def test_a_search_pages_in_bm25_order_first_time_and_again(
    library: Client, params: dict[str, str], limit: int, offset: int
) -> None:
    where = ModelFilter(
        q=params["q"],
        type=params.get("type"),
        tag=params.get("tag"),
        base_model=params.get("base_model"),
        missing={"true": True}.get(params.get("missing", "")),
    )
    everything = expected(library, where)
    assert len(everything) > 5  # the case is worth ranking
    first = await page(library, params, limit, offset)  # total counted with the page
    again = await page(library, params, limit, offset)  # total kept, the page ranked alone
    assert first == again == (len(everything), everything[offset : offset + limit])


@pytest.mark.parametrize("query", ["1", "p", "pi", "pix", "pixel", "1 n", "c 2", "zz"])
async def test_the_prefix_indexes_change_no_answer(library: Client, query: str) -> None:
    """The index keeps prefixes of 1, 2 and 3 characters (schema step "the search index keeps
    one-character prefixes too"): the same rows in an index with only 2 and 3 rank the same."""
    columns = ", ".join(search.COLUMNS)
    rank = search.rank_expression()
    expression = search.match_expression(search.query_words(query))
    with contextlib.closing(sqlite3.connect(shelf_of(library).storage.path)) as conn:
        conn.execute(
            f"CREATE VIRTUAL TABLE temp.before USING fts5({columns},"
            " prefix = '2 3', tokenize = 'unicode61 remove_diacritics 2')"
        )
        conn.execute(
            f"INSERT INTO temp.before(rowid, {columns}) SELECT rowid, {columns} FROM model_search"
        )
        answers = [
            conn.execute(
                f"SELECT rowid, {rank.replace('model_search', table)} AS score FROM {table}"
                f" WHERE {table} MATCH ? ORDER BY score, rowid",
                (expression,),
            ).fetchall()
            for table in ("model_search", "before")
        ]
    assert answers[0] == answers[1]


async def test_the_searches_paged_above_are_broad_and_narrow(library: Client) -> None:
    """Both ways of ranking are paged above: a broad search (search.breadth_sql: half of the
    library or more matches) by name, and a narrower one by bm25."""
    broad = {}
    with contextlib.closing(sqlite3.connect(shelf_of(library).storage.path)) as conn:
        for query in ("pi", "pixel", "p n", "neon", "c", "1", "pix"):
            expression = search.match_expression(search.query_words(query))
            broad[query] = conn.execute(search.breadth_sql(), (expression,)).fetchone()[1]
    assert {query for query, yes in broad.items() if not yes} == {"neon", "1"}
