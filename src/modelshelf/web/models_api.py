"""Handlers: browsing the catalog."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from modelshelf.domain import catalog, revisions
from modelshelf.records import ModelRecord
from modelshelf.storage.model_filter import ModelFilter
from modelshelf.web.bodies import (
    BaseModelsResponse,
    ModelsPage,
    ModelsQuery,
    TagCount,
    TagsResponse,
    TypesResponse,
)
from modelshelf.web.endpoint import IF_MATCH, IF_NONE_MATCH, PRECONDITION, VERSIONS, Endpoint
from modelshelf.web.keys import SHELF
from modelshelf.web.parsing import (
    if_match,
    if_none_match,
    is_large,
    is_long,
    parse_query,
    path_sha256,
    respond,
    with_etag,
)


async def list_models(request: web.Request) -> web.Response:
    query = parse_query(request.query, ModelsQuery)
    where = ModelFilter(
        type=query.type,
        tag=query.tag,
        q=query.q,
        base_model=query.base_model,
        missing=query.missing,
        sort=query.sort,
        order=query.order,
    )
    found = await catalog.list_models(
        request.app[SHELF], where, query.limit, query.offset, query.meta_key_set()
    )
    page = ModelsPage.json_of(found.jsons, found.total, query)
    # Long by the count of its records, or by their length (megabytes of meta_json each).
    large = is_large(len(found.jsons)) or is_long(found.chars)
    return await respond(request, page, large=large)


async def get_model(request: web.Request) -> web.Response:
    precondition, held = if_match(request), if_none_match(request)
    model = await revisions.read_model(request.app[SHELF], path_sha256(request))
    # RFC 9110 13.2.2: If-Match first (412), then If-None-Match (304 for a GET).
    if precondition is not None:
        precondition.require(model.etag)
    if held is not None and held.matches(model.etag):
        response = with_etag(web.Response(status=304), model.etag)
    else:
        response = with_etag(
            await respond(request, model.record, large=is_long(model.chars)), model.etag
        )
    response.headers["Images-Version"] = model.images_version
    return response


async def list_tags(request: web.Request) -> web.Response:
    shelf = request.app[SHELF]
    tags = await catalog.list_tags(shelf)
    # A collector's 10,000 tags took 30 ms to become records: done in the reads pool when
    # large, as their serialising is, off the event loop (bench/ui_scale.py).
    large = is_large(len(tags))
    body = await shelf.run_reads(_tags_body, tags) if large else _tags_body(tags)
    return await respond(request, body, large=large)


def _tags_body(tags: list[dict[str, Any]]) -> TagsResponse:
    return TagsResponse(tags=[TagCount(**t) for t in tags])


async def list_types(request: web.Request) -> web.Response:
    return await respond(request, TypesResponse(types=await catalog.list_types(request.app[SHELF])))


async def list_base_models(request: web.Request) -> web.Response:
    found = await catalog.list_base_models(request.app[SHELF])
    return await respond(request, BaseModelsResponse.of(found))


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "GET",
        "/api/models",
        list_models,
        "Browse the library, a page at a time",
        query=ModelsQuery,
        responses={200: ModelsPage, 400: None},
    ),
    Endpoint(
        "GET",
        "/api/models/get_types",
        list_types,
        "Model types in use",
        responses={200: TypesResponse},
    ),
    Endpoint(
        "GET",
        "/api/models/base_models",
        list_base_models,
        "Base models in use, with how many models the base_model filter lists for each",
        responses={200: BaseModelsResponse},
    ),
    Endpoint(
        "GET",
        "/api/models/{sha256}",
        get_model,
        "One model, in full, with its version as a strong ETag (for If-Match) and its images'"
        " version alone as Images-Version (it changes when its pictures do)",
        headers=(*IF_MATCH, IF_NONE_MATCH),
        responses={200: ModelRecord, 304: "", 400: None, 404: None, **PRECONDITION},
        answer_headers={200: VERSIONS, 304: VERSIONS},
    ),
    Endpoint(
        "GET",
        "/api/tags",
        list_tags,
        "Tags with their model counts",
        responses={200: TagsResponse},
    ),
]
