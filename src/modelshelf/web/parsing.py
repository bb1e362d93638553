"""Turning requests into pydantic models and models into responses (202 for a started job)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from modelshelf.domain.revisions import IfMatch, IfNoneMatch, Versioned
from modelshelf.errors import InvalidInput
from modelshelf.records import SHA256_ANY_CASE, Job, row_id_from_text
from modelshelf.web.bodies import PATTERN_MEANINGS
from modelshelf.web.compression import encode_json, takes_gzip
from modelshelf.web.jobs_bodies import JobResponse
from modelshelf.web.keys import SETTINGS, SHELF

M = TypeVar("M", bound=BaseModel)
JSON = "application/json"


async def parse_body(request: web.Request, model: type[M], *, optional: bool = False) -> M:
    """The request's JSON body as `model` (`optional`: no body is `{}`). Raises InvalidInput
    with a readable detail (read_body), HTTPRequestTimeout if the body takes longer than
    `body_timeout` to arrive."""
    async with body_deadline(request):
        raw = await request.read()
    # Only a body of no bytes at all is "no body": white space alone is not JSON.
    if not raw and optional:
        raw = b"{}"
    elif not raw.strip() and not optional:
        raise InvalidInput("the request needs a JSON body")
    if len(raw) > INLINE_BODY_BYTES:
        return await request.app[SHELF].run_reads(read_body, raw, model)
    return read_body(raw, model)


# Bodies longer than this are read in the reads pool: a body of 464 KB took 12.3 ms to read
# (the repeated-key check, then pydantic; BENCHMARKS.md), in one callback of the event loop,
# and a request may carry twice that (client_max_size); a usual body (a PATCH, a list of ids)
# reads in microseconds, less than the trip to a thread.
INLINE_BODY_BYTES = 64 * 1024


def read_body(raw: bytes, model: type[M]) -> M:
    """The JSON text `raw` as `model`. Raises InvalidInput with a readable detail, for a key
    given twice in one object too."""
    refuse_repeated_keys(raw)
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise InvalidInput(describe(exc)) from None


class _RepeatedKey(Exception):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _once_each(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object's members as a dict; raises _RepeatedKey for a key given twice."""
    members = dict(pairs)
    if len(members) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _RepeatedKey(key)
            seen.add(key)
    return members


# Made once: json.loads with a hook builds a decoder a call, which took longer than reading a
# usual body.
_ONCE_EACH = json.JSONDecoder(object_pairs_hook=_once_each)


def refuse_repeated_keys(raw: bytes) -> None:
    """Raises InvalidInput when an object of the JSON text `raw` gives a key twice: pydantic
    (as most parsers) keeps the last value unseen, and `{"name": "a", "name": "b"}` says two
    things. Python's parser, whose hook sees every member, reads `raw` a first time (a few
    microseconds for a usual body); text it cannot read (not UTF-8, too deep, no JSON) is left
    for pydantic to take or refuse in its own words."""
    try:
        _ONCE_EACH.decode(raw.decode())
    except _RepeatedKey as repeated:
        key = json.dumps(repeated.key)
        key = key if len(key) <= 60 else key[:57] + '..."'
        raise InvalidInput(f"the key {key} is given twice in one object; send it once") from None
    except (ValueError, RecursionError):
        return


@asynccontextmanager
async def body_deadline(request: web.Request) -> AsyncIterator[None]:
    """Bound the time the body of `request` may take to arrive: a client trickling it in
    must not hold a connection and a handler for ever. Raises HTTPRequestTimeout."""
    seconds = request.app[SETTINGS].body_timeout
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError:
        raise web.HTTPRequestTimeout(
            text=f"the request body did not arrive within {seconds:g} s"
        ) from None


def parse_query(query: Mapping[str, str], model: type[M]) -> M:
    """Query parameters as `model`. Raises InvalidInput."""
    try:
        return model.model_validate(dict(query))
    except ValidationError as exc:
        raise InvalidInput(describe(exc)) from None


def describe(exc: ValidationError) -> str:
    """One line a person can act on, e.g. "id: Input should be a valid integer"."""
    parts = []
    for error in exc.errors(include_url=False):
        if error["type"] == "json_invalid":
            parts.append(f"malformed JSON: {error['ctx'].get('error', error['msg'])}")
            continue
        # A rule of ours (a field validator raising ValueError) says itself: pydantic puts its
        # kind before it ("Value error, at most 100 characters..."), which tells nobody anything.
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "string_pattern_mismatch":
            message = PATTERN_MEANINGS.get(error["ctx"]["pattern"], message)
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {message}")
    return "; ".join(parts[:10]) or "invalid request"


# Answers of up to this many records are serialised on the event loop: 50 models take about
# 0.15 ms there, less than the two hand-offs of the GIL a trip to the reads pool costs while
# imports and other clients keep every thread busy (issue 15; BENCHMARKS.md, reads under load).
INLINE_RECORDS = 100


def is_large(records: int) -> bool:
    """Whether an answer of `records` records is serialised in the reads pool."""
    return records > INLINE_RECORDS


# Records whose JSON is longer than this (characters) are serialised in the reads pool too,
# however few: megabytes of meta_json (a scan keeps a kohya header's tag counts) took about
# 3.5 ms a megabyte on the event loop (a page of 100 such models, a third of a second); a usual
# record (a Civitai one, about 8 KB), and a page of 50 of them, stay inline.
INLINE_JSON_CHARS = 512 * 1024


def is_long(chars: int) -> bool:
    """Whether records whose JSON is `chars` characters long (negative: not known) are
    serialised in the reads pool."""
    return chars < 0 or chars > INLINE_JSON_CHARS


async def respond(
    request: web.Request, body: BaseModel | bytes, status: int = 200, *, large: bool = False
) -> web.Response:
    """Serialise `body` as JSON (bytes are its JSON already); `large` bodies are serialised in
    the reads pool, off the event loop and out of the pools bulk work fills, and gzipped there
    for a client that takes gzip when they are long (compression.encode_json)."""
    if not large:
        data = body if isinstance(body, bytes) else body.model_dump_json().encode()
        return web.Response(body=data, status=status, content_type=JSON, charset="utf-8")
    gzip = takes_gzip(request.headers)
    data, gzipped = await request.app[SHELF].run_reads(encode_json, body, gzip)
    # Whether a large answer is gzipped depends on the request's Accept-Encoding.
    headers = {"Vary": "Accept-Encoding"} | ({"Content-Encoding": "gzip"} if gzipped else {})
    return web.Response(body=data, status=status, content_type=JSON, headers=headers)


def path_sha256(request: web.Request) -> str:
    """The path's `{sha256}`, lower-cased when it is 64 hex characters of either case (Civitai
    shows a model's SHA256 in upper case, and people paste it); anything else as it came, for
    the domain to refuse (InvalidInput, 400)."""
    raw = request.match_info["sha256"]
    return raw.lower() if re.fullmatch(SHA256_ANY_CASE, raw) else raw


def parse_path_id(raw: str, what: str) -> int:
    """A row id (a signed 64-bit integer) from a path segment. Raises InvalidInput."""
    value = row_id_from_text(raw)
    if value is None:
        raise InvalidInput(f"{raw[:40]!r} is not {what} (a 64-bit integer)")
    return value


def if_match(request: web.Request) -> IfMatch | None:
    """The request's If-Match precondition on a model's version, if it has one. Raises
    InvalidInput for a malformed header."""
    return IfMatch.parse(_list_header(request, "If-Match"))


def if_none_match(request: web.Request) -> IfNoneMatch | None:
    """The request's If-None-Match condition on a model's version, if it has one. Raises
    InvalidInput for a malformed header."""
    return IfNoneMatch.parse(_list_header(request, "If-None-Match"))


def _list_header(request: web.Request, name: str) -> str | None:
    """A list header's field lines read as one list (RFC 9110 5.3); None without one."""
    lines = request.headers.getall(name, [])
    return ", ".join(lines) if lines else None


def with_etag(response: web.Response, etag: str) -> web.Response:
    """`response` carrying a model's version, for a later If-Match."""
    response.headers["ETag"] = etag
    return response


def with_versions(response: web.Response, model: Versioned) -> web.Response:
    """`response` carrying the model's version the change left (ETag) and its images' alone
    (Images-Version), as GET /api/models/{sha256} gives them: the page compares them with the
    model it reads after, and a change made elsewhere in between is not taken for its own."""
    response.headers["Images-Version"] = model.images_version
    return with_etag(response, model.etag)


def prefers_async(request: web.Request) -> bool:
    """Whether the request says `Prefer: respond-async` (RFC 7240; other preferences and
    parameters are ignored)."""
    for header in request.headers.getall("Prefer", []):
        for preference in header.split(","):
            name = preference.split(";")[0].split("=")[0].strip().lower()
            if name == "respond-async":
                return True
    return False


def accepted(request: web.Request, job: Job) -> web.Response:
    """202 `{"job": job}` with `Location` naming where to follow it."""
    response = web.Response(
        text=JobResponse(job=job).model_dump_json(), status=202, content_type="application/json"
    )
    response.headers["Location"] = f"{request.app[SETTINGS].path_prefix}/api/jobs/{job.id}"
    if prefers_async(request):  # POST /api/scan is a job whatever the client prefers
        response.headers["Preference-Applied"] = "respond-async"
    return response
