"""HTTP handlers for tags themselves: create, rename, merge, delete. (Listing tags with their model
counts is in models_api; a model's tags are set in edits_api.)"""

from __future__ import annotations

from aiohttp import web

from modelshelf.domain import tagging
from modelshelf.records import Tag
from modelshelf.web.bodies import TagCount
from modelshelf.web.edit_bodies import MergeTagRequest, MergeTagResponse, TagRequest
from modelshelf.web.endpoint import JSON_ERRORS, WRITE_ERRORS, Endpoint
from modelshelf.web.keys import SETTINGS, SHELF
from modelshelf.web.parsing import parse_body, parse_path_id, respond


def _tag_id(request: web.Request) -> int:
    return parse_path_id(request.match_info["id"], "a tag id")


async def create_tag(request: web.Request) -> web.Response:
    body = await parse_body(request, TagRequest)
    shelf = request.app[SHELF]
    tag = await shelf.finish(tagging.create_tag(shelf, body.name))
    response = await respond(request, tag, status=201)
    response.headers["Location"] = f"{request.app[SETTINGS].path_prefix}/api/tags/{tag.id}"
    return response


async def rename_tag(request: web.Request) -> web.Response:
    tag_id = _tag_id(request)
    body = await parse_body(request, TagRequest)
    shelf = request.app[SHELF]
    return await respond(request, await shelf.finish(tagging.rename_tag(shelf, tag_id, body.name)))


async def merge_tag(request: web.Request) -> web.Response:
    tag_id = _tag_id(request)
    body = await parse_body(request, MergeTagRequest)
    shelf = request.app[SHELF]
    into, count = await shelf.finish(tagging.merge_tag(shelf, tag_id, body.into))
    return await respond(request, MergeTagResponse(tag=into, models=count))


async def delete_tag(request: web.Request) -> web.Response:
    tag_id = _tag_id(request)
    shelf = request.app[SHELF]
    tag, count = await shelf.finish(tagging.delete_tag(shelf, tag_id))
    return await respond(request, TagCount(id=tag.id, name=tag.name, models=count))


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "POST",
        "/api/tags",
        create_tag,
        "Create a tag (the name is trimmed and lower-cased)",
        body=TagRequest,
        responses={201: Tag, **JSON_ERRORS, 409: None, **WRITE_ERRORS},
    ),
    Endpoint(
        "PATCH",
        "/api/tags/{id}",
        rename_tag,
        "Rename a tag (409 if another tag has the name)",
        body=TagRequest,
        responses={200: Tag, **JSON_ERRORS, 404: None, 409: None, **WRITE_ERRORS},
    ),
    Endpoint(
        "POST",
        "/api/tags/{id}/merge",
        merge_tag,
        "Merge a tag into another: its models carry that one instead, and it is deleted",
        body=MergeTagRequest,
        responses={200: MergeTagResponse, **JSON_ERRORS, 404: None, **WRITE_ERRORS},
    ),
    Endpoint(
        "DELETE",
        "/api/tags/{id}",
        delete_tag,
        "Delete a tag, removing it from every model and pending model",
        responses={200: TagCount, 400: None, 404: None, **WRITE_ERRORS},
    ),
]
