"""Handlers: content present at two or more paths under the model roots."""

from __future__ import annotations

from aiohttp import web

from modelshelf.domain.duplicates import DuplicateGroup, list_duplicates
from modelshelf.web.duplicates_bodies import DuplicateGroupBody, DuplicatesResponse
from modelshelf.web.endpoint import Endpoint
from modelshelf.web.keys import SHELF
from modelshelf.web.parsing import respond


async def duplicates(request: web.Request) -> web.Response:
    shelf = request.app[SHELF]
    groups = await list_duplicates(shelf)
    # 2,000 groups took 36 ms to become records: in the reads pool, off the event loop, as
    # their serialising is (bench/ui_scale.py).
    return await respond(request, await shelf.run_reads(_body, groups), large=True)


def _body(groups: list[DuplicateGroup]) -> DuplicatesResponse:
    bodies = [DuplicateGroupBody.model_validate(g, from_attributes=True) for g in groups]
    return DuplicatesResponse(groups=bodies, wasted_bytes=sum(g.wasted_bytes for g in groups))


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "GET",
        "/api/duplicates",
        duplicates,
        "Content present at two or more paths, with the bytes the extra copies take",
        responses={200: DuplicatesResponse},
    ),
]
