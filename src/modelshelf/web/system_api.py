"""HTTP handlers for the service itself: health and the API description."""

from __future__ import annotations

from aiohttp import web

from modelshelf.web.bodies import HealthBody
from modelshelf.web.endpoint import Endpoint
from modelshelf.web.keys import SETTINGS
from modelshelf.web.parsing import respond


async def health(request: web.Request) -> web.Response:
    # The app serves only after its storage context opened the database, so reaching this
    # handler is the proof; no query, so it stays fast while the database is busy.
    return await respond(request, HealthBody())


async def openapi(request: web.Request) -> web.Response:
    from modelshelf.web.openapi import build_openapi  # the table imports this module

    document = build_openapi(request.app[SETTINGS].path_prefix)
    return web.json_response(document)


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "GET",
        "/api/health",
        health,
        "Liveness: the database is open",
        responses={200: HealthBody},
    ),
    Endpoint(
        "GET",
        "/api/openapi.json",
        openapi,
        "This document",
        responses={200: "application/json"},
    ),
]
