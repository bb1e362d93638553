"""The access log: one line per request on the `aiohttp.access` logger, such as

    127.0.0.1 "GET /api/images/<sha256>_0.webp HTTP/1.1" 200 43660 0.001s

(the client, the request line, the status, the body's bytes, the seconds taken, to the
millisecond: uvloop's clock, which aiohttp times requests by, has no finer resolution).

The event loop only collects a request's values; a thread of its own turns them into log
records and writes them. Formatting a record and writing it to stderr cost 25-32 us a request
(about a tenth of the server's CPU for a cached image answer) and showed in the tail of its
latency (bench/serving.py, BENCHMARKS.md). Lines are therefore written up to BATCH_SECONDS
after the request (in its order among access lines; other loggers' lines may come before it),
and those still queued when the process exits are written before it does.
"""

from __future__ import annotations

import atexit
import collections
import logging
import threading
import time
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.web_request import BaseRequest
from aiohttp.web_response import StreamResponse

ACCESS_LINE = '%s "%s %s HTTP/%d.%d" %d %d %.3fs'
# How long exit waits for queued lines to be written.
EXIT_WAIT_SECONDS = 2.0
# How long the writer waits, once woken, for more lines to write in the same batch.
BATCH_SECONDS = 0.05

_Line = tuple[logging.Logger, tuple[Any, ...]]

# The client a trusted proxy forwards for, set on the request the server received: the access
# logger is handed that request, not the clone with the forwarded address the handlers see.
FORWARDED_CLIENT = web.RequestKey("forwarded_client", str)


class AccessLog(AbstractAccessLogger):
    """Queues ACCESS_LINE at INFO for the writer thread; costs nothing when INFO is off."""

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        version = request.version
        values = (
            request.get(FORWARDED_CLIENT) or request.remote or "-",
            request.method,
            request.path_qs,
            version.major,
            version.minor,
            response.status,
            response.body_length,
            time,
        )
        _WRITER.put((self.logger, values))


class LineWriter:
    """One daemon thread that logs queued lines in batches, started by the first line.

    The thread is woken once per batch, not once per line: it then waits BATCH_SECONDS for
    more lines before it writes them all. Waking a thread costs the event loop a system call
    and often a switch of the CPU to that thread (about as much as the rest of a cached image
    answer, BENCHMARKS.md); a batch costs one."""

    def __init__(self) -> None:
        self._lines: collections.deque[_Line] = collections.deque()
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._starting = threading.Lock()

    def put(self, line: _Line) -> None:
        if self._thread is None:
            self._start()
        self._lines.append(line)
        # Setting an event that is set already would still take its lock.
        if not self._wake.is_set():
            self._wake.set()

    def close(self) -> None:
        """Write what is queued (waiting at most EXIT_WAIT_SECONDS) and stop the thread."""
        thread = self._thread
        if thread is not None:
            self._stopping = True
            self._wake.set()
            thread.join(EXIT_WAIT_SECONDS)

    def _start(self) -> None:
        with self._starting:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="access-log", daemon=True)
                thread.start()
                atexit.register(self.close)
                self._thread = thread

    def _run(self) -> None:
        while True:
            self._wake.wait()
            if not self._stopping:
                time.sleep(BATCH_SECONDS)
            # Cleared before the lines are taken: a line put after this wakes the next round.
            self._wake.clear()
            while self._lines:
                logger, values = self._lines.popleft()
                logger.info(ACCESS_LINE, *values)
            if self._stopping:
                return


_WRITER = LineWriter()
