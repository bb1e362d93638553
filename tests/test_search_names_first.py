"""A search ranks first the model whose name is what was typed, then those whose name begins
with it as whole words, then with its last word begun (each group by name), then every other
match by bm25 (storage.search.name_tiers_sql). bm25 alone buried a model named exactly as
typed under models that repeat the word in their tags, trigger words and file names."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelshelf.storage import Storage, search
from modelshelf.storage.schema import MIGRATIONS
from tests.conftest import Client, migrate, shelf_of
from tests.editing import call
from tests.factories import LegacyLibrary, fake_sha, schema_before

TAGS = {1: "dragon", 2: "fantasy"}
# (legacy id, name, file, meta, tag ids): the word "dragon" everywhere in 1-3, once in 4-6.
MODELS: list[tuple[int, str, str, dict[str, Any], list[int]]] = [
    (1, "Fire Dragon", "dragon_dragon_v2", {"trigger_words": ["dragon", "dragon scales"]}, [1]),
    (2, "Red Dragon Style", "red_dragon", {"trigger_words": "dragon, red dragon"}, [1, 2]),
    (3, "Wyrm", "dragon", {"description": "dragon dragon dragon"}, [1]),
    (4, "Dragon", "d_v1", {"description": "A model of lizards with wings, scales and fire"}, []),
    (5, "Dragon Knight", "knight_v3", {"description": "Armour, swords and a dragon"}, [2]),
    (6, "Dragonfly Macro", "bugs", {"description": "Insects close up"}, []),
]


def full_width(text: str) -> str:
    """`text` in full-width letters, as a Japanese keyboard may type it."""
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


def sha(legacy_id: int) -> str:
    return fake_sha(900 + legacy_id)


@pytest.fixture
async def library(client: Client, legacy: LegacyLibrary) -> Client:
    for tag_id, name in TAGS.items():
        legacy.add_tag(tag_id, name)
    for legacy_id, name, file, meta, tags in MODELS:
        legacy.add_model(
            legacy_id,
            hash_hex=sha(legacy_id),
            name=name,
            type="lora",
            path=f"/m/lora/{file}.safetensors",
            extra=meta,
            tags=tags,
        )
    await migrate(client, legacy)
    return client


async def names(client: Client, query: str, **params: str) -> list[str]:
    response = await client.get("/api/models", params={"q": query, **params})
    body = await response.json()
    assert response.status == 200, body
    return [m["name"] for m in body["models"]]


def bm25_alone(client: Client, query: str) -> list[str]:
    """The names in the order bm25 alone gives, straight from the database file."""
    with contextlib.closing(sqlite3.connect(shelf_of(client).storage.path)) as conn:
        return [
            r[0]
            for r in conn.execute(
                f"SELECT m.name FROM model_search JOIN search_docs d ON d.id = model_search.rowid"
                f" JOIN models m ON m.sha256 = d.sha256 WHERE model_search MATCH ?"
                f" ORDER BY {search.rank_expression()}, model_search.rowid",
                (search.match_expression(search.query_words(query)),),
            )
        ]


@pytest.mark.parametrize("typed", ["dragon", "Dragon", "DRAGON", " dragon! ", full_width("dragon")])
async def test_the_model_named_as_typed_comes_first(library: Client, typed: str) -> None:
    assert bm25_alone(library, "dragon").index("Dragon") > 0  # the case is worth testing
    found = await names(library, typed)
    # Then the names that begin with it as a word, then as the start of one, then the rest
    # as bm25 ranks them.
    assert found[:3] == ["Dragon", "Dragon Knight", "Dragonfly Macro"]
    assert found[3:] == [n for n in bm25_alone(library, "dragon") if n in found[3:]]


@pytest.mark.parametrize("typed", ["d", "dr", "drag"])
async def test_names_that_begin_with_what_was_typed_come_first(library: Client, typed: str) -> None:
    found = await names(library, typed)
    assert set(found[:3]) == {"Dragon", "Dragon Knight", "Dragonfly Macro"}
    assert set(found[3:]) == {"Fire Dragon", "Red Dragon Style", "Wyrm"}


@pytest.mark.parametrize(
    ("typed", "first"),
    [
        ("dragon knight", "Dragon Knight"),
        ("Dragon-Knight", "Dragon Knight"),
        ("dragon kn", "Dragon Knight"),
        ("red dragon style", "Red Dragon Style"),
        ("fire", "Fire Dragon"),
    ],
)
async def test_a_name_of_several_words_typed_in_full_or_begun(
    library: Client, typed: str, first: str
) -> None:
    assert (await names(library, typed))[0] == first


async def test_a_name_that_repeats_a_word_typed_in_full_comes_first(library: Client) -> None:
    status, body, _ = await call(
        library, "PATCH", f"/api/models/{sha(6)}", {"name": "Dragon Dragon"}
    )
    assert status == 200, body
    assert (await names(library, "dragon dragon"))[0] == "Dragon Dragon"


async def test_the_names_rank_first_beside_a_filter_and_across_pages(library: Client) -> None:
    # Pages of two, read the first time and again (the order then comes from what is kept).
    for _ in range(2):
        pages = [
            await names(library, "drag", type="lora", limit="2", offset=str(offset))
            for offset in (0, 2, 4)
        ]
        assert set(pages[0] + pages[1][:1]) == {"Dragon", "Dragon Knight", "Dragonfly Macro"}
        assert len({n for page in pages for n in page}) == 6


async def test_a_renamed_model_ranks_by_its_new_name(library: Client) -> None:
    status, body, _ = await call(library, "PATCH", f"/api/models/{sha(4)}", {"name": "Lizard"})
    assert status == 200, body
    assert (await names(library, "dragon"))[0] == "Dragon Knight"  # begins with the word
    status, body, _ = await call(library, "PATCH", f"/api/models/{sha(3)}", {"name": "Dragon"})
    assert status == 200, body
    assert (await names(library, "dragon"))[0] == "Dragon"
    assert (await names(library, "lizard"))[0] == "Lizard"


async def test_a_library_from_before_keeps_its_names_as_typed_once_opened(
    tmp_path: Path,
) -> None:
    db_path = tmp_path / "data" / "modelshelf.db"
    db_path.parent.mkdir()
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        conn.executescript(schema_before("a model named"))
        conn.execute(
            "INSERT INTO models VALUES (?, NULL, 'Old  Friend_v2', 'lora', 1, 1, '{}')", (sha(1),)
        )
        conn.execute("INSERT INTO models VALUES (?, NULL, NULL, 'lora', 1, 1, '{}')", (sha(2),))
        conn.commit()
    storage = Storage(db_path)
    await storage.open()
    await storage.close()
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        keys = conn.execute("SELECT sha256, name_key FROM search_docs ORDER BY sha256").fetchall()
    assert sorted(keys) == sorted([(sha(1), "old friend v2"), (sha(2), None)])


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Dragon Knight", "dragon knight"),
        ("dragon_knight-v1.5", "dragon knight v1 5"),
        ("Café Noir", "café noir"),
        (full_width("LORA x"), "lora x"),
        ("Portrait Portrait v4", "portrait portrait v4"),
        ("!!!", None),
        (None, None),
    ],
)
def test_a_name_is_kept_as_the_words_a_person_types(name: str | None, key: str | None) -> None:
    assert search.name_key(name) == key
    if key is not None:
        assert search.name_key(key) == key


@pytest.mark.parametrize(
    ("name", "typed"),
    [
        ("Straße Nacht", "strasse"),
        ("Straße Nacht", "STRASSE"),
        ("\ufb01re dragon", "fire"),  # a ligature, as text copied from a PDF may hold
        (full_width("LORA Style"), "lora style"),
        (full_width("LORA Style"), full_width("lora")),
    ],
)
async def test_a_name_is_found_whatever_form_its_letters_take(
    library: Client, name: str, typed: str
) -> None:
    """The index holds its text folded as a query is (NFKC, then case folding): the query was
    folded and the text was not, and these names were found by nothing typed."""
    status, body, _ = await call(library, "PATCH", f"/api/models/{sha(6)}", {"name": name})
    assert status == 200, body
    assert name in await names(library, typed)


# Letters, marks, digits, separators and the characters the two word readers disagree on.
NAME_TEXT = st.text(
    st.sampled_from(
        [*"abcßdeéIς  _-.+/", *"\ufb01\u0301\ue000\uff21\uff42\u00b2\u0130\u2160\u3000"]
    ),
    min_size=1,
    max_size=12,
)


@given(name=NAME_TEXT, cut=st.integers(min_value=0, max_value=12))
@settings(max_examples=300, deadline=None)
def test_every_name_a_tier_finds_is_a_match(name: str, cut: int) -> None:
    """name_tiers_sql reads search_docs alone, without the index: what its key says begins the
    name must be a match of the same words in FTS5, or totals and pages would disagree."""
    key = search.name_key(name)
    if key is None:
        return
    typed = key[: max(1, len(key) - cut)]
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        conn.executescript("".join(sql + ";" for _, sql in MIGRATIONS))
        document = search.search_document(search.SearchSource(sha(1), name, {}))
        conn.execute("INSERT INTO model_search(rowid, name) VALUES (1, ?)", (document["name"],))
        found = conn.execute(
            "SELECT count(*) FROM model_search WHERE model_search MATCH ?",
            (search.match_expression(search.query_words(typed)),),
        ).fetchone()[0]
    assert found == 1, (name, key, typed)


@pytest.mark.parametrize(
    ("typed", "first"),
    [
        ("pony", ["Pony v1", "Pony v1a", "Pony v2", "Pony v10", "Pony XL 1.5", "Pony XL 1.10"]),
        ("pony v", ["Pony v1", "Pony v1a", "Pony v2", "Pony v10"]),
        ("pony v1", ["Pony v1", "Pony v1a", "Pony v10"]),
        ("pony xl 1", ["Pony XL 1.5", "Pony XL 1.10"]),
    ],
)
async def test_names_that_begin_with_what_was_typed_list_their_numbers_by_value(
    library: Client, typed: str, first: list[str]
) -> None:
    """As the library lists names by name (test_name_order): a collector keeps many versions
    of one model, and "v10" between "v1" and "v2" hides the newest."""
    renamed = ["Pony v10", "Pony XL 1.10", "Pony v2", "Pony XL 1.5", "Pony v1", "Pony v1a"]
    for legacy_id, name in enumerate(renamed, start=1):
        status, body, _ = await call(
            library, "PATCH", f"/api/models/{sha(legacy_id)}", {"name": name}
        )
        assert status == 200, body
    found = await names(library, typed)
    assert [n for n in found if n in first] == first
    assert found[: len(first)] == first, found


KEY_TEXT = st.text(st.sampled_from([*"ab 0129", "\u0663", "\u00e9"]), min_size=1, max_size=10)


@given(names=st.lists(KEY_TEXT, min_size=1, max_size=12), typed=KEY_TEXT)
@settings(max_examples=300, deadline=None)
def test_the_name_tiers_hold_what_their_rules_say_in_number_order(
    names: list[str], typed: str
) -> None:
    """The tiers are read as ranges of a key whose numbers are written by value; whatever the
    digits (zeros, a digit of another script, a number begun), each tier holds exactly the
    names its rule says, ordered as the name order reads them."""
    words = search.typed_words(typed)
    if not words:
        return  # no words, no tiers (a search of punctuation alone lists by name)
    keys = {doc_id: search.name_key(name) for doc_id, name in enumerate(names, start=1)}
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        conn.executescript("".join(sql + ";" for _, sql in MIGRATIONS))
        for doc_id, key in keys.items():
            conn.execute(
                "INSERT INTO search_docs(id, sha256, stale, name_key, name_rank)"
                " VALUES (?, ?, 0, ?, ?)",
                (doc_id, sha(doc_id), key, key and search.name_rank(key)),
            )
        sql, params = search.name_tiers_sql(words, None)
        found = [r[0] for r in conn.execute(f"SELECT doc_id FROM ({sql}) ORDER BY score", params)]
    typed_key = " ".join(words)
    tiers: list[list[int]] = [[], [], []]
    for doc_id, key in keys.items():
        if key is None or not key.startswith(typed_key):
            continue
        rest = key[len(typed_key) :]
        tiers[0 if not rest else 1 if rest[0] == " " else 2].append(doc_id)
    by_rank = [sorted(t, key=lambda i: (search.name_rank(keys[i] or ""), i)) for t in tiers]
    assert found == [i for tier in by_rank for i in tier], (names, typed)
