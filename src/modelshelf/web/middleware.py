"""The one place where domain errors become HTTP answers, where proxies are trusted, and
where a request's client is named for the fair queue of reads."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import pydantic_core
from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

# The only way to keep aiohttp's 100 Continue while answering other expectations ourselves.
from aiohttp.web_urldispatcher import _default_expect_handler
from aiohttp_remotes import XForwardedFiltered
from pydantic import BaseModel

from modelshelf import errors
from modelshelf.storage.read_pool import reading_client
from modelshelf.web import ui_api
from modelshelf.web.access_log import FORWARDED_CLIENT
from modelshelf.web.keys import SHELF
from modelshelf.web.parsing import JSON

log = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

STATUS_BY_ERROR: list[tuple[type[errors.ShelfError], int]] = [
    (errors.InvalidInput, 400),
    (errors.Forbidden, 403),
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.PreconditionFailed, 412),
    (errors.TooLarge, 413),
    (errors.Locked, 423),
    (errors.Unprocessable, 422),
    (errors.StorageUnavailable, 503),
    (errors.StorageBusy, 503),
    (errors.ServiceStopping, 503),
    (errors.StorageFull, 507),
]

# Errors an answer reports but only the operator can cure. Not ServiceStopping (a stop the
# operator asked for) nor StorageBusy (a moment's contention; the client retries).
OPERATORS_ERRORS = (errors.StorageFull, errors.StorageUnavailable)


def error_response(status: int, detail: str, **extra: Any) -> web.Response:
    body = {"error": HTTPStatus(status).phrase, "detail": detail, **extra}
    return web.json_response(body, status=status)


async def shelf_error_response(
    request: web.Request, status: int, exc: errors.ShelfError
) -> web.Response:
    """The answer of a ShelfError. One that carries records (a 409 of an import: the model
    and the pending record, megabytes of meta_json each) is serialised in the reads pool:
    on the event loop it held it about 0.2 s."""
    if not any(isinstance(value, BaseModel) for value in exc.extra.values()):
        return error_response(status, exc.detail, **exc.extra)
    body = await request.app[SHELF].run_reads(error_body, status, exc.detail, exc.extra)
    return web.Response(body=body, status=status, content_type=JSON, charset="utf-8")


def error_body(status: int, detail: str, extra: dict[str, Any]) -> bytes:
    """The JSON of an error answer whose `extra` holds records (pydantic models)."""
    return pydantic_core.to_json({"error": HTTPStatus(status).phrase, "detail": detail, **extra})


def status_of(exc: errors.ShelfError) -> int:
    for kind, status in STATUS_BY_ERROR:
        if isinstance(exc, kind):
            return status
    return 500


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error answer is {"error", "detail", ...}; a 500 never shows its traceback."""
    try:
        return await handler(request)
    except errors.ShelfError as exc:
        status = status_of(exc)
        if isinstance(exc, OPERATORS_ERRORS):
            # The operator's to fix (free the disk, fix a mount), not the client's: said where
            # an operator looks, not only as a status in the access log.
            log.warning("%s: %s (%s)", _said(request), exc.detail, HTTPStatus(status).phrase)
        response = await shelf_error_response(request, status, exc)
        if "retry_after" in exc.extra:
            response.headers["Retry-After"] = str(exc.extra["retry_after"])
        return response
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if isinstance(exc, web.HTTPNotFound) and ui_api.asks_for_a_page(request):
            return await ui_api.missing_page(request)
        response = error_response(exc.status, _http_detail(request, exc))
        for name in ("Allow", "Retry-After", "Content-Range"):
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
        if isinstance(exc, web.HTTPRequestTimeout):
            response.force_close()  # the rest of the body is not waited for
        return response
    except ConnectionError as exc:
        # A client hanging up mid-request (mid-upload, say) is normal: no traceback. The
        # answer goes nowhere; it keeps the access log from showing a 500.
        log.info("%s: the client went away (%s)", _said(request), exc)
        return error_response(400, "the connection closed before the request arrived whole")
    except HttpProcessingError as exc:
        log.info("%s: malformed request (%s)", _said(request), exc.message)
        return error_response(400, f"malformed request: {exc.message}")
    except web.RequestPayloadError as exc:
        # Not an HttpProcessingError: aiohttp raises it while the handler reads the body.
        return _undecodable_body(request, exc)
    except Exception:
        log.exception("unhandled error in %s", _said(request))
        return error_response(500, "internal server error; the server log has the details")


@web.middleware
async def plain_bodies(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuses (415) a request whose body comes with a Content-Encoding, before any of it is
    read. Decoding bodies cost a client nothing and the server everything: a 1 MB gzip body
    inflates to 1 GiB, and aiohttp inflated it on the event loop, every other client waiting
    1.5 s. No client this service has compresses its bodies; the server is run with
    aiohttp's decompression off (web.protocol.ServiceRunner), so a refused body is never
    inflated, and the connection closes after the answer rather than read the rest."""
    coding = request.headers.get("Content-Encoding", "").strip().lower()
    if not request.body_exists or coding in ("", "identity"):
        return await handler(request)
    log.info("%s: body refused (Content-Encoding %s)", _said(request), coding[:40])
    response = error_response(
        415, f"request bodies are taken as they are: send it without Content-Encoding {coding[:40]}"
    )
    response.headers["Accept-Encoding"] = "identity"  # RFC 9110 15.5.16
    response.force_close()
    return response


def _said(request: web.Request) -> str:
    """The request's method and path for the server log, as the client sent the path: decoded,
    a %0A in it would end the line and begin one the client wrote."""
    return f"{request.method} {request.rel_url.raw_path}"


def _undecodable_body(request: web.Request, exc: web.RequestPayloadError) -> web.Response:
    """400 for a body aiohttp cannot decode (its Content-Encoding is not what it says). The
    rest of it can be neither read nor told from the next request: the body ends here (else
    aiohttp, reading it to its end after the answer, meets the error again and logs it as
    unhandled) and the connection closes after the answer."""
    log.info("%s: malformed body (%s)", _said(request), exc)
    request.content.feed_eof()
    response = error_response(400, f"malformed request body: {exc}")
    response.force_close()
    return response


async def answer_expect(request: web.Request) -> web.StreamResponse | None:
    """aiohttp's answer to an `Expect` header (100 Continue), but its 417 for any other
    expectation in the JSON error body: aiohttp asks this before any middleware runs."""
    try:
        await _default_expect_handler(request)
    except web.HTTPExpectationFailed:
        expected = request.headers.get("Expect", "")
        return error_response(417, f"cannot meet Expect: {expected!r}; only 100-continue is known")
    return None


def _http_detail(request: web.Request, exc: web.HTTPException) -> str:
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return (
            f"the request body is larger than the {request.client_max_size:,} bytes this"
            " server takes (the client_max_size setting)"
        )
    if isinstance(exc, web.HTTPMethodNotAllowed):
        return (
            f"{exc.method} is not allowed here; allowed: {', '.join(sorted(exc.allowed_methods))}"
        )
    if isinstance(exc, web.HTTPNotFound):
        return "no such endpoint"
    return exc.text or exc.reason


class TrustedProxies:
    """Honours X-Forwarded-For/Proto/Host only on connections from the configured proxies.

    aiohttp-remotes parses the headers; its filtered mode does not look at the connecting
    peer itself, so that check is made here first.
    """

    def __init__(self, networks: Iterable[str]) -> None:
        self._networks = [ipaddress.ip_network(n, strict=False) for n in networks]
        self._forwarded = XForwardedFiltered(set(self._networks))

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        if peer and self._trusted(peer[0]):
            return await self._forwarded.middleware(request, _naming_client(request, handler))
        return await handler(request)

    def _trusted(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:  # a Unix socket peer has no IP address
            return False
        return any(address in network for network in self._networks)


def _naming_client(received: web.Request, handler: Handler) -> Handler:
    """`handler`, first noting on the request as received the client that the forwarded
    clone names, for the access log."""

    async def forwarded(clone: web.Request) -> web.StreamResponse:
        if clone.remote:
            received[FORWARDED_CLIENT] = clone.remote
        return await handler(clone)

    return forwarded


# Methods a page on another site may make a browser send without asking first (CORS preflight)
# only with a body of text/plain, a form or multipart: the JSON and upload endpoints read such
# bodies too, so every method that changes something is checked (the safe ones change nothing).
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Sec-Fetch-Site values a browser sends for a request of a page of this origin, or of no page
# (an address typed, a bookmark).
OWN_SITE = frozenset({"same-origin", "none"})


class CrossSiteGuard:
    """Refuses (403) a request that changes something when the browser sending it says that a
    page of another origin made it, unless that origin is one of `cors_origins` ("*": any).
    A page on any web site can otherwise make the browser of a person running the service
    POST to it (a body of text/plain needs no preflight): import pending models over existing
    ones, merge tags, start scans. Scripts and other non-browser clients send neither header
    and are never refused.

    The browser's word is Sec-Fetch-Site (every current browser sends it); a browser too old
    for it is judged by its Origin against the host the request was sent to."""

    def __init__(self, allowed_origins: Iterable[str]) -> None:
        self._allowed = frozenset(allowed_origins)

    @web.middleware
    async def middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method not in SAFE_METHODS and self._from_another_site(request):
            origin = request.headers.get("Origin", "another site")
            raise errors.Forbidden(
                f"a page of {origin[:200]} cannot change this library: its origin is not one of"
                " the setting cors_origins"
            )
        return await handler(request)

    def _from_another_site(self, request: web.Request) -> bool:
        origin = request.headers.get("Origin")
        if "*" in self._allowed or (origin is not None and origin.lower() in self._allowed):
            return False
        site = request.headers.get("Sec-Fetch-Site")
        if site is not None:
            return site.strip().lower() not in OWN_SITE
        if origin is None:
            return False
        return urlsplit(origin).netloc.lower() != request.host.lower()


@web.middleware
async def client_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Names the request's client for the reads it makes: its remote address (the proxied
    one behind a trusted proxy) and its User-Agent. Not the connection: a browser spreads one
    person over up to six, and a script may open dozens. Not the address alone: a browser
    and a script on the same machine (localhost) share it. Only a scheduling hint: a client
    that changes its User-Agent is only ranked as another client."""
    token = reading_client.set((request.remote, request.headers.get("User-Agent", "")))
    try:
        return await handler(request)
    finally:
        reading_client.reset(token)
