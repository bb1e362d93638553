"""Shared by the editing tests: a small real library brought in by stage 1, and views of the
data directory (rows of every table, every file's bytes) to prove what changed and what not."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from modelshelf import crashpoints
from modelshelf.domain.bulk_tagging import MAX_MODELS
from modelshelf.errors import StorageFull
from modelshelf.web.openapi import build_openapi
from tests.conftest import Client, migrate
from tests.factories import LegacyLibrary, fake_sha

A = fake_sha(101)
B = fake_sha(102)
UNKNOWN = fake_sha(999)

# Bad bodies of a request naming many models by a list of hashes and nothing else
# (POST /api/models/delete, /api/models/restore).
BAD_HASH_LISTS = [
    pytest.param({}, id="empty"),
    pytest.param({"hashes": []}, id="no-hash"),
    pytest.param({"hashes": [fake_sha(7000 + i) for i in range(MAX_MODELS + 1)]}, id="too-many"),
    pytest.param({"hashes": A}, id="hashes-text"),
    pytest.param({"hashes": [5]}, id="hash-number"),
    pytest.param({"hashes": ["xyz"]}, id="hash-not-hex"),
    pytest.param({"hashes": [A, B + "0"]}, id="hash-long"),
    pytest.param({"hashes": [A], "type": "lora"}, id="unknown-field"),
    pytest.param([A], id="list"),
    pytest.param(None, id="null"),
]


def assert_hash_list_schema(name: str) -> None:
    """The published schema `name` is a list of 1 to MAX_MODELS hashes and nothing else."""
    schema = build_openapi()["components"]["schemas"][name]
    assert schema["additionalProperties"] is False
    assert set(schema["properties"]) == {"hashes"}
    hashes = schema["properties"]["hashes"]
    assert (hashes["minItems"], hashes["maxItems"]) == (1, MAX_MODELS)


TABLES = (
    "models",
    "tags",
    "model_tags",
    "pending_import",
    "pending_model_tags",
    "images",
    "model_history",
    "model_search",
)


def width_for(i: int) -> int:
    """Image i of a test model is (40 + 4i) x 30, so its files can be told apart by size."""
    return 40 + 4 * i


async def build(client: Client, legacy: LegacyLibrary, images: int = 3) -> None:
    """Model A ("Alpha Anime", lora, tags lora+anime, `images` images) and model B ("Beta",
    checkpoint, tag checkpoint, one image)."""
    legacy.add_tag(1, "lora")
    legacy.add_tag(2, "anime")
    legacy.add_tag(3, "checkpoint")
    pictures = [legacy.image(f"a{i}.png", width=width_for(i), height=30) for i in range(images)]
    legacy.add_model(
        1,
        hash_hex=A,
        type="lora",
        name="Alpha Anime",
        tags=[1, 2],
        images=pictures,
        extra={"description": "bright colours", "trigger_words": ["alpha"], "nested": {"k": 1}},
    )
    legacy.add_model(
        2,
        hash_hex=B,
        type="checkpoint",
        name="Beta",
        tags=[3],
        images=[legacy.image("b0.png", width=90, height=30)],
    )
    await migrate(client, legacy)


def rows(data_dir: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with sqlite3.connect(data_dir / "modelshelf.db") as conn:
        return [tuple(r) for r in conn.execute(sql, params)]


def snapshot(data_dir: Path) -> dict[str, Any]:
    """Rows of every table an edit may change and every file's bytes under images/."""
    files = {
        str(p.relative_to(data_dir)): p.read_bytes()
        for p in sorted((data_dir / "images").rglob("*"))
        if p.is_file()
    }
    return {
        "rows": {t: sorted(rows(data_dir, f"SELECT * FROM {t}")) for t in TABLES},
        "search": sorted(rows(data_dir, "SELECT rowid, * FROM model_search")),
        "files": files,
    }


async def get_model(client: Client, sha256: str) -> tuple[dict[str, Any], str]:
    response = await client.get(f"/api/models/{sha256}")
    body: dict[str, Any] = await response.json()
    assert response.status == 200, body
    return body, response.headers["ETag"]


async def call(
    client: Client, method: str, path: str, body: Any = None, **headers: str
) -> tuple[int, Any, Any]:
    """(status, JSON body, headers) of one request."""
    response = await client.request(method, path, json=body, headers=headers)
    return response.status, await response.json(), response.headers


def tag_names(record: dict[str, Any]) -> list[str]:
    return [t["name"] for t in record["tags"]]


def assert_error(body: Any, reason: str) -> None:
    assert isinstance(body, dict)
    assert body["error"] == reason
    assert isinstance(body["detail"], str) and body["detail"]


async def assert_refused_unchanged(client: Client, data_dir: Path, path: str, body: Any) -> None:
    """POST `body` to `path` is a 400 with the JSON error body, and nothing changed."""
    before = snapshot(data_dir)
    status, answer, _ = await call(client, "POST", path, body)
    assert status == 400, answer
    assert_error(answer, "Bad Request")
    assert snapshot(data_dir) == before


async def history(client: Client, sha: str) -> list[dict[str, Any]]:
    """A model's history entries, newest first."""
    status, body, _ = await call(client, "GET", f"/api/models/{sha}/history")
    assert status == 200, body
    entries: list[dict[str, Any]] = body["entries"]
    return entries


async def listed(client: Client, params: dict[str, str]) -> list[str]:
    """The hashes GET /api/models lists for `params`, sorted."""
    response = await client.get("/api/models", params=params)
    body = await response.json()
    assert response.status == 200, body
    return sorted(m["sha256"] for m in body["models"])


async def tag_counts(client: Client) -> dict[str, int]:
    """Tag name -> how many models carry it, as GET /api/tags says."""
    body = await (await client.get("/api/tags")).json()
    return {t["name"]: t["models"] for t in body["tags"]}


def disk_full_before_commit() -> contextlib.AbstractContextManager[None]:
    """The next change fails just before its commit, as on a full disk (507)."""

    def disk_full() -> None:
        raise StorageFull("the disk is full (test)")

    return crashpoints.hooked("change.before_commit", disk_full)
