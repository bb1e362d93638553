"""docs/api.md: rendered from the OpenAPI document, and kept up to date with it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelshelf.web.apidoc import describe, render_api_reference
from modelshelf.web.openapi import build_openapi
from modelshelf.web.routes import ENDPOINTS

API_MD = Path(__file__).resolve().parents[1] / "docs" / "api.md"


def test_docs_api_md_is_what_the_generator_renders_now() -> None:
    expected = render_api_reference(build_openapi())
    assert API_MD.read_text(encoding="utf-8") == expected, (
        "docs/api.md is out of date: run `make docs` and commit the result"
    )


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
def test_every_endpoint_has_a_section(endpoint: Any) -> None:
    assert f"\n### `{endpoint.method} {endpoint.path}`\n" in render_api_reference(build_openapi())


def test_every_schema_has_a_section() -> None:
    document = build_openapi()
    reference = render_api_reference(document)
    missing = [
        name for name in document["components"]["schemas"] if f"\n### {name}\n" not in reference
    ]
    assert missing == []


@pytest.mark.parametrize(
    ("schema", "words"),
    [
        ({"$ref": "#/components/schemas/ModelRecord"}, "[ModelRecord](#modelrecord)"),
        ({"anyOf": [{"type": "string"}, {"type": "null"}]}, "string or null"),
        ({"type": "integer", "minimum": 1, "maximum": 500}, "integer (1 to 500)"),
        ({"type": "string", "maxLength": 100}, "string (at most 100 characters)"),
        ({"type": "integer", "minimum": 0}, "integer (at least 0)"),
        ({"type": "string", "pattern": "^a|b$"}, "string (matching `^a|b$`)"),
        ({"type": "string", "format": "binary"}, "string (binary)"),
        ({"enum": ["high", "low"], "type": "string"}, 'one of `"high"`, `"low"`'),
        ({"const": "success", "type": "string"}, '`"success"`'),
        ({"type": "array", "items": {"type": "string"}}, "array of string"),
        ({"type": "object", "additionalProperties": {"type": "integer"}}, "object of integer"),
        ({"type": "object", "additionalProperties": True}, "object"),
        ({}, "any"),
    ],
)
def test_a_schema_is_described_in_a_few_words(schema: dict[str, Any], words: str) -> None:
    assert describe(schema) == words


def test_a_pipe_in_a_pattern_does_not_split_its_table_cell() -> None:
    reference = render_api_reference(build_openapi())
    row = next(line for line in reference.splitlines() if line.startswith("| `filename` |"))
    assert row.count(" | ") == 3  # four cells; the pattern's `|` is escaped


def test_angle_brackets_in_prose_are_not_read_as_html() -> None:
    reference = render_api_reference(build_openapi())
    assert "\\<sha256>_\\<seq>.webp" in reference
    assert "(?P<hash>" in reference  # inside code, left alone


def test_the_headers_an_answer_carries_are_in_its_row() -> None:
    reference = render_api_reference(build_openapi())
    section = reference.split("\n### `GET /api/models/{sha256}`\n")[1].split("\n### ")[0]
    row = next(line for line in section.splitlines() if line.startswith("| 304 |"))
    assert "`ETag` (the model's version" in row and "`Images-Version` (" in row
    section = reference.split("\n### `POST /api/migration/preview_import`\n")[1].split("\n### ")[0]
    row = next(line for line in section.splitlines() if line.startswith("| 200 |"))
    assert "`ETag` (sometimes: the version of `existing`" in row


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
def test_headers_are_declared_only_on_answers_the_endpoint_gives(endpoint: Any) -> None:
    assert endpoint.answer_headers.keys() <= endpoint.responses.keys()
