"""The jobs page, and the whole UI under a path prefix.

The job tests answer the jobs endpoints in the browser (Playwright routes) with the shapes the
contract fixes, so that what the page does with a job at a given moment (its bytes, rate and
ETA half way, a cancel, a server without jobs) is checked deterministically; a real scan
against a real server is in test_scan_page. The prefix test runs a second real server with
`path_prefix`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.server import ServerProcess
from tests.ui.conftest import Operations, Visit, serve_as_if
from tests.ui.seed import SeededLibrary, seed_library

JOB = {
    "id": "j1",
    "kind": "scan",
    "state": "running",
    "created_at": "2026-01-02T10:00:00Z",
    "started_at": "2026-01-02T10:00:00Z",
    "finished_at": None,
    "progress": {"done": 0, "total": 200, "bytes_done": 0, "bytes_total": 4 * 2**30},
    "result": None,
    "error": None,
}
PROGRESS = {
    "done": 120,
    "total": 200,
    "bytes_done": 2 * 2**30,
    "bytes_total": 4 * 2**30,
    "rate": 512 * 2**20,
    "eta_s": 4,
    "phase": "hashing",
}
DONE = {
    **JOB,
    "state": "done",
    "finished_at": "2026-01-02T10:00:09Z",
    "progress": {**PROGRESS, "done": 200, "bytes_done": 4 * 2**30, "eta_s": 0},
    "result": {"added": 180, "moved": 3, "missing": 2},
}


def with_jobs(present: bool) -> Callable[[Operations], None]:
    """An endpoint table with (or without) the jobs and scan endpoints."""

    def edit(operations: Operations) -> None:
        jobs = ("POST /api/scan", "GET /api/jobs", "GET /api/jobs/{id}", "DELETE /api/jobs/{id}")
        for key in jobs:
            if present:
                operations[key] = {"query": [], "statuses": [200, 202]}
            else:
                operations.pop(key, None)

    return edit


def events(*items: tuple[str, dict[str, Any]]) -> str:
    return "".join(f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in items)


def test_without_jobs_the_page_says_so_and_scanning_is_disabled(visit: Visit) -> None:
    page = visit.page
    serve_as_if(page, with_jobs(False))
    page.goto("/jobs")
    page.get_by_text("This server does not offer scanning yet.").wait_for()
    assert page.get_by_role("button", name="Start scan").is_disabled()


def test_no_jobs_yet_is_said_under_the_recent_jobs_heading(visit: Visit) -> None:
    page = visit.page
    serve_as_if(page, with_jobs(True))
    page.route("**/api/jobs", lambda r: r.fulfill(json={"jobs": []}))
    page.goto("/jobs")
    empty = page.get_by_text("No jobs yet.")
    empty.wait_for()
    heading = page.get_by_role("heading", level=2, name="Recent jobs")
    # Above it, the note read as if the scan form had no jobs: it belongs to the list.
    assert heading.evaluate(
        "(h, p) => !!(h.compareDocumentPosition(p) & Node.DOCUMENT_POSITION_FOLLOWING)",
        empty.element_handle(),
    )


def test_a_server_with_no_model_folders_says_where_to_name_them(visit: Visit) -> None:
    page = visit.page  # the session's server names no model folder
    page.goto("/jobs")
    form = page.get_by_role("form", name="Scan the model folders")
    form.locator(".error-note", has_text="no model roots are configured").wait_for()
    assert "config/local.toml" in form.locator(".error-note").inner_text()
    assert form.locator(".folder-list").count() == 0


def test_a_scan_shows_its_progress_live_then_its_result(visit: Visit) -> None:
    page = visit.page
    serve_as_if(page, with_jobs(True))
    page.route("**/api/jobs", lambda r: r.fulfill(json={"jobs": []}))
    page.route("**/api/scan", lambda r: r.fulfill(status=202, json={"job": JOB}))
    stream = events(("progress", PROGRESS), ("end", DONE))
    page.route(
        "**/api/jobs/j1/events",
        lambda r: r.fulfill(body=stream, content_type="text/event-stream"),
    )
    page.goto("/jobs")
    page.get_by_label("Only these types").fill("loras")
    with page.expect_request("**/api/scan") as scan:
        page.get_by_role("button", name="Start scan").click()
    assert scan.value.post_data_json == {"types": ["loras"]}
    job = page.locator(".job[data-id='j1']")
    job.locator(".badge.state-done").wait_for()
    assert "200 of 200 files" in job.inner_text()
    assert "added: 180" in job.inner_text()


def test_a_running_job_shows_files_bytes_rate_and_eta_and_can_be_cancelled(visit: Visit) -> None:
    page = visit.page
    serve_as_if(page, with_jobs(True))
    page.route("**/api/jobs", lambda r: r.fulfill(json={"jobs": [JOB]}))
    # A stream that sends one progress event and stays open as a running job's does.
    page.route(
        "**/api/jobs/j1/events",
        lambda r: r.fulfill(body=events(("progress", PROGRESS)), content_type="text/event-stream"),
    )
    running = {**JOB, "progress": PROGRESS}

    def job(route: Any) -> None:
        if route.request.method == "DELETE":
            route.fulfill(status=202, json={"job": running})
        else:  # the page polls when a stream ends before its job does
            route.fulfill(json=running)

    page.route("**/api/jobs/j1", job)
    page.goto("/jobs")
    job = page.locator(".job[data-id='j1']")
    job.locator(".stats").get_by_text("hashing").wait_for()
    text = job.inner_text()
    for fact in ("120 of 200 files", "2.0 GB of 4.0 GB", "512 MB/s", "4 s left"):
        assert fact in text
    with page.expect_request(lambda r: r.method == "DELETE" and r.url.endswith("/api/jobs/j1")):
        job.get_by_role("button", name="Cancel Scan of the model folders").click()


@pytest.fixture(scope="module")
def prefixed(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[ServerProcess]:
    library: SeededLibrary = seed_library(tmp_path_factory.mktemp("ui-prefix"), models=4)
    log = Path(library.data_dir.parent / "server.log")
    server = ServerProcess(
        library.data_dir, log, prefix="/shelf", MODELSHELF_PATH_PREFIX="/shelf"
    ).start()
    yield server
    server.kill()


def test_every_page_works_under_a_path_prefix(browser: Any, prefixed: ServerProcess) -> None:
    visit = Visit(browser, prefixed.url)
    page = visit.page
    try:
        page.goto("/shelf/")
        page.get_by_text("7 models").wait_for()  # 4, and the 3 that pending models conflict with
        page.locator(".card-link").first.click()
        page.wait_for_url("**/shelf/models/*")
        stage = page.locator(".stage img")
        stage.wait_for()
        page.wait_for_function("() => document.querySelector('.stage img').naturalWidth > 0")
        page.get_by_role("link", name="Pending", exact=True).click()
        page.wait_for_url("**/shelf/pending")
        page.locator(".queue > li").first.wait_for()
        page.get_by_role("link", name="Jobs", exact=True).click()
        page.wait_for_url("**/shelf/jobs")
        page.go_back()
        page.wait_for_url("**/shelf/pending")
        assert not visit.errors
        assert all("/shelf/" in url for url in visit.requests if "127.0.0.1" in url)
    finally:
        visit.close()


def test_duplicates_found_by_scans_are_listed_with_the_space_they_waste(
    visit: Visit, library: SeededLibrary
) -> None:
    sha = library.hashes["Aurora Lineart XL"]
    group = {
        "sha256": sha,
        "name": "Aurora Lineart XL",
        "size_bytes": 2**30,
        "files": ["/models/a/aurora.safetensors", "/models/b/aurora copy.safetensors"],
        "wasted_bytes": 2**30,
    }

    def edit(operations: Operations) -> None:
        with_jobs(True)(operations)
        operations["GET /api/duplicates"] = {"query": [], "statuses": [200]}

    page = visit.page
    serve_as_if(page, edit)
    page.route("**/api/jobs", lambda r: r.fulfill(json={"jobs": []}))
    page.route(
        "**/api/duplicates", lambda r: r.fulfill(json={"groups": [group], "wasted_bytes": 2**30})
    )
    page.goto("/jobs")
    duplicates = page.get_by_role("region", name="Duplicates")
    duplicates.get_by_text("1 model on disk more than once; 1.0 GB could be freed.").wait_for()
    assert duplicates.get_by_text("/models/b/aurora copy.safetensors").is_visible()
    duplicates.get_by_role("link", name="Aurora Lineart XL").click()
    page.wait_for_url(f"**/models/{sha}")
