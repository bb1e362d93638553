"""Jobs: long work (a scan, stage 1, a batch import) run in a task of its own, kept in the
`jobs` table, followed live, cancelled safely, and bounded at shutdown.

Starting a job of a new kind is one call. Write the work as a coroutine function that takes a
`Progress`, reports through it, and returns the job's result (a JSON object):

    async def work(progress: Progress) -> dict[str, Any]:
        progress.set_total(len(files), bytes_total=total_bytes)
        for file in files:
            ...
            progress.advance(nbytes=file.size)
        return {"added": added}

    job = await shelf.jobs.start("scan", work, what="scan", one_at_a_time=True)   # 202 now
    result = await shelf.jobs.run("scan", work, what="scan")                      # or wait

(Add the kind to `records.JobKind` first.) `start` answers at once; `run` waits for the end
and raises what the work raised. `one_at_a_time` refuses a second job of the kind while one
is queued or running (JobRunning, carrying that job).

Cancellation (`cancel`, or the service stopping) raises CancelledError in the work at its next
await. That is safe at any point: every change is atomic (before its commit the unit of work
rolls back and removes its staging; after it, the change finishes its files first), so the job
ends `cancelled` and the library stays consistent. A job that was running when the process
died is marked `failed` with the reason at the next start.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import uuid
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from concurrent.futures import Executor
from typing import Any, TypeVar

from modelshelf.errors import (
    Conflict,
    JobCancelled,
    JobRunning,
    NotFound,
    ServiceStopping,
    ShelfError,
    StorageBusy,
    StorageFull,
    StorageUnavailable,
)
from modelshelf.job_entry import JobEntry, on_loop
from modelshelf.job_reasons import (
    CANCELLED_ON_REQUEST,
    DIED,
    INTERNAL_ERROR,
    STOPPED,
    said_of_a_stop,
    said_of_the_job,
    saying,
)
from modelshelf.progress import Progress
from modelshelf.records import Job, JobKind, JobState
from modelshelf.storage import Storage, jobs
from modelshelf.storage.change import Changes
from modelshelf.storage.rows import now_ms

log = logging.getLogger(__name__)

Work = Callable[[Progress], Awaitable[dict[str, Any]]]
T = TypeVar("T")

# Progress is stored at most this often (it is kept in memory for live readers); every store
# is a transaction on the single writer.
STORE_PROGRESS_EVERY_S = 2.0
EVENTS_EVERY_S = 0.25  # at most 4 progress events a second
LISTED_ENDED = 50
KEEP_ENDED = 500
# How long cancelled work gets to reach its next safe point before shutdown gives up on it.
CANCEL_GRACE_S = 5.0


class Jobs:
    """Every job of one data directory; see the module docstring."""

    def __init__(self, storage: Storage, changes: Changes, executor: Executor) -> None:
        self._storage = storage
        self._changes = changes
        self._executor = executor
        self._entries: dict[str, JobEntry] = {}
        self._stopping = False

    async def fail_unfinished(self) -> int:
        """At start-up: jobs that were queued or running when the process ended read `failed`
        with the reason. Returns how many. A database that cannot be written now (read-only,
        locked by another program) does not stop the start: readers see them failed anyway."""
        async with self._storage.read(bulk=True) as conn:
            count = await jobs.count_unfinished(conn)
        if not count:
            return 0
        log.warning("%d job(s) were cut short when the service last stopped", count)
        try:
            async with self._changes.change() as change:
                await jobs.fail_unfinished(change.tx, DIED, now_ms())
        except (StorageUnavailable, StorageBusy, StorageFull) as exc:
            log.warning("jobs cut short not marked failed in the database: %s", exc.detail)
        return count

    async def start(
        self,
        kind: JobKind,
        work: Work,
        *,
        what: str,
        unit: str = "item",
        bar: bool | None = False,
        one_at_a_time: bool = False,
    ) -> Job:
        """Start `work` as a job and return it (queued) at once. `what` and `unit` name the
        work and what it counts in log lines; `bar` draws a progress bar as `Progress` does
        (for the command line). Raises JobRunning, ServiceStopping, and storage errors (then
        no job exists)."""
        entry = await self._begin(kind, work, one_at_a_time, True, what=what, unit=unit, bar=bar)
        return entry.current()

    async def run(
        self,
        kind: JobKind,
        work: Work,
        *,
        what: str,
        unit: str = "item",
        bar: bool | None = False,
        one_at_a_time: bool = False,
    ) -> dict[str, Any]:
        """Run `work` as a job and wait for its end: its result, or what it raised
        (JobCancelled if it was cancelled). The caller going away does not stop the job;
        at shutdown it gets the grace period that in-flight requests get."""
        entry = await self._begin(kind, work, one_at_a_time, False, what=what, unit=unit, bar=bar)
        await entry.ended.wait()
        if entry.failure is not None:
            raise entry.failure
        if entry.job.state == "cancelled":
            raise JobCancelled(
                f"job {entry.job.id} was cancelled: {entry.job.error}", job=_json(entry.job)
            )
        return entry.job.result or {}

    def active(self, kind: JobKind) -> Job | None:
        """The queued or running job of `kind`, if any."""
        for entry in self._entries.values():
            if entry.job.kind == kind and not entry.ended.is_set():
                return entry.current()
        return None

    async def get(self, job_id: str, *, result: bool = True) -> Job:
        """The job as it is now (`result=False`: a stored one's result is not read, None).
        Raises NotFound."""
        entry = self._entries.get(job_id)
        if entry is not None:
            return entry.current()
        async with self._storage.read() as conn:
            row = await jobs.fetch_job(conn, job_id, result)
        if row is None:
            raise NotFound(f"no job with id {job_id[:100]}")
        return _seen(await self._in_executor(jobs.to_job, row))

    async def listing(self, *, results: bool = True) -> list[Job]:
        """Queued and running jobs (oldest first), then the last LISTED_ENDED that ended
        (newest first). `results=False`: their results are neither read nor parsed (None)."""
        active = [e.current() for e in self._entries.values() if not e.ended.is_set()]
        async with self._storage.read() as conn:
            rows = await jobs.recent_jobs(conn, LISTED_ENDED + len(self._entries), results)
        stored = await self._in_executor(lambda: [jobs.to_job(r) for r in rows])
        ended = {j.id: _seen(j) for j in stored if j.id not in self._entries}
        ended |= {
            e.job.id: e.job if results else e.job.model_copy(update={"result": None})
            for e in self._entries.values()
            if e.ended.is_set()
        }
        newest = sorted(ended.values(), key=lambda j: j.finished_at or 0, reverse=True)
        return sorted(active, key=lambda j: j.created_at) + newest[:LISTED_ENDED]

    async def cancel(self, job_id: str) -> Job:
        """Ask a queued or running job to stop; it ends `cancelled` at its next safe point.
        Returns the job as it is now. Raises NotFound, or Conflict if it has ended."""
        entry = self._entries.get(job_id)
        if entry is None or entry.ended.is_set():
            job = await self.get(job_id)
            raise Conflict(f"job {job_id} has already ended ({job.state})", job=_json(job))
        self._stop(entry, CANCELLED_ON_REQUEST)
        return entry.current()

    async def follow(self, job_id: str) -> AsyncGenerator[tuple[str, Job], None]:
        """("progress", job) now and after changes, at most once every EVENTS_EVERY_S, then
        ("end", job) once. A job that has ended yields only its end. Raises NotFound."""
        entry = self._entries.get(job_id)
        if entry is None:
            yield "end", await self.get(job_id)
            return
        loop = asyncio.get_running_loop()
        while not entry.ended.is_set():
            changed = entry.changed
            yield "progress", entry.current()
            sent = loop.time()
            await changed.wait()
            pause = sent + EVENTS_EVERY_S - loop.time()
            if pause > 0 and not entry.ended.is_set():
                await _wait_at_most(entry.ended, pause)
        yield "end", entry.job

    def stop_detached(self) -> None:
        """Shutdown begins: start no new job, and stop jobs nobody waits for at once (a
        re-run finishes them cheaply)."""
        self._stopping = True
        for entry in list(self._entries.values()):
            if entry.detached:
                self._stop(entry, STOPPED)

    async def stop(self, deadline: float) -> None:
        """Shutdown: jobs still running at `deadline` (loop time) are cancelled; wait at most
        CANCEL_GRACE_S more for them to reach a safe point and store their end."""
        self._stopping = True
        tasks = {e.task for e in self._entries.values() if e.task is not None}
        if not tasks:
            return
        loop = asyncio.get_running_loop()
        _done, running = await asyncio.wait(tasks, timeout=max(deadline - loop.time(), 0))
        for entry in list(self._entries.values()):
            if entry.task in running:
                self._stop(entry, STOPPED)
        if running:
            _done, stuck = await asyncio.wait(running, timeout=CANCEL_GRACE_S)
            if stuck:
                log.error("%d job(s) did not stop in time; the next start marks them", len(stuck))

    async def _begin(
        self,
        kind: JobKind,
        work: Work,
        one_at_a_time: bool,
        detached: bool,
        *,
        what: str,
        unit: str,
        bar: bool | None,
    ) -> JobEntry:
        if self._stopping:
            raise ServiceStopping("the service is stopping; start the job again after it")
        if one_at_a_time and (running := self.active(kind)) is not None:
            raise JobRunning(f"a {kind} job is already running ({running.id})", job=_json(running))
        job = Job(id=uuid.uuid4().hex, kind=kind, state="queued", created_at=now_ms())
        entry = JobEntry(job, Progress(None, what, bar, unit=unit, job=job.id), detached)
        self._entries[job.id] = entry  # reserved before any await: one_at_a_time holds
        launch = asyncio.ensure_future(self._store_and_launch(entry, work))
        launch.add_done_callback(lambda done: self._forget_unlaunched(entry, done))
        # Shielded: once the row is stored the job must run even if the caller goes away.
        await asyncio.shield(launch)
        return entry

    def _forget_unlaunched(self, entry: JobEntry, launch: asyncio.Future[None]) -> None:
        if launch.cancelled() or launch.exception() is not None:  # no row, no job
            self._entries.pop(entry.job.id, None)

    async def _store_and_launch(self, entry: JobEntry, work: Work) -> None:
        async with self._changes.change() as change:
            await jobs.insert_job(change.tx, entry.job)
        entry.task = asyncio.create_task(self._run(entry, work), name=f"job {entry.job.id}")
        if self._stopping:  # shutdown began meanwhile
            self._stop(entry, STOPPED)

    async def _run(self, entry: JobEntry, work: Work) -> None:
        entry.begun = True  # from here on a stop cancels this task (see _stop)
        entry.progress.listen(on_loop(entry.tell))
        saver = asyncio.create_task(self._store_progress(entry))
        state: JobState = "done"
        result: dict[str, Any] | None = None
        error: str | None = None
        try:
            with entry.progress:
                if entry.stop_reason is not None:  # asked to stop before it began
                    raise asyncio.CancelledError
                await self._mark_running(entry)
                result = await work(entry.progress)
        except asyncio.CancelledError:
            reason = entry.stop_reason or CANCELLED_ON_REQUEST
            state, error = "cancelled", said_of_a_stop(reason, entry.progress)
        except ShelfError as exc:
            state, error = "failed", said_of_the_job(exc, entry.progress)
            entry.failure = saying(exc, error)
        except Exception as exc:
            log.exception("job %s (%s) failed", entry.job.id, entry.job.kind)
            state, error, entry.failure = "failed", INTERNAL_ERROR, exc
        saver.cancel()
        await _to_the_end(asyncio.wait([saver], timeout=CANCEL_GRACE_S))
        await _to_the_end(self._end(entry, state, result, error))

    async def _mark_running(self, entry: JobEntry) -> None:
        entry.job = entry.job.model_copy(update={"state": "running", "started_at": now_ms()})
        entry.tell()
        async with self._changes.change() as change:
            await jobs.save_job(change.tx, entry.job, None)

    async def _store_progress(self, entry: JobEntry) -> None:
        while True:
            await entry.progress_unsaved.wait()
            entry.progress_unsaved.clear()
            try:
                async with self._changes.change() as change:
                    await jobs.save_progress(change.tx, entry.job.id, entry.progress.snapshot())
            except (ShelfError, sqlite3.Error) as exc:
                log.warning("job %s: progress not stored (%s)", entry.job.id, exc)
            await asyncio.sleep(STORE_PROGRESS_EVERY_S)

    async def _end(
        self, entry: JobEntry, state: JobState, result: dict[str, Any] | None, error: str | None
    ) -> None:
        job = entry.job.model_copy(
            update={
                "state": state,
                "finished_at": now_ms(),
                "progress": entry.progress.snapshot(),
                "result": result,
                "error": error,
            }
        )
        stored = True
        try:
            text = await self._in_executor(jobs.result_text, job)
            async with self._changes.change() as change:
                await jobs.save_job(change.tx, job, text)
                await jobs.forget_ended(change.tx, KEEP_ENDED)
        except (ShelfError, sqlite3.Error, OSError) as exc:
            stored = False  # kept in memory, so readers still see the end
            log.error("job %s ended %s but its end was not stored: %s", job.id, state, exc)
        # A failure is the operator's to hear of (a full disk, an unreadable root): a warning.
        level = logging.WARNING if state == "failed" else logging.INFO
        log.log(level, "job %s (%s) %s%s", job.id, job.kind, state, f": {error}" if error else "")
        entry.job = job
        entry.ended.set()
        entry.tell()
        if stored:
            self._entries.pop(job.id, None)

    def _stop(self, entry: JobEntry, reason: str) -> None:
        if entry.ended.is_set():
            return
        entry.stop_reason = entry.stop_reason or reason
        # A task not yet begun is not cancelled: its coroutine would never run, so the job
        # would never end; it reads `stop_reason` as it begins and ends `cancelled`.
        if entry.task is not None and entry.begun:
            entry.task.cancel()

    async def _in_executor(self, func: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)


def _seen(stored: Job) -> Job:
    """A stored job that no task of this process runs and that never ended was cut short by
    the end of an earlier process (start-up marks it so, unless the database was read-only)."""
    if stored.ended:
        return stored
    return stored.model_copy(update={"state": "failed", "error": DIED})


def _json(job: Job) -> dict[str, Any]:
    return job.model_dump(mode="json")


async def _wait_at_most(event: asyncio.Event, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        pass


async def _to_the_end(work: Coroutine[Any, Any, Any]) -> None:
    """Run `work` to its end even if this task is cancelled meanwhile (the job is ending:
    its end must be stored and told)."""
    task = asyncio.ensure_future(work)
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            continue
    task.result()
