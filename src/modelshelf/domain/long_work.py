"""Scans, stage 1 and batch imports run as jobs, so that they show progress, can be cancelled
and stop in time at shutdown. `start_*` answers at once with the job (`POST /api/scan`,
`Prefer: respond-async`); `run_*` waits for its end and returns what the synchronous answer
(or the command line) has always carried, which is also the job's result."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from modelshelf.domain import legacy_import, promotion, scan
from modelshelf.domain.shelf import Shelf
from modelshelf.domain.strategies import Strategy
from modelshelf.errors import JobRunning, Locked
from modelshelf.jobs import Work
from modelshelf.progress import Progress
from modelshelf.records import Job

_NO_OUTCOME = {"sha256": None, "action_taken": None, "detail": None}


async def start_scan(shelf: Shelf, types: list[str] | None) -> Job:
    """A scan of the model roots (of `types` only, if given) as a job; its result is
    `ScanResult.as_json()`. Raises as `scan.check_types` (then no job is made), JobRunning
    while another scan runs."""
    work = await _scan_work(shelf, types)
    return await shelf.jobs.start("scan", work, what="scan", unit="file", one_at_a_time=True)


async def run_scan(shelf: Shelf, types: list[str] | None, *, bar: bool | None) -> dict[str, Any]:
    """A scan as a job, waiting for its result (the command line: `bar` as in Progress).
    Raises as `start_scan`, and JobCancelled if it is stopped."""
    work = await _scan_work(shelf, types)
    return await shelf.jobs.run("scan", work, what="scan", unit="file", bar=bar, one_at_a_time=True)


class _ScanToProgress:
    """What a scan tells (`ScanProgress`) as a job's progress: files done of files found, the
    bytes to hash as the byte count (with its rate and ETA), and the scan's phase."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.files_done = 0
        self.walked = False

    def phase(self, name: str) -> None:
        self.progress.set_phase(name)

    def found(self, files: int) -> None:
        # Until the walk ends no total is known and, on a first scan, no file is done: `done`
        # counts the files found so far, or a walk of minutes would show nothing moving.
        self.progress.advance(files - self.progress.done)

    def planned(self, files: int, hash_bytes: int) -> None:
        # Bytes become the measure only when there are some to read: a re-scan of unchanged
        # files counts files, not 0 of 0 bytes. From here `done` counts files done.
        self.walked = True
        self.progress.set_total(files, bytes_total=hash_bytes or None, done=self.files_done)

    def stopped(self) -> None:
        """The scan stopped (cancelled, failed): if in its walk, `done` is the files it did,
        as its error says them ("the 0 done before it"), not the files it found."""
        if not self.walked:
            self.progress.set_total(None, done=self.files_done)

    def hashed(self, count: int) -> None:
        self.progress.add_bytes(count)

    def file_done(self, path: str) -> None:
        self.files_done += 1
        if self.walked:
            self.progress.advance()


async def _scan_work(shelf: Shelf, types: list[str] | None) -> Work:
    # Checked before the job exists, so a bad request is an error answer, not a failed job.
    await scan.check_types(shelf, types)

    async def work(progress: Progress) -> dict[str, Any]:
        told = _ScanToProgress(progress)
        try:
            result = await scan.scan_library(shelf, types, told)
        except BaseException:
            told.stopped()
            raise
        return result.as_json()

    return work


async def start_migrate_legacy(shelf: Shelf, legacy_db_path: str, legacy_images_dir: str) -> Job:
    """Stage 1 as a job. Raises Forbidden, InvalidInput or NotFound for the paths (then no
    job is made) and JobRunning while another stage 1 runs."""
    work = await _migrate_legacy_work(shelf, legacy_db_path, legacy_images_dir)
    return await shelf.jobs.start(
        "migrate_legacy", work, what="legacy import", unit="model", one_at_a_time=True
    )


async def run_migrate_legacy(
    shelf: Shelf, legacy_db_path: str, legacy_images_dir: str
) -> dict[str, Any]:
    """Stage 1 as a job, waiting for its report. Raises as `start_migrate_legacy`, but Locked
    while another stage 1 runs, then as `legacy_import.migrate_legacy`."""
    work = await _migrate_legacy_work(shelf, legacy_db_path, legacy_images_dir)
    try:
        return await shelf.jobs.run(
            "migrate_legacy", work, what="legacy import", unit="model", one_at_a_time=True
        )
    except JobRunning as exc:
        raise Locked(f"a legacy migration is already running ({exc.detail})") from None


async def start_import_models(shelf: Shelf, ids: list[int], strategy: Strategy | None) -> Job:
    """A batch import as a job; its result is `{"results": [...], "counts": {...}}`."""
    return await shelf.jobs.start(
        "import_models", _import_models_work(shelf, ids, strategy), what="batch import", unit="id"
    )


async def run_import_models(
    shelf: Shelf, ids: list[int], strategy: Strategy | None
) -> dict[str, Any]:
    """A batch import as a job, waiting for its results."""
    return await shelf.jobs.run(
        "import_models", _import_models_work(shelf, ids, strategy), what="batch import", unit="id"
    )


async def _migrate_legacy_work(shelf: Shelf, legacy_db_path: str, legacy_images_dir: str) -> Work:
    # Checked before the job exists, so a bad request is an error answer, not a failed job.
    db_path, images_dir = await legacy_import.request_inputs(
        shelf, legacy_db_path, legacy_images_dir
    )

    async def work(progress: Progress) -> dict[str, Any]:
        report = await legacy_import.migrate_legacy(shelf, db_path, images_dir, progress=progress)
        return {"status": "success", **dataclasses.asdict(report)}

    return work


def _import_models_work(shelf: Shelf, ids: list[int], strategy: Strategy | None) -> Work:
    async def work(progress: Progress) -> dict[str, Any]:
        results = await promotion.import_models(
            shelf, ids, strategy, shelf.settings.workers, progress=progress
        )
        counts = Counter(r["result"] for r in results)
        return {
            # Every key in every result, as the synchronous answer has always had them.
            "results": [{**_NO_OUTCOME, **r} for r in results],
            "counts": {k: counts.get(k, 0) for k in promotion.BATCH_RESULTS},
        }

    return work
