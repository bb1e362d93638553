"""A JSON body that gives a key twice in one object, through the real app: a 400 naming the
key, for every endpoint that reads a JSON body, and nothing changes. (Read silently as the last
value before: a client's bug, or a body built by joining two, kept one of its values unseen.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelshelf.web.routes import ENDPOINTS
from tests.conftest import Client
from tests.editing import A, assert_error, build, get_model, snapshot
from tests.factories import LegacyLibrary

JSON_BODIES = [e for e in ENDPOINTS if e.body is not None and not e.multipart]
PATH_VALUES = {"{sha256}": A, "{id}": "1"}


@pytest.fixture
async def library(client: Client, legacy: LegacyLibrary) -> Client:
    await build(client, legacy)
    return client


async def send(client: Client, method: str, path: str, text: str) -> tuple[int, Any]:
    response = await client.request(
        method, path, data=text.encode(), headers={"Content-Type": "application/json"}
    )
    return response.status, await response.json()


def filled(path: str) -> str:
    for name, value in PATH_VALUES.items():
        path = path.replace(name, value)
    return path


@pytest.mark.parametrize("endpoint", JSON_BODIES, ids=[f"{e.method} {e.path}" for e in JSON_BODIES])
async def test_a_key_given_twice_is_400_naming_it_and_changes_nothing(
    library: Client, data_dir: Path, endpoint: Any
) -> None:
    key = next(iter(endpoint.body.model_fields))
    before = snapshot(data_dir)
    status, answer = await send(
        library, endpoint.method, filled(endpoint.path), f'{{"{key}": null, "{key}": null}}'
    )
    assert status == 400, answer
    assert_error(answer, "Bad Request")
    assert f'"{key}"' in answer["detail"] and "twice" in answer["detail"], answer
    assert snapshot(data_dir) == before


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "Evil", "name": "Good"}',
        '{"name": "Good", "meta_json": {"a": 1, "b": 2, "a": 3}}',
        '{"meta_json": {"outer": [{"a": 1}, {"a": 2, "a": 2}]}}',
        '{"name": "Good", "na\\u006de": "Evil"}',  # the same key once its escape is read
        # Long enough to be read in the reads pool (parsing.INLINE_BODY_BYTES), not inline.
        json.dumps({"meta_json": {"notes": "n" * 100_000}})[:-1] + ', "meta_json": {}}',
    ],
    ids=["top-level", "nested", "in-a-list", "escaped", "long-body"],
)
async def test_a_patch_with_a_key_given_twice_is_refused_wherever_it_is(
    library: Client, data_dir: Path, text: str
) -> None:
    before = snapshot(data_dir)
    status, answer = await send(library, "PATCH", f"/api/models/{A}", text)
    assert status == 400, answer
    assert "twice" in answer["detail"], answer
    assert snapshot(data_dir) == before


async def test_the_same_key_in_different_objects_is_taken(library: Client) -> None:
    body = {"name": "Good", "meta_json": {"name": "inner", "nested": {"name": 1, "k": 2}}}
    status, answer = await send(library, "PATCH", f"/api/models/{A}", json.dumps(body))
    assert status == 200, answer
    record, _ = await get_model(library, A)
    assert record["name"] == "Good"
    assert record["meta_json"]["nested"] == {"name": 1, "k": 2}


async def test_malformed_json_is_still_described_as_such(library: Client) -> None:
    status, answer = await send(library, "PATCH", f"/api/models/{A}", '{"name": "a", "name"')
    assert status == 400, answer
    assert "malformed JSON" in answer["detail"], answer
