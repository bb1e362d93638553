"""The API reference in Markdown (docs/api.md), rendered from the OpenAPI document.

`python -m modelshelf.web.apidoc > docs/api.md` (`make docs`) writes it. The document comes from
the endpoint table, so the reference follows every change to a route or a body; a test fails
while docs/api.md differs from what this module renders.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from modelshelf.web.openapi import build_openapi

Schema = Mapping[str, Any]

HEADER = """\
# modelshelf HTTP API

Rendered from the service's OpenAPI 3.1 document (`GET /api/openapi.json`) by
`python -m modelshelf.web.apidoc`: do not edit it by hand, run `make docs` after changing an
endpoint or a body. Paths are shown without the optional `path_prefix` setting.
"""


def render_api_reference(document: Mapping[str, Any]) -> str:
    """The whole reference: an index of the endpoints, each endpoint, then each schema."""
    operations = [
        (method.upper(), path, operation)
        for path, methods in document["paths"].items()
        for method, operation in methods.items()
    ]
    lines = [HEADER, "## Endpoints", "", "| method, path | what |", "| --- | --- |"]
    lines += [f"| `{m} {p}` | {_cell(_text(op['summary']))} |" for m, p, op in operations]
    for method, path, operation in operations:
        lines += ["", f"### `{method} {path}`", "", _text(operation["summary"])]
        lines += _operation_sections(operation)
    lines += ["", "## Schemas"]
    for name, schema in document["components"]["schemas"].items():
        lines += ["", f"### {name}", ""]
        lines += _schema_section(schema)
    return "\n".join(lines) + "\n"


def describe(schema: Schema) -> str:
    """A schema in a few words: `integer (1 to 500)`, `[Tag](#tag) or null`, `array of string`."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return " or ".join(describe(part) for part in schema[key])
    if "const" in schema:
        return f"`{json.dumps(schema['const'])}`"
    if "enum" in schema:
        return "one of " + ", ".join(f"`{json.dumps(value)}`" for value in schema["enum"])
    kind = schema.get("type", "any")
    if kind == "array":
        return "array of " + describe(schema.get("items", {}))
    if kind == "object":
        values = schema.get("additionalProperties")
        if isinstance(values, Mapping):
            return "object of " + describe(values)
        return "object"
    constraints = ", ".join(_constraints(schema))
    return f"{kind} ({constraints})" if constraints else str(kind)


def _constraints(schema: Schema) -> Iterator[str]:
    if "format" in schema:
        yield str(schema["format"])
    if "pattern" in schema:
        yield f"matching `{schema['pattern']}`"
    if "minLength" in schema or "maxLength" in schema:
        yield _range(schema.get("minLength"), schema.get("maxLength")) + " characters"
    if "minimum" in schema or "maximum" in schema:
        yield _range(schema.get("minimum"), schema.get("maximum"))


def _range(low: object, high: object) -> str:
    if high is None:
        return f"at least {low}"
    if low is None:
        return f"at most {high}"
    return f"{low} to {high}"


def _operation_sections(operation: Schema) -> list[str]:
    lines: list[str] = []
    parameters = operation.get("parameters", [])
    if parameters:
        lines += ["", "Parameters:", "", "| name | in | required | schema |"]
        lines.append("| --- | --- | --- | --- |")
        for parameter in parameters:
            schema = parameter["schema"]
            text = describe(schema)
            if "default" in schema:
                text += f"; default `{json.dumps(schema['default'])}`"
            if "description" in parameter:
                text += f": {_text(parameter['description'])}"
            required = "yes" if parameter.get("required") else "no"
            lines.append(
                f"| `{parameter['name']}` | {parameter['in']} | {required} | {_cell(text)} |"
            )
    body = operation.get("requestBody")
    if body is not None:
        for media, content in body["content"].items():
            lines += ["", f"Request body (`{media}`): {_body(content['schema'])}"]
    lines += ["", "Responses:", "", "| status | meaning | body | headers |"]
    lines.append("| --- | --- | --- | --- |")
    for status, response in operation["responses"].items():
        bodies = [
            f"`{media}` {_body(content['schema'])}"
            for media, content in response.get("content", {}).items()
        ]
        headers = _cell(", ".join(_answer_headers(response)))
        meaning = response["description"]
        lines.append(f"| {status} | {meaning} | {_cell(', '.join(bodies))} | {headers} |")
    return lines


def _answer_headers(response: Schema) -> Iterator[str]:
    """The headers an answer carries, each with what it means; `sometimes` where only some
    answers of its status carry it."""
    for name, header in response.get("headers", {}).items():
        sometimes = "" if header.get("required") else "sometimes: "
        yield f"`{name}` ({sometimes}{_text(header['description'])})"


def _body(schema: Schema) -> str:
    if schema.get("type") == "object" and "properties" in schema:
        fields = ", ".join(
            f"`{name}` ({describe(value)})" for name, value in schema["properties"].items()
        )
        return f"fields {fields}"
    return describe(schema)


def _schema_section(schema: Schema) -> list[str]:
    lines: list[str] = []
    if "description" in schema:
        lines += [_text(schema["description"]), ""]
    properties: Mapping[str, Schema] = schema.get("properties", {})
    if not properties:
        text = describe(schema)
        return [*lines, text[:1].upper() + text[1:] + "."]
    required = set(schema.get("required", []))
    lines += ["| field | type | required | default |", "| --- | --- | --- | --- |"]
    for name, field_schema in properties.items():
        text = describe(field_schema)
        if "description" in field_schema:
            text += f": {_text(field_schema['description'])}"
        default = f"`{json.dumps(field_schema['default'])}`" if "default" in field_schema else ""
        mark = "yes" if name in required else "no"
        lines.append(f"| `{name}` | {_cell(text)} | {mark} | {_cell(default)} |")
    if schema.get("additionalProperties") is False:
        lines += ["", "Any other field is refused (400)."]
    return lines


def _text(text: str) -> str:
    """Prose from the schemas, with `<` escaped outside code so `<hash>` is not read as HTML."""
    parts = text.split("`")
    parts[::2] = [part.replace("<", "\\<") for part in parts[::2]]
    return "`".join(parts)


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: `|` would end the cell, even in code."""
    return text.replace("|", "\\|").replace("\n", " ")


def main() -> None:
    sys.stdout.write(render_api_reference(build_openapi()))


if __name__ == "__main__":
    main()
