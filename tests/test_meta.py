"""merge_meta_json and the column rules (existing values win, gaps are filled), and the rules
of the strategy table that apply them."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from modelshelf.domain.file_facts import refresh_file_meta
from modelshelf.domain.meta import merge_columns, merge_meta_json, without_image_keys
from modelshelf.domain.strategies import (
    FieldRule,
    MetaRule,
    Strategy,
    actions_taken,
    resolution,
    resolve_columns,
    resolve_meta,
)


@pytest.mark.parametrize(
    ("existing", "pending", "expected"),
    [
        pytest.param({"a": 1}, {"b": 2}, {"a": 1, "b": 2}, id="missing-keys-are-added"),
        pytest.param({"a": 1}, {"a": 2}, {"a": 1}, id="existing-value-wins"),
        pytest.param({"a": None}, {"a": 2}, {"a": 2}, id="null-is-filled"),
        pytest.param({"a": ""}, {"a": "x"}, {"a": "x"}, id="empty-string-is-filled"),
        pytest.param({"a": 0}, {"a": 5}, {"a": 0}, id="zero-is-a-value"),
        pytest.param({"a": False}, {"a": True}, {"a": False}, id="false-is-a-value"),
        pytest.param({}, {"a": {"b": 1}}, {"a": {"b": 1}}, id="empty-object-takes-all"),
        pytest.param(
            {"p": {"positive": "cat", "negative": ""}},
            {"p": {"positive": "dog", "negative": "blurry", "extra": 1}},
            {"p": {"positive": "cat", "negative": "blurry", "extra": 1}},
            id="nested-objects-merge-recursively",
        ),
        pytest.param(
            {"a": {"b": {"c": 1}}},
            {"a": {"b": {"d": 2}, "e": 3}},
            {"a": {"b": {"c": 1, "d": 2}, "e": 3}},
            id="deeply-nested",
        ),
        pytest.param(
            {"links": ["x", "y"]},
            {"links": ["y", "z", "x", "w"]},
            {"links": ["x", "y", "z", "w"]},
            id="lists-keep-existing-then-add-new",
        ),
        pytest.param({"l": []}, {"l": [1, 2]}, {"l": [1, 2]}, id="empty-list-takes-items"),
        pytest.param(
            {"l": [{"u": 1}]},
            {"l": [{"u": 1}, {"u": 2}]},
            {"l": [{"u": 1}, {"u": 2}]},
            id="list-items-compared-by-value",
        ),
        pytest.param({"a": [1]}, {"a": {"b": 1}}, {"a": [1]}, id="type-mismatch-existing-wins"),
        pytest.param({"a": "text"}, {"a": ["list"]}, {"a": "text"}, id="scalar-vs-list"),
        pytest.param({"a": 1}, {}, {"a": 1}, id="empty-pending"),
        pytest.param(None, {"a": 1}, {"a": 1}, id="missing-existing-meta"),
        pytest.param([1, 2], {"a": 1}, [1, 2], id="non-object-existing-kept"),
        pytest.param({"a": 1}, "not an object", {"a": 1}, id="non-object-pending-ignored"),
        pytest.param({"a": 1}, None, {"a": 1}, id="null-pending"),
    ],
)
def test_merge_meta_json(existing: Any, pending: Any, expected: Any) -> None:
    assert merge_meta_json(existing, pending) == expected


def test_merge_keeps_existing_values_and_leaves_inputs_untouched() -> None:
    existing = {"p": {"positive": "cat"}, "links": ["a"]}
    pending = {"p": {"positive": "dog", "negative": "x"}, "links": ["b"]}
    before = (copy.deepcopy(existing), copy.deepcopy(pending))
    merged = merge_meta_json(existing, pending)
    merged["p"]["positive"] = "changed"
    merged["links"].append("c")
    assert (existing, pending) == before


def test_merge_result_shares_nothing_with_pending() -> None:
    pending = {"new": {"deep": [1]}}
    merged = merge_meta_json({}, pending)
    merged["new"]["deep"].append(2)
    assert pending == {"new": {"deep": [1]}}


def test_merge_columns_fills_only_null_or_empty() -> None:
    existing = {"path": None, "name": "", "type": "lora", "size_bytes": 0, "created_at": 5}
    pending = {"path": "/p", "name": "n", "type": "checkpoint", "size_bytes": 9, "created_at": 7}
    merged = merge_columns(existing, pending, tuple(existing))
    assert merged == {"path": "/p", "name": "n", "type": "lora", "size_bytes": 0, "created_at": 5}


def test_image_keys_are_removed_and_the_rest_kept() -> None:
    meta = {"image": "a", "preview": "b", "images": ["c"], "description": "d", "x": {"images": 1}}
    assert without_image_keys(meta) == {"description": "d", "x": {"images": 1}}


def scribble_on(value: Any) -> None:
    """Change every mutable part of `value`, however deep."""
    if isinstance(value, dict):
        for item in value.values():
            scribble_on(item)
        value["scribbled"] = True
    elif isinstance(value, list):
        for item in value:
            scribble_on(item)
        value.append("scribbled")


@pytest.mark.parametrize(
    ("existing", "pending"),
    [
        pytest.param({"only_here": {"deep": [1]}}, {"other": 1}, id="keys-only-in-existing"),
        pytest.param({"l": [{"u": [1]}]}, {"l": [{"u": [2]}]}, id="objects-inside-lists"),
        pytest.param({"a": [{"k": 1}]}, {"a": "text"}, id="existing-kept-on-type-mismatch"),
        pytest.param({}, {"new": {"d": [{"x": 1}]}}, id="taken-from-pending"),
        pytest.param(None, {"new": [{"x": 1}]}, id="no-existing-meta"),
    ],
)
def test_the_merge_result_shares_no_mutable_part_with_either_input(
    existing: Any, pending: Any
) -> None:
    before = (copy.deepcopy(existing), copy.deepcopy(pending))
    scribble_on(merge_meta_json(existing, pending))
    assert (existing, pending) == before


# --- the strategy table's rules (domain/strategies.py) ----------------------------------------

EXISTING = {"name": "old", "type": None, "meta": {"keep": [1]}}
PENDING = {"name": "new", "type": "lora", "meta": {"take": [2]}}


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (FieldRule.KEEP, {"name": "old", "type": None}),
        (FieldRule.FILL_EMPTY, {"name": "old", "type": "lora"}),
        (FieldRule.TAKE_PENDING, {"name": "new", "type": "lora"}),
    ],
)
def test_each_field_rule_resolves_the_columns(rule: FieldRule, expected: dict[str, Any]) -> None:
    assert resolve_columns(rule, EXISTING, PENDING, ("name", "type")) == expected


@pytest.mark.parametrize(
    ("rule", "expected"),
    [
        (MetaRule.KEEP, {"keep": [1]}),
        (MetaRule.MERGE, {"keep": [1], "take": [2]}),
        (MetaRule.TAKE_PENDING, {"take": [2]}),
    ],
)
def test_each_meta_rule_resolves_the_metadata_into_a_copy_of_its_own(
    rule: MetaRule, expected: dict[str, Any]
) -> None:
    existing, pending = copy.deepcopy(EXISTING["meta"]), copy.deepcopy(PENDING["meta"])
    resolved = resolve_meta(rule, existing, pending)
    assert resolved == expected
    scribble_on(resolved)
    assert (existing, pending) == (EXISTING["meta"], PENDING["meta"])


def test_each_strategy_is_kept_in_history_under_its_own_name() -> None:
    assert [resolution(s).name for s in Strategy] == [s.value for s in Strategy]
    assert actions_taken() == ["imported", "overridden", "merged", "deleted"]


@pytest.mark.parametrize(
    ("existing", "pending", "expected"),
    [
        pytest.param({"a": [1, 0]}, {"a": [True, False, 2]}, {"a": [1, 0, True, False, 2]}),
        pytest.param({"a": [True]}, {"a": [1, True]}, {"a": [True, 1]}),
        pytest.param({"a": [{"n": 0}]}, {"a": [{"n": False}]}, {"a": [{"n": 0}, {"n": False}]}),
    ],
    ids=["numbers-then-booleans", "boolean-then-number", "inside-objects"],
)
def test_merge_adds_list_items_python_calls_equal_but_json_does_not(
    existing: Any, pending: Any, expected: Any
) -> None:
    # Python holds 1 == True and 0 == False; as JSON they are different values.
    assert json.dumps(merge_meta_json(existing, pending)) == json.dumps(expected)


@pytest.mark.parametrize(
    ("current", "written", "kept"),
    [
        pytest.param({"base_model": True}, {"base_model": 1}, True, id="person-made-1-true"),
        pytest.param({"base_model": 0}, {"base_model": False}, True, id="person-made-false-0"),
        pytest.param({"base_model": 1}, {"base_model": 1}, False, id="as-the-scan-wrote-it"),
        pytest.param({}, {}, False, id="both-absent"),
        pytest.param({"base_model": None}, {}, True, id="person-wrote-null"),
    ],
)
def test_a_scan_refreshes_a_meta_key_only_while_it_holds_what_the_scan_wrote(
    current: dict[str, Any], written: dict[str, Any], kept: bool
) -> None:
    meta, _record = refresh_file_meta(current, written, {"base_model": "SDXL 1.0"})
    assert meta.get("base_model", "absent") == (
        current.get("base_model", "absent") if kept else "SDXL 1.0"
    )
