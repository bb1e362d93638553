"""Where a request's heavy work runs: the CPU time of each callback the event loop runs while it
is served, and the threads named functions ran in. For tests that big but legal inputs (a
megabyte of meta_json, thousands of tags or models) keep their work off the loop, told without
depending on the machine's speed: the work is found in another thread, and no callback comes
near the CPU time the work itself takes here."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import pytest


@dataclass
class LoopCallbacks:
    """The CPU time of every callback the loop's thread ran, but the test's own (which build
    inputs in place); `longest` and what it was."""

    longest: float = 0.0
    what: str = ""

    def keep(self, handle: asyncio.Handle, cpu: float) -> None:
        if cpu <= self.longest:
            return
        owner = getattr(handle._callback, "__self__", None)
        text = repr(owner if isinstance(owner, asyncio.Task) else handle)
        if "coro=<test_" in text or "_async_fixture_wrapper" in text:
            return
        self.longest, self.what = cpu, text[:300]

    def held_less_than(self, seconds: float) -> bool:
        return self.longest < seconds

    def __str__(self) -> str:
        return f"longest callback {self.longest:.4f} s of CPU: {self.what}"


@contextmanager
def loop_callbacks(monkeypatch: pytest.MonkeyPatch) -> Iterator[LoopCallbacks]:
    """Time, in CPU seconds of the loop's thread, each callback run inside the block."""
    # A full collection over the test's big inputs (and the whole session's heap) would land
    # in whatever callback runs, as in conftest.event_loop_is_never_blocked: out of its way.
    gc.collect()
    gc.freeze()
    found = LoopCallbacks()
    run = asyncio.Handle._run

    def timed_run(handle: asyncio.Handle) -> None:
        cpu = time.thread_time()
        try:
            run(handle)
        finally:
            found.keep(handle, time.thread_time() - cpu)

    with monkeypatch.context() as patch:
        patch.setattr(asyncio.Handle, "_run", timed_run)
        yield found


@dataclass
class Calls:
    """Whether each call of a watched function ran in the event loop's thread."""

    loop_thread: int = field(default_factory=threading.get_ident)
    on_loop: list[bool] = field(default_factory=list)

    @property
    def made(self) -> bool:
        return bool(self.on_loop)

    @property
    def any_on_loop(self) -> bool:
        return any(self.on_loop)


def watch_calls(
    monkeypatch: pytest.MonkeyPatch, calls: Calls, module: ModuleType, name: str
) -> None:
    """Record in `calls` where each call of `module.name` runs (the name as `module` uses it,
    so an imported name is watched where it is called). Call from the loop's thread."""
    real: Callable[..., Any] = getattr(module, name)

    def watched(*args: Any, **kwargs: Any) -> Any:
        calls.on_loop.append(threading.get_ident() == calls.loop_thread)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, watched)


def cpu_time_of(work: Callable[[], Any]) -> float:
    """The CPU time `work()` takes in this thread: the yardstick a callback is measured by."""
    start = time.thread_time()
    work()
    return time.thread_time() - start
