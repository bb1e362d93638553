"""The library listed by name reads numbers by their value, as a file manager does: "v2" comes
before "v10" (storage.search.name_order). It listed "v1, v10, v11, v12, v2" before."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Literal

import pytest

from modelshelf.storage import Storage, listing, search
from modelshelf.storage.model_filter import ModelFilter
from tests.conftest import Client, migrate
from tests.factories import LegacyLibrary, fake_sha, schema_before

NAMES = [
    "Pony v10",
    "pony v2",
    "Pony v1",
    "Pony v9",
    "Zeta",
    "Pony XL 1.5",
    "Pony XL 1.10",
    "1girl",
]
BY_NAME = ["1girl", "Pony v1", "pony v2", "Pony v9", "Pony v10", "Pony XL 1.5", "Pony XL 1.10"]
BY_NAME += ["Zeta"]


def sha(n: int) -> str:
    return fake_sha(700 + n)


@pytest.fixture
async def library(client: Client, legacy: LegacyLibrary) -> Client:
    for n, name in enumerate(NAMES, start=1):
        legacy.add_model(n, hash_hex=sha(n), name=name, type="lora" if n % 2 else "checkpoint")
    await migrate(client, legacy)
    return client


async def listed(client: Client, **params: str) -> list[str]:
    response = await client.get("/api/models", params=params)
    body = await response.json()
    assert response.status == 200, body
    return [m["name"] for m in body["models"]]


async def test_names_are_listed_with_their_numbers_read_by_value(library: Client) -> None:
    assert await listed(library) == BY_NAME
    assert await listed(library, sort="name", order="desc") == BY_NAME[::-1]


async def test_pages_of_the_name_order_cover_every_model_once(library: Client) -> None:
    pages = [await listed(library, limit="3", offset=str(o)) for o in (0, 3, 6)]
    assert [n for page in pages for n in page] == BY_NAME


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"type": "lora"}, [n for i, n in enumerate(NAMES, 1) if i % 2]),
        ({"q": "pony", "sort": "name"}, [n for n in NAMES if n.lower().startswith("pony")]),
    ],
    ids=["type", "words-sorted-by-name"],
)
async def test_the_name_order_holds_beside_filters(
    library: Client, params: dict[str, str], expected: list[str]
) -> None:
    assert await listed(library, **params) == [n for n in BY_NAME if n in expected]


async def test_a_renamed_model_moves_to_its_new_place(library: Client) -> None:
    response = await library.patch(f"/api/models/{sha(1)}", json={"name": "Pony v3"})
    assert response.status == 200, await response.text()
    assert (await listed(library))[:5] == ["1girl", "Pony v1", "pony v2", "Pony v3", "Pony v9"]


@pytest.mark.parametrize(
    ("before", "after"),
    [
        ("v2", "v10"),
        ("Model 9", "model 10"),
        ("a", "B"),
        ("x 1.5", "x 1.10"),
        ("v 0", "v 1"),
        ("7", "a"),  # numbers before letters, as file managers list them
        ("\uff56\uff12", "v10"),  # full-width letters and digits read as plain ones
    ],
)
def test_name_order_reads_numbers_by_value(before: str, after: str) -> None:
    first, second = search.name_order(before), search.name_order(after)
    assert first is not None and second is not None
    assert first < second


@pytest.mark.parametrize(("one", "other"), [("v01", "v1"), ("Pony", "PONY"), ("v007", "V7")])
def test_names_that_differ_only_in_case_or_leading_zeros_sort_alike(one: str, other: str) -> None:
    assert search.name_order(one) == search.name_order(other)


def test_a_model_without_a_name_has_no_place_in_the_order() -> None:
    assert search.name_order(None) is None


async def test_a_library_from_before_is_ordered_once_opened(tmp_path: Path) -> None:
    db_path = tmp_path / "data" / "modelshelf.db"
    db_path.parent.mkdir()
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        conn.executescript(schema_before("names sort as"))
        for n, name in enumerate(["m v10", "m v2"], start=1):
            conn.execute(
                "INSERT INTO models VALUES (?, NULL, ?, 'lora', 1, 1, '{}')", (sha(n), name)
            )
        conn.commit()
    storage = Storage(db_path)
    await storage.open()
    await storage.close()
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        rows = conn.execute("SELECT sha256 FROM search_docs ORDER BY name_order").fetchall()
    assert rows == [(sha(2),), (sha(1),)]


# --- ties of a sort by date or size ------------------------------------------------------------


@pytest.mark.parametrize("sort", ["created_at", "size_bytes"])
async def test_models_of_one_date_or_size_follow_the_name_order(library: Client, sort: str) -> None:
    """Every model of `library` has the same date and size: the sort's ties are all of it, and
    they read as the name sort does, either way."""
    assert await listed(library, sort=sort) == BY_NAME
    assert await listed(library, sort=sort, order="desc") == BY_NAME[::-1]


# (name, created_at, size_bytes): two dates, three sizes and a model without a size.
DATED = [
    ("lora 10", 1, 300),
    ("Lora 2", 1, 300),
    ("lora 1", 2, 100),
    ("LORA 9", 2, 100),
    ("lora 11", 2, None),
    ("lora 3", 1, 200),
    ("lora 20", 2, 200),
]


@pytest.fixture
async def dated(client: Client, legacy: LegacyLibrary) -> Client:
    for n, (name, day, size) in enumerate(DATED, start=1):
        legacy.add_model(
            n, hash_hex=sha(n), name=name, created_at=1_700_000_000_000 + day, size_bytes=size
        )
    await migrate(client, legacy)
    return client


def in_order(sort: str, descending: bool) -> list[str]:
    """DATED's names by `sort`, models without a value last, ties by their numbers' value."""
    column = 1 if sort == "created_at" else 2
    number = {name: int(name.split()[1]) for name, *_ in DATED}
    valued = [row for row in DATED if row[column] is not None]
    ordered = sorted(valued, key=lambda row: (row[column], number[row[0]]), reverse=descending)
    return [row[0] for row in ordered] + [row[0] for row in DATED if row[column] is None]


@pytest.mark.parametrize("sort", ["created_at", "size_bytes"])
@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_pages_of_a_sort_by_date_or_size_hold_every_model_once_ties_by_name(
    dated: Client, sort: str, order: str
) -> None:
    expected = in_order(sort, order == "desc")
    assert await listed(dated, sort=sort, order=order) == expected
    pages = [
        await listed(dated, sort=sort, order=order, limit="2", offset=str(o))
        for o in range(0, 8, 2)
    ]
    assert [name for page in pages for name in page] == expected


@pytest.mark.parametrize("sort", ["created_at", "size_bytes"])
@pytest.mark.parametrize("order", ["asc", "desc"])
async def test_a_sort_by_date_or_size_reads_an_index_in_its_order(
    tmp_path: Path, sort: str, order: Literal["asc", "desc"]
) -> None:
    """Not a sort of every model: the first page is read from an index in the sort's order,
    and only the ties are sorted (SQLite's plan says so)."""
    storage = Storage(tmp_path / "modelshelf.db")
    await storage.open()
    await storage.close()
    statements: list[str] = []
    with contextlib.closing(sqlite3.connect(storage.path)) as conn:
        conn.set_trace_callback(statements.append)
        listing.page_of_hashes(conn, ModelFilter(sort=sort, order=order), 50, 0)  # type: ignore[arg-type]
        conn.set_trace_callback(None)
        (page,) = statements
        plan = [str(r[-1]) for r in conn.execute(f"EXPLAIN QUERY PLAN {page}")]
    assert "USE TEMP B-TREE FOR ORDER BY" not in plan, plan
    assert any(step.startswith("SCAN m USING INDEX") for step in plan), plan
