"""A job this process runs: its stored record, its live progress, and the events that wake
whoever follows it, waits for its end, or stores its progress (see `jobs.Jobs`)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from modelshelf.progress import Progress
from modelshelf.records import Job


@dataclass(eq=False)
class JobEntry:
    """A job this process runs (or ran, while its end is not stored)."""

    job: Job
    progress: Progress
    detached: bool
    task: asyncio.Task[None] | None = None
    # Set by the task's first step: a task cancelled before it would never run `_run` at all,
    # so the job would never end (see `jobs.Jobs._stop`).
    begun: bool = False
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    progress_unsaved: asyncio.Event = field(default_factory=asyncio.Event)
    ended: asyncio.Event = field(default_factory=asyncio.Event)
    stop_reason: str | None = None
    failure: BaseException | None = None

    def current(self) -> Job:
        if self.ended.is_set():
            return self.job
        return self.job.model_copy(update={"progress": self.progress.snapshot()})

    def tell(self) -> None:
        """Wake everyone waiting for a change (on the event loop's thread)."""
        self.changed.set()
        self.changed = asyncio.Event()
        self.progress_unsaved.set()


def on_loop(callback: Callable[[], None]) -> Callable[[], None]:
    """`callback` made safe to call from any thread: it runs on this event loop."""
    loop = asyncio.get_running_loop()
    loop_thread = threading.get_ident()

    def call() -> None:
        if threading.get_ident() == loop_thread:
            callback()
        else:
            loop.call_soon_threadsafe(callback)

    return call
