"""Jobs (contract part 2, "Jobs") through the real app: starting with Prefer: respond-async,
the list, one job, server-sent events, cancel, one job of a kind at a time, and what a job
that never ended reads after a restart."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from modelshelf import progress as progress_module
from modelshelf.app import create_app
from modelshelf.config import Settings
from modelshelf.domain.shelf import Shelf
from modelshelf.errors import JobCancelled, StorageFull, Unprocessable
from modelshelf.integrity import check_library
from modelshelf.progress import Progress
from modelshelf.storage.database import translate_sqlite_error
from modelshelf.web import jobs_api
from tests.conftest import Client, MakeClient, ServiceTestServer, migrate, shelf_of
from tests.events import Event, events_until_end, read_events
from tests.factories import LegacyLibrary, add_pending_models
from tests.test_faults import read_only_file

ASYNC = {"Prefer": "respond-async"}
MIGRATE = "/api/migration/migrate_legacy_db"
BATCH = "/api/migration/import_models"


@contextmanager
def cpu_held(shelf: Shelf) -> Iterator[None]:
    """Every CPU worker busy until the block ends: hashing, planning and rendering wait."""
    release = threading.Event()
    blockers = [shelf.executors.cpu.submit(release.wait) for _ in range(shelf.settings.workers)]
    try:
        yield
    finally:
        release.set()
        for blocker in blockers:
            blocker.result()


def migrate_body(legacy: LegacyLibrary) -> dict[str, str]:
    return {"legacy_db_path": str(legacy.db_path), "legacy_images_dir": str(legacy.images_dir)}


async def start(client: Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body, headers=ASYNC)
    answer: dict[str, Any] = await response.json()
    assert response.status == 202, answer
    return answer["job"]  # type: ignore[no-any-return]


async def follow(client: Client, job_id: str) -> list[Event]:
    async with client.get(f"/api/jobs/{job_id}/events") as response:
        assert response.status == 200
        assert response.content_type == "text/event-stream"
        return await events_until_end(response)


async def job_of(client: Client, job_id: str) -> dict[str, Any]:
    response = await client.get(f"/api/jobs/{job_id}")
    assert response.status == 200
    job: dict[str, Any] = await response.json()
    return job


def query(data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(data_dir / "modelshelf.db") as conn:
        return [tuple(r) for r in conn.execute(sql)]


@pytest.fixture
async def pending(client: Client, legacy: LegacyLibrary, models_dir: Path) -> dict[int, str]:
    """Eight pending models (ids 1..8), each with its own content and image."""
    hashes = add_pending_models(legacy, models_dir, range(1, 9))
    await migrate(client, legacy)
    return hashes


# --- starting jobs ----------------------------------------------------------------------------


async def test_migrate_legacy_with_prefer_answers_202_with_the_job_at_once(
    client: Client, legacy: LegacyLibrary, models_dir: Path
) -> None:
    add_pending_models(legacy, models_dir, range(1, 4))
    with cpu_held(shelf_of(client)):  # the work cannot move, the answer comes all the same
        response = await client.post(MIGRATE, json=migrate_body(legacy), headers=ASYNC)
        assert response.status == 202
        job = (await response.json())["job"]
    assert response.headers["Location"] == f"/api/jobs/{job['id']}"
    assert response.headers["Preference-Applied"] == "respond-async"
    assert job["kind"] == "migrate_legacy"
    assert job["state"] in ("queued", "running")
    assert (job["finished_at"], job["result"], job["error"]) == (None, None, None)
    end = (await follow(client, job["id"]))[-1].data
    assert end["state"] == "done"
    assert end["result"]["status"] == "success"
    assert end["result"]["db_migration"]["pending_created"] == 3
    assert end["progress"]["done"] == end["progress"]["total"] == 3
    assert end["created_at"] <= end["started_at"] <= end["finished_at"]
    assert await job_of(client, job["id"]) == end


async def test_import_models_with_prefer_answers_202_and_the_job_carries_the_batch_answer(
    client: Client, pending: dict[int, str]
) -> None:
    with cpu_held(shelf_of(client)):
        job = await start(client, BATCH, {"ids": [1, 2, 3, 999]})
    assert job["kind"] == "import_models"
    end = (await follow(client, job["id"]))[-1].data
    assert end["state"] == "done"
    assert [r["result"] for r in end["result"]["results"]] == [
        "success",
        "success",
        "success",
        "not_found",
    ]
    assert end["result"]["counts"]["success"] == 3
    assert end["progress"]["done"] == end["progress"]["total"] == 4


async def test_location_names_the_job_under_the_path_prefix(
    make_client: MakeClient, legacy: LegacyLibrary, models_dir: Path
) -> None:
    add_pending_models(legacy, models_dir, [1], image=None)
    client = await make_client(path_prefix="/shelf")
    response = await client.post("/shelf" + MIGRATE, json=migrate_body(legacy), headers=ASYNC)
    job_id = (await response.json())["job"]["id"]
    assert response.headers["Location"] == f"/shelf/api/jobs/{job_id}"
    async with client.get(response.headers["Location"] + "/events") as events:
        assert (await events_until_end(events))[-1].data["state"] == "done"


@pytest.mark.parametrize("prefer", ["respond-async", "wait=5, respond-async", "RESPOND-ASYNC"])
async def test_prefer_is_read_as_rfc_7240_says(
    client: Client, pending: dict[int, str], prefer: str
) -> None:
    response = await client.post(BATCH, json={"ids": [1]}, headers={"Prefer": prefer})
    assert response.status == 202


@pytest.mark.parametrize("prefer", [None, "return=minimal", "respond-asynchronously"])
async def test_without_respond_async_the_batch_answers_as_before_and_is_listed_as_a_job(
    client: Client, pending: dict[int, str], prefer: str | None
) -> None:
    headers = {"Prefer": prefer} if prefer else {}
    response = await client.post(BATCH, json={"ids": [1, 2]}, headers=headers)
    assert response.status == 207
    body = await response.json()
    assert set(body) == {"results", "counts"}
    assert body["counts"]["success"] == 2
    newest = (await (await client.get("/api/jobs")).json())["jobs"][0]
    assert (newest["kind"], newest["state"], newest["result"]) == ("import_models", "done", body)


async def test_bad_paths_are_still_their_4xx_and_make_no_job(
    client: Client, legacy: LegacyLibrary, tmp_path: Path
) -> None:
    outside = {"legacy_db_path": str(tmp_path / "x.db"), "legacy_images_dir": "images"}
    missing = {"legacy_db_path": "nope.db", "legacy_images_dir": "images"}
    for headers in ({}, ASYNC):
        assert (await client.post(MIGRATE, json=outside, headers=headers)).status == 403
        assert (await client.post(MIGRATE, json=missing, headers=headers)).status == 404
        assert (await client.post(BATCH, json={"ids": []}, headers=headers)).status == 400
    assert (await (await client.get("/api/jobs")).json()) == {"jobs": []}


async def test_a_second_migrate_legacy_job_is_409_with_the_running_one(
    client: Client, legacy: LegacyLibrary, models_dir: Path
) -> None:
    add_pending_models(legacy, models_dir, range(1, 4))
    with cpu_held(shelf_of(client)):
        first = await start(client, MIGRATE, migrate_body(legacy))
        response = await client.post(MIGRATE, json=migrate_body(legacy), headers=ASYNC)
        assert response.status == 409
        body = await response.json()
        assert body["error"] == "Conflict"
        assert first["id"] in body["detail"]
        assert body["job"]["id"] == first["id"]
        assert body["job"]["state"] in ("queued", "running")
        # Without Prefer the answer is what it has always been: 423.
        response = await client.post(MIGRATE, json=migrate_body(legacy))
        assert response.status == 423
        assert (await response.json())["error"] == "Locked"
    assert (await follow(client, first["id"]))[-1].data["state"] == "done"
    # Once it ended, another may start.
    second = await start(client, MIGRATE, migrate_body(legacy))
    assert (await follow(client, second["id"]))[-1].data["state"] == "done"


async def test_batch_jobs_may_run_side_by_side(client: Client, pending: dict[int, str]) -> None:
    with cpu_held(shelf_of(client)):
        first = await start(client, BATCH, {"ids": [1, 2]})
        second = await start(client, BATCH, {"ids": [3, 4]})
    for job in (first, second):
        assert (await follow(client, job["id"]))[-1].data["result"]["counts"]["success"] == 2


async def test_a_caller_that_goes_away_once_it_asked_still_gets_its_job_run(
    client: Client,
) -> None:
    shelf = shelf_of(client)
    ran = asyncio.Event()

    async def work(progress: Progress) -> dict[str, Any]:
        ran.set()
        return {"ran": True}

    asking = asyncio.create_task(shelf.jobs.start("scan", work, what="orphan"))
    await asyncio.sleep(0)  # it has asked: the job's row is being stored
    asking.cancel()
    with pytest.raises(asyncio.CancelledError):
        await asking
    await ran.wait()
    job_id = (await (await client.get("/api/jobs")).json())["jobs"][0]["id"]
    assert (await follow(client, job_id))[-1].data["result"] == {"ran": True}


# --- one job, the list ------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "suffix"), [("GET", ""), ("DELETE", ""), ("GET", "/events")])
async def test_an_unknown_job_is_404(client: Client, method: str, suffix: str) -> None:
    response = await client.request(method, f"/api/jobs/{'0' * 32}{suffix}")
    assert response.status == 404
    assert (await response.json())["error"] == "Not Found"


@pytest.mark.parametrize("job_id", ["1", "G" * 32, "0" * 33, "0" * 31, "%00"])
async def test_a_malformed_job_id_is_400(client: Client, job_id: str) -> None:
    response = await client.get(f"/api/jobs/{job_id}")
    assert response.status == 400
    assert (await response.json())["error"] == "Bad Request"


async def test_the_list_has_running_jobs_first_then_the_last_50_ended_newest_first(
    client: Client,
) -> None:
    shelf = shelf_of(client)
    release = asyncio.Event()

    async def held(progress: Progress) -> dict[str, Any]:
        await release.wait()
        return {}

    async def quick(progress: Progress) -> dict[str, Any]:
        return {"n": 1}

    running = await shelf.jobs.start("scan", held, what="held")
    ended = []
    for _ in range(53):
        ended.append((await shelf.jobs.start("scan", quick, what="quick")).id)
        await follow(client, ended[-1])
    jobs = (await (await client.get("/api/jobs")).json())["jobs"]
    assert jobs[0]["id"] == running.id
    assert jobs[0]["state"] in ("queued", "running")
    assert [j["id"] for j in jobs[1:]] == ended[::-1][:50]
    assert [j["finished_at"] for j in jobs[1:]] == sorted(
        (j["finished_at"] for j in jobs[1:]), reverse=True
    )
    release.set()
    assert (await follow(client, running.id))[-1].data["state"] == "done"


async def test_the_list_asked_without_results_leaves_every_result_out(client: Client) -> None:
    """A page that reads the list every few seconds does not read a batch's 5,000 outcomes
    each time; the list asked for as the contract says still carries them."""
    shelf = shelf_of(client)
    release = asyncio.Event()

    async def held(progress: Progress) -> dict[str, Any]:
        await release.wait()
        return {}

    async def batch(progress: Progress) -> dict[str, Any]:
        return {"results": [{"id": n, "result": "success"} for n in range(5000)]}

    running = await shelf.jobs.start("scan", held, what="held")
    ended = await shelf.jobs.start("import_models", batch, what="batch")
    await follow(client, ended.id)

    whole = (await (await client.get("/api/jobs")).json())["jobs"]
    brief = (await (await client.get("/api/jobs?result=false")).json())["jobs"]

    assert [j["id"] for j in whole] == [running.id, ended.id]
    assert len(whole[1]["result"]["results"]) == 5000
    assert brief == [{k: v for k, v in j.items() if k != "result"} for j in whole]
    assert (await (await client.get("/api/jobs?result=true")).json())["jobs"] == whole
    refused = await client.get("/api/jobs?result=perhaps")
    assert refused.status == 400
    assert "result" in (await refused.json())["detail"]
    release.set()
    assert (await follow(client, running.id))[-1].data["state"] == "done"


async def test_a_jobs_progress_lines_in_the_log_name_the_job_and_its_phase(
    client: Client, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two batch imports may run side by side: each line says which job it is of, as the
    job's end line and GET /api/jobs/{id} do, and where the work is."""
    monkeypatch.setattr(progress_module, "LOG_EVERY_SECONDS", 0.0)
    caplog.set_level(logging.INFO, "modelshelf")
    shelf = shelf_of(client)

    async def work(progress: Progress) -> dict[str, Any]:
        progress.set_phase("hashing")
        progress.set_total(4)
        progress.advance()
        return {}

    jobs = [await shelf.jobs.start("import_models", work, what="batch import") for _ in range(2)]
    for job in jobs:
        await follow(client, job.id)

    lines = [r.getMessage() for r in caplog.records if r.name == "modelshelf.progress"]
    for job in jobs:
        own = [line for line in lines if job.id in line]
        assert any("hashing" in line and "1/4" in line for line in own), lines
        assert any("finished 1/4" in line for line in own), lines
    assert all(any(job.id in line for job in jobs) for line in lines), lines


async def test_an_ended_job_is_answered_304_to_a_client_that_holds_it(client: Client) -> None:
    """An ended job never changes: the Jobs page reads each listed one's result, and a
    browser that holds it from an earlier visit is told so without the body again (a
    batch's result is ~700 KB). A running job is not kept."""
    shelf = shelf_of(client)
    release = asyncio.Event()

    async def held(progress: Progress) -> dict[str, Any]:
        await release.wait()
        return {}

    async def batch(progress: Progress) -> dict[str, Any]:
        return {"results": [{"id": n, "result": "success"} for n in range(5000)]}

    running = await shelf.jobs.start("scan", held, what="held")
    ended = await shelf.jobs.start("import_models", batch, what="batch")
    await follow(client, ended.id)

    first = await client.get(f"/api/jobs/{ended.id}")
    assert first.status == 200
    assert first.headers["Cache-Control"] == "no-cache"  # kept, but asked about each time
    etag = first.headers["ETag"]
    again = await client.get(f"/api/jobs/{ended.id}", headers={"If-None-Match": etag})
    assert (again.status, await again.read()) == (304, b"")
    assert again.headers["ETag"] == etag
    other = await client.get(f"/api/jobs/{ended.id}", headers={"If-None-Match": '"other"'})
    assert (await other.json()) == (await first.json())
    live = await client.get(f"/api/jobs/{running.id}", headers={"If-None-Match": "*"})
    assert live.status == 200
    assert live.headers["Cache-Control"] == "no-store"
    assert "ETag" not in live.headers
    release.set()
    await follow(client, running.id)


async def test_the_list_without_results_is_answered_304_until_a_job_changes(
    client: Client,
) -> None:
    """The Pending page reads the list every few seconds while it is shown, to notice batches
    started elsewhere: an idle library's list is told unchanged without its body (a 304). A
    job that starts, advances or ends changes it; the list with results is not tagged."""
    shelf = shelf_of(client)
    release, advanced, finish = asyncio.Event(), asyncio.Event(), asyncio.Event()

    async def held(progress: Progress) -> dict[str, Any]:
        progress.set_total(2)
        await release.wait()
        progress.advance()
        advanced.set()
        await finish.wait()
        return {}

    first = await client.get("/api/jobs?result=false")
    assert first.headers["Cache-Control"] == "no-cache"  # kept, but asked about each time
    etag = first.headers["ETag"]
    assert etag.startswith('W/"')
    again = await client.get("/api/jobs?result=false", headers={"If-None-Match": etag})
    assert (again.status, await again.read(), again.headers["ETag"]) == (304, b"", etag)

    running = await shelf.jobs.start("import_models", held, what="held")
    started = await client.get("/api/jobs?result=false", headers={"If-None-Match": etag})
    assert started.status == 200
    assert [j["id"] for j in (await started.json())["jobs"]] == [running.id]
    release.set()
    await advanced.wait()
    moved = await client.get(
        "/api/jobs?result=false", headers={"If-None-Match": started.headers["ETag"]}
    )
    assert moved.status == 200
    assert (await moved.json())["jobs"][0]["progress"]["done"] == 1
    whole = await client.get("/api/jobs", headers={"If-None-Match": moved.headers["ETag"]})
    assert whole.status == 200
    assert "ETag" not in whole.headers
    assert (
        await client.get("/api/jobs?result=false", headers={"If-None-Match": "x"})
    ).status == 400
    finish.set()
    await follow(client, running.id)
    ended = await client.get("/api/jobs?result=false", headers={"If-None-Match": etag})
    assert (await ended.json())["jobs"][0]["state"] == "done"


@pytest.mark.parametrize("query", ["?result=false", "?result=true", ""])
async def test_a_malformed_if_none_match_is_400_whichever_list_is_asked_for(
    client: Client, query: str
) -> None:
    """The header is read before the list, as GET /api/jobs/{job_id} and the pending list do:
    the list with results is not tagged, but a malformed condition is still the client's
    mistake, not a condition that never matches."""
    response = await client.get("/api/jobs" + query, headers={"If-None-Match": "x"})
    assert response.status == 400, await response.text()
    assert "If-None-Match" in (await response.json())["detail"]


async def test_a_failing_job_reads_failed_with_the_reason(client: Client) -> None:
    shelf = shelf_of(client)

    async def refused(progress: Progress) -> dict[str, Any]:
        raise Unprocessable("model file /x cannot be read")

    async def broken(progress: Progress) -> dict[str, Any]:
        raise ZeroDivisionError

    refused_job = await shelf.jobs.start("scan", refused, what="refused")
    broken_job = await shelf.jobs.start("scan", broken, what="broken")
    end = (await follow(client, refused_job.id))[-1].data
    assert (end["state"], end["error"], end["result"]) == (
        "failed",
        "model file /x cannot be read",
        None,
    )
    end = (await follow(client, broken_job.id))[-1].data
    assert (end["state"], end["error"]) == ("failed", "internal error; see the server log")


async def test_a_job_that_failed_is_a_warning_in_the_server_log_with_the_reason(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    """A scan stopped by a full disk is the operator's to hear of: it was an INFO line, among
    the thousands of a scan, unseen by one who watches warnings."""

    async def refused(progress: Progress) -> dict[str, Any]:
        raise Unprocessable("the disk holding the database is full")

    caplog.set_level("INFO")
    job = await shelf_of(client).jobs.start("scan", refused, what="refused")
    await follow(client, job.id)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(job.id in w and "disk holding the database is full" in w for w in warnings)


def sqlite_refusal(code: int) -> Exception:
    """What the storage makes of SQLite refusing a write with `code`."""
    error = sqlite3.OperationalError("refused")
    error.sqlite_errorcode = code
    return translate_sqlite_error(error)


@pytest.mark.parametrize(
    "code", [sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_BUSY]
)
async def test_a_job_stopped_by_a_refused_change_says_what_it_had_done_is_kept(
    client: Client, code: int
) -> None:
    """A refused change says "nothing was changed", true of a request; of a scan that stopped
    at its 3rd file it was false: the two before were in the library."""

    async def stopped_at_the_third(progress: Progress) -> dict[str, Any]:
        progress.set_total(5)
        progress.advance(2)
        raise sqlite_refusal(code)

    job = await shelf_of(client).jobs.start("scan", stopped_at_the_third, what="stopped")
    end = (await follow(client, job.id))[-1].data
    assert end["state"] == "failed"
    assert "nothing was changed" not in end["error"]
    assert "the job stopped there; the 2 of 5 done before it are kept" in end["error"]


async def test_a_caller_waiting_for_a_job_stopped_by_a_refused_change_hears_what_is_kept(
    client: Client,
) -> None:
    """The command line and the answers without Prefer: respond-async wait for their job and
    say its error: "nothing was changed" of a scan that had registered files was false."""

    async def stopped_at_the_third(progress: Progress) -> dict[str, Any]:
        progress.set_total(5)
        progress.advance(2)
        raise sqlite_refusal(sqlite3.SQLITE_FULL)

    shelf = shelf_of(client)
    with pytest.raises(StorageFull) as caught:
        await shelf.jobs.run("scan", stopped_at_the_third, what="stopped")
    assert "nothing was changed" not in caught.value.detail
    assert "the job stopped there; the 2 of 5 done before it are kept" in caught.value.detail
    (job,) = (await (await client.get("/api/jobs")).json())["jobs"]
    assert caught.value.detail == job["error"]


async def test_a_job_refused_its_first_change_says_nothing_was_changed(client: Client) -> None:
    """Not "the 0 of 5 done before it are kept": before its first change, nothing was."""

    async def refused_at_once(progress: Progress) -> dict[str, Any]:
        progress.set_total(5)
        raise sqlite_refusal(sqlite3.SQLITE_FULL)

    shelf = shelf_of(client)
    with pytest.raises(StorageFull) as caught:
        await shelf.jobs.run("scan", refused_at_once, what="refused")
    said = "the disk holding the database is full; nothing was changed"
    assert caught.value.detail == said
    (job,) = (await (await client.get("/api/jobs")).json())["jobs"]
    assert job["error"] == said


# --- events -----------------------------------------------------------------------------------


async def test_events_are_progress_at_most_four_a_second_then_one_end(client: Client) -> None:
    shelf = shelf_of(client)
    release = asyncio.Event()

    async def busy(progress: Progress) -> dict[str, Any]:
        progress.set_total(None)
        while not release.is_set():  # thousands of changes a second
            progress.advance()
            await asyncio.sleep(0)
        return {"steps": progress.done}

    job = await shelf.jobs.start("scan", busy, what="busy")
    asked = time.monotonic()
    events: list[Event] = []
    async with client.get(f"/api/jobs/{job.id}/events") as response:
        assert response.headers["Content-Type"] == "text/event-stream"
        async for event in read_events(response):
            events.append(event)
            if len(events) == 4:
                release.set()
            if event.name == "end":
                break
    progress = [e for e in events if e.name == "progress"]
    assert [e.name for e in events] == ["progress"] * len(progress) + ["end"]
    assert len(progress) <= 4 * (progress[-1].received - asked) + 1
    done = [e.data["progress"]["done"] for e in progress]
    assert done == sorted(done)
    assert {e.data["state"] for e in progress} <= {"queued", "running"}
    end = events[-1].data
    assert end["state"] == "done"
    assert end["result"] == {"steps": end["progress"]["done"]}
    # At least as far as the last progress event: on a loaded machine, storing the end may
    # outlast the pause between events, and one more progress event, at the final count, comes
    # between the work's return and its end.
    assert end["progress"]["done"] >= done[-1]


class AsServed(ServiceTestServer):
    """As `modelshelf serve` runs: a handler goes on when its client goes away (aiohttp's
    test server cancels it)."""

    async def _make_runner(self, **kwargs: Any) -> web.AppRunner:
        return await super()._make_runner(**{**kwargs, "handler_cancellation": False})


async def test_a_client_that_goes_away_frees_its_stream_while_the_job_stands_still(
    aiohttp_client: Any, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream's handler waits for the job's next change: a client gone while the job
    stood still (a page reloaded, a tab hidden) left it waiting until then. The stream's
    pings notice the client has gone, and the handler ends."""
    monkeypatch.setattr(jobs_api, "PING_EVERY_S", 0.05)
    app = create_app(settings)
    answered = asyncio.Event()

    @web.middleware
    async def watch(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)  # type: ignore[no-any-return]
        finally:
            if request.path.endswith("/events"):
                answered.set()

    app.middlewares.append(watch)
    client: Client = await aiohttp_client(AsServed(app))
    release = asyncio.Event()

    async def held(progress: Progress) -> dict[str, Any]:
        await release.wait()
        return {}

    job = await shelf_of(client).jobs.start("scan", held, what="held")
    try:
        async with client.get(f"/api/jobs/{job.id}/events") as response:
            first = await anext(read_events(response))
        assert first.name == "progress"
        async with asyncio.timeout(10):
            await answered.wait()
    finally:
        release.set()
    assert (await follow(client, job.id))[-1].data["state"] == "done"


async def test_a_client_that_connects_after_the_end_gets_the_end_event_at_once(
    client: Client, pending: dict[int, str]
) -> None:
    job = await start(client, BATCH, {"ids": [1]})
    first = await follow(client, job["id"])
    again = await follow(client, job["id"])
    assert [e.name for e in again] == ["end"]
    assert again[0].data == first[-1].data == await job_of(client, job["id"])


async def test_head_of_an_event_stream_answers_as_get_would_without_a_body(
    client: Client, pending: dict[int, str]
) -> None:
    """Every GET route answers HEAD (RFC 9110, 9.1), as a 405 elsewhere says ("allowed: GET,
    HEAD"): the stream's was 405 with `Allow: GET`."""
    job = await start(client, BATCH, {"ids": [1]})
    await follow(client, job["id"])
    response = await client.head(f"/api/jobs/{job['id']}/events")
    assert response.status == 200
    assert response.headers["Content-Type"] == "text/event-stream"
    assert response.headers["Cache-Control"] == "no-cache"
    assert await response.read() == b""
    assert (await client.head(f"/api/jobs/{'a' * 32}/events")).status == 404
    assert (await client.head("/api/jobs/x/events")).status == 400


async def test_the_end_event_of_a_job_from_before_a_restart_is_read_from_the_database(
    make_client: MakeClient, legacy: LegacyLibrary, models_dir: Path
) -> None:
    add_pending_models(legacy, models_dir, [1])
    first = await make_client()
    await migrate(first, legacy)
    job = await start(first, BATCH, {"ids": [1]})
    end = (await follow(first, job["id"]))[-1].data
    await first.close()
    second = await make_client()
    assert [e.data for e in await follow(second, job["id"])] == [end]
    assert (await (await second.get("/api/jobs")).json())["jobs"][0] == end


# --- cancel -----------------------------------------------------------------------------------


@pytest.mark.parametrize("after", [0, 7], ids=["at-once", "mid-way"])
async def test_cancel_ends_the_job_cancelled_and_leaves_a_consistent_library(
    client: Client, pending: dict[int, str], data_dir: Path, after: int
) -> None:
    shelf = shelf_of(client)
    # The import of id 8 waits for its model's lock, so the job cannot end on its own.
    async with shelf.model_locks.hold(pending[8]):
        job = await start(client, BATCH, {"ids": list(range(1, 9))})
        async with client.get(f"/api/jobs/{job['id']}/events") as response:
            events = read_events(response)
            async for event in events:
                if event.data["progress"]["done"] >= after:
                    break
            answer = await client.delete(f"/api/jobs/{job['id']}")
            assert answer.status == 202
            assert (await answer.json())["job"]["id"] == job["id"]
            end = [e async for e in events][-1]
    assert end.name == "end"
    assert end.data["state"] == "cancelled"
    # What it did before the cancel is kept, and the error says how much.
    done = end.data["progress"]["done"]
    assert done >= after
    kept = f"; the {done:,} of 8 done before it are kept" if done else ""
    assert end.data["error"] == f"cancelled on request{kept}"
    assert end.data["result"] is None
    assert check_library(data_dir) == []
    imported = {r[0] for r in query(data_dir, "SELECT sha256 FROM models")}
    still_pending = {r[0] for r in query(data_dir, "SELECT id FROM pending_import")}
    assert 8 in still_pending
    for pending_id, sha in pending.items():
        assert (sha in imported) != (pending_id in still_pending)
    assert (data_dir / "images" / "pending" / "8.jpg").is_file()
    # Running it again finishes the library.
    response = await client.post(BATCH, json={"ids": list(range(1, 9))})
    assert (await response.json())["counts"]["success"] == len(still_pending)
    assert query(data_dir, "SELECT count(*) FROM models") == [(8,)]
    assert check_library(data_dir) == []


async def test_cancelling_a_job_that_ended_is_409_with_the_job(
    client: Client, pending: dict[int, str]
) -> None:
    job = await start(client, BATCH, {"ids": [1]})
    end = (await follow(client, job["id"]))[-1].data
    response = await client.delete(f"/api/jobs/{job['id']}")
    assert response.status == 409
    body = await response.json()
    assert (body["error"], body["job"]) == ("Conflict", end)


async def test_a_job_cancelled_while_still_queued_ends_cancelled_and_frees_its_kind(
    client: Client,
) -> None:
    shelf = shelf_of(client)
    ran = []

    async def work(progress: Progress) -> dict[str, Any]:
        ran.append(True)
        return {}

    # The single writer is busy, so the new job stays queued (its row not yet stored) while a
    # client sees it in the list and cancels it.
    async with shelf.changes.change():
        starting = asyncio.create_task(
            shelf.jobs.start("scan", work, what="work", one_at_a_time=True)
        )
        listed = (await (await client.get("/api/jobs")).json())["jobs"]
        assert [j["state"] for j in listed] == ["queued"]
        answer = await client.delete(f"/api/jobs/{listed[0]['id']}")
        assert answer.status == 202
    job = await starting

    end = (await follow(client, job.id))[-1].data
    assert (end["state"], end["error"], ran) == ("cancelled", "cancelled on request", [])
    assert (await job_of(client, job.id)) == end
    # Nothing of the kind runs any more: the next one starts and ends.
    again = await shelf.jobs.start("scan", work, what="work", one_at_a_time=True)
    assert (await follow(client, again.id))[-1].data["state"] == "done"


async def test_a_caller_waiting_for_a_cancelled_job_gets_job_cancelled(client: Client) -> None:
    shelf = shelf_of(client)
    started = asyncio.Event()

    async def held(progress: Progress) -> dict[str, Any]:
        started.set()
        await asyncio.Event().wait()
        return {}

    waiting = asyncio.create_task(shelf.jobs.run("scan", held, what="held"))
    await started.wait()
    job = shelf.jobs.active("scan")
    assert job is not None
    assert (await client.delete(f"/api/jobs/{job.id}")).status == 202
    with pytest.raises(JobCancelled) as caught:
        await waiting
    assert caught.value.extra["job"]["state"] == "cancelled"


# --- restart ----------------------------------------------------------------------------------


@pytest.mark.parametrize("database", ["writable", "read-only"])
async def test_a_job_left_running_by_a_dead_process_reads_failed_with_the_reason(
    make_client: MakeClient, data_dir: Path, database: str
) -> None:
    await (await make_client()).close()  # a library with the jobs table
    with sqlite3.connect(data_dir / "modelshelf.db") as conn:
        for job_id, state in (("a" * 32, "running"), ("b" * 32, "queued")):
            conn.execute(
                "INSERT INTO jobs(id, kind, state, created_at, started_at, progress)"
                " VALUES (?, 'import_models', ?, 1, 2, '{\"done\": 3, \"total\": 9}')",
                (job_id, state),
            )
    with read_only_file(data_dir / "modelshelf.db") if database == "read-only" else nullcontext():
        client = await make_client()
        listed = {j["id"]: j for j in (await (await client.get("/api/jobs")).json())["jobs"]}
        for job_id in ("a" * 32, "b" * 32):
            job = await job_of(client, job_id)
            assert job == listed[job_id]
            assert job["state"] == "failed"
            assert job["error"].startswith("the service stopped while this job ran")
            assert job["progress"] == {"done": 3, "total": 9}
            if database == "writable":
                assert job["finished_at"] is not None
        await client.close()
