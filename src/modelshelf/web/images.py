"""Handlers: listing, serving, uploading and deleting example images."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from modelshelf import library
from modelshelf.errors import InvalidInput
from modelshelf.imagestore import parse_image_name
from modelshelf.shelf import Shelf
from modelshelf.web.bodies import (
    DeleteImageResponse,
    ImageQuery,
    SampleImages,
    SampleImagesRequest,
    UploadResponse,
)
from modelshelf.web.keys import SHELF
from modelshelf.web.parsing import parse_body, parse_query, respond

# Image URLs keep their name when the content is replaced (override, delete-and-shift), so
# caches must revalidate; the ETag makes that a cheap 304.
CACHE_CONTROL = "no-cache"
SHA256_FIELD_MAX = 128


async def get_sample_imgs(request: web.Request) -> web.Response:
    body = await parse_body(request, SampleImagesRequest)
    sha256 = library.require_sha256(body.hash.lower())
    names = await request.app[SHELF].images.list_names(sha256)
    return await respond(request, SampleImages(names))


async def serve_image(request: web.Request) -> web.FileResponse:
    query = parse_query(request.query, ImageQuery)
    path = await request.app[SHELF].images.rendition_file(
        request.match_info["filename"], query.quality
    )
    return web.FileResponse(
        path, headers={"Cache-Control": CACHE_CONTROL, "Content-Type": "image/webp"}
    )


async def serve_pending_image(request: web.Request) -> web.FileResponse:
    raw = request.match_info["id"]
    # ASCII digits only: str.isdigit() also accepts e.g. '²' (int() fails) and full-width digits.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
        raise InvalidInput(f"{raw[:40]!r} is not a pending model id")
    path = await request.app[SHELF].images.pending_file(int(raw))
    return web.FileResponse(path, headers={"Cache-Control": CACHE_CONTROL})


async def upload_image(request: web.Request) -> web.Response:
    shelf = request.app[SHELF]
    sha256, upload = await _read_upload_form(request, shelf)
    name = await shelf.finish(library.add_image(shelf, sha256, upload))
    return await respond(request, UploadResponse(name=name))


async def _read_upload_form(request: web.Request, shelf: Shelf) -> tuple[str, Path]:
    """The `sha256` field and the `image` file (streamed into staging). Raises InvalidInput;
    on any failure the staged upload is removed again."""
    sha256: str | None = None
    upload: Path | None = None
    try:
        try:
            async for part in await request.multipart():
                if not isinstance(part, BodyPartReader):
                    raise InvalidInput("nested multipart bodies are not accepted")
                if part.name == "sha256":
                    raw = await part.read_chunk(SHA256_FIELD_MAX)
                    sha256 = raw.decode("ascii", "replace").strip().lower()
                elif part.name == "image" and upload is None:
                    upload = await library.receive_upload(shelf, _chunks(part))
                else:
                    await part.release()
        except (AssertionError, ValueError, KeyError, HttpProcessingError) as exc:
            # aiohttp reports a body that is not multipart, or is broken, in these ways.
            raise InvalidInput(f"expected a well-formed multipart/form-data body: {exc}") from None
        if upload is None:
            raise InvalidInput("the multipart body needs an 'image' file field")
        if sha256 is None:
            raise InvalidInput("the multipart body needs a 'sha256' text field")
    except BaseException:
        if upload is not None:
            await shelf.images.discard(upload.parent)
        raise
    return sha256, upload


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(256 * 1024):
        yield chunk


async def delete_image(request: web.Request) -> web.Response:
    shelf = request.app[SHELF]
    name = request.match_info["filename"]
    sha256, seq = parse_image_name(name)
    await shelf.finish(library.delete_image(shelf, sha256, seq))
    return await respond(request, DeleteImageResponse(deleted=name))
