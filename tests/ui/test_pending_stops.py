"""The pending page when things do not go as asked, in a real browser, on a library of its own
(these tests import, override and discard): a batch stopped, failed, slow to start or still
running when the page is come back to; a comparison whose library model was edited or deleted
elsewhere before a choice; a batch over models gone elsewhere; a long metadata key on a phone."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import TIMEOUT_MS, Visit
from tests.ui.pending_queue import open_pending, row
from tests.ui.seed import SeededLibrary
from tests.ui.test_unsaved_work import Gate

BATCH = re.compile(r".*/api/migration/import_models$")


@pytest.fixture
def visit(own_visit: Visit) -> Visit:
    return own_visit


def ended_job(state: str, error: str) -> dict[str, Any]:
    """A batch job as the server has it once it ended without its report (a Stop, a restart)."""
    now = int(time.time())
    return {
        "id": "stopped-batch",
        "kind": "import_models",
        "state": state,
        "created_at": now,
        "started_at": now,
        "finished_at": now,
        "progress": {"done": 1, "total": 2},
        "result": None,
        "error": error,
    }


@pytest.mark.parametrize(
    ("state", "error", "first", "second"),
    [
        (
            "cancelled",
            "cancelled on request; the 1 of 2 done before it are kept",
            "fresh0",
            "fresh1",
        ),
        ("failed", "the service stopped while it ran", "fresh2", "fresh3"),
    ],
)
def test_a_batch_ended_part_way_takes_what_it_did_out_of_the_queue(
    visit: Visit, own_library: SeededLibrary, state: str, error: str, first: str, second: str
) -> None:
    page = open_pending(visit)
    for role in (first, second):
        row(page, own_library, role).get_by_role("checkbox").check()
    # The batch imported the first, then was stopped (or the server went down): its job ends
    # with no report of what it did.
    body = {"id": own_library.pending[first], "conf_strategy": None}
    assert page.request.post("/api/migration/import_a_model", data=body).ok
    page.route(
        BATCH, lambda route: route.fulfill(status=202, json={"job": ended_job(state, error)})
    )
    page.get_by_role("button", name="Import selected").click()
    page.get_by_role("alert").get_by_text(f"The batch ended {state}").wait_for()
    row(page, own_library, first).wait_for(state="detached")
    expect(row(page, own_library, second)).to_be_visible()
    expect(page.get_by_role("status").get_by_text("1 model left the queue")).to_be_visible()
    expect(page.get_by_text("No model imported")).to_have_count(0)


def test_an_override_of_a_model_edited_since_the_comparison_opened_shows_it_first(
    visit: Visit, own_library: SeededLibrary
) -> None:
    page = open_pending(visit)
    page.get_by_role("button", name="Import Pending Conflict 0").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Override", exact=True).wait_for()
    # Another tab writes a note on the library's model meanwhile: an override would drop it.
    model = f"/api/models/{own_library.hashes['Existing Conflict 0']}"
    note = {"meta_json": {"written_meanwhile": "a note"}}
    assert page.request.patch(model, data=note).ok
    dialog.get_by_role("button", name="Override", exact=True).click()
    # The comparison shows the model as it is now before anything is overridden.
    expect(
        dialog.get_by_role("rowheader", name="written_meanwhile (only existing)")
    ).to_be_visible()
    expect(dialog.get_by_text("changed since")).to_be_visible()
    assert page.request.get(model).json()["meta_json"]["written_meanwhile"] == "a note"
    dialog.get_by_role("button", name="Override", exact=True).click()
    row(page, own_library, "conflict0").wait_for(state="detached")
    assert "written_meanwhile" not in page.request.get(model).json()["meta_json"]


def test_delete_in_a_comparison_whose_library_model_went_meanwhile_imports_nothing(
    visit: Visit, own_library: SeededLibrary
) -> None:
    page = open_pending(visit)
    page.get_by_role("button", name="Import Pending Conflict 1").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Delete", exact=True).wait_for()
    # Another tab deletes the library's model meanwhile: the conflict is gone, and the
    # import_a_model strategies all import when there is none.
    model = f"/api/models/{own_library.hashes['Existing Conflict 1']}"
    assert page.request.delete(model).ok
    dialog.get_by_role("button", name="Delete", exact=True).click()
    row(page, own_library, "conflict1").wait_for(state="detached")
    # The person chose to discard the pending model: it is not in the library.
    assert page.request.get(model).status == 404


def test_a_batch_still_running_when_the_page_is_come_back_to_shows_and_ends_there(
    visit: Visit, own_library: SeededLibrary
) -> None:
    page = open_pending(visit)
    job = {**ended_job("running", ""), "id": "running-batch", "error": None, "finished_at": None}
    now = {"job": job}
    page.route(BATCH, lambda route: route.fulfill(status=202, json={"job": job}))
    # Asked for without results (ended batches' are large): the answer lists the running one.
    page.route("**/api/jobs?result=false", lambda route: route.fulfill(json={"jobs": [now["job"]]}))
    page.route("**/api/jobs/running-batch", lambda route: route.fulfill(json=now["job"]))
    page.route("**/api/jobs/running-batch/events", lambda route: route.abort())
    row(page, own_library, "fresh4").get_by_role("checkbox").check()
    page.get_by_role("button", name="Import selected").click()
    progress = page.get_by_role("list", name="Batch progress")
    expect(progress.get_by_role("listitem")).to_have_count(1)
    # The person goes to the library while it runs, and comes back.
    page.get_by_role("link", name="Library", exact=True).click()
    page.get_by_role("heading", name="Library").wait_for()
    page.get_by_role("link", name="Pending", exact=True).click()
    row(page, own_library, "fresh5").wait_for()
    expect(progress.get_by_role("listitem")).to_have_count(1)
    expect(page.get_by_role("button", name="Import selected")).to_be_disabled()
    # The batch ends: what it did is applied and said here.
    body = {"id": own_library.pending["fresh4"], "conf_strategy": None}
    done = page.request.post("/api/migration/import_a_model", data=body).json()
    result = {"id": body["id"], "result": "success", **done}
    report = {"results": [result], "counts": {"success": 1}}
    now["job"] = {**job, "state": "done", "progress": {"done": 1, "total": 1}, "result": report}
    row(page, own_library, "fresh4").wait_for(state="detached")
    page.get_by_role("status").get_by_text("1 model imported").wait_for()


def test_a_comparison_whose_previews_name_a_long_metadata_key_fits_a_phone(
    visit: Visit, own_library: SeededLibrary
) -> None:
    page = open_pending(visit)
    page.set_viewport_size({"width": 390, "height": 844})
    # A LoRA's training metadata: its tag frequency keyed by the dataset's folder name, which
    # an override removes and its preview names.
    folder = "10_ohwx_woman_photorealistic_portraits_dataset_v2"
    meta = {"meta_json": {"file_metadata": {"ss_tag_frequency": {folder: {"1girl": 3}}}}}
    model = f"/api/models/{own_library.hashes['Existing Conflict 2']}"
    assert page.request.patch(model, data=meta).ok
    page.get_by_role("button", name="Import Pending Conflict 2").click()
    dialog = page.get_by_role("dialog")
    expect(dialog.locator(".strategy .result", has_text=folder)).to_have_count(1)
    assert dialog.evaluate("d => d.scrollWidth <= d.clientWidth")
    page.keyboard.press("Escape")


def test_a_batch_says_apart_the_models_gone_elsewhere_from_those_left_in_the_queue(
    visit: Visit, own_library: SeededLibrary
) -> None:
    page = open_pending(visit)
    for role in ("fresh6", "fresh7"):
        row(page, own_library, role).get_by_role("checkbox").check()
    # Another tab discards one of them meanwhile.
    assert page.request.delete(f"/api/migration/pending_models/{own_library.pending['fresh7']}").ok
    page.get_by_role("button", name="Import selected").click()
    row(page, own_library, "fresh6").wait_for(state="detached")
    row(page, own_library, "fresh7").wait_for(state="detached")
    said = "1 model imported, 1 was no longer in the queue"
    page.get_by_role("status").get_by_text(said, exact=True).wait_for()


def test_a_batch_the_server_is_slow_to_start_says_it_is_starting(
    visit: Visit, own_library: SeededLibrary
) -> None:
    page = open_pending(visit)
    gate = Gate(page, BATCH, "POST")
    row(page, own_library, "fresh8").get_by_role("checkbox").check()
    page.get_by_role("button", name="Import selected").click()
    gate.wait_held(page, 1)
    progress = page.get_by_role("list", name="Batch progress")
    expect(progress.get_by_role("listitem")).to_have_text("Starting the batch import of 1 model…")
    gate.open()
    row(page, own_library, "fresh8").wait_for(state="detached")
    expect(progress.get_by_text("Starting the batch import")).to_have_count(0)


def running_job(job_id: str, done: int, total: int) -> dict[str, Any]:
    job = {**ended_job("running", ""), "id": job_id, "error": None, "finished_at": None}
    return {**job, "progress": {"done": done, "total": total}}


def answer(jobs: dict[str, dict[str, Any]], name: str) -> Any:
    """A route handler answering the job `name` as `jobs` has it when asked."""
    return lambda route: route.fulfill(json=jobs[name])


def test_every_batch_running_is_shown_and_each_ends_there(
    visit: Visit, own_library: SeededLibrary
) -> None:
    """Two batches run (two tabs each started one), and a third starts while they do: each
    is shown with its own progress and followed to its end, where what it did leaves the
    queue; Import selected waits for the last."""
    jobs = {"batch-a": running_job("batch-a", 1, 4), "batch-b": running_job("batch-b", 3, 4)}
    page = visit.page
    page.route(
        "**/api/jobs?result=false", lambda route: route.fulfill(json={"jobs": [*jobs.values()]})
    )
    for name in ("batch-a", "batch-b", "batch-c"):
        page.route(f"**/api/jobs/{name}", answer(jobs, name))
        page.route(f"**/api/jobs/{name}/events", lambda route: route.abort())
    open_pending(visit)
    progress = page.get_by_role("list", name="Batch progress")
    expect(progress.get_by_role("listitem")).to_have_count(2)
    bars = {name: progress.locator(f"li[data-id='{name}'] progress") for name in jobs}
    expect(bars["batch-a"]).to_have_attribute("aria-valuetext", "25%, 1 of 4 models")
    expect(bars["batch-b"]).to_have_attribute("aria-valuetext", "75%, 3 of 4 models")
    row(page, own_library, "fresh9").get_by_role("checkbox").check()
    run = page.get_by_role("button", name="Import selected")
    expect(run).to_be_disabled()

    jobs["batch-c"] = running_job("batch-c", 0, 2)  # started in another tab meanwhile
    # Looked for every 5 s while a batch runs.
    expect(progress.get_by_role("listitem")).to_have_count(3, timeout=TIMEOUT_MS)

    def ends(name: str, role: str) -> None:
        """The batch `name` ends, having imported the pending model `role`."""
        body = {"id": own_library.pending[role], "conf_strategy": None}
        done = page.request.post("/api/migration/import_a_model", data=body).json()
        report = {"results": [{"id": body["id"], "result": "success", **done}], "counts": {}}
        ended = {"state": "done", "finished_at": int(time.time()), "result": report}
        jobs[name] = {**jobs[name], **ended, "progress": {"done": 1, "total": 1}}
        row(page, own_library, role).wait_for(state="detached")

    ends("batch-b", "fresh10")
    expect(progress.locator("li[data-id='batch-b'] .badge")).to_have_text("done")
    expect(run).to_be_disabled()
    ends("batch-c", "fresh11")
    ends("batch-a", "fresh12")
    expect(run).to_be_enabled()
    expect(progress.locator(".badge.state-done")).to_have_count(3)


def test_a_batch_started_elsewhere_while_the_page_is_idle_is_shown_and_ends_there(
    visit: Visit, own_library: SeededLibrary
) -> None:
    """The page is open, visible and doing nothing when another tab (or a script) starts a
    batch: within seconds it is shown and followed, Import selected waits for it, and what it
    did leaves the queue at its end, without a reload."""
    jobs: dict[str, dict[str, Any]] = {}
    page = visit.page
    page.route(
        "**/api/jobs?result=false", lambda route: route.fulfill(json={"jobs": [*jobs.values()]})
    )
    page.route("**/api/jobs/batch-d", answer(jobs, "batch-d"))
    page.route("**/api/jobs/batch-d/events", lambda route: route.abort())
    open_pending(visit)
    progress = page.get_by_role("list", name="Batch progress")
    # Selected here: the batch started elsewhere is importing it.
    row(page, own_library, "fresh13").get_by_role("checkbox").check()
    run = page.get_by_role("button", name="Import selected")
    expect(run).to_be_enabled()
    jobs["batch-d"] = running_job("batch-d", 0, 1)
    expect(progress.get_by_role("listitem")).to_have_count(1, timeout=TIMEOUT_MS)
    expect(run).to_be_disabled()
    body = {"id": own_library.pending["fresh13"], "conf_strategy": None}
    done = page.request.post("/api/migration/import_a_model", data=body).json()
    report = {"results": [{"id": body["id"], "result": "success", **done}], "counts": {}}
    ended = {"state": "done", "finished_at": int(time.time()), "result": report}
    jobs["batch-d"] = {**jobs["batch-d"], **ended, "progress": {"done": 1, "total": 1}}
    row(page, own_library, "fresh13").wait_for(state="detached", timeout=TIMEOUT_MS)
    page.get_by_role("status").get_by_text("1 model imported").wait_for()
    expect(progress.locator("li[data-id='batch-d'] .badge")).to_have_text("done")


def test_a_batch_a_script_ran_while_the_page_was_idle_takes_its_rows_out(
    visit: Visit, own_library: SeededLibrary
) -> None:
    """A script's batch (the real server's) can end before the page looks: its rows leave
    the queue all the same, where they could be selected and imported again."""
    page = open_pending(visit)
    body = {"ids": [own_library.pending["fresh14"]], "conf_strategy": None}
    started = page.request.post(
        "/api/migration/import_models", data=body, headers={"Prefer": "respond-async"}
    )
    assert started.status == 202
    row(page, own_library, "fresh14").wait_for(state="detached", timeout=TIMEOUT_MS)


def shown(page: Any, visible: bool) -> None:
    """The tab hidden (another tab in front) or shown again, as the page is told it."""
    page.evaluate(
        """(visible) => {
            Object.defineProperty(document, "hidden", { value: !visible, configurable: true });
            document.dispatchEvent(new Event("visibilitychange"));
        }""",
        visible,
    )


def test_a_model_discarded_in_another_tab_leaves_the_queue_when_the_tab_is_back(
    visit: Visit, own_library: SeededLibrary
) -> None:
    """Another tab discards (or imports) one pending model while this one is in the
    background: when this tab is shown again, its row is gone, not left to be selected."""
    page = open_pending(visit)
    expect(row(page, own_library, "lost")).to_be_attached()
    shown(page, False)
    assert page.request.delete(f"/api/migration/pending_models/{own_library.pending['lost']}").ok
    shown(page, True)
    row(page, own_library, "lost").wait_for(state="detached")
