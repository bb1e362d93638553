"""An OpenAPI 3.1 document generated from the endpoint table and pydantic's JSON schemas."""

from __future__ import annotations

import functools
import re
from http import HTTPStatus
from typing import Any, Literal, cast

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaValue, models_json_schema

from modelshelf import __version__
from modelshelf.records import SHA256_ANY_CASE
from modelshelf.renditions import qualities
from modelshelf.web.bodies import ErrorBody
from modelshelf.web.endpoint import Answer, Endpoint, Header
from modelshelf.web.middleware import SAFE_METHODS
from modelshelf.web.routes import ENDPOINTS, PATH_PARAMETERS

REF = "#/components/schemas/{model}"
Mode = Literal["validation", "serialization"]


def build_openapi(prefix: str = "") -> dict[str, Any]:
    """The document for a service under `prefix`. Built once per prefix and rendition
    registry (the quality enum comes from it)."""
    return _build(prefix, qualities())


@functools.cache
def _build(prefix: str, _registry: tuple[str, ...]) -> dict[str, Any]:
    refs, definitions = _schemas()
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in ENDPOINTS:
        operation = _operation(endpoint, refs)
        paths.setdefault(prefix + endpoint.path, {})[endpoint.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "modelshelf", "version": __version__},
        "paths": paths,
        "components": {"schemas": definitions.get("$defs", {})},
    }


def _schemas() -> tuple[dict[tuple[type[BaseModel], Mode], JsonSchemaValue], dict[str, Any]]:
    wanted: set[tuple[type[BaseModel], Mode]] = {(ErrorBody, "serialization")}
    for endpoint in ENDPOINTS:
        if endpoint.body is not None:
            wanted.add((endpoint.body, "validation"))
        if endpoint.query is not None:
            wanted.add((endpoint.query, "validation"))
        for answer in endpoint.responses.values():
            if isinstance(answer, type):
                wanted.add((answer, "serialization"))
    ordered = sorted(wanted, key=lambda item: (item[0].__name__, item[1]))
    refs, definitions = models_json_schema(ordered, ref_template=REF)
    return {(cast(type[BaseModel], m), mode): s for (m, mode), s in refs.items()}, definitions


def _operation(
    endpoint: Endpoint, refs: dict[tuple[type[BaseModel], Mode], JsonSchemaValue]
) -> dict[str, Any]:
    responses = dict(endpoint.responses)
    if endpoint.method not in SAFE_METHODS:  # a browser's request from another site's page
        responses.setdefault(403, None)
        # A body with a Content-Encoding (middleware.plain_bodies).
        responses.setdefault(415, None)
    operation: dict[str, Any] = {
        "summary": endpoint.summary,
        "operationId": endpoint.handler.__name__,
        "responses": {
            str(status): _response(status, answer, refs, endpoint.answer_headers.get(status, ()))
            for status, answer in sorted(responses.items())
        },
    }
    parameters = _parameters(endpoint)
    if parameters:
        operation["parameters"] = parameters
    if endpoint.body is not None:
        operation["requestBody"] = {
            "required": not endpoint.body_optional,
            "content": {"application/json": {"schema": refs[(endpoint.body, "validation")]}},
        }
    if endpoint.multipart:
        operation["requestBody"] = {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "image": {"type": "string", "format": "binary"},
                            "sha256": {"type": "string", "pattern": SHA256_ANY_CASE},
                        },
                        "required": ["image", "sha256"],
                        "additionalProperties": False,
                    }
                }
            },
        }
    return operation


def _parameters(endpoint: Endpoint) -> list[dict[str, Any]]:
    """Path parameters, then query parameters, then the request headers it reads."""
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": PATH_PARAMETERS[name]}
        for name in re.findall(r"{(\w+)}", endpoint.path)
    ]
    if endpoint.query is not None:
        parameters += _query_parameters(endpoint.query)
    return parameters + [
        {
            "name": header.name,
            "in": "header",
            "required": False,
            "description": header.description,
            "schema": dict(header.schema),
        }
        for header in endpoint.headers
    ]


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(mode="validation")
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": field_schema}
        for name, field_schema in schema.get("properties", {}).items()
    ]


def _response(
    status: int,
    answer: Answer,
    refs: dict[tuple[type[BaseModel], Mode], JsonSchemaValue],
    headers: tuple[Header, ...],
) -> dict[str, Any]:
    response: dict[str, Any] = {"description": HTTPStatus(status).phrase}
    if headers:
        response["headers"] = {
            h.name: {"description": h.description, "required": h.required, "schema": dict(h.schema)}
            for h in headers
        }
    if answer is None:
        schema = refs[(ErrorBody, "serialization")]
        response["content"] = {"application/json": {"schema": schema}}
    elif isinstance(answer, type):
        response["content"] = {"application/json": {"schema": refs[(answer, "serialization")]}}
    elif answer:
        response["content"] = {answer: {"schema": {"type": "string", "format": "binary"}}}
        if answer == "application/json":
            response["content"] = {answer: {"schema": {"type": "object"}}}
    return response
