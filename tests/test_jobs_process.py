"""Jobs in a real server process: long work stops in time on SIGTERM, a job cut short by
SIGKILL reads failed after the restart, and a re-run completes the library cheaply.

The work is made long with many small models (no big files, no sleeps); tests follow it
through its own event stream."""

from __future__ import annotations

import asyncio
import re
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from modelshelf.integrity import check_library
from tests.events import read_events
from tests.factories import LegacyLibrary, add_pending_models, fake_sha, make_model_file
from tests.server import ServerProcess

# A job the service's stop cancelled says so and how much of it is kept.
STOPPED_ERROR = re.compile(r"the service stopped(; the [\d,]+ of [\d,]+ done before it are kept)?")

pytestmark = pytest.mark.slow

SHUTDOWN_TIMEOUT = 1.0
# What stopping may take beyond shutdown_timeout: cancelled work reaching its safe point,
# storing the job's end, closing the database, on a loaded 2-core machine.
MARGIN = 6.0
ASYNC = {"Prefer": "respond-async"}
MIGRATE = "/api/migration/migrate_legacy_db"
BATCH = "/api/migration/import_models"
# The work left after the mid-way point must outlast shutdown_timeout (a job runs on until
# then) plus the lag of this process reading events on a loaded machine: several seconds.
LEGACY_MODELS = 800  # four stage-1 batches
PENDING = 240


def query(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(data_dir / "modelshelf.db") as conn:
        return [tuple(r) for r in conn.execute(sql)]


def count(data_dir: Path, table: str) -> int:
    return int(query(data_dir, f"SELECT count(*) FROM {table}")[0][0])


def server_for(data_dir: Path, tmp_path: Path) -> ServerProcess:
    return ServerProcess(
        data_dir,
        tmp_path / "server.log",
        MODELSHELF_SHUTDOWN_TIMEOUT=str(SHUTDOWN_TIMEOUT),
        MODELSHELF_WORKERS="2",
    )


def migrate_body(legacy: LegacyLibrary) -> dict[str, str]:
    return {"legacy_db_path": str(legacy.db_path), "legacy_images_dir": str(legacy.images_dir)}


async def post(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any], headers: dict[str, str]
) -> tuple[int, Any]:
    async with session.post(url, json=body, headers=headers) as response:
        return response.status, await response.json()


async def running_job(session: aiohttp.ClientSession, server: ServerProcess, kind: str) -> str:
    """The id of the queued or running job of `kind`, once a request has started it."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        async with session.get(server.url + "/api/jobs") as response:
            for job in (await response.json())["jobs"]:
                if job["kind"] == kind and job["state"] in ("queued", "running"):
                    return str(job["id"])
        await asyncio.sleep(0.02)
    raise TimeoutError(f"no {kind} job started: {server.log()}")


async def follow_until_done(
    session: aiohttp.ClientSession, server: ServerProcess, job_id: str, done: int
) -> dict[str, Any]:
    """Read the job's events until its progress reaches `done`; returns that job."""
    async with session.get(f"{server.url}/api/jobs/{job_id}/events") as response:
        async for event in read_events(response):
            assert event.name == "progress", f"the job ended too soon: {event.data}"
            if event.data["progress"]["done"] >= done:
                return dict(event.data)
    raise AssertionError("the stream ended without an end event")


def seed(kind: str, legacy: LegacyLibrary, models_dir: Path) -> None:
    if kind == "migrate_legacy":
        for i in range(1, LEGACY_MODELS + 1):
            image = legacy.image(f"h{i}.jpg", width=320 + i % 9, height=240)
            legacy.add_model(i, hash_hex=fake_sha(i), images=[image])
    else:
        add_pending_models(legacy, models_dir, range(1, PENDING + 1), image=(480, 360))


def assert_complete(kind: str, data_dir: Path) -> None:
    if kind == "migrate_legacy":
        assert count(data_dir, "models") == LEGACY_MODELS
    else:
        assert (count(data_dir, "models"), count(data_dir, "pending_import")) == (PENDING, 0)


@pytest.mark.parametrize("mode", ["respond-async", "waiting"])
@pytest.mark.parametrize("kind", ["migrate_legacy", "import_models"])
async def test_sigterm_stops_long_work_in_time_and_a_rerun_completes_the_library(
    data_dir: Path,
    legacy: LegacyLibrary,
    models_dir: Path,
    tmp_path: Path,
    kind: str,
    mode: str,
) -> None:
    seed(kind, legacy, models_dir)
    path, body = (MIGRATE, migrate_body(legacy)) if kind == "migrate_legacy" else (BATCH, {})
    server = server_for(data_dir, tmp_path).start()
    try:
        async with aiohttp.ClientSession() as session:
            if kind == "import_models":
                assert (await post(session, server.url + MIGRATE, migrate_body(legacy), {}))[
                    0
                ] == 200
                body = {"ids": list(range(1, PENDING + 1))}
            request = None
            if mode == "respond-async":
                status, answer = await post(session, server.url + path, body, ASYNC)
                assert status == 202
                job_id = answer["job"]["id"]
            else:
                request = asyncio.create_task(post(session, server.url + path, body, {}))
                job_id = await running_job(session, server, kind)
            # Mid-way: a stage-1 batch (200 rows) or some imports committed.
            await follow_until_done(
                session, server, job_id, 200 if kind == "migrate_legacy" else 10
            )
            stopped_at = time.monotonic()
            server.signal(signal.SIGTERM)
            assert await asyncio.to_thread(server.wait, SHUTDOWN_TIMEOUT + MARGIN + 30) == 0
            took = time.monotonic() - stopped_at
            if request is not None:  # its connection was closed when its grace ran out
                await asyncio.gather(request, return_exceptions=True)
        assert took < SHUTDOWN_TIMEOUT + MARGIN, server.log()
        assert check_library(data_dir) == []
        cut_short = (count(data_dir, "models"), count(data_dir, "pending_import"))
        server.start()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{server.url}/api/jobs/{job_id}") as response:
                job = await response.json()
            assert job["state"] == "cancelled", job
            assert STOPPED_ERROR.fullmatch(job["error"]), job
            # The process stopped before the work was done ...
            with pytest.raises(AssertionError):
                assert_complete(kind, data_dir)
            # ... and running it again completes the library, keeping what was done.
            status, again = await post(session, server.url + path, body, {})
        assert status in (200, 207), again
        assert_complete(kind, data_dir)
        if kind == "migrate_legacy":
            assert again["db_migration"]["already_migrated"] == cut_short[0]
        else:
            assert again["counts"]["not_found"] == PENDING - cut_short[1]
        assert check_library(data_dir) == []
    finally:
        server.kill()


async def test_a_job_killed_mid_way_reads_failed_after_restart_and_a_rerun_costs_little(
    data_dir: Path, legacy: LegacyLibrary, models_dir: Path, tmp_path: Path
) -> None:
    add_pending_models(legacy, models_dir, range(1, PENDING + 1), image=(480, 360))
    server = server_for(data_dir, tmp_path).start()
    ids = list(range(1, PENDING + 1))
    try:
        async with aiohttp.ClientSession() as session:
            assert (await post(session, server.url + MIGRATE, migrate_body(legacy), {}))[0] == 200
            status, answer = await post(session, server.url + BATCH, {"ids": ids}, ASYNC)
            assert status == 202
            job_id = answer["job"]["id"]
            await follow_until_done(session, server, job_id, 10)
            server.kill()
        server.start()  # recovery runs before /api/health answers
        assert check_library(data_dir) == [], server.log()
        imported = count(data_dir, "models")
        cached = set(query(data_dir, "SELECT path, hashed_at FROM hash_cache"))
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{server.url}/api/jobs/{job_id}") as response:
                job = await response.json()
            assert job["state"] == "failed"
            assert job["error"].startswith("the service stopped while this job ran")
            assert job["finished_at"] is not None
            status, again = await post(session, server.url + BATCH, {"ids": ids}, {})
        assert status == 207
        # What was imported stays imported; what was hashed is not read again.
        assert again["counts"]["not_found"] == imported
        assert again["counts"]["success"] == PENDING - imported
        assert cached <= set(query(data_dir, "SELECT path, hashed_at FROM hash_cache"))
        assert count(data_dir, "pending_import") == 0
        assert check_library(data_dir) == []
    finally:
        server.kill()


SCAN_FILES = 800


@pytest.mark.parametrize("stop", ["SIGKILL", "SIGTERM"])
async def test_a_scan_stopped_half_way_leaves_a_consistent_library_and_a_rescan_costs_little(
    data_dir: Path, tmp_path: Path, stop: str
) -> None:
    loras = tmp_path / "loras"
    for i in range(SCAN_FILES):
        make_model_file(loras / f"{i % 10}" / f"lora {i}.safetensors", size=16_384, seed=i)
    server = ServerProcess(
        data_dir,
        tmp_path / "server.log",
        MODELSHELF_SHUTDOWN_TIMEOUT=str(SHUTDOWN_TIMEOUT),
        MODELSHELF_WORKERS="2",
        MODELSHELF_MODEL_ROOTS=f"loras={loras}",
    ).start()
    try:
        async with aiohttp.ClientSession() as session:
            status, answer = await post(session, server.url + "/api/scan", {}, {})
            assert status == 202, answer
            job_id = answer["job"]["id"]
            await follow_until_done(session, server, job_id, 20)
            if stop == "SIGKILL":
                server.kill()
            else:
                server.signal(signal.SIGTERM)
                assert await asyncio.to_thread(server.wait, SHUTDOWN_TIMEOUT + MARGIN + 30) == 0
        assert check_library(data_dir) == [], server.log()
        registered = count(data_dir, "model_files")
        assert 0 < registered < SCAN_FILES
        assert count(data_dir, "models") == registered  # every location is a model's
        server.start()
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{server.url}/api/jobs/{job_id}") as response:
                job = await response.json()
            if stop == "SIGKILL":
                assert job["state"] == "failed"
                assert job["error"].startswith("the service stopped while this job ran")
            else:
                assert job["state"] == "cancelled", job
                assert STOPPED_ERROR.fullmatch(job["error"]), job
            status, answer = await post(session, server.url + "/api/scan", {}, {})
            assert status == 202, answer
            async with session.get(f"{server.url}/api/jobs/{answer['job']['id']}/events") as sse:
                end = [e async for e in read_events(sse)][-1].data
        assert end["state"] == "done", end
        counts = end["result"]["counts"]
        # What was registered is not read again; what was hashed comes from the cache.
        assert counts["unchanged"] == registered
        assert counts["hashed"] + counts["recognised"] == SCAN_FILES - registered
        assert (count(data_dir, "models"), count(data_dir, "model_files")) == (SCAN_FILES,) * 2
        assert check_library(data_dir) == []
    finally:
        server.kill()
