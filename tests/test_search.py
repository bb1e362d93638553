"""GET /api/models with q, base_model, missing, sort and order through the real app: full text
over name, file names, description, trigger words and tags, words as prefixes, best matches
first, an index kept in step by every change, and unknown query parameters ignored."""

from __future__ import annotations

import contextlib
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelshelf.storage import Storage
from modelshelf.storage.search import description_of, match_expression, query_words
from modelshelf.web.routes import ENDPOINTS
from tests.conftest import Client, migrate
from tests.editing import call
from tests.factories import LegacyLibrary, fake_sha, make_model_file

# (legacy id, name, type, path, size, created_at, meta, tag ids)
MODELS: list[tuple[int, str, str, str, int | None, int, dict[str, Any], list[int]]] = [
    (
        1,
        "Dreamshaper",
        "checkpoint",
        "/m/ckpt/dreamshaper_8.safetensors",
        2000,
        3,
        {"description": "A versatile model", "base_model": "SD 1.5"},
        [1],
    ),
    (
        2,
        "Pixel Art XL",
        "lora",
        "/m/lora/pixel-art-xl.safetensors",
        100,
        1,
        {
            "description": "Retro sprites, crisp pixels",
            "trigger_words": ["pixel art", "16bit"],
            "base_model": "SDXL 1.0",
        },
        [2, 3],
    ),
    (
        3,
        "Café Noir",
        "lora",
        "/m/lora/noir_style.safetensors",
        None,
        2,
        {
            "description": "Film noir lighting",
            "trigger_words": "noirstyle, dramatic",
            "base_model": "sdxl 1.0",
        },
        [2],
    ),
    (
        4,
        "Anime Lineart",
        "lora",
        "/m/lora/lineart.pt",
        300,
        5,
        {"description": "Clean lines for anime", "base_model": "SD 1.5"},
        [2, 4],
    ),
    (
        5,
        "Realistic Vision",
        "checkpoint",
        "/m/ckpt/realvis.ckpt",
        5000,
        4,
        {"description": "Photographs of people; mentions pixel once"},
        [1],
    ),
]
TAGS = {1: "checkpoint", 2: "lora", 3: "retro", 4: "anime"}


def sha(legacy_id: int) -> str:
    return fake_sha(200 + legacy_id)


async def build_library(client: Client, legacy: LegacyLibrary) -> None:
    for tag_id, name in TAGS.items():
        legacy.add_tag(tag_id, name)
    for legacy_id, name, type_, path, size, created, meta, tags in MODELS:
        legacy.add_model(
            legacy_id,
            hash_hex=sha(legacy_id),
            name=name,
            type=type_,
            path=path,
            size_bytes=size,
            created_at=created,
            extra=meta,
            tags=tags,
        )
    await migrate(client, legacy)


@pytest.fixture
async def library(client: Client, legacy: LegacyLibrary) -> Client:
    await build_library(client, legacy)
    return client


async def search(client: Client, query: str | dict[str, str]) -> list[str]:
    """Names of the models a listing answers, in order."""
    params = {"q": query} if isinstance(query, str) else query
    response = await client.get("/api/models", params=params)
    body = await response.json()
    assert response.status == 200, body
    assert body["total"] == len(body["models"])
    return [m["name"] for m in body["models"]]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("dreamshaper", ["Dreamshaper"]),  # name
        ("realvis", ["Realistic Vision"]),  # file name
        ("ckpt", ["Dreamshaper", "Realistic Vision"]),  # folder in the path
        ("versatile", ["Dreamshaper"]),  # description
        ("16bit", ["Pixel Art XL"]),  # trigger words, a list
        ("noirstyle", ["Café Noir"]),  # trigger words, a string
        ("retro", ["Pixel Art XL"]),  # tags (and description: "Retro sprites")
        ("lineart", ["Anime Lineart"]),
    ],
)
async def test_q_searches_name_files_description_trigger_words_and_tags(
    library: Client, query: str, expected: list[str]
) -> None:
    assert sorted(await search(library, query)) == sorted(expected)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("dream", ["Dreamshaper"]),
        ("DREAM", ["Dreamshaper"]),
        ("pix", ["Pixel Art XL", "Realistic Vision"]),
        ("pixel art", ["Pixel Art XL"]),  # every word must match
        ("art pixel", ["Pixel Art XL"]),  # in any order
        ("cafe", ["Café Noir"]),  # accents do not matter
        ("CAFÉ", ["Café Noir"]),
        ("dreamshaper_8", ["Dreamshaper"]),  # _ separates words, as in the index
        ("pixel-art-xl", ["Pixel Art XL"]),
        ("nothing here", []),
        ("ream", []),  # prefixes, not substrings
    ],
)
async def test_words_match_as_prefixes(library: Client, query: str, expected: list[str]) -> None:
    assert sorted(await search(library, query)) == sorted(expected)


@pytest.mark.parametrize(
    "query",
    [
        sha(1)[:10],  # AutoV2, as an A1111 picture's "Model hash" gives it
        sha(1)[:10].upper(),  # as Civitai shows it
        sha(1),
        sha(1).upper(),
    ],
)
async def test_a_model_is_found_by_the_start_of_its_sha256(library: Client, query: str) -> None:
    assert await search(library, query) == ["Dreamshaper"]


@pytest.mark.parametrize("length", [1, 2, 3, 9])
async def test_a_short_start_of_a_hash_finds_nothing_by_it(library: Client, length: int) -> None:
    # The first digits of a hash are no name: "be" or "2" typed must not find a model by it.
    assert "Dreamshaper" not in await search(library, sha(1)[:length])


async def test_a_hash_with_another_word_is_full_text(library: Client) -> None:
    assert await search(library, f"dreamshaper {sha(1)[:10]}") == []


async def test_a_hash_narrowed_by_a_filter(library: Client) -> None:
    assert await search(library, {"q": sha(1)[:12], "type": "checkpoint"}) == ["Dreamshaper"]
    assert await search(library, {"q": sha(1)[:12], "type": "lora"}) == []


async def test_best_matches_come_first(library: Client) -> None:
    # "pixel": the name and trigger words of one, a passing mention in another's description.
    assert await search(library, "pixel") == ["Pixel Art XL", "Realistic Vision"]
    # "anime": the tag and description of Anime Lineart, the name too: it ranks first.
    assert (await search(library, "anime"))[0] == "Anime Lineart"


async def test_a_sort_given_with_q_orders_the_matches_by_it(library: Client) -> None:
    found = await search(library, {"q": "pixel", "sort": "name", "order": "desc"})
    assert found == ["Realistic Vision", "Pixel Art XL"]


@pytest.mark.parametrize(
    "query",
    [
        '"',
        '""',
        "*",
        "a*",
        "AND",
        "OR",
        "NOT",
        "pixel AND",
        "(",
        ")",
        "(pixel",
        ":",
        "name:x",
        "NEAR(a b)",
        "-pixel",
        "^pixel",
        "{name}: x",
        "'",
        "\\",
        "pixel OR noir",
        "a + b",
        "🙂",
        "\u200b",
        "x" * 100,
        "%",
        "_",
        "NEAR",
        "col:",
        '" OR "" OR "',
    ],
)
async def test_a_query_is_never_fts_syntax(library: Client, query: str) -> None:
    await search(library, query)  # 200, whatever it holds


async def test_a_query_without_words_filters_nothing(library: Client) -> None:
    assert len(await search(library, "%*()")) == len(MODELS)


@given(text=st.text(max_size=60))
@settings(max_examples=300, deadline=None)
def test_any_text_makes_a_valid_fts_query(text: str) -> None:
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        conn.execute(
            "CREATE VIRTUAL TABLE t USING fts5(a, tokenize = 'unicode61 remove_diacritics 2')"
        )
        conn.execute("INSERT INTO t VALUES ('some text')")
        words = query_words(text)
        if words:
            conn.execute("SELECT * FROM t WHERE t MATCH ?", (match_expression(words),)).fetchall()


# --- filters and order --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"base_model": "SD 1.5"}, ["Anime Lineart", "Dreamshaper"]),
        ({"base_model": "sdxl 1.0"}, ["Café Noir", "Pixel Art XL"]),  # case does not matter
        ({"base_model": "SDXL"}, []),
        ({"base_model": "SD 1.5", "type": "lora"}, ["Anime Lineart"]),
        ({"base_model": "SDXL 1.0", "q": "noir"}, ["Café Noir"]),
        # Brought in by stage 1 and never found by a scan: no present location, so missing
        # (the contract: "a model with no present location answers missing: true").
        ({"missing": "false"}, []),
        ({"missing": "true"}, [m[1] for m in MODELS]),
        ({"tag": "lora", "q": "clean"}, ["Anime Lineart"]),
        ({"tag": "LoRA", "q": "clean"}, ["Anime Lineart"]),  # case does not matter either
    ],
)
async def test_base_model_and_missing_filter(
    library: Client, params: dict[str, str], expected: list[str]
) -> None:
    assert sorted(await search(library, params)) == sorted(expected)


@pytest.mark.parametrize(
    ("sort", "order", "expected"),
    [
        (
            None,
            None,
            ["Anime Lineart", "Café Noir", "Dreamshaper", "Pixel Art XL", "Realistic Vision"],
        ),
        (
            "name",
            "desc",
            ["Realistic Vision", "Pixel Art XL", "Dreamshaper", "Café Noir", "Anime Lineart"],
        ),
        (
            "created_at",
            "asc",
            ["Pixel Art XL", "Café Noir", "Dreamshaper", "Realistic Vision", "Anime Lineart"],
        ),
        (
            "created_at",
            "desc",
            ["Anime Lineart", "Realistic Vision", "Dreamshaper", "Café Noir", "Pixel Art XL"],
        ),
        # A model without a size comes last either way.
        (
            "size_bytes",
            "asc",
            ["Pixel Art XL", "Anime Lineart", "Dreamshaper", "Realistic Vision", "Café Noir"],
        ),
        (
            "size_bytes",
            "desc",
            ["Realistic Vision", "Dreamshaper", "Anime Lineart", "Pixel Art XL", "Café Noir"],
        ),
    ],
)
async def test_sort_and_order(
    library: Client, sort: str | None, order: str | None, expected: list[str]
) -> None:
    params = {k: v for k, v in {"sort": sort, "order": order}.items() if v is not None}
    assert await search(library, params) == expected


async def test_pages_of_a_search_cover_the_matches_once(library: Client) -> None:
    whole = await search(library, {"q": "l", "limit": "500"})
    pages = []
    for offset in range(0, len(whole), 2):
        response = await library.get(
            "/api/models", params={"q": "l", "limit": "2", "offset": str(offset)}
        )
        body = await response.json()
        assert body["total"] == len(whole)
        pages += [m["name"] for m in body["models"]]
    assert pages == whole


# --- kept in step -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "body", "query", "found"),
    [
        ("PATCH", f"/api/models/{sha(1)}", {"name": "Nightmare"}, "nightmare", ["Nightmare"]),
        ("PATCH", f"/api/models/{sha(1)}", {"name": "Nightmare"}, "dreamshaper", ["Nightmare"]),
        ("PATCH", f"/api/models/{sha(1)}", {"meta_json": {"description": None}}, "versatile", []),
        (
            "PATCH",
            f"/api/models/{sha(1)}",
            {"meta_json": {"trigger_words": ["zebra"]}},
            "zeb",
            ["Dreamshaper"],
        ),
        ("PUT", f"/api/models/{sha(1)}/tags", {"tags": ["Surreal"]}, "surreal", ["Dreamshaper"]),
        ("PUT", f"/api/models/{sha(2)}/tags", {"tags": []}, "retro", ["Pixel Art XL"]),
        ("PATCH", "/api/tags/3", {"name": "vintage"}, "vintage", ["Pixel Art XL"]),
        ("DELETE", "/api/tags/4", None, "anime", ["Anime Lineart"]),
        ("DELETE", "/api/tags/1", None, "checkpoint", []),
        ("DELETE", f"/api/models/{sha(2)}", None, "pixel", ["Realistic Vision"]),
    ],
)
async def test_the_index_follows_every_change(
    library: Client,
    method: str,
    path: str,
    body: Any,
    query: str,
    found: list[str],
) -> None:
    status, answer, _ = await call(library, method, path, body)
    assert status == 200, answer
    assert sorted(await search(library, query)) == sorted(found)


async def test_a_restore_puts_the_old_words_back_in_the_index(library: Client) -> None:
    await call(library, "PATCH", f"/api/models/{sha(1)}", {"name": "Nightmare"})
    _, history, _ = await call(library, "GET", f"/api/models/{sha(1)}/history")
    await call(
        library, "POST", f"/api/models/{sha(1)}/history/{history['entries'][0]['id']}/restore"
    )
    assert await search(library, "nightmare") == []
    assert await search(library, "dreamshaper") == ["Dreamshaper"]


async def test_a_change_that_fails_leaves_the_index_as_it_was(library: Client) -> None:
    status, _, _ = await call(
        library, "PATCH", f"/api/models/{sha(1)}", {"name": "Nightmare"}, **{"If-Match": '"0"'}
    )
    assert status == 412
    assert await search(library, "nightmare") == []


async def test_an_imported_model_is_found(
    client: Client, legacy: LegacyLibrary, models_dir: Path
) -> None:
    make_model_file(models_dir / "unicorn.safetensors", seed=1)
    legacy.add_model(9, path=str(models_dir / "unicorn.safetensors"), name="Unicorn")
    await migrate(client, legacy)
    assert await search(client, "unicorn") == []
    assert (await call(client, "POST", "/api/migration/import_a_model", {"id": 9}))[0] == 200
    assert await search(client, "unicorn") == ["Unicorn"]


async def test_an_existing_library_is_indexed_when_the_index_is_created(tmp_path: Path) -> None:
    db_path = tmp_path / "data" / "modelshelf.db"
    db_path.parent.mkdir(parents=True)
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        conn.executescript(
            "CREATE TABLE models(sha256 TEXT PRIMARY KEY, path TEXT, name TEXT, type TEXT,"
            " size_bytes INTEGER, created_at INTEGER, meta_json TEXT);"
            "CREATE TABLE tags(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);"
            "CREATE TABLE model_tags(model_hash TEXT REFERENCES models(sha256) ON DELETE CASCADE,"
            " tag_id INTEGER REFERENCES tags(id), PRIMARY KEY(model_hash, tag_id));"
        )
        conn.execute(
            "INSERT INTO models VALUES (?, '/m/old.safetensors', 'Old Friend', 'lora', 1, 1,"
            ' \'{"description": "kept since 2023"}\')',
            (sha(1),),
        )
        conn.execute(
            "INSERT INTO models VALUES (?, NULL, 'Broken', NULL, NULL, NULL, '{oops')", (sha(2),)
        )
        conn.execute("INSERT INTO tags VALUES (1, 'vintage')")
        conn.execute("INSERT INTO model_tags VALUES (?, 1)", (sha(1),))
        conn.commit()

    storage = Storage(db_path)
    await storage.open()
    await storage.close()

    with contextlib.closing(sqlite3.connect(db_path)) as conn:

        def match(query: str) -> list[str]:
            return [
                r[0]
                for r in conn.execute(
                    "SELECT d.sha256 FROM model_search s JOIN search_docs d ON d.id = s.rowid"
                    " WHERE model_search MATCH ?",
                    (match_expression(query_words(query)),),
                )
            ]

        assert match("vintage") == match("2023") == match("friend") == [sha(1)]
        assert match("broken") == [sha(2)]
        assert conn.execute("SELECT count(*) FROM search_docs WHERE stale = 1").fetchone() == (0,)


ALL_BY_NAME = ["Anime Lineart", "Café Noir", "Dreamshaper", "Pixel Art XL", "Realistic Vision"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"tag": ""}, ALL_BY_NAME),
        ({"type": ""}, ALL_BY_NAME),
        ({"base_model": ""}, ALL_BY_NAME),
        ({"q": "", "type": "", "tag": "", "base_model": ""}, ALL_BY_NAME),
        (
            {"q": "", "type": "", "tag": "lora", "base_model": ""},
            [*ALL_BY_NAME[:2], "Pixel Art XL"],
        ),
        ({"q": "pixel", "type": "lora", "tag": "", "base_model": ""}, ["Pixel Art XL"]),
    ],
    ids=["tag", "type", "base-model", "all-empty", "tag-given", "q-and-type-given"],
)
async def test_a_filter_sent_empty_filters_nothing_as_an_empty_q_does(
    library: Client, params: dict[str, str], expected: list[str]
) -> None:
    # A page's form (or URLSearchParams over it) sends every field, filled or not; no type,
    # tag or base model the listings offer is empty, so an empty one can only mean "any".
    assert await search(library, params) == expected


NAMED = [n for n in ALL_BY_NAME if n != "Pixel Art XL"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, [*NAMED, None]),
        ({"sort": "name"}, [*NAMED, None]),
        ({"order": "desc"}, [*NAMED[::-1], None]),
        ({"sort": "name", "order": "desc"}, [*NAMED[::-1], None]),
        ({"type": "lora"}, ["Anime Lineart", "Café Noir", None]),
        ({"tag": "lora", "order": "desc"}, ["Café Noir", "Anime Lineart", None]),
    ],
    ids=["default", "name", "default-desc", "name-desc", "type", "tag-desc"],
)
async def test_a_model_without_a_name_comes_last_in_the_name_order_either_way(
    library: Client, params: dict[str, str], expected: list[str | None]
) -> None:
    # "Models without the value come last either way" holds for the name too (a legacy row or
    # a PATCH may leave it NULL), in the listing's default order above all.
    status, answer, _ = await call(library, "PATCH", f"/api/models/{sha(2)}", {"name": None})
    assert (status, answer["name"]) == (200, None)
    assert await search(library, params) == expected


# --- unknown query parameters -------------------------------------------------------------------


def _concrete(path: str, job_id: str) -> str:
    values = {
        "sha256": sha(1),
        "filename": f"{sha(1)}_0.webp",
        "id": "1",
        "job_id": job_id,
        "version": "1",  # any version answers with the current file
        "asset": "app.css",
    }
    return re.sub(r"{(\w+)}", lambda m: values[m[1]], path)


@pytest.mark.parametrize("path", sorted({e.path for e in ENDPOINTS if e.method == "GET"}), ids=str)
async def test_unknown_query_parameters_are_ignored_on_every_get(
    client: Client, legacy: LegacyLibrary, path: str
) -> None:
    legacy.add_tag(1, "t")
    legacy.add_model(1, hash_hex=sha(1), tags=[1], images=[legacy.image("a.png")])
    legacy.add_model(2, images=[legacy.image("p.png")])  # pending 2... and 1 is the model
    await migrate(client, legacy)
    ended = await client.post(  # a job that ended, for the job endpoints
        "/api/migration/import_models", json={"ids": [404]}, headers={"Prefer": "respond-async"}
    )
    job_id = (await ended.json())["job"]["id"]
    await (await client.get(f"/api/jobs/{job_id}/events")).read()
    url = _concrete(path, job_id).replace("/api/images/pending/1", "/api/images/pending/2")
    plain = await client.get(url)
    busted = await client.get(url, params={"rev": "12", "v": "x", "_": "", "quality": "low"})
    assert plain.status == 200, await plain.text()
    assert busted.status == 200, await busted.text()


async def test_known_query_parameters_are_still_validated(library: Client) -> None:
    response = await library.get("/api/models", params={"limit": "0", "rev": "1"})
    assert response.status == 400


LONG = " ".join(f"w{i}" for i in range(200))


@pytest.mark.parametrize(
    ("meta", "expected"),
    [
        ({"description": LONG}, LONG),  # a person's own description is searched whole
        ({"a1111": {"description": LONG}}, " ".join(LONG.split()[:60])),
        ({"civitai": {"model": {"description": f"<p>{LONG}</p>"}}}, " ".join(LONG.split()[:60])),
        ({"civitai": {"description": "<b>tabby</b> &amp; fur"}}, "tabby & fur"),
        ({"description": " ", "file_metadata": {"modelspec.description": "ink"}}, "ink"),
        ({"civitai": {"description": 5}}, None),
    ],
    ids=["own-whole", "a1111-opening", "civitai-model-opening", "markup", "blank-own", "no-text"],
)
def test_a_description_from_other_tools_is_searched_by_its_opening_words(
    meta: dict[str, Any], expected: str | None
) -> None:
    found = description_of(meta)
    assert (found.strip() if found else found) == expected
