"""HTTP handlers for example images: listing, serving, uploading and deleting (the last two
honour If-Match with the model's ETag, and answer with its new ETag and Images-Version)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

from aiohttp import BodyPartReader, hdrs, web
from aiohttp.http_exceptions import HttpProcessingError

from modelshelf.domain import catalog, gallery
from modelshelf.domain.shelf import Shelf
from modelshelf.errors import InvalidInput
from modelshelf.imagefolder import parse_image_name
from modelshelf.records import SHA256_ANY_CASE
from modelshelf.rendition_cache import CachedFile
from modelshelf.web.bodies import (
    PATTERN_MEANINGS,
    DeleteImageResponse,
    ImageQuery,
    SampleImages,
    SampleImagesRequest,
    UploadResponse,
)
from modelshelf.web.endpoint import (
    FILE_CONDITIONS,
    FILE_VALIDATORS,
    IF_MATCH,
    IMAGE,
    JSON_ERRORS,
    PRECONDITION,
    VERSIONS,
    WRITE_ERRORS,
    Endpoint,
)
from modelshelf.web.files import file_response, memory_response
from modelshelf.web.keys import SHELF
from modelshelf.web.parsing import (
    body_deadline,
    if_match,
    parse_body,
    parse_path_id,
    parse_query,
    respond,
    with_versions,
)

# Image URLs keep their name when the content is replaced (override, delete-and-shift), so
# caches must revalidate; the ETag makes that a cheap 304.
CACHE_CONTROL = "no-cache"
IMAGE_HEADERS = {"Cache-Control": CACHE_CONTROL}
SHA256_FIELD_MAX = 128
# Reads of a text field: more than any multipart boundary, which aiohttp requires.
FIELD_CHUNK = 8192
DEFAULT_QUERY = ImageQuery()


async def get_sample_imgs(request: web.Request) -> web.Response:
    body = await parse_body(request, SampleImagesRequest)
    names = await catalog.image_names(request.app[SHELF], body.hash.lower())
    return await respond(request, SampleImages(names))


async def serve_image(request: web.Request) -> web.StreamResponse:
    # Most image URLs carry no query: skip parsing one (a tenth of a cached answer's time).
    query = parse_query(request.query, ImageQuery) if request.query_string else DEFAULT_QUERY
    found = await catalog.rendition_file(
        request.app[SHELF],
        request.match_info["filename"],
        query.quality,
        whole=hdrs.RANGE not in request.headers,
    )
    if isinstance(found, CachedFile):
        return memory_response(request, found, "image/webp", IMAGE_HEADERS)
    return await file_response(request, found, "image/webp", IMAGE_HEADERS)


async def serve_pending_image(request: web.Request) -> web.FileResponse:
    pending_id = parse_path_id(request.match_info["id"], "a pending model id")
    found = await catalog.pending_file(request.app[SHELF], pending_id)
    return await file_response(
        request, found.path, found.media_type, {"Cache-Control": CACHE_CONTROL}
    )


async def upload_image(request: web.Request) -> web.Response:
    shelf = request.app[SHELF]
    precondition = if_match(request)  # a malformed header is refused before the body is read
    upload = await gallery.start_upload(shelf)
    try:
        async with body_deadline(request):
            sha256, received = await _read_upload_form(request, shelf, upload)
    except BaseException:
        await upload.staging.discard()
        raise
    added = await shelf.finish(gallery.add_image(shelf, sha256, received, precondition))
    return with_versions(await respond(request, UploadResponse(name=added.name)), added.model)


async def _read_upload_form(
    request: web.Request, shelf: Shelf, upload: gallery.Upload
) -> tuple[str, gallery.Upload]:
    """The `sha256` field, and `upload` with the `image` file streamed into it (named as the
    client sent it). Raises InvalidInput (a field missing or given twice, a body that is not
    multipart/form-data)."""
    sha256: str | None = None
    seen: set[str] = set()
    if hdrs.CONTENT_TYPE not in request.headers:  # aiohttp's KeyError would say only its name
        raise InvalidInput("the body has no Content-Type; send multipart/form-data with a boundary")
    try:
        async for part in await request.multipart():
            if not isinstance(part, BodyPartReader):
                raise InvalidInput("nested multipart bodies are not accepted")
            if part.name in ("sha256", "image"):
                if part.name in seen:
                    raise InvalidInput(f"the field {part.name!r} was sent twice; send it once")
                seen.add(part.name)
            if part.name == "sha256":
                raw = await _read_field(part, "sha256", SHA256_FIELD_MAX)
                sha256 = raw.decode("ascii", "replace").strip().lower()
            elif part.name == "image":
                upload = await gallery.receive_upload(shelf, upload, _chunks(part), part.filename)
            else:
                await part.release()
    except (AssertionError, ValueError, KeyError, HttpProcessingError) as exc:
        # aiohttp reports a body that is not multipart, or is broken, in these ways.
        raise InvalidInput(f"expected a well-formed multipart/form-data body: {exc}") from None
    if "image" not in seen:
        raise InvalidInput("the multipart body needs an 'image' file field")
    if sha256 is None:
        raise InvalidInput("the multipart body needs a 'sha256' text field")
    if not re.fullmatch(SHA256_ANY_CASE, sha256):
        # The field takes either case (it was lower-cased above): say so, not "lowercase".
        raise InvalidInput(f"the 'sha256' field {PATTERN_MEANINGS[SHA256_ANY_CASE]}")
    return sha256, upload


async def _read_field(part: BodyPartReader, name: str, limit: int) -> bytes:
    """The whole value of a text field, however many network reads it arrives in. Raises
    InvalidInput over `limit` bytes."""
    value = bytearray()
    while chunk := await part.read_chunk(FIELD_CHUNK):
        value += chunk
        if len(value) > limit:
            raise InvalidInput(f"the field {name!r} is longer than {limit} bytes")
    return bytes(value)


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(256 * 1024):
        yield chunk


async def delete_image(request: web.Request) -> web.Response:
    shelf = request.app[SHELF]
    name = request.match_info["filename"]
    sha256, seq = parse_image_name(name)
    after = await shelf.finish(gallery.delete_image(shelf, sha256, seq, if_match(request)))
    return with_versions(await respond(request, DeleteImageResponse(deleted=name)), after)


ENDPOINTS: list[Endpoint] = [
    Endpoint(
        "POST",
        "/api/images/get_sample_imgs",
        get_sample_imgs,
        "Names of a model's example images, ordered by seq",
        body=SampleImagesRequest,
        responses={200: SampleImages, **JSON_ERRORS},
    ),
    Endpoint(
        "POST",
        "/api/images/upload",
        upload_image,
        "Add an example image (multipart: image, sha256); with If-Match (the model's ETag),"
        " only if the model is still that version (else 412, nothing added). The answer"
        " carries the model's new ETag and Images-Version",
        multipart=True,
        headers=IF_MATCH,
        responses={
            200: UploadResponse,
            **JSON_ERRORS,
            404: None,
            **PRECONDITION,
            **WRITE_ERRORS,
        },
        answer_headers={200: VERSIONS},
    ),
    Endpoint(
        "GET",
        "/api/images/pending/{id}",
        serve_pending_image,
        "The original image of a pending model",
        headers=FILE_CONDITIONS,
        answer_headers={200: FILE_VALIDATORS, 206: FILE_VALIDATORS, 304: FILE_VALIDATORS},
        responses={
            200: "image/*",
            206: "image/*",
            304: "",
            400: None,
            404: None,
            412: None,
            416: None,
        },
    ),
    Endpoint(
        "GET",
        "/api/images/{filename}",
        serve_image,
        "An example image: <sha256>_<seq>.webp or <sha256>.webp (seq 0)",
        query=ImageQuery,
        headers=FILE_CONDITIONS,
        answer_headers={200: FILE_VALIDATORS, 206: FILE_VALIDATORS, 304: FILE_VALIDATORS},
        responses={
            200: IMAGE,
            206: IMAGE,
            304: "",
            400: None,
            404: None,
            412: None,
            416: None,
        },
    ),
    Endpoint(
        "DELETE",
        "/api/images/{filename}",
        delete_image,
        "Delete an example image; later seqs move down by one. The answer carries the"
        " model's new ETag and Images-Version",
        headers=IF_MATCH,
        responses={
            200: DeleteImageResponse,
            400: None,
            404: None,
            **PRECONDITION,
            **WRITE_ERRORS,
        },
        answer_headers={200: VERSIONS},
    ),
]
