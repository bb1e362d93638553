"""GET /api/models?meta_keys=...: a page whose records carry only the meta_json keys asked for
(a grid of cards needs `base_model`, not each model's Civitai record); without the parameter,
every record carries all of its meta_json, as the contract says."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Client, migrate
from tests.factories import LegacyLibrary, fake_sha

CIVITAI = {"id": 7, "images": [{"url": "https://example.test/1.jpeg", "meta": {"seed": 1}}]}
METAS: list[dict[str, Any]] = [
    {"base_model": "Pony", "description": "first", "civitai": CIVITAI},
    {"description": "second, with no base model"},
    {"base_model": "SDXL 1.0", "trigger_words": ["neon"], "civitai": CIVITAI},
]


@pytest.fixture
async def library(client: Client, legacy: LegacyLibrary) -> Client:
    for i, meta in enumerate(METAS):
        legacy.add_model(i + 1, hash_hex=fake_sha(700 + i), name=f"model {i}", extra=meta)
    await migrate(client, legacy)
    return client


async def metas(client: Client, **params: str) -> list[dict[str, Any]]:
    response = await client.get("/api/models", params={"sort": "name", **params})
    body = await response.json()
    assert response.status == 200, body
    return [m["meta_json"] for m in body["models"]]


@pytest.mark.parametrize(
    ("meta_keys", "expected"),
    [
        ("base_model", [{"base_model": "Pony"}, {}, {"base_model": "SDXL 1.0"}]),
        (
            "base_model, trigger_words",
            [{"base_model": "Pony"}, {}, {"base_model": "SDXL 1.0", "trigger_words": ["neon"]}],
        ),
        ("", [{}, {}, {}]),
        (",,", [{}, {}, {}]),
        ("not_there", [{}, {}, {}]),
    ],
)
async def test_records_carry_only_the_meta_keys_asked_for(
    library: Client, meta_keys: str, expected: list[dict[str, Any]]
) -> None:
    assert await metas(library, meta_keys=meta_keys) == expected


async def test_without_meta_keys_records_carry_all_of_meta_json(library: Client) -> None:
    assert await metas(library) == METAS


async def test_the_rest_of_the_record_and_the_page_are_unchanged(library: Client) -> None:
    whole = await (await library.get("/api/models", params={"sort": "name"})).json()
    cut = await (
        await library.get("/api/models", params={"sort": "name", "meta_keys": "base_model"})
    ).json()
    for record in [*whole["models"], *cut["models"]]:
        del record["meta_json"]
    assert cut == whole


async def test_a_model_read_alone_keeps_all_of_its_meta_json(library: Client) -> None:
    response = await library.get(f"/api/models/{fake_sha(700)}", params={"meta_keys": ""})
    assert response.status == 200
    assert (await response.json())["meta_json"] == METAS[0]


async def test_meta_keys_longer_than_a_filter_is_refused(library: Client) -> None:
    response = await library.get("/api/models", params={"meta_keys": "k" * 101})
    body = await response.json()
    assert response.status == 400, body
    assert "meta_keys" in body["detail"]
