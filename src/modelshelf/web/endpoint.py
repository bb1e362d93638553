"""What an endpoint is: its method, path, handler and bodies. Each `*_api` module lists its
own endpoints; `routes` gathers them into the aiohttp router and `openapi` into the document,
so the two cannot drift apart."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from pydantic import BaseModel

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# A response is a pydantic model (JSON), a media type (a file), or None (an ErrorBody).
Answer = type[BaseModel] | str | None


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    summary: str
    body: type[BaseModel] | None = None
    body_optional: bool = False  # no body at all means every field's default
    query: type[BaseModel] | None = None
    multipart: bool = False
    # Request headers the endpoint reads, each optional (described in routes.HEADER_PARAMETERS).
    headers: tuple[str, ...] = ()
    responses: dict[int, Answer] = field(default_factory=dict)


# What any endpoint that reads a body may answer: malformed, too slow to arrive, too large.
JSON_ERRORS: dict[int, Answer] = {400: None, 408: None, 413: None}
IMAGE = "image/webp"
# Changes of a model that honour If-Match (its ETag from GET /api/models/{sha256}), and the 412
# they answer when it does not match.
IF_MATCH = ("If-Match",)
PRECONDITION: dict[int, Answer] = {412: None}
# Changes that go to the database can meet a read-only database or a full disk.
WRITE_ERRORS: dict[int, Answer] = {503: None, 507: None}
