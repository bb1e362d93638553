"""GET /api/models/base_models through the real app: the base models in use with how many
models have each, most used first, then by name; a base model is what the `base_model` filter
of GET /api/models matches, and each count is the total that filter lists."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from modelshelf.storage import Storage
from modelshelf.storage.listing import base_model_counts
from tests.conftest import Client, migrate
from tests.editing import call
from tests.factories import LegacyLibrary, fake_sha, schema_before

BASE_MODELS = "/api/models/base_models"
# meta_json.base_model of each model (None: no such key).
GIVEN: list[Any] = [
    "SDXL 1.0",
    "sdxl 1.0",  # the filter ignores case: one base model, spelt as most of its models spell it
    "SDXL 1.0",
    "Pony",
    "Pony",
    "SD 1.5",
    "SD 1.5",
    "Illustrious",
    "flux",
    None,
    "",  # no base model
    5,  # a number: the filter, which compares text, never lists it
    {"name": "SDXL 1.0"},  # an object is no base model either, not even as its JSON text
    "L" * 101,  # longer than the filter takes: not offered
]
EXPECTED = [
    {"name": "SDXL 1.0", "count": 3},
    {"name": "Pony", "count": 2},  # a tie: by name, ignoring case
    {"name": "SD 1.5", "count": 2},
    {"name": "flux", "count": 1},
    {"name": "Illustrious", "count": 1},
]


def sha(i: int) -> str:
    return fake_sha(300 + i)


@pytest.fixture
async def library(client: Client, legacy: LegacyLibrary) -> Client:
    for i, base in enumerate(GIVEN):
        extra = {"description": f"model {i}"} | ({} if base is None else {"base_model": base})
        legacy.add_model(i + 1, hash_hex=sha(i), extra=extra)
    await migrate(client, legacy)
    return client


async def base_models(client: Client) -> list[dict[str, Any]]:
    status, body, _ = await call(client, "GET", BASE_MODELS)
    assert status == 200, body
    assert set(body) == {"base_models"}
    found: list[dict[str, Any]] = body["base_models"]
    return found


async def filter_total(client: Client, base_model: str) -> int:
    response = await client.get("/api/models", params={"base_model": base_model})
    body = await response.json()
    assert response.status == 200, body
    return int(body["total"])


async def test_base_models_are_listed_most_used_first_then_by_name(library: Client) -> None:
    assert await base_models(library) == EXPECTED


async def test_each_count_is_what_the_base_model_filter_lists(library: Client) -> None:
    found = await base_models(library)
    assert [await filter_total(library, b["name"]) for b in found] == [b["count"] for b in found]
    assert [await filter_total(library, b["name"].upper()) for b in found] == [
        b["count"] for b in found
    ]


@pytest.mark.parametrize(
    ("base_model", "total"),
    [
        ('{"name":"SDXL 1.0"}', 0),  # the JSON text of an object stored as base model
        ("5", 0),
        ("L" * 100, 0),
    ],
)
async def test_the_filter_lists_only_base_models_given_as_text(
    library: Client, base_model: str, total: int
) -> None:
    assert await filter_total(library, base_model) == total


async def test_the_list_follows_every_change(library: Client) -> None:
    status, _, _ = await call(
        library, "PATCH", f"/api/models/{sha(9)}", {"meta_json": {"base_model": "Flux"}}
    )
    assert status == 200
    status, _, _ = await call(
        library, "PATCH", f"/api/models/{sha(3)}", {"meta_json": {"base_model": None}}
    )
    assert status == 200
    status, _, _ = await call(library, "DELETE", f"/api/models/{sha(5)}")
    assert status == 200
    assert await base_models(library) == [
        {"name": "SDXL 1.0", "count": 3},
        {"name": "Flux", "count": 2},  # flux and Flux, one model each: the first by code point
        {"name": "Illustrious", "count": 1},
        {"name": "Pony", "count": 1},
        {"name": "SD 1.5", "count": 1},
    ]


async def test_an_empty_library_has_no_base_models(client: Client) -> None:
    assert await base_models(client) == []


async def test_the_path_is_not_read_as_a_model_hash(library: Client) -> None:
    # GET /api/models/{sha256} answers beside it, and a name close to it is no hash (400).
    assert (await call(library, "GET", f"/api/models/{sha(0)}"))[0] == 200
    status, body, _ = await call(library, "GET", f"{BASE_MODELS}x")
    assert status == 400, body
    assert (await library.head(BASE_MODELS)).status == 200


async def test_a_library_from_before_base_models_were_kept_lists_them(tmp_path: Path) -> None:
    db_path = tmp_path / "data" / "modelshelf.db"
    db_path.parent.mkdir()
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        conn.executescript(schema_before("each model's base"))
        conn.execute(
            "INSERT INTO models VALUES (?, NULL, 'Old', 'lora', 1, 1, ?)",
            (sha(1), '{"base_model": "Pony"}'),
        )
        conn.commit()
    storage = Storage(db_path)
    await storage.open()
    try:
        async with storage.read() as conn:
            assert await base_model_counts(conn) == [("Pony", 1)]
    finally:
        await storage.close()
