"""Handlers: content present at two or more paths under the model roots."""

from __future__ import annotations

import dataclasses

from aiohttp import web

from modelshelf.domain.duplicates import list_duplicates
from modelshelf.web.duplicates_bodies import DuplicateGroupBody, DuplicatesResponse
from modelshelf.web.endpoint import Endpoint
from modelshelf.web.keys import SHELF
from modelshelf.web.parsing import respond


async def duplicates(request: web.Request) -> web.Response:
    groups = [
        DuplicateGroupBody(**dataclasses.asdict(group))
        for group in await list_duplicates(request.app[SHELF])
    ]
    body = DuplicatesResponse(groups=groups, wasted_bytes=sum(g.wasted_bytes for g in groups))
    return await respond(request, body, large=True)


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "GET",
        "/api/duplicates",
        duplicates,
        "Content present at two or more paths, with the bytes the extra copies take",
        responses={200: DuplicatesResponse},
    ),
]
