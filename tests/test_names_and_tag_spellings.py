"""What a client may call a model, a type and a tag, through the real app: names and types
trimmed, never blank or holding control or invisible characters; a tag name in two Unicode
spellings, or in another case than a stage-1 tag's, is that one tag. (Many cases found by an
audit of client input.)"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelshelf.domain.tagging import MAX_TAG_NAME
from modelshelf.web.edit_bodies import MAX_MODEL_NAME, MAX_MODEL_TYPE
from tests.conftest import Client, migrate
from tests.editing import A, B, assert_error, build, call, get_model, snapshot
from tests.factories import LegacyLibrary, fake_sha


@pytest.fixture
async def library(client: Client, legacy: LegacyLibrary) -> Client:
    await build(client, legacy)
    return client


async def assert_refused(
    client: Client, data_dir: Path, method: str, path: str, body: Any, status: int = 400
) -> dict[str, Any]:
    """`method path` with `body` is refused with the JSON error body and changes nothing."""
    before = snapshot(data_dir)
    got, answer, _ = await call(client, method, path, body)
    assert got == status, answer
    assert_error(answer, "Bad Request" if status == 400 else "Conflict")
    assert snapshot(data_dir) == before
    result: dict[str, Any] = answer
    return result


async def tag_names(client: Client) -> list[str]:
    return [t["name"] for t in (await (await client.get("/api/tags")).json())["tags"]]


# --- a model's name and type ----------------------------------------------------------------

BAD_TEXT = {
    "empty": "",
    "spaces": "   ",
    "tab": "\t",
    "ideographic-space": "\u3000",
    "newline": "Alpha\nInjected",
    "ansi-escape": "Alpha\x1b[31mRed",
    "del": "Alpha\x7f",
    "c1-nel": "Alpha\x85",
    "zero-width-space": "Alpha\u200b",
    "right-to-left-override": "a\u202eb",
    "hangul-filler": "\u3164",
    "braille-blank-and-space": "\u2800 \u2800",
    "joiners-alone": "\u200d\u200c",
    "mongolian-vowel-separator-alone": "\u180e",
}


@pytest.mark.parametrize("field", ["name", "type"])
@pytest.mark.parametrize("text", BAD_TEXT.values(), ids=BAD_TEXT.keys())
async def test_patch_refuses_a_blank_name_or_type_or_one_with_hidden_characters(
    library: Client, data_dir: Path, field: str, text: str
) -> None:
    answer = await assert_refused(library, data_dir, "PATCH", f"/api/models/{A}", {field: text})
    assert answer["detail"].startswith(f"{field}: needs a character other than white space")


@pytest.mark.parametrize("text", ["", "   ", "lora\n"], ids=["empty", "spaces", "newline"])
async def test_editing_many_refuses_a_blank_type_before_changing_any(
    library: Client, data_dir: Path, text: str
) -> None:
    body = {"hashes": [A, B], "type": text}
    await assert_refused(library, data_dir, "POST", "/api/models/edit", body)


@pytest.mark.parametrize(("field", "value"), [("name", "  Alpha  "), ("type", " lora\u3000")])
async def test_a_name_or_type_is_trimmed(library: Client, field: str, value: str) -> None:
    status, answer, _ = await call(library, "PATCH", f"/api/models/{A}", {field: value})
    assert status == 200, answer
    assert answer[field] == value.strip()
    types = await (await library.get("/api/models/get_types")).json()
    assert all(t == t.strip() for t in types["types"]), types


# Every body that sets a model's name or type: (field, limit, method, path, body of a value).
MODEL_TEXT: dict[str, tuple[str, int, str, str, Callable[[str], Any]]] = {
    "patch-name": ("name", MAX_MODEL_NAME, "PATCH", f"/api/models/{A}", lambda v: {"name": v}),
    "patch-type": ("type", MAX_MODEL_TYPE, "PATCH", f"/api/models/{A}", lambda v: {"type": v}),
    "edit-many-type": (
        "type",
        MAX_MODEL_TYPE,
        "POST",
        "/api/models/edit",
        lambda v: {"hashes": [A, B], "type": v},
    ),
}


@pytest.mark.parametrize("around", [("", " "), ("  ", "\u3000")], ids=["space", "both"])
@pytest.mark.parametrize("call_of", MODEL_TEXT.values(), ids=MODEL_TEXT.keys())
async def test_the_longest_name_or_type_is_taken_with_spaces_around_it(
    library: Client,
    call_of: tuple[str, int, str, str, Callable[[str], Any]],
    around: tuple[str, str],
) -> None:
    # As pasted: the limit is on the value once trimmed, as it is saved.
    field, limit, method, path, body = call_of
    longest = "x" * limit
    status, answer, _ = await call(library, method, path, body(around[0] + longest + around[1]))
    assert status == 200, answer
    record, _ = await get_model(library, A)
    assert record[field] == longest


@pytest.mark.parametrize("call_of", MODEL_TEXT.values(), ids=MODEL_TEXT.keys())
async def test_a_name_or_type_over_the_limit_once_trimmed_is_400(
    library: Client, data_dir: Path, call_of: tuple[str, int, str, str, Callable[[str], Any]]
) -> None:
    field, limit, method, path, body = call_of
    answer = await assert_refused(library, data_dir, method, path, body(f" {'x' * (limit + 1)} "))
    assert answer["detail"].startswith(f"{field}: "), answer
    assert str(limit) in answer["detail"]
    # Said as the rule, not as the validator's kind of error ("name: Value error, ...").
    assert "Value error" not in answer["detail"], answer


async def test_a_name_keeps_letters_joined_as_its_script_joins_them(library: Client) -> None:
    # Zero-width joiner and non-joiner are how emoji and Persian or Indic words are spelt.
    name = "\U0001f469\u200d\U0001f4bb \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
    status, answer, _ = await call(library, "PATCH", f"/api/models/{A}", {"name": name})
    assert status == 200, answer
    assert answer["name"] == name


# --- tag names ------------------------------------------------------------------------------

INVISIBLE = {
    "only-zero-width-space": "\u200b",
    "trailing-zero-width-space": "lora\u200b",
    "leading-bom": "\ufefflora",
    "soft-hyphen": "lo\u00adra",
    "right-to-left-override": "a\u202eb",
    "bidi-isolate": "\u2066lora\u2069",
    "word-joiner": "lo\u2060ra",
    # Letters that show as nothing: a tag of them alone would be a blank chip.
    "hangul-filler": "\u3164",
    "halfwidth-hangul-filler": "\uffa0",
    "jungseong-filler": "\u1160",
    "braille-blank": "\u2800",
    "fillers-and-a-space": "\u3164 \u115f",
}


@pytest.mark.parametrize("name", INVISIBLE.values(), ids=INVISIBLE.keys())
async def test_a_tag_name_refuses_invisible_and_direction_characters(
    library: Client, data_dir: Path, name: str
) -> None:
    await assert_refused(library, data_dir, "POST", "/api/tags", {"name": name})
    await assert_refused(library, data_dir, "PUT", f"/api/models/{B}/tags", {"tags": [name]})


async def test_a_tag_name_may_hold_a_filler_beside_letters_that_show(library: Client) -> None:
    # An old Korean syllable is spelt with jamo and fillers.
    status, answer, _ = await call(
        library, "PUT", f"/api/models/{B}/tags", {"tags": ["\u1100\u1160"]}
    )
    assert status == 200, answer
    assert [t["name"] for t in answer["tags"]] == ["\u1100\u1160"]


async def test_a_tag_filter_is_read_without_the_spaces_around_it(library: Client) -> None:
    response = await library.get("/api/models", params={"tag": " anime\u3000"})
    body = await response.json()
    assert response.status == 200, body
    assert [m["sha256"] for m in body["models"]] == [A]


async def test_composed_and_decomposed_spellings_are_one_tag(
    library: Client, data_dir: Path
) -> None:
    # "café" typed on one keyboard is U+00E9, pasted from macOS often "e" + U+0301.
    status, created, _ = await call(library, "POST", "/api/tags", {"name": "caf\u00e9"})
    assert status == 201, created
    answer = await assert_refused(
        library, data_dir, "POST", "/api/tags", {"name": "cafe\u0301"}, status=409
    )
    assert answer["tag"] == created


async def test_one_model_gets_one_tag_for_both_spellings(library: Client) -> None:
    status, answer, _ = await call(
        library, "PUT", f"/api/models/{B}/tags", {"tags": ["caf\u00e9", "CAFE\u0301"]}
    )
    assert status == 200, answer
    assert [t["name"] for t in answer["tags"]] == ["caf\u00e9"]


async def test_a_full_width_tag_name_is_the_tag_it_spells(library: Client, data_dir: Path) -> None:
    # LORA in full-width letters, as an input method in full-width mode types it.
    answer = await assert_refused(
        library, data_dir, "POST", "/api/tags", {"name": "\uff2c\uff2f\uff32\uff21"}, status=409
    )
    assert answer["tag"]["name"] == "lora"


# --- the longest tag name, sent with spaces around it -----------------------------------------

LONGEST = "x" * MAX_TAG_NAME
# Every body that names a tag: (method, path, body of a name).
NAMING: dict[str, tuple[str, str, Callable[[str], Any]]] = {
    "create": ("POST", "/api/tags", lambda name: {"name": name}),
    "rename": ("PATCH", "/api/tags/1", lambda name: {"name": name}),
    "set": ("PUT", f"/api/models/{A}/tags", lambda name: {"tags": [name]}),
    "add-to-many": ("POST", "/api/models/tags", lambda name: {"hashes": [A], "add": [name]}),
    "remove-from-many": (
        "POST",
        "/api/models/tags",
        lambda name: {"hashes": [A], "remove": [name]},
    ),
}


@pytest.mark.parametrize("sent", [LONGEST + " ", "  " + LONGEST + "\u3000"], ids=["space", "both"])
@pytest.mark.parametrize("call_of", NAMING.values(), ids=NAMING.keys())
async def test_the_longest_tag_name_is_taken_with_spaces_around_it(
    library: Client, call_of: tuple[str, str, Callable[[str], Any]], sent: str
) -> None:
    # As pasted: the limit is on the name once trimmed, as the domain reads it.
    method, path, body = call_of
    status, answer, _ = await call(library, method, path, body(sent))
    assert status in (200, 201), answer
    if "remove" not in body(sent):
        assert LONGEST in await tag_names(library)


@pytest.mark.parametrize("call_of", NAMING.values(), ids=NAMING.keys())
async def test_a_tag_name_over_the_limit_once_trimmed_is_400(
    library: Client, data_dir: Path, call_of: tuple[str, str, Callable[[str], Any]]
) -> None:
    method, path, body = call_of
    answer = await assert_refused(library, data_dir, method, path, body(f" {LONGEST}x "))
    assert str(MAX_TAG_NAME) in answer["detail"]


# Joiners and the Mongolian vowel separator show as nothing: kept inside a name (an emoji
# sequence, a Persian word), refused as all of it, as a blank name is.
JOINERS_ALONE = {
    "zero-width-non-joiner": "\u200c",
    "zero-width-joiner": "\u200d",
    "mongolian-vowel-separator": "\u180e",
    "joiners-together": "\u200d\u200c",
    "joiners-and-spaces": " \u200c \u180e\u200d ",
}
JOINED = {
    "emoji-sequence": "\U0001f469\u200d\U0001f4bb",
    "persian-word": "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
}


@pytest.mark.parametrize("name", JOINERS_ALONE.values(), ids=JOINERS_ALONE.keys())
@pytest.mark.parametrize("call_of", NAMING.values(), ids=NAMING.keys())
async def test_a_tag_name_of_joiners_alone_is_refused_as_a_blank_one(
    library: Client, data_dir: Path, call_of: tuple[str, str, Callable[[str], Any]], name: str
) -> None:
    method, path, body = call_of
    blank = await assert_refused(library, data_dir, method, path, body("   "))
    answer = await assert_refused(library, data_dir, method, path, body(name))
    assert answer["detail"] == blank["detail"]


@pytest.mark.parametrize("name", JOINED.values(), ids=JOINED.keys())
@pytest.mark.parametrize("call_of", NAMING.values(), ids=NAMING.keys())
async def test_a_tag_name_with_a_joiner_inside_is_taken(
    library: Client, call_of: tuple[str, str, Callable[[str], Any]], name: str
) -> None:
    method, path, body = call_of
    status, answer, _ = await call(library, method, path, body(name))
    assert status in (200, 201), answer
    if "remove" not in body(name):
        assert name in await tag_names(library)


# --- a stage-1 tag spelt in capitals --------------------------------------------------------

C = fake_sha(77)


@pytest.fixture
async def legacy_capitals(client: Client, legacy: LegacyLibrary) -> Client:
    """Model C carries the old manager's tag `Anime` (id 7), kept as it was spelt."""
    legacy.add_tag(7, "Anime")
    legacy.add_model(1, hash_hex=C, name="Gamma", tags=[7])
    await migrate(client, legacy)
    return client


async def test_tags_sent_back_as_the_editor_sends_them_keep_the_stage_1_tag(
    legacy_capitals: Client,
) -> None:
    client = legacy_capitals
    record, _ = await get_model(client, C)
    names = [t["name"] for t in record["tags"]]
    status, answer, _ = await call(client, "PUT", f"/api/models/{C}/tags", {"tags": names})
    assert status == 200, answer
    history = await (await client.get(f"/api/models/{C}/history")).json()
    assert history["entries"] == []  # nothing changed, so nothing was saved
    status, answer, _ = await call(
        client, "PUT", f"/api/models/{C}/tags", {"tags": [*names, "new"]}
    )
    assert status == 200, answer
    assert sorted((t["id"], t["name"]) for t in answer["tags"])[0] == (7, "Anime")
    assert sorted(await tag_names(client)) == ["Anime", "new"]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PUT", f"/api/models/{A}/tags", {"tags": ["ANIME"]}),
        ("POST", "/api/models/tags", {"hashes": [A], "add": ["anime"]}),
    ],
    ids=["put", "bulk"],
)
async def test_a_tag_typed_in_another_case_is_the_stage_1_tag(
    legacy_capitals: Client, legacy: LegacyLibrary, method: str, path: str, body: Any
) -> None:
    client = legacy_capitals
    legacy.add_model(2, hash_hex=A, name="Alpha")
    await migrate(client, legacy)
    status, answer, _ = await call(client, method, path, body)
    assert status == 200, answer
    record, _ = await get_model(client, A)
    assert record["tags"] == [{"id": 7, "name": "Anime"}]
    assert await tag_names(client) == ["Anime"]


async def test_creating_a_tag_named_as_a_stage_1_tag_in_any_case_is_409(
    legacy_capitals: Client, data_dir: Path
) -> None:
    answer = await assert_refused(
        legacy_capitals, data_dir, "POST", "/api/tags", {"name": "anime"}, status=409
    )
    assert answer["tag"] == {"id": 7, "name": "Anime"}


async def test_a_stage_1_tag_can_be_renamed_to_its_own_name_in_lower_case(
    legacy_capitals: Client,
) -> None:
    status, answer, _ = await call(legacy_capitals, "PATCH", "/api/tags/7", {"name": "anime"})
    assert status == 200, answer
    assert answer == {"id": 7, "name": "anime"}
