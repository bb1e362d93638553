"""Where a request's time goes inside the server, for the load test (issue 15); not part of
the service. Put this folder on the server's PYTHONPATH and set LOADTRACE_FILE: Python imports
it at start-up, and it records, until the process exits (then writes LOADTRACE_FILE as JSON):

- every job of every thread pool: the pool (thread name prefix), when it was submitted, how
  long it waited in the queue, how long it ran, and how long the awaiting side took to resume;
- every aiosqlite operation, split into reads (inside `Storage.read`) and the rest: the wait
  until its connection thread started it, its run, and the wait until the loop resumed;
- the wait for a read connection from the pool (`Storage.read` entered, connection handed),
  and per function that opened the read, how long it held the connection;
- the event loop's lag: a 5 ms sleep, over and over, and how late each wake-up was;
- every event-loop callback that took longer than SLOW_CALLBACK_S, under the name of its
  coroutine (`loop-slow:<name>`): "run" is the loop thread's CPU time in it, "wait" the rest
  (waiting for the GIL or for a core);
- every garbage collection (`gc:<generation>`), its duration as "run".

Pool jobs, aiosqlite operations and reads made for a client whose User-Agent names a browser
(the load test's people, with the fair queue of reads) carry " [browser]" after their kind.

Times are time.monotonic() (the same clock in every process of the machine).

LOADTRACE_SWITCH_MS, with or without LOADTRACE_FILE, sets the GIL's switch interval
(sys.setswitchinterval) of the server, to measure what GIL hand-offs cost.
"""

from __future__ import annotations

import atexit
import contextvars
import json
import os
import sys
import time

_FILE = os.environ.get("LOADTRACE_FILE")
SAMPLES: list[tuple[str, float, float, float, float]] = []  # kind, at, wait, run, back
_IN_READ: contextvars.ContextVar[bool] = contextvars.ContextVar("in_read", default=False)
SLOW_CALLBACK_S = 0.005


def _install() -> None:
    import asyncio
    import concurrent.futures.thread as cft
    from contextlib import asynccontextmanager

    import aiosqlite.core

    clock = time.monotonic
    submit = cft.ThreadPoolExecutor.submit

    def traced_submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
        kind = "pool:" + (self._thread_name_prefix or "?").split("_")[0] + who()
        queued = clock()
        times: list[float] = []

        def run():  # type: ignore[no-untyped-def]
            times.append(clock())
            try:
                return fn(*args, **kwargs)
            finally:
                times.append(clock())
                SAMPLES.append((kind, queued, times[0] - queued, times[1] - times[0], 0.0))

        return submit(self, run)

    cft.ThreadPoolExecutor.submit = traced_submit  # type: ignore[method-assign]

    async def traced_execute(self, fn, *args, **kwargs):  # type: ignore[no-untyped-def]
        kind = ("sqlite:read" if _IN_READ.get() else "sqlite:other") + who()
        times: list[float] = []

        def timed():  # type: ignore[no-untyped-def]
            times.append(clock())
            try:
                return fn(*args, **kwargs)
            finally:
                times.append(clock())

        queued = clock()
        try:
            return await original_execute(self, timed)
        finally:
            if len(times) == 2:
                back = clock() - times[1]
                SAMPLES.append((kind, queued, times[0] - queued, times[1] - times[0], back))

    original_execute = aiosqlite.core.Connection._execute
    aiosqlite.core.Connection._execute = traced_execute  # type: ignore[method-assign]

    from modelshelf.storage import database

    try:
        from modelshelf.storage.read_pool import reading_client
    except ImportError:  # a commit before the fair queue of reads
        reading_client = contextvars.ContextVar("none", default=None)

    def who() -> str:
        return " [browser]" if "Mozilla" in str(reading_client.get()) else ""

    original_read = database.Storage.read
    original_open = database.Storage.open

    def caller() -> str:
        """The first function outside storage/ and contextlib that opened the read."""
        frame = sys._getframe(2)
        while frame is not None:
            name = frame.f_code.co_filename
            if "/modelshelf/" in name and "/storage/" not in name:
                return frame.f_code.co_name
            frame = frame.f_back  # type: ignore[assignment]
        return "?"

    @asynccontextmanager
    async def traced_read(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        asked = clock()
        by = caller() + who()
        token = _IN_READ.set(True)
        try:
            async with original_read(self, *args, **kwargs) as conn:
                got = clock()
                SAMPLES.append(("read-connection" + who(), asked, got - asked, 0.0, 0.0))
                try:
                    yield conn
                finally:
                    held = clock() - got
                    SAMPLES.append((f"read-held:{by}", asked, got - asked, held, 0.0))
        finally:
            _IN_READ.reset(token)

    async def lag_probe() -> None:
        while True:
            started = clock()
            await asyncio.sleep(0.005)
            SAMPLES.append(("loop-lag", started, clock() - started - 0.005, 0.0, 0.0))

    async def traced_open(self):  # type: ignore[no-untyped-def]
        await original_open(self)
        task = asyncio.get_running_loop().create_task(lag_probe())
        _TASKS.append(task)

    database.Storage.read = traced_read  # type: ignore[method-assign]
    database.Storage.open = traced_open  # type: ignore[method-assign]

    import asyncio.events
    import gc

    original_run = asyncio.events.Handle._run
    thread_clock = time.thread_time

    def callback_name(handle: asyncio.events.Handle) -> str:
        callback = handle._callback  # type: ignore[attr-defined]
        task = getattr(callback, "__self__", None)
        if isinstance(task, asyncio.Task):
            return str(getattr(task.get_coro(), "__qualname__", "task"))
        return str(getattr(callback, "__qualname__", type(callback).__name__))

    def traced_run(self):  # type: ignore[no-untyped-def]
        started, cpu = clock(), thread_clock()
        try:
            return original_run(self)
        finally:
            wall = clock() - started
            if wall > SLOW_CALLBACK_S:
                spent = thread_clock() - cpu
                SAMPLES.append(
                    (f"loop-slow:{callback_name(self)}", started, wall - spent, spent, 0.0)
                )

    asyncio.events.Handle._run = traced_run  # type: ignore[method-assign]

    collecting: list[float] = []

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collecting[:] = [clock()]
        elif collecting:
            SAMPLES.append(
                (f"gc:{info['generation']}", collecting[0], 0.0, clock() - collecting[0], 0.0)
            )

    gc.callbacks.append(on_gc)


_TASKS: list[object] = []


def _dump() -> None:
    if _FILE:
        with open(_FILE, "w") as handle:
            json.dump(SAMPLES, handle)


if _FILE:
    _install()
    atexit.register(_dump)
if os.environ.get("LOADTRACE_SWITCH_MS"):
    sys.setswitchinterval(float(os.environ["LOADTRACE_SWITCH_MS"]) / 1000)
