"""The HTTP server the service runs on: aiohttp's, except that the errors aiohttp answers by
itself, before any handler or middleware runs (a request it cannot parse, a header too long),
are answered with the JSON error body like every other error (a request target too long with
414, a header too long with 431), and a client's malformed request is logged as such (INFO),
not as an ERROR with a traceback."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from modelshelf.web.middleware import error_response

log = logging.getLogger(__name__)

# aiohttp's parser raises the same LineTooLong for a request target and for a header, saying
# only the limit it hit: the two limits differ by a byte so that the answer can name the status
# (414 URI Too Long, 431 Request Header Fields Too Large). aiohttp's default is 8190.
MAX_TARGET_BYTES = 8190
MAX_HEADER_BYTES = 8191
_TOO_LONG = {str(MAX_TARGET_BYTES): 414, str(MAX_HEADER_BYTES): 431}
# What the person is told instead of the parser's words (which quote the request's bytes).
_TOO_LONG_DETAIL = {
    414: f"the request's path and query are longer than {MAX_TARGET_BYTES:,} bytes",
    431: f"a request header is longer than {MAX_HEADER_BYTES:,} bytes",
}


class _JsonErrorRequestHandler(RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        """As aiohttp's, with the JSON error body. Raises ConnectionError once part of
        another answer was sent."""
        if isinstance(exc, LineTooLong) and len(exc.args) > 1:
            status = _TOO_LONG.get(str(exc.args[1]), status)
        if status >= 500:
            self.log_exception("error handling request from %s", request.remote, exc_info=exc)
        else:
            log.info("malformed request from %s: %s", request.remote, _first_line(message, exc))
        if request.writer.output_size > 0:
            raise ConnectionError("the answer was partly sent already; the connection is closed")
        if status >= 500:
            detail = "internal server error; the server log has the details"
        elif status in _TOO_LONG_DETAIL:
            detail = f"malformed request: {_TOO_LONG_DETAIL[status]}"
        else:
            detail = f"malformed request: {_first_line(message, exc)}"
        response = error_response(status if status in _KNOWN else 400, detail)
        response.force_close()
        return response


_KNOWN = {s.value for s in HTTPStatus}


def _first_line(message: str | None, exc: BaseException | None) -> str:
    text = (message or (str(exc) if exc else "") or "unreadable request").strip()
    return text.splitlines()[0][:300] if text else "unreadable request"


class _JsonErrorServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _JsonErrorRequestHandler(self, loop=self._loop, **self._kwargs)


class ServiceRunner(web.AppRunner):
    """An AppRunner whose connections answer aiohttp's own errors with the JSON error body,
    and never decode a request body's Content-Encoding (middleware.plain_bodies refuses such
    bodies; decoded, a small one could inflate to gigabytes on the event loop)."""

    def __init__(self, app: web.Application, **kwargs: Any) -> None:
        super().__init__(
            app,
            auto_decompress=False,
            max_line_size=MAX_TARGET_BYTES,
            max_field_size=MAX_HEADER_BYTES,
            **kwargs,
        )

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        # The app builds aiohttp's Server; only which handler it makes per connection differs.
        server.__class__ = _JsonErrorServer
        return server
