"""Cross-origin calls from browser pages (CORS), through the maintained aiohttp-cors library.

Off unless `cors_origins` lists origins. Then every endpoint answers preflight requests and
carries the CORS headers; credentials are allowed for the origins named, never for "*"; the
ETag is exposed so that a page can send it back with If-Match, and Images-Version beside it.
"""

from __future__ import annotations

import aiohttp_cors
from aiohttp import web

WILDCARD = "*"
EXPOSED_HEADERS = (
    "ETag",
    "Images-Version",
    "Location",
    "Retry-After",
    "Content-Range",
    "Accept-Ranges",
)
ALLOWED_HEADERS = (
    "Content-Type",
    "If-Match",
    "If-None-Match",
    "If-Modified-Since",
    "If-Range",
    "Range",
    "Prefer",
)
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
PREFLIGHT_MAX_AGE = 600


def setup_cors(app: web.Application, origins: list[str]) -> None:
    """Answer preflight requests and add CORS headers on every route, for `origins`. Call it
    once every route is registered."""
    if not origins:
        return
    cors = aiohttp_cors.setup(
        app,
        defaults={
            # ResourceOptions has no annotations (aiohttp-cors 0.8).
            origin: aiohttp_cors.ResourceOptions(  # type: ignore[no-untyped-call]
                allow_credentials=origin != WILDCARD,
                expose_headers=EXPOSED_HEADERS,
                allow_headers=ALLOWED_HEADERS,
                allow_methods=METHODS,
                max_age=PREFLIGHT_MAX_AGE,
            )
            for origin in origins
        },
    )
    for resource in list(app.router.resources()):
        cors.add(resource)
    app.on_response_prepare.append(_vary_on_origin)


async def _vary_on_origin(request: web.Request, response: web.StreamResponse) -> None:
    # The CORS headers echo the request's Origin: a shared cache must keep answers apart.
    vary = response.headers.get("Vary")
    if vary is None:
        response.headers["Vary"] = "Origin"
    elif "origin" not in vary.lower():
        response.headers["Vary"] = f"{vary}, Origin"
