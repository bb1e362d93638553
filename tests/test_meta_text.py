"""Reading the text of a `meta_json` column (storage.rows.parse_meta): the fast parser it uses
first must give exactly what json.loads gives, and text that is not an object is kept."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from modelshelf.storage.rows import dump_meta, parse_meta

DEEP = "[" * 3000 + "]" * 3000


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"a": 123456789012345678901234567890}', id="big-integer"),
        pytest.param('{"a": 1, "a": 2}', id="repeated-key-last-wins"),
        pytest.param('{"a": "\\ud800"}', id="lone-surrogate"),
        pytest.param('{"a": "\\u0000 \\u00e9 \\ud83d\\ude00"}', id="escapes"),
        pytest.param('{"a": 1e400, "b": -0.0, "c": 5e-324, "d": 0.1}', id="float-edges"),
        pytest.param('{"a": 12345678901234567890.5, "b": 1E2}', id="float-forms"),
        pytest.param('{"a": [' + "[" * 200 + "]" * 200 + "]}", id="nested"),
        pytest.param('\t{"a": {"b": [true, false, null]}}  \n', id="white-space-around"),
    ],
)
def test_an_object_reads_as_json_loads_reads_it(text: str) -> None:
    assert repr(parse_meta(text)) == repr(json.loads(text))


def test_not_a_number_reads_as_json_loads_reads_it() -> None:
    value = parse_meta('{"a": NaN, "b": Infinity}')
    assert math.isnan(value["a"]) and value["b"] == math.inf


@pytest.mark.parametrize(
    "text",
    ['{"a":1,}', "{'a':1}", '{"a":1} x', '{"a":"\x01"}', "\ufeff{}", "nan", "01", DEEP],
    ids=["trailing-comma", "quotes", "trailing-text", "raw-control", "bom", "nan", "zero", "deep"],
)
def test_text_that_is_not_json_is_kept_as_it_is(text: str) -> None:
    assert parse_meta(text) == {"unparsed_meta_json": text}


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, {}), ("", {}), ("[1, 2]", {"value": [1, 2]}), ('"x"', {"value": "x"})],
    ids=["null", "empty", "array", "string"],
)
def test_a_value_that_is_not_an_object_is_kept_under_value(
    text: str | None, expected: dict[str, Any]
) -> None:
    assert parse_meta(text) == expected


def test_what_is_written_reads_back_the_same() -> None:
    meta = {"é": ["ü", 1, 2.5, None, {"deep": [True]}], "big": 2**70, "empty": {}}
    assert parse_meta(dump_meta(meta)) == meta


def test_what_is_written_is_json_even_with_nan_or_infinity_read_from_a_row() -> None:
    meta = parse_meta('{"a": NaN, "b": [Infinity, {"c": -Infinity}], "d": 1e400, "e": 0.5}')
    text = dump_meta(meta)
    assert json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} written")) == {
        "a": None,
        "b": [None, {"c": None}],
        "d": None,
        "e": 0.5,
    }


@pytest.mark.parametrize(
    ("levels", "kept_as_json"), [(60, True), (150, True), (230, True), (300, False), (900, False)]
)
def test_meta_json_nested_deeper_than_a_record_can_be_served_is_read_as_text(
    levels: int, kept_as_json: bool
) -> None:
    """Another program may write what no answer could serialise (about 255 levels): such a
    model would fail every read, and every page that holds it."""
    text = '{"deep": ' + "[" * levels + "]" * levels + "}"
    meta = parse_meta(text)
    assert (meta == json.loads(text)) is kept_as_json
    assert kept_as_json or meta == {"unparsed_meta_json": text}
