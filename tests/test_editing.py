"""Editing the library through the real app: a model's fields, meta_json and tags, tags
themselves, deleting a model, and versions (ETag / If-Match). Contract part 2, "Editing the
library"."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict

from modelshelf.renditions import qualities
from modelshelf.web.openapi import build_openapi
from tests.conftest import Client, migrate
from tests.editing import (
    UNKNOWN,
    A,
    B,
    assert_error,
    build,
    call,
    disk_full_before_commit,
    get_model,
    history,
    rows,
    snapshot,
    tag_names,
)
from tests.factories import LegacyLibrary, make_model_file


@pytest.fixture
async def library(client: Client, legacy: LegacyLibrary) -> Client:
    await build(client, legacy)
    return client


# --- versions -----------------------------------------------------------------------------------


async def test_a_model_carries_a_strong_etag(library: Client) -> None:
    record, etag = await get_model(library, A)
    assert etag.startswith('"') and etag.endswith('"') and not etag.startswith("W/")
    again, same = await get_model(library, A)
    assert (again, same) == (record, etag)
    assert (await get_model(library, B))[1] != etag


@pytest.mark.parametrize("form", ["{etag}", "W/{etag}", '"0000", {etag}', "*"])
async def test_a_get_of_a_model_whose_etag_is_in_if_none_match_is_304(
    library: Client, form: str
) -> None:
    """RFC 9110 13.1.2: If-None-Match compares weakly; a GET it fails for is 304, with the
    ETag, so that a page holding the model need not read it again."""
    _, etag = await get_model(library, A)
    headers = {"If-None-Match": form.format(etag=etag)}
    response = await library.get(f"/api/models/{A}", headers=headers)
    assert response.status == 304, await response.text()
    assert response.headers["ETag"] == etag
    await call(library, "PATCH", f"/api/models/{A}", {"name": "Changed"})
    if form != "*":
        response = await library.get(f"/api/models/{A}", headers=headers)
        assert response.status == 200
        assert (await response.json())["name"] == "Changed"


async def test_a_get_of_a_model_whose_if_match_does_not_match_is_412(library: Client) -> None:
    """RFC 9110 13.1.1: If-Match is evaluated before any method, GET included."""
    _, etag = await get_model(library, A)
    response = await library.get(f"/api/models/{A}", headers={"If-Match": '"0000"'})
    assert response.status == 412, await response.text()
    assert_error(await response.json(), "Precondition Failed")
    response = await library.get(f"/api/models/{A}", headers={"If-Match": etag})
    assert response.status == 200


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", f"/api/models/{A}", {"name": "New"}),
        ("PATCH", f"/api/models/{A}", {"type": "checkpoint"}),
        ("PATCH", f"/api/models/{A}", {"meta_json": {"nested": {"k": 2}}}),
        ("PUT", f"/api/models/{A}/tags", {"tags": ["lora"]}),
        (
            "POST",
            "/api/images/reorder",
            {"hash": A, "order": [f"{A}_1.webp", f"{A}_0.webp", f"{A}_2.webp"]},
        ),
        ("DELETE", f"/api/images/{A}_2.webp", None),
        ("PATCH", "/api/tags/2", {"name": "manga"}),
    ],
    ids=["name", "type", "meta", "tags", "reorder", "image-deleted", "tag-renamed"],
)
async def test_every_change_to_a_model_changes_its_etag(
    library: Client, method: str, path: str, body: Any
) -> None:
    _, before = await get_model(library, A)
    status, answer, _ = await call(library, method, path, body)
    assert status == 200, answer
    assert (await get_model(library, A))[1] != before


async def test_an_image_replaced_under_the_same_name_changes_the_etag(
    library: Client, legacy: LegacyLibrary, models_dir: Path
) -> None:
    # An override replaces seq 0: the names stay, the version must not.
    path = models_dir / "same.safetensors"
    make_model_file(path, seed=5)
    sha = make_model_file(models_dir / "first.safetensors", seed=5)
    legacy.add_model(20, path=str(models_dir / "first.safetensors"), images=[legacy.image("x.png")])
    legacy.add_model(21, path=str(path), images=[legacy.image("y.png", width=30)])
    client = library
    await migrate(client, legacy)
    assert (await call(client, "POST", "/api/migration/import_a_model", {"id": 20}))[0] == 200
    record, before = await get_model(client, sha)
    status, _, _ = await call(
        client, "POST", "/api/migration/import_a_model", {"id": 21, "conf_strategy": "override"}
    )
    assert status == 200
    after_record, after = await get_model(client, sha)
    assert after_record["images"] == record["images"]
    assert after != before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", f"/api/models/{A}", {"name": "New"}),
        ("PUT", f"/api/models/{A}/tags", {"tags": ["x"]}),
        (
            "POST",
            "/api/images/reorder",
            {"hash": A, "order": [f"{A}_2.webp", f"{A}_1.webp", f"{A}_0.webp"]},
        ),
        ("DELETE", f"/api/models/{A}", None),
        ("DELETE", f"/api/images/{A}_1.webp", None),
    ],
    ids=["patch", "tags", "reorder", "delete-model", "delete-image"],
)
@pytest.mark.parametrize("stale", ['"0000"', 'W/"{etag}"', '"0000", "1111"'])
async def test_a_stale_if_match_is_412_and_changes_nothing(
    library: Client, data_dir: Path, method: str, path: str, body: Any, stale: str
) -> None:
    _, etag = await get_model(library, A)
    before = snapshot(data_dir)
    status, answer, _ = await call(
        library, method, path, body, **{"If-Match": stale.format(etag=etag.strip('"'))}
    )
    assert status == 412, answer
    assert_error(answer, "Precondition Failed")
    assert answer["etag"] == etag
    assert snapshot(data_dir) == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", f"/api/models/{A}", {"name": "New"}),
        ("PUT", f"/api/models/{A}/tags", {"tags": ["x"]}),
        (
            "POST",
            "/api/images/reorder",
            {"hash": A, "order": [f"{A}_2.webp", f"{A}_1.webp", f"{A}_0.webp"]},
        ),
    ],
    ids=["patch", "tags", "reorder"],
)
@pytest.mark.parametrize("form", ["{etag}", '"0000", {etag}', "*"])
async def test_a_matching_if_match_applies_and_answers_the_new_etag(
    library: Client, method: str, path: str, body: Any, form: str
) -> None:
    _, etag = await get_model(library, A)
    status, answer, headers = await call(
        library, method, path, body, **{"If-Match": form.format(etag=etag)}
    )
    assert status == 200, answer
    assert headers["ETag"] == (await get_model(library, A))[1] != etag


async def test_if_match_in_two_header_lines_is_one_list(library: Client) -> None:
    """RFC 9110 5.3: field lines of one name are one comma-separated list; the current ETag in
    the second line matches."""
    _, etag = await get_model(library, A)
    headers = CIMultiDict([("If-Match", '"0000"'), ("If-Match", etag)])
    response = await library.patch(f"/api/models/{A}", json={"name": "Two lines"}, headers=headers)
    assert response.status == 200, await response.text()
    stale = CIMultiDict([("If-Match", '"0000"'), ("If-Match", '"1111"')])
    response = await library.patch(f"/api/models/{A}", json={"name": "Stale"}, headers=stale)
    assert response.status == 412, await response.text()


@pytest.mark.parametrize(
    "form",
    [", {etag}", '"0000",, {etag}', "{etag}, ,", ' ,\t, "0000" , {etag}'],
    ids=["leading", "doubled", "trailing", "several"],
)
async def test_empty_elements_of_an_if_match_list_are_ignored(library: Client, form: str) -> None:
    """RFC 9110 5.6.1.2: a recipient must parse and ignore empty list elements (senders that
    merge field lines make them); the current ETag among them matches."""
    _, etag = await get_model(library, A)
    status, answer, _ = await call(
        library,
        "PATCH",
        f"/api/models/{A}",
        {"name": "Listed"},
        **{"If-Match": form.format(etag=etag)},
    )
    assert status == 200, answer
    assert answer["name"] == "Listed"


@pytest.mark.parametrize(
    ("path", "gone"),
    [
        (f"/api/models/{A}", f"/api/models/{A}"),
        (f"/api/images/{A}_2.webp", f"/api/images/{A}_2.webp"),
    ],
    ids=["model", "image"],
)
@pytest.mark.parametrize("form", ["{etag}", '"0000", {etag}', "*"])
async def test_a_delete_with_a_matching_if_match_deletes(
    library: Client, path: str, gone: str, form: str
) -> None:
    _, etag = await get_model(library, A)
    status, answer, _ = await call(
        library, "DELETE", path, None, **{"If-Match": form.format(etag=etag)}
    )
    assert status == 200, answer
    assert (await call(library, "GET", gone, None))[0] == 404


async def test_an_image_deleted_by_a_client_that_missed_a_reorder_is_412_and_stays(
    library: Client, data_dir: Path
) -> None:
    # An image's name is its place: after the reorder, A_0 is the picture that was A_2. A page
    # still showing the old order must not delete that picture in the belief it is the cover.
    record, etag = await get_model(library, A)
    order = [f"{A}_2.webp", f"{A}_1.webp", f"{A}_0.webp"]
    status, _, _ = await call(library, "POST", "/api/images/reorder", {"hash": A, "order": order})
    assert status == 200
    before = snapshot(data_dir)
    status, answer, _ = await call(
        library, "DELETE", f"/api/images/{A}_0.webp", None, **{"If-Match": etag}
    )
    assert status == 412, answer
    assert_error(answer, "Precondition Failed")
    assert snapshot(data_dir) == before
    assert (await get_model(library, A))[0]["images"] == record["images"]


async def test_the_second_of_two_writers_with_the_same_etag_gets_412(library: Client) -> None:
    _, etag = await get_model(library, A)
    first = await call(library, "PATCH", f"/api/models/{A}", {"name": "One"}, **{"If-Match": etag})
    second = await call(library, "PATCH", f"/api/models/{A}", {"name": "Two"}, **{"If-Match": etag})
    assert (first[0], second[0]) == (200, 412)
    assert (await get_model(library, A))[0]["name"] == "One"


@pytest.mark.parametrize("header", ["abc", '"unterminated', '"a" "b"', "", " "])
async def test_a_malformed_if_match_is_400(library: Client, data_dir: Path, header: str) -> None:
    before = snapshot(data_dir)
    status, answer, _ = await call(
        library, "PATCH", f"/api/models/{A}", {"name": "x"}, **{"If-Match": header}
    )
    assert status == 400, answer
    assert snapshot(data_dir) == before


async def test_if_match_on_an_unknown_model_is_404(library: Client) -> None:
    status, answer, _ = await call(
        library, "PATCH", f"/api/models/{UNKNOWN}", {"name": "x"}, **{"If-Match": "*"}
    )
    assert status == 404
    assert_error(answer, "Not Found")


@pytest.mark.parametrize(
    ("method", "path", "template", "body"),
    [
        ("DELETE", f"/api/images/{A}_1.webp", "/api/images/{filename}", None),
        ("DELETE", f"/api/models/{A}", "/api/models/{sha256}", None),
        ("PATCH", f"/api/models/{A}", "/api/models/{sha256}", {"name": "x"}),
        ("PUT", f"/api/models/{A}/tags", "/api/models/{sha256}/tags", {"tags": ["x"]}),
        (
            "POST",
            "/api/images/reorder",
            "/api/images/reorder",
            {"hash": A, "order": [f"{A}_1.webp", f"{A}_0.webp", f"{A}_2.webp"]},
        ),
        ("DELETE", "/api/tags/1", "/api/tags/{id}", None),
    ],
    ids=["image", "model", "patch", "tags", "reorder", "tag"],
)
async def test_a_change_on_a_full_disk_is_507_as_its_schema_says_and_changes_nothing(
    library: Client, data_dir: Path, method: str, path: str, template: str, body: Any
) -> None:
    before = snapshot(data_dir)
    with disk_full_before_commit():
        status, answer, _ = await call(library, method, path, body)
    assert status == 507, answer
    assert_error(answer, "Insufficient Storage")
    assert snapshot(data_dir) == before
    # A client generated from the OpenAPI document is told of this answer.
    assert "507" in build_openapi()["paths"][template][method.lower()]["responses"]


# --- PATCH /api/models/{sha256} -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("patch", "changed"),
    [
        ({"name": "Renamed"}, {"name": "Renamed"}),
        ({"type": "checkpoint"}, {"type": "checkpoint"}),
        ({"name": None}, {"name": None}),
        ({"type": None}, {"type": None}),
        ({"name": "N", "type": "vae"}, {"name": "N", "type": "vae"}),
        ({"meta_json": {"description": "dark"}}, {}),
    ],
    ids=["name", "type", "name-null", "type-null", "both", "meta-only"],
)
async def test_patch_changes_only_the_fields_it_names(
    library: Client, patch: dict[str, Any], changed: dict[str, Any]
) -> None:
    before, _ = await get_model(library, A)
    status, answer, _ = await call(library, "PATCH", f"/api/models/{A}", patch)
    assert status == 200, answer
    after, _ = await get_model(library, A)
    assert answer == after
    expected_meta = {**before["meta_json"], **patch.get("meta_json", {})}
    assert after == {**before, **changed, "meta_json": expected_meta}


@pytest.mark.parametrize(
    "text",
    [None, "{'a': 1}", "[1, 2]", '{"a": NaN, "b": 1}'],
    ids=["null", "not-json", "array", "nan"],
)
@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("PATCH", f"/api/models/{A}", {"name": "Renamed"}),
        ("PATCH", f"/api/models/{A}", {"type": "lycoris"}),
        ("POST", "/api/models/edit", {"hashes": [A], "type": "lycoris"}),
    ],
    ids=["name", "type", "type-of-many"],
)
async def test_an_edit_of_name_or_type_leaves_the_meta_json_text_as_it_was(
    library: Client, data_dir: Path, text: str | None, method: str, path: str, body: Any
) -> None:
    # A library another program keeps too (Hikaze Model Manager 2's) may hold meta_json this
    # service reads only as far as it goes: an edit that does not name meta_json must not
    # write it (as {"unparsed_meta_json": ...}, {"value": ...}, {} or with NaN turned null).
    with sqlite3.connect(data_dir / "modelshelf.db") as conn:
        conn.execute("UPDATE models SET meta_json = ? WHERE sha256 = ?", (text, A))
    conn.close()

    status, answer, _ = await call(library, method, path, body)

    assert status == 200, answer
    assert rows(data_dir, "SELECT meta_json FROM models WHERE sha256 = ?", A) == [(text,)]


@pytest.mark.parametrize(
    ("patch", "meta"),
    [
        ({"description": None}, {"trigger_words": ["alpha"], "nested": {"k": 1}}),
        (
            {"nested": {"k": None, "j": 2}},
            {"description": "bright colours", "trigger_words": ["alpha"], "nested": {"j": 2}},
        ),
        (
            {"trigger_words": ["beta"]},
            {"description": "bright colours", "trigger_words": ["beta"], "nested": {"k": 1}},
        ),
        (
            {"nested": "flat"},
            {"description": "bright colours", "trigger_words": ["alpha"], "nested": "flat"},
        ),
        (
            {"new": {"deep": {"x": None, "y": [1, None]}}},
            {
                "description": "bright colours",
                "trigger_words": ["alpha"],
                "nested": {"k": 1},
                "new": {"deep": {"y": [1, None]}},
            },
        ),
        (
            {"absent": None},
            {"description": "bright colours", "trigger_words": ["alpha"], "nested": {"k": 1}},
        ),
        ({}, {"description": "bright colours", "trigger_words": ["alpha"], "nested": {"k": 1}}),
    ],
    ids=[
        "null-removes",
        "nested-merge",
        "list-replaced",
        "object-replaced",
        "nulls-inside-new",
        "absent-null",
        "empty",
    ],
)
async def test_meta_json_is_a_json_merge_patch(
    library: Client, patch: dict[str, Any], meta: dict[str, Any]
) -> None:
    status, answer, _ = await call(library, "PATCH", f"/api/models/{A}", {"meta_json": patch})
    assert status == 200, answer
    assert answer["meta_json"] == meta


@pytest.mark.parametrize(
    ("old", "new"),
    [(1, True), (0, False), (True, 1), (False, 0)],
    ids=["1-to-true", "0-to-false", "true-to-1", "false-to-0"],
)
async def test_a_value_becoming_a_boolean_or_a_number_it_equals_in_python_is_a_change(
    library: Client, old: Any, new: Any
) -> None:
    # Python holds 1 == True and 0 == False; JSON does not: the patch's value replaces the
    # model's (RFC 7396), is saved and is recorded in history like any other change.
    path = f"/api/models/{A}"
    await call(library, "PATCH", path, {"meta_json": {"nested": {"k": old}}})
    status, answer, _ = await call(library, "PATCH", path, {"meta_json": {"nested": {"k": new}}})
    assert status == 200, answer
    record, _ = await get_model(library, A)
    for meta in (answer["meta_json"], record["meta_json"]):
        assert json.dumps(meta["nested"]) == json.dumps({"k": new})
    assert json.dumps((await history(library, A))[0]["before"]["meta_json"]["nested"]) == (
        json.dumps({"k": old})
    )


@pytest.mark.parametrize(
    "body",
    [
        {"name": 5},
        {"type": ["lora"]},
        {"meta_json": None},
        {"meta_json": [1]},
        {"meta_json": "x"},
        {"nmae": "typo"},
        {"name": "x" * 1001},
        {"name": "a\x00b"},
        {"name": ""},
        {"name": " \t "},
        {"name": "a\x1b[31mb"},
        {"type": ""},
        {"type": "   "},
        [1],
        "name",
    ],
)
async def test_patch_with_a_bad_body_is_400_and_changes_nothing(
    library: Client, data_dir: Path, body: Any
) -> None:
    before = snapshot(data_dir)
    status, answer, _ = await call(library, "PATCH", f"/api/models/{A}", body)
    assert status == 400, answer
    assert_error(answer, "Bad Request")
    assert snapshot(data_dir) == before


@pytest.mark.parametrize(
    "number", ["NaN", "Infinity", "-Infinity", "1e400"], ids=["nan", "inf", "minus-inf", "huge"]
)
async def test_meta_with_a_number_json_does_not_have_is_400_and_changes_nothing(
    library: Client, data_dir: Path, number: str
) -> None:
    before = snapshot(data_dir)
    response = await library.patch(
        f"/api/models/{A}",
        data=f'{{"meta_json": {{"base_model": "pony", "a": [1, {{"b": {number}}}]}}}}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 400, await response.text()
    assert "not JSON numbers" in (await response.json())["detail"]
    assert snapshot(data_dir) == before


async def test_patch_of_deeply_nested_meta_is_400_not_500(library: Client) -> None:
    deep = "[" * 5000 + "]" * 5000
    response = await library.patch(
        f"/api/models/{A}",
        data=f'{{"meta_json": {{"x": {deep}}}}}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 400, await response.text()


@pytest.mark.parametrize("sha", [UNKNOWN, "xyz", A[:63], A + "0", A[:63] + "g"])
async def test_patch_of_an_unknown_or_malformed_hash_is_404_or_400(
    library: Client, sha: str
) -> None:
    status, _, _ = await call(library, "PATCH", f"/api/models/{sha}", {"name": "x"})
    assert status == (404 if sha == UNKNOWN else 400)


# A SHA256 as Civitai shows it (upper case), or half and half, names the model as its lower
# case does: every endpoint with one in its path answers for the model.
SPELLINGS = [A.upper(), A[:32].upper() + A[32:]]
UPPER_CASE_CALLS = [
    ("GET", "/api/models/{}", None),
    ("PATCH", "/api/models/{}", {"name": "Named in capitals"}),
    ("PUT", "/api/models/{}/tags", {"tags": ["capitals"]}),
    ("GET", "/api/models/{}/history", None),
]


@pytest.mark.parametrize("spelling", SPELLINGS)
@pytest.mark.parametrize(("method", "path", "body"), UPPER_CASE_CALLS)
async def test_a_sha256_in_upper_case_in_the_path_names_the_model(
    library: Client, spelling: str, method: str, path: str, body: Any
) -> None:
    status, answer, headers = await call(library, method, path.format(spelling), body)
    assert status == 200, answer
    if method != "GET" or "history" not in path:
        assert answer["sha256"] == A
        assert headers["ETag"] == (await get_model(library, A))[1]


@pytest.mark.parametrize("spelling", SPELLINGS)
async def test_a_model_deleted_and_restored_by_its_upper_case_sha256(
    library: Client, spelling: str
) -> None:
    status, answer, _ = await call(library, "DELETE", f"/api/models/{spelling}")
    assert status == 200, answer
    status, history, _ = await call(library, "GET", f"/api/models/{spelling}/history")
    assert status == 200, history
    entry = history["entries"][0]["id"]
    restore = f"/api/models/{spelling}/history/{entry}/restore"
    status, answer, _ = await call(library, "POST", restore)
    assert (status, answer["sha256"]) == (200, A)


async def test_a_patch_that_changes_nothing_writes_nothing(library: Client, data_dir: Path) -> None:
    before = snapshot(data_dir)
    status, _, _ = await call(library, "PATCH", f"/api/models/{A}", {"name": "Alpha Anime"})
    assert status == 200
    assert snapshot(data_dir) == before


async def test_every_edit_saves_the_model_as_it_was_in_history_first(library: Client) -> None:
    before, _ = await get_model(library, A)
    await call(library, "PATCH", f"/api/models/{A}", {"name": "Changed"})
    _, history, _ = await call(library, "GET", f"/api/models/{A}/history")
    assert [e["action"] for e in history["entries"]] == ["edit"]
    assert history["entries"][0]["before"] == before


# --- PUT /api/models/{sha256}/tags --------------------------------------------------------------


async def test_put_tags_trims_lowercases_and_creates_new_tags(
    library: Client, data_dir: Path
) -> None:
    status, answer, _ = await call(
        library, "PUT", f"/api/models/{A}/tags", {"tags": ["  Anime ", "NEW Tag", "anime"]}
    )
    assert status == 200, answer
    assert tag_names(answer) == ["anime", "new tag"]
    assert answer == (await get_model(library, A))[0]
    assert rows(data_dir, "SELECT id FROM tags WHERE name = 'anime'") == [(2,)]  # the same tag
    assert rows(data_dir, "SELECT count(*) FROM tags WHERE name = 'new tag'") == [(1,)]
    # The tag it lost stays, for the models that carry it.
    assert rows(data_dir, "SELECT name FROM tags WHERE id = 1") == [("lora",)]


async def test_put_no_tags_removes_every_tag(library: Client) -> None:
    status, answer, _ = await call(library, "PUT", f"/api/models/{A}/tags", {"tags": []})
    assert status == 200
    assert answer["tags"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"tags": "anime"},
        {"tags": [1]},
        {"tags": ["  "]},
        {"tags": [""]},
        {"tags": ["a\nb"]},
        {"tags": ["a\x85b"]},  # a C1 control
        {"tags": ["\u00a0\u0085\u00a0"]},  # U+0085 is a control, not a letter
        {"tags": ["\u3000\u2003"]},  # white space only, in any script
        {"tags": ["x" * 101]},
        {"tags": ["t"] * 501},
        {},
        {"tags": None},
    ],
)
async def test_put_tags_with_a_bad_body_is_400_and_changes_nothing(
    library: Client, data_dir: Path, body: Any
) -> None:
    before = snapshot(data_dir)
    status, answer, _ = await call(library, "PUT", f"/api/models/{A}/tags", body)
    assert status == 400, answer
    assert snapshot(data_dir) == before


# --- tags themselves ----------------------------------------------------------------------------


async def test_post_tag_creates_it_with_201(library: Client) -> None:
    status, answer, headers = await call(library, "POST", "/api/tags", {"name": " Style "})
    assert status == 201
    assert answer == {"id": answer["id"], "name": "style"}
    assert headers["Location"] == f"/api/tags/{answer['id']}"
    listed = await (await library.get("/api/tags")).json()
    assert {"id": answer["id"], "name": "style", "models": 0} in listed["tags"]


async def test_post_an_existing_tag_name_is_409_with_that_tag(library: Client) -> None:
    status, answer, _ = await call(library, "POST", "/api/tags", {"name": "ANIME"})
    assert status == 409
    assert_error(answer, "Conflict")
    assert answer["tag"] == {"id": 2, "name": "anime"}


async def test_patch_tag_renames_it_for_every_model(library: Client) -> None:
    status, answer, _ = await call(library, "PATCH", "/api/tags/3", {"name": "Base"})
    assert (status, answer) == (200, {"id": 3, "name": "base"})
    assert tag_names((await get_model(library, B))[0]) == ["base"]
    _, history, _ = await call(library, "GET", f"/api/models/{B}/history")
    assert history["entries"][0]["action"] == "tag_renamed"
    assert tag_names(history["entries"][0]["before"]) == ["checkpoint"]


async def test_renaming_a_tag_to_its_own_name_changes_nothing(
    library: Client, data_dir: Path
) -> None:
    before = snapshot(data_dir)
    status, answer, _ = await call(library, "PATCH", "/api/tags/2", {"name": " Anime"})
    assert (status, answer) == (200, {"id": 2, "name": "anime"})
    assert snapshot(data_dir) == before


async def test_renaming_a_tag_to_a_taken_name_is_409_and_changes_nothing(
    library: Client, data_dir: Path
) -> None:
    before = snapshot(data_dir)
    status, answer, _ = await call(library, "PATCH", "/api/tags/2", {"name": "lora"})
    assert status == 409
    assert_error(answer, "Conflict")
    assert snapshot(data_dir) == before


async def test_delete_tag_removes_it_from_every_model(library: Client, data_dir: Path) -> None:
    await call(library, "PUT", f"/api/models/{B}/tags", {"tags": ["checkpoint", "anime"]})
    status, answer, _ = await call(library, "DELETE", "/api/tags/2")
    assert (status, answer) == (200, {"id": 2, "name": "anime", "models": 2})
    assert tag_names((await get_model(library, A))[0]) == ["lora"]
    assert tag_names((await get_model(library, B))[0]) == ["checkpoint"]
    assert rows(data_dir, "SELECT count(*) FROM tags WHERE id = 2") == [(0,)]
    _, history, _ = await call(library, "GET", f"/api/models/{A}/history")
    assert history["entries"][0]["action"] == "tag_deleted"


async def test_deleting_a_tag_of_a_pending_model_removes_it_there_too(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    legacy.add_tag(7, "queued")
    legacy.add_model(5, tags=[7])
    await migrate(client, legacy)
    status, _, _ = await call(client, "DELETE", "/api/tags/7")
    assert status == 200
    assert rows(data_dir, "SELECT count(*) FROM pending_model_tags") == [(0,)]


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        ("PATCH", "/api/tags/999", {"name": "x"}, 404),
        ("DELETE", "/api/tags/999", None, 404),
        ("PATCH", "/api/tags/abc", {"name": "x"}, 400),
        ("DELETE", "/api/tags/-1", None, 404),  # any 64-bit integer is an id
        ("DELETE", "/api/tags/99999999999999999999", None, 400),  # past 64 bits
        ("POST", "/api/tags", {"name": ""}, 400),
        ("POST", "/api/tags", {"name": "   "}, 400),
        ("POST", "/api/tags", {"name": 3}, 400),
        ("POST", "/api/tags", {"nam": "x"}, 400),
        ("PATCH", "/api/tags/1", {}, 400),
    ],
)
async def test_bad_tag_requests_are_answered_and_change_nothing(
    library: Client, data_dir: Path, method: str, path: str, body: Any, expected: int
) -> None:
    before = snapshot(data_dir)
    status, answer, _ = await call(library, method, path, body)
    assert status == expected, answer
    assert snapshot(data_dir) == before


# --- DELETE /api/models/{sha256} ----------------------------------------------------------------


async def test_delete_removes_the_record_its_tag_links_and_renditions(
    client: Client, legacy: LegacyLibrary, models_dir: Path, data_dir: Path
) -> None:
    await build(client, legacy)
    model_file = models_dir / "kept.safetensors"
    make_model_file(model_file, seed=1)
    kept = model_file.read_bytes()
    await call(client, "PATCH", f"/api/models/{A}", {"name": "A"})  # a history entry
    record, _ = await get_model(client, A)

    status, answer, _ = await call(client, "DELETE", f"/api/models/{A}")

    assert (status, answer) == (200, record)
    assert (await client.get(f"/api/models/{A}")).status == 404
    assert rows(data_dir, "SELECT count(*) FROM models WHERE sha256 = ?", A) == [(0,)]
    assert rows(data_dir, "SELECT count(*) FROM model_tags WHERE model_hash = ?", A) == [(0,)]
    assert rows(data_dir, "SELECT count(*) FROM images WHERE model_hash = ?", A) == [(0,)]
    assert not list((data_dir / "images").glob(f"{A}_*"))
    assert len(list((data_dir / "images").glob(f"{B}_*"))) == len(qualities())
    assert rows(data_dir, "SELECT name FROM tags ORDER BY id") == [
        ("lora",),
        ("anime",),
        ("checkpoint",),
    ]
    assert model_file.read_bytes() == kept
    listed = await (await client.get("/api/models")).json()
    assert [m["sha256"] for m in listed["models"]] == [B]
    _, history, _ = await call(client, "GET", f"/api/models/{A}/history")
    assert [e["action"] for e in history["entries"]] == ["delete", "edit"]


async def test_delete_does_not_touch_the_model_file_on_disk(
    client: Client, legacy: LegacyLibrary, models_dir: Path
) -> None:
    path = models_dir / "m.safetensors"
    sha = make_model_file(path, seed=3)
    legacy.add_model(1, hash_hex=sha, path=str(path))
    await migrate(client, legacy)
    content = path.read_bytes()
    assert (await call(client, "DELETE", f"/api/models/{sha}"))[0] == 200
    assert path.read_bytes() == content


@pytest.mark.parametrize(("sha", "expected"), [(UNKNOWN, 404), ("nothex", 400)])
async def test_delete_of_an_unknown_or_malformed_hash(
    library: Client, data_dir: Path, sha: str, expected: int
) -> None:
    before = snapshot(data_dir)
    status, _, _ = await call(library, "DELETE", f"/api/models/{sha}")
    assert status == expected
    assert snapshot(data_dir) == before
