"""Serving image files, from disk or from memory. aiohttp's FileResponse answers a failed
precondition (412) and a range it cannot satisfy (416) with an empty body; here both are
decided first, by the same rules and from the same stat, and answered with the JSON error
body. FileResponse serves the rest (200, 206, 304, HEAD), except that it reads only a date in
If-Range: a range whose If-Range names another version of the file (an entity tag) is decided
here too, and the whole file sent, as it is for a Range in another unit than bytes or of
several ranges. A file held in memory (the rendition cache) is answered by
`memory_response` with the same validators and rules, no file work."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from aiohttp import hdrs, web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.helpers import ETag

from modelshelf.errors import NotFound
from modelshelf.rendition_cache import CachedFile
from modelshelf.web.keys import SHELF


async def file_response(
    request: web.Request, path: Path, content_type: str, headers: Mapping[str, str]
) -> web.FileResponse:
    """`path` as the answer to `request`. Raises HTTPPreconditionFailed, a JSON 416, NotFound
    (the file went away)."""
    try:
        info = await request.app[SHELF].run_reads(os.stat, path)
    except OSError:
        raise NotFound(f"no image {path.name}") from None
    etag = f"{info.st_mtime_ns:x}-{info.st_size:x}"
    _check_preconditions(request, etag, info.st_mtime)
    answer = {**headers, "Content-Type": content_type}
    if not (_range_applies(request, etag) and _range_understood(request)):
        return _WholeFileResponse(path, headers=answer)
    _check_range(request, etag, info)
    return web.FileResponse(path, headers=answer)


class _WholeFileResponse(web.FileResponse):
    """A FileResponse that sends the whole file, whatever Range the request asks for."""

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        without_range = request.headers.copy()
        without_range.popall(hdrs.RANGE, None)
        return await super().prepare(request.clone(headers=without_range))


def memory_response(
    request: web.Request, file: CachedFile, content_type: str, headers: Mapping[str, str]
) -> web.Response:
    """`file`, held in memory, as the whole answer to `request` (not a range): 200 (HEAD
    without the body) or 304, with the headers FileResponse would send. Raises
    HTTPPreconditionFailed."""
    sent = request.headers
    # Header lookups first: parsing the conditions costs more than the rest of a hit.
    if hdrs.IF_MATCH in sent or hdrs.IF_UNMODIFIED_SINCE in sent:
        _check_preconditions(request, file.etag, file.mtime)
    answer = {
        **headers,
        hdrs.CONTENT_TYPE: content_type,
        hdrs.ETAG: f'"{file.etag}"',
        hdrs.LAST_MODIFIED: file.last_modified,
    }
    conditional = hdrs.IF_NONE_MATCH in sent or hdrs.IF_MODIFIED_SINCE in sent
    if conditional and _not_modified(request, file.etag, file.mtime):
        return web.Response(status=304, headers=answer)
    answer[hdrs.ACCEPT_RANGES] = "bytes"
    return web.Response(body=file.body, headers=answer)


def _check_preconditions(request: web.Request, etag: str, mtime: float) -> None:
    # The order and rules of FileResponse (RFC 9110 13.2.2): If-Match, then If-Unmodified-
    # Since only without it; If-None-Match, then If-Modified-Since (a 304); then the range.
    if_match = request.if_match
    if if_match is not None and not _etag_matches(etag, if_match, weak=False):
        raise web.HTTPPreconditionFailed(text=f"If-Match does not match the ETag {etag!r}")
    since = request.if_unmodified_since
    if if_match is None and since is not None and mtime > since.timestamp():
        raise web.HTTPPreconditionFailed(text="the file was modified after If-Unmodified-Since")


def _not_modified(request: web.Request, etag: str, mtime: float) -> bool:
    if_none_match = request.if_none_match
    if if_none_match is not None:
        return _etag_matches(etag, if_none_match, weak=True)
    since = request.if_modified_since
    return since is not None and mtime <= since.timestamp()


def _etag_matches(etag: str, candidates: tuple[ETag, ...], *, weak: bool) -> bool:
    return any(c.value == "*" or (c.value == etag and (weak or not c.is_weak)) for c in candidates)


def _range_applies(request: web.Request, etag: str) -> bool:
    """Whether the request's Range is to be honoured as far as its If-Range says (RFC 9110
    13.1.5): an entity tag only when it is the file's, compared strongly (a weak one never
    is); a date as FileResponse and `_check_range` compare it. Otherwise, or when If-Range
    is malformed, the range was asked of another version: the whole file is the answer, never
    bytes of this one to splice into that one (an image's name keeps its place when its
    content is replaced: reorder, delete-and-shift, override)."""
    validator = request.headers.get(hdrs.IF_RANGE)
    if validator is None or hdrs.RANGE not in request.headers:
        return True
    validator = validator.strip()
    if validator.startswith(('"', "W/")):
        return validator == f'"{etag}"'
    return request.if_range is not None


def _range_understood(request: web.Request) -> bool:
    """Whether the request's Range, if any, is one range of bytes. RFC 9110 14.2: a range
    unit the server does not know MUST be ignored; several ranges (aiohttp cannot send
    multipart/byteranges) MAY be, and are. Either way the whole file is the answer."""
    asked = request.headers.get(hdrs.RANGE)
    if asked is None:
        return True
    unit, _, ranges = asked.partition("=")
    return unit.strip() == "bytes" and "," not in ranges


def _check_range(request: web.Request, etag: str, info: os.stat_result) -> None:
    if _not_modified(request, etag, info.st_mtime):
        return  # a 304, which has no body
    if_range = request.if_range
    if if_range is not None and info.st_mtime > if_range.timestamp():
        return  # the whole file is sent
    size = info.st_size
    try:
        wanted = request.http_range
    except ValueError:
        raise _unsatisfiable(size, "the Range header is malformed") from None
    start, end = wanted.start, wanted.stop
    if start == 0 and end is None and request.headers[hdrs.RANGE].startswith("bytes=-"):
        # aiohttp reads "the last 0 bytes" (-0) as "from byte 0" and would send the whole file.
        raise _unsatisfiable(size, "the range asks for the last 0 bytes")
    if start is None or (start < 0 and end is None):
        return
    if start >= size:
        raise _unsatisfiable(size, f"the range starts at {start}, past the end ({size} bytes)")


def _unsatisfiable(size: int, detail: str) -> web.HTTPRequestRangeNotSatisfiable:
    return web.HTTPRequestRangeNotSatisfiable(
        headers={"Content-Range": f"bytes */{size}"}, text=detail
    )
