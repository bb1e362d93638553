"""A job on the page stays put while it changes: live progress updates its numbers in place
(focus on Cancel survives, on the jobs page and in the pending page's batch progress), a
finished job is not redrawn (an open "Full result" stays open), the list follows the API's
order and length, what a job found or why it failed is told plainly (to screen readers
too), and focus after "Start scan" lands on the new job.

As in test_jobs_and_prefix, the jobs endpoints are answered in the browser (Playwright routes)
with the shapes the contract fixes, so that each moment of a job is deterministic; a running
job is polled once a second after its event stream ends, and each poll can answer a newer
state."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import Operations, Visit, serve_as_if
from tests.ui.test_jobs_and_prefix import DONE, JOB, PROGRESS, events, with_jobs

CANCEL = "Cancel Scan of the model folders"
DIED = "the service stopped while this job ran (the process ended); run it again"
SCAN_RESULT = {
    "counts": {"files_found": 23, "unchanged": 0, "hashed": 23, "failed": 1, "models_created": 3},
    "problems": [
        {"path": "/models/vae", "reason": "model root (vae) does not exist"},
        {"path": "/models/loras/broken.safetensors", "reason": "safetensors header: not JSON"},
    ],
    "problems_not_listed": 0,
    "warnings": ["no model roots are configured for embeddings"],
}


def ended(job_id: str, minute: int, **changes: Any) -> dict[str, Any]:
    """A finished scan created at 10:<minute>."""
    at = f"2026-01-02T10:{minute:02d}:00Z"
    return {**DONE, "id": job_id, "created_at": at, "started_at": at, **changes}


def running_job_that_advances(page: Any, job: dict[str, Any], total: int = 200) -> None:
    """`job` is running: its event stream ends at once (so the page polls it), and each poll
    answers one more unit done."""
    counter = itertools.count(1)
    page.route(
        f"**/api/jobs/{job['id']}/events",
        lambda r: r.fulfill(body="", content_type="text/event-stream"),
    )

    def poll(route: Any) -> None:
        if route.request.method == "DELETE":
            route.fulfill(status=202, json={"job": job})
            return
        done = next(counter)
        progress = {"done": done, "total": total, "phase": "hashing"}
        route.fulfill(json={**job, "progress": progress})

    page.route(f"**/api/jobs/{job['id']}", poll)


def focused_label(page: Any) -> str | None:
    return page.evaluate("document.activeElement.getAttribute('aria-label')")


def wait_for_more_updates(page: Any, job_id: str, polls: int = 3) -> None:
    """Until the job has been polled `polls` more times and its figures show the last answer
    (each poll answers one more unit done)."""
    for _ in range(polls):
        with page.expect_response(lambda r: r.url.endswith(f"/api/jobs/{job_id}")) as answer:
            pass
    page.wait_for_function(
        """([selector, done]) => {
            const figures = document.querySelector(selector).innerText.match(/(\\d+) of /);
            return figures && Number(figures[1]) >= done;
        }""",
        arg=[f".job[data-id='{job_id}'] > .stats", answer.value.json()["progress"]["done"]],
    )


def test_focus_on_cancel_survives_live_progress_on_the_jobs_page(visit: Visit) -> None:
    page = visit.page
    serve_as_if(page, with_jobs(True))
    page.route("**/api/jobs", lambda r: r.fulfill(json={"jobs": [JOB]}))
    running_job_that_advances(page, JOB)
    page.goto("/jobs")
    cancel = page.get_by_role("button", name=CANCEL)
    cancel.focus()
    wait_for_more_updates(page, "j1")
    assert focused_label(page) == CANCEL


# Every EventSource the page makes, and a way to hide the tab and show it again.
STREAMS = """
window.__streams = [];
window.EventSource = class extends window.EventSource {
  constructor(...args) { super(...args); window.__streams.push(this); }
};
window.__hide = (hidden) => {
  Object.defineProperty(document, "hidden", { value: hidden, configurable: true });
  const state = hidden ? "hidden" : "visible";
  Object.defineProperty(document, "visibilityState", { value: state, configurable: true });
  document.dispatchEvent(new Event("visibilitychange"));
};
"""
OPEN_STREAMS = "() => __streams.filter((s) => s.readyState !== 2).length"


def test_a_hidden_tab_holds_no_event_stream_and_follows_its_jobs_by_polling(
    visit: Visit,
) -> None:
    """A browser keeps 6 connections to a server: each job followed live holds one for as
    long as it runs, so tabs left in the background with jobs running would leave the tab
    in use none."""
    page = visit.page
    page.add_init_script(STREAMS)
    serve_as_if(page, with_jobs(True))
    page.route("**/api/jobs", lambda r: r.fulfill(json={"jobs": [JOB]}))
    page.route("**/api/jobs/j1/events", lambda r: None)  # never answered: a stream held open
    page.route("**/api/jobs/j1", lambda r: r.fulfill(json={**JOB, "progress": PROGRESS}))
    page.goto("/jobs")
    page.wait_for_function("() => __streams.length === 1")
    assert page.evaluate(OPEN_STREAMS) == 1

    with page.expect_response("**/api/jobs/j1"):  # followed by polling meanwhile
        page.evaluate("__hide(true)")
        assert page.evaluate(OPEN_STREAMS) == 0
    page.locator(".job[data-id='j1'] .stats").get_by_text("120 of 200 files").wait_for()

    page.evaluate("__hide(false)")
    page.wait_for_function("() => __streams.length === 2")
    assert page.evaluate(OPEN_STREAMS) == 1


def test_focus_on_cancel_survives_a_batchs_live_progress_on_the_pending_page(
    visit: Visit,
) -> None:
    page = visit.page
    batch = {**JOB, "id": "b1", "kind": "import_models", "progress": {"done": 0, "total": 9}}
    page.route(
        "**/api/migration/import_models",
        lambda r: r.fulfill(status=202, json={"job": batch}),
    )
    running_job_that_advances(page, batch, total=9)
    page.goto("/pending")
    page.get_by_role("checkbox", name="Select Fresh Pending 3").check()
    page.get_by_role("button", name="Import selected").click()
    cancel = page.get_by_role("button", name="Cancel Batch import of pending models")
    cancel.focus()
    wait_for_more_updates(page, "b1")
    assert focused_label(page) == "Cancel Batch import of pending models"


def test_import_selected_stays_disabled_while_its_batch_runs(visit: Visit) -> None:
    """A box checked while a batch runs (or the queue's groups read again meanwhile) does not
    offer a second batch beside the running one."""
    page = visit.page
    batch = {**JOB, "id": "b2", "kind": "import_models", "progress": {"done": 0, "total": 9}}
    page.route(
        "**/api/migration/import_models",
        lambda r: r.fulfill(status=202, json={"job": batch}),
    )
    running_job_that_advances(page, batch, total=9)
    page.goto("/pending")
    page.get_by_role("checkbox", name="Select Fresh Pending 3").check()
    run = page.get_by_role("button", name="Import selected")
    run.click()
    page.get_by_role("button", name="Cancel Batch import of pending models").wait_for()

    page.get_by_role("checkbox", name="Select Gone Pending").check()

    expect(page.get_by_text("2 models selected")).to_be_visible()
    expect(run).to_be_disabled()


def test_an_open_full_result_stays_open_and_focused_across_refreshes(visit: Visit) -> None:
    page = visit.page
    serve_as_if(page, with_jobs(True))
    page.route("**/api/jobs", lambda r: r.fulfill(json={"jobs": [ended("j1", 0)]}))
    page.goto("/jobs")
    summary = page.get_by_text("Full result")
    summary.click()
    summary.focus()
    for _ in range(2):  # the page reads the list every 4 s
        with page.expect_response(lambda r: r.url.endswith("/api/jobs")):
            pass
    assert page.locator(".found > details").get_attribute("open") is not None
    assert page.evaluate("document.activeElement.textContent") == "Full result"


def test_the_list_is_read_without_results_and_an_ended_jobs_result_once(visit: Visit) -> None:
    """The page reads the list every 4 s: a batch of 5,000 models' result is ~1 MB, and the
    list has 50 ended jobs. It asks for the list without results and reads each ended job's
    once, which later lists (without it) do not take away."""
    page = visit.page

    def with_result_query(operations: Operations) -> None:
        with_jobs(True)(operations)
        operations["GET /api/jobs"]["query"] = ["result"]

    serve_as_if(page, with_result_query)
    done = ended("j1", 0, result=SCAN_RESULT)
    brief = {k: v for k, v in done.items() if k != "result"}
    lists: list[str] = []
    reads: list[str] = []

    def listing(route: Any) -> None:
        lists.append(route.request.url)
        brief_asked = route.request.url.endswith("/api/jobs?result=false")
        route.fulfill(json={"jobs": [brief if brief_asked else done]})

    def one(route: Any) -> None:
        reads.append(route.request.url)
        route.fulfill(json=done)

    page.route(re.compile(r".*/api/jobs(\?.*)?$"), listing)
    page.route("**/api/jobs/j1", one)
    page.goto("/jobs")
    problems = page.locator(".job[data-id='j1'] .findings.problems")
    problems.get_by_text("2 problems", exact=True).wait_for()
    for _ in range(2):  # the page reads the list every 4 s
        with page.expect_response(re.compile(r".*/api/jobs(\?.*)?$")):
            pass
    assert lists and all(url.endswith("/api/jobs?result=false") for url in lists), lists
    assert len(reads) == 1
    expect(problems).to_be_visible()


def test_an_ended_jobs_result_is_read_when_its_row_comes_into_view(visit: Visit) -> None:
    """The list shows 50 ended jobs, and a batch of 5,000 models' result is ~700 KB: opening
    the page reads the results of the jobs on the screen only, and a job's when the person
    scrolls to it, once each."""
    page = visit.page

    def with_result_query(operations: Operations) -> None:
        with_jobs(True)(operations)
        operations["GET /api/jobs"]["query"] = ["result"]

    serve_as_if(page, with_result_query)
    brief = {k: v for k, v in ended("j0", 0).items() if k != "result"}  # as the list gives it
    jobs = [{**brief, "id": f"j{n}"} for n in range(40)]
    reads: list[str] = []

    def one(route: Any) -> None:
        reads.append(route.request.url.rpartition("/")[2])
        route.fulfill(json={**jobs[int(reads[-1][1:])], "result": SCAN_RESULT})

    page.route(re.compile(r".*/api/jobs\?result=false$"), lambda r: r.fulfill(json={"jobs": jobs}))
    page.route(re.compile(r".*/api/jobs/j\d+$"), one)
    page.goto("/jobs")
    page.locator(".job[data-id='j0'] .findings.problems").wait_for()
    with page.expect_response(re.compile(r".*/api/jobs\?result=false$")):
        pass  # the next reading of the list (every 4 s): nothing more is read meanwhile
    assert 0 < len(reads) < len(jobs) / 2, reads
    last = page.locator(".job[data-id='j39']")
    last.scroll_into_view_if_needed()
    last.get_by_text("2 problems", exact=True).wait_for()
    assert "j39" in reads
    assert len(reads) == len(set(reads)), reads


def test_a_scans_problems_and_warnings_stand_out_with_readable_counters(visit: Visit) -> None:
    page = visit.page
    serve_as_if(page, with_jobs(True))
    done = ended("j1", 0, result=SCAN_RESULT)
    page.route("**/api/jobs", lambda r: r.fulfill(json={"jobs": [done]}))
    page.goto("/jobs")
    job = page.locator(".job[data-id='j1']")
    problems = job.locator(".findings.problems")
    problems.get_by_text("2 problems", exact=True).wait_for()
    assert problems.locator("li").all_inner_texts() == [
        f"{p['path']}: {p['reason']}" for p in SCAN_RESULT["problems"]
    ]
    assert job.locator(".findings.warnings").get_by_text("1 warning").is_visible()
    stats = job.locator(".found .stats").inner_text()
    assert "files found: 23" in stats and "new models: 3" in stats
    assert "could not be read: 1" in stats
    assert "unchanged" not in stats  # zeros say nothing
    assert "problems not listed" not in stats
    assert "hashing" not in job.locator(".stats").first.inner_text()  # past its phases


def test_a_scans_problems_are_listed_by_folder_then_file_name(visit: Visit) -> None:
    """A scan reports problems in the order it met them (walked, read, recalled), one folder's
    files strewn over the list, as a real scan of four folders of broken files gave them; the
    page lists them by folder, then by name, numbers by their value, the first ten and the rest
    alike."""
    met = [
        "/lib/zeta/ok_7.safetensors",
        "/lib/alpha/ok_10.civitai.info",
        "/lib/alpha/ok_10.safetensors",
        "/lib/alpha/ok_2.safetensors",
        "/lib/beta/ok_0.safetensors",
        "/lib/alpha/deep/x.safetensors",
        "/lib/zeta/ok_0.safetensors",
        "/lib/alpha/broken_0.safetensors",
        "/lib/zeta/ok_1.safetensors",
        "/lib/alpha/ok_2.civitai.info",
        "/lib/beta/ok_0.civitai.info",
        "/lib/zeta/ok_10.safetensors",
    ]
    result = {
        "counts": {"files_found": 40},
        "problems": [{"path": p, "reason": "bad"} for p in met],
    }
    page = visit.page
    serve_as_if(page, with_jobs(True))
    page.route("**/api/jobs", lambda r: r.fulfill(json={"jobs": [ended("j1", 0, result=result)]}))
    page.goto("/jobs")
    found = page.locator(".job[data-id='j1'] .findings.problems")
    found.get_by_text("12 problems", exact=True).wait_for()
    found.get_by_role("button", name="Show 2 more problems").click()
    assert found.locator("li").all_inner_texts() == [
        f"{path}: bad"
        for path in [
            "/lib/alpha/broken_0.safetensors",
            "/lib/alpha/ok_2.civitai.info",
            "/lib/alpha/ok_2.safetensors",
            "/lib/alpha/ok_10.civitai.info",
            "/lib/alpha/ok_10.safetensors",
            "/lib/alpha/deep/x.safetensors",
            "/lib/beta/ok_0.civitai.info",
            "/lib/beta/ok_0.safetensors",
            "/lib/zeta/ok_0.safetensors",
            "/lib/zeta/ok_1.safetensors",
            "/lib/zeta/ok_7.safetensors",
            "/lib/zeta/ok_10.safetensors",
        ]
    ]


def test_a_job_cut_by_a_crash_tells_when_it_started_not_how_long_it_took(visit: Visit) -> None:
    page = visit.page
    serve_as_if(page, with_jobs(True))
    died = ended(
        "j1", 0, state="failed", finished_at="2026-01-03T09:00:00Z", error=DIED, result=None
    )
    page.route("**/api/jobs", lambda r: r.fulfill(json={"jobs": [died]}))
    page.goto("/jobs")
    job = page.locator(".job[data-id='j1']")
    job.get_by_text(DIED).wait_for()
    stats = job.locator(".stats").first.inner_text()
    assert "started" in stats
    assert "took" not in stats


def test_the_list_follows_the_apis_order_and_length(visit: Visit) -> None:
    page = visit.page
    serve_as_if(page, with_jobs(True))
    first = [ended("old1", 1), ended("old2", 0)]
    later = [ended("new", 2), ended("old1", 1)]  # old2 no longer kept
    answers = itertools.chain([first], itertools.repeat(later))
    page.route("**/api/jobs", lambda r: r.fulfill(json={"jobs": next(answers)}))
    page.goto("/jobs")
    page.locator(".job[data-id='old2']").wait_for()
    page.locator(".job[data-id='new']").wait_for()
    page.locator(".job[data-id='old2']").wait_for(state="detached")
    ids = page.locator(".jobs > .job").evaluate_all("items => items.map(i => i.dataset.id)")
    assert ids == ["new", "old1"]


def test_progress_is_announced_sparingly_and_the_bar_says_its_value(visit: Visit) -> None:
    page = visit.page
    serve_as_if(page, with_jobs(True))
    page.route("**/api/jobs", lambda r: r.fulfill(json={"jobs": [JOB]}))
    tenth = {"done": 20, "total": 200, "phase": "hashing"}
    half = {"done": 100, "total": 200, "phase": "hashing"}
    stream = events(("progress", {"done": 5, "phase": "walking"}), ("progress", tenth))
    stream += events(("progress", half))
    page.route(
        "**/api/jobs/j1/events", lambda r: r.fulfill(body=stream, content_type="text/event-stream")
    )
    page.route("**/api/jobs/j1", lambda r: r.fulfill(json={**JOB, "progress": half}))
    page.goto("/jobs")
    job = page.locator(".job[data-id='j1']")
    job.locator(".stats", has_text="100 of 200 files").wait_for()
    # A new phase is told at once; more of the same phase waits (10 s).
    live = job.locator("[aria-live='polite']")
    assert live.inner_text() == "Scan of the model folders: 10%, hashing, 20 of 200 files"
    valuetext = job.get_by_role("progressbar").get_attribute("aria-valuetext")
    assert valuetext == "50%, hashing, 100 of 200 files"


@pytest.mark.parametrize(
    ("end", "said", "error"),
    [
        (
            ended("j1", 0, result=SCAN_RESULT),
            "Scan of the model folders: done; 2 problems, 1 warning, 23 files found, 3 new models",
            False,
        ),
        (
            ended("j1", 0, state="failed", error="disk on fire", result=None),
            "Scan of the model folders: failed: disk on fire",
            True,
        ),
    ],
)
def test_the_end_of_a_job_is_announced_with_what_it_found(
    visit: Visit, end: dict[str, Any], said: str, error: bool
) -> None:
    page = visit.page
    serve_as_if(page, with_jobs(True))
    page.route("**/api/jobs", lambda r: r.fulfill(json={"jobs": [JOB]}))
    stream = events(("progress", PROGRESS), ("end", end))
    page.route(
        "**/api/jobs/j1/events", lambda r: r.fulfill(body=stream, content_type="text/event-stream")
    )
    page.goto("/jobs")
    # A failure is said at once (role=alert), the rest politely.
    region = page.get_by_role("alert" if error else "status")
    toast = region.locator(".toast").filter(has=page.get_by_text(said, exact=True))
    toast.wait_for()
    assert ("error" in (toast.get_attribute("class") or "").split()) is error


def test_an_ended_job_keeps_no_progress_for_a_screen_reader_to_read(visit: Visit) -> None:
    page = visit.page
    serve_as_if(page, with_jobs(True))
    page.route("**/api/jobs", lambda r: r.fulfill(json={"jobs": [JOB]}))
    stream = events(("progress", PROGRESS), ("end", ended("j1", 0, result=SCAN_RESULT)))
    page.route(
        "**/api/jobs/j1/events", lambda r: r.fulfill(body=stream, content_type="text/event-stream")
    )
    page.goto("/jobs")
    job = page.locator(".job[data-id='j1']")
    job.locator(".badge", has_text="done").wait_for()
    # The region that told the progress while it ran is empty once the job is done: read in
    # the page, it said the job was still under way ("..., 3 s left").
    expect(job.locator("[aria-live='polite']")).to_have_text("")


def test_a_server_that_cannot_be_reached_is_said_in_words_until_it_answers(
    visit: Visit,
) -> None:
    page = visit.page
    serve_as_if(page, with_jobs(True))
    answers = itertools.chain([None], itertools.repeat({"jobs": [ended("j1", 0)]}))

    def jobs(route: Any) -> None:
        answer = next(answers)
        if answer is None:
            route.abort()  # as when the server is down: fetch rejects with a TypeError
        else:
            route.fulfill(json=answer)

    page.route("**/api/jobs", jobs)
    page.goto("/jobs")
    said = page.get_by_text(
        "Jobs could not be loaded: The server cannot be reached; check that modelshelf is running"
        " (trying again every few seconds)"
    )
    said.wait_for()
    page.locator(".job[data-id='j1']").wait_for()
    said.wait_for(state="detached")


@pytest.mark.parametrize(
    ("answer", "focused"),
    [
        ({"status": 202, "json": {"job": JOB}}, ".job[data-id='j1']"),
        ({"status": 404, "json": {"error": "Not Found", "detail": "no root"}}, "#scan-types"),
    ],
)
def test_after_start_scan_focus_goes_to_the_job_or_back_to_the_form(
    visit: Visit, answer: dict[str, Any], focused: str
) -> None:
    page = visit.page
    serve_as_if(page, with_jobs(True))
    page.route("**/api/jobs", lambda r: r.fulfill(json={"jobs": []}))
    page.route("**/api/scan", lambda r: r.fulfill(**answer))
    stream = events(("end", DONE))
    page.route(
        "**/api/jobs/j1/events", lambda r: r.fulfill(body=stream, content_type="text/event-stream")
    )
    page.goto("/jobs")
    page.get_by_role("button", name="Start scan").focus()
    with page.expect_response("**/api/scan"):
        page.keyboard.press("Enter")
    page.wait_for_function(
        "selector => document.activeElement === document.querySelector(selector)", arg=focused
    )
