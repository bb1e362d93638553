"""What an endpoint is: its method, path, handler and bodies. Each `*_api` module lists its
own endpoints; `routes` gathers them into the aiohttp router and `openapi` into the document,
so the two cannot drift apart."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from modelshelf.domain.revisions import IF_MATCH_PATTERN

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# A response is a pydantic model (JSON), a media type (a file), or None (an ErrorBody).
Answer = type[BaseModel] | str | None


@dataclass(frozen=True)
class Header:
    """A header as the OpenAPI document declares it: one an endpoint reads (a parameter, never
    required of the client) or one it sets on an answer (`required`: on every answer of that
    status, else only on some)."""

    name: str
    description: str
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = True

    def sometimes(self) -> Header:
        """The same header, set on some answers of a status only."""
        return replace(self, required=False)


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
    # Request headers the endpoint reads, each optional.
    headers: tuple[Header, ...] = ()
    responses: dict[int, Answer] = field(default_factory=dict)
    # The headers it sets on its answers, by status (tests/test_declared_headers.py checks them
    # against what the app answers).
    answer_headers: dict[int, tuple[Header, ...]] = field(default_factory=dict)


# What any endpoint that reads a body may answer: malformed, too slow to arrive, too large.
JSON_ERRORS: dict[int, Answer] = {400: None, 408: None, 413: None}
IMAGE = "image/webp"
# Changes of a model that honour If-Match (its ETag from GET /api/models/{sha256}), and the 412
# they answer when it does not match. The service reads both conditions itself (answering 400
# where one does not look like this).
_CONDITION = {"type": "string", "pattern": IF_MATCH_PATTERN}
IF_MATCH = (
    Header("If-Match", "the model's ETag: 412 unless it is still this version", _CONDITION),
)
PRECONDITION: dict[int, Answer] = {412: None}
IF_NONE_MATCH = Header(
    "If-None-Match",
    "ETags of earlier answers: 304 while the answer is still one of them",
    _CONDITION,
)
PREFER = Header("Prefer", "`respond-async`: answer 202 with the job at once instead of waiting")
# A file's conditions are read as aiohttp reads them: a malformed one matches nothing.
FILE_CONDITIONS = (
    Header("If-Match", "the file's ETag: 412 unless it is still this version"),
    Header("If-None-Match", "the file's ETags the client holds: 304 while it is one of them"),
)
PAGE_CONDITION = Header("If-None-Match", "the file's ETag the client holds: 304 while unchanged")

# What a change of a model answers with: its version (GET /api/models/{sha256} gives the same).
MODEL_ETAG = Header("ETag", "the model's version, a strong ETag: send it back as If-Match")
IMAGES_VERSION = Header(
    "Images-Version", "the version of the model's images alone: it changes when its pictures do"
)
VERSIONS = (MODEL_ETAG, IMAGES_VERSION)
EXISTING_ETAG = Header(
    "ETag",
    "the version of `existing`, when there is one: send it back as If-Match to import_a_model",
    required=False,
)
# A list or a job tagged by its content (weak: the answer may be gzipped).
TAG = Header("ETag", "a weak tag of the answer: send it as If-None-Match for a 304 while unchanged")
TAGGED: dict[int, tuple[Header, ...]] = {200: (TAG.sometimes(),), 304: (TAG,)}
FILE_VALIDATORS = (
    Header("ETag", "the file's version: send it as If-None-Match for a 304, or as If-Match"),
    Header("Last-Modified", "when the file last changed"),
)
PAGE_ETAG = Header("ETag", "the file's version: send it as If-None-Match for a 304")
# Changes that go to the database can meet a read-only database or a full disk.
WRITE_ERRORS: dict[int, Answer] = {503: None, 507: None}
