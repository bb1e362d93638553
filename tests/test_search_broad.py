"""A search whose words half of the library or more holds (a two-letter prefix, a word every
model has) is broad: bm25 gives such words no weight (FTS5 floors their IDF) and could only
tell the matches apart by how often short rows hold them, at about 1 us a match. A broad
search lists, after the names that begin with what was typed, the models whose name holds the
words, then the others, each in the library's name order (storage.search.broad_sql); a
narrower one is ranked by bm25 as before. Either way every way of reading a page (counted the
first time, from a kept ranking, past it, narrowed by a filter, a BLOB's slow path) gives the
same order."""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any

import pytest

from modelshelf.storage import listing
from modelshelf.storage.model_filter import ModelFilter
from tests.conftest import Client, migrate, shelf_of
from tests.factories import LegacyLibrary, fake_sha

TAGS = {1: "drama", 2: "portrait"}
# (name, file, meta, tag ids): "dr" begins a word of each; "Dragon Queen" is the one name
# that begins with it, "Red Dragon" and "Zebra Drawing" hold it in their names, the other
# three elsewhere: a tag (weight 5), a trigger word (3), the description (1).
MATCHES: list[tuple[str, str, dict[str, Any], list[int]]] = [
    ("Omega", "omega", {"trigger_words": ["drift"]}, [2]),
    ("Zebra Drawing", "zebra", {}, []),
    ("Alpha", "alpha", {"description": "a dress"}, []),
    ("Red Dragon", "red", {}, [2]),
    ("Beta", "beta", {}, [1]),
    ("Dragon Queen", "queen", {}, []),
]
BROAD_ORDER = ["Dragon Queen", "Red Dragon", "Zebra Drawing", "Alpha", "Beta", "Omega"]
# bm25 over the same six, when they are fewer than half: names, then by the column's weight.
BM25_TAIL = ["Beta", "Omega", "Alpha"]


async def library_of(client: Client, legacy: LegacyLibrary, others: int) -> Client:
    """The six matches and `others` models that hold no word beginning with "dr"."""
    for tag_id, name in TAGS.items():
        legacy.add_tag(tag_id, name)
    rows = [*MATCHES, *((f"Sketch {n}", f"sketch_{n}", {}, []) for n in range(others))]
    for n, (name, file, meta, tags) in enumerate(rows, start=1):
        legacy.add_model(
            n,
            hash_hex=fake_sha(700 + n),
            name=name,
            type="lora" if n % 2 else "checkpoint",
            path=f"/m/lora/{file}.safetensors",
            extra=meta,
            tags=tags,
        )
    await migrate(client, legacy)
    return client


async def names(client: Client, params: dict[str, str]) -> tuple[int, list[str]]:
    response = await client.get("/api/models", params=params)
    body = await response.json()
    assert response.status == 200, body
    return body["total"], [m["name"] for m in body["models"]]


async def paged_one_at_a_time(client: Client, params: dict[str, str], count: int) -> list[str]:
    """The first `count` names read a page of one at a time, as a scrolling grid reads them:
    after the first, the order may come from the kept ranking."""
    found = []
    for offset in range(count):
        found += (await names(client, {**params, "limit": "1", "offset": str(offset)}))[1]
    return found


def reference(client: Client, where: ModelFilter) -> list[str]:
    """Every match in the order ModelFilter.order_by spells out, scoring every match."""
    sql, params = where.select("m.name")
    order, order_params = where.order_by()
    with contextlib.closing(sqlite3.connect(shelf_of(client).storage.path)) as conn:
        return [r[0] for r in conn.execute(f"{sql} ORDER BY {order}", [*params, *order_params])]


@pytest.mark.parametrize("others", [0, 5, 6])  # 6 of 12 is half: still broad
async def test_a_broad_search_lists_names_first_then_the_rest_by_name(
    client: Client, legacy: LegacyLibrary, others: int
) -> None:
    library = await library_of(client, legacy, others)
    assert await names(library, {"q": "dr"}) == (6, BROAD_ORDER)
    assert await paged_one_at_a_time(library, {"q": "dr"}, 6) == BROAD_ORDER
    assert reference(library, ModelFilter(q="dr")) == BROAD_ORDER


async def test_a_search_fewer_than_half_hold_is_ranked_by_bm25(
    client: Client, legacy: LegacyLibrary
) -> None:
    library = await library_of(client, legacy, 7)  # 6 of 13
    total, found = await names(library, {"q": "dr"})
    assert (total, found[0], found[3:]) == (6, "Dragon Queen", BM25_TAIL)
    assert set(found[1:3]) == {"Red Dragon", "Zebra Drawing"}
    assert await paged_one_at_a_time(library, {"q": "dr"}, 6) == found
    assert reference(library, ModelFilter(q="dr")) == found


@pytest.mark.parametrize("others", [0, 7])
@pytest.mark.parametrize("type_", ["lora", "checkpoint"])
async def test_a_filter_keeps_the_order_of_the_search_it_narrows(
    client: Client, legacy: LegacyLibrary, others: int, type_: str
) -> None:
    """Broad or not is the words' reach in the whole library, as bm25's weights are: a filter
    takes models out of the order, it does not reorder the rest."""
    library = await library_of(client, legacy, others)
    everything = (await names(library, {"q": "dr"}))[1]
    kept = reference(library, ModelFilter(q="dr", type=type_))
    total, found = await names(library, {"q": "dr", "type": type_})
    assert (total, found) == (3, [name for name in everything if name in kept])
    assert found == kept
    assert await paged_one_at_a_time(library, {"q": "dr", "type": type_}, 3) == found


async def test_pages_past_the_kept_ranking_keep_the_broad_order(
    client: Client, legacy: LegacyLibrary, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing, "RANKING_DEPTH", 2)
    library = await library_of(client, legacy, 2)
    assert await paged_one_at_a_time(library, {"q": "dr"}, 6) == BROAD_ORDER
    params = {"q": "dr", "limit": "2", "offset": "3"}
    assert await names(library, params) == (6, BROAD_ORDER[3:5])


async def test_a_broad_search_holding_a_blob_reads_its_page_in_the_same_order(
    client: Client, legacy: LegacyLibrary
) -> None:
    """A column JSON cannot hold (a BLOB another program wrote) sends the page down the slow
    path (listing.page_of_hashes): the order is the same, the BLOB's model without a name
    last."""
    library = await library_of(client, legacy, 0)
    storage = shelf_of(library).storage
    with contextlib.closing(sqlite3.connect(storage.path, isolation_level=None)) as db:
        db.execute(
            "INSERT INTO models(sha256, path, name, type) VALUES (?, ?, NULL, ?)",
            (fake_sha(799), "/m/lora/drum.safetensors", b"\x00blob"),
        )
    await storage.close()
    await storage.open()  # indexes the row written behind its back
    total, found = await names(library, {"q": "dr"})
    assert (total, found[:6], found[6:]) == (7, BROAD_ORDER, [None])
