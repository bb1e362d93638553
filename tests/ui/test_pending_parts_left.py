"""An import in parts goes on when the person leaves the Pending page while a part runs (to the
library, to Jobs), as a run in parts of the library's does (bulk.js): what was asked for is
done, and its end is said wherever the person is. Closing the page while parts of an import or
a discard are left to send asks first. A part whose batch a look for batches started elsewhere
found before the page was told it was its own is said once. On a library of its own: it
imports and discards."""

from __future__ import annotations

import re
import time
from typing import Any

from playwright.sync_api import expect

from tests.ui.conftest import TIMEOUT_MS, Visit
from tests.ui.pending_queue import row
from tests.ui.seed import SeededLibrary
from tests.ui.test_pending_parts import BATCH, DISCARD, ids_sent, select, visit_with_limit
from tests.ui.test_unsaved_work import Gate

LOOK = re.compile(r".*/api/jobs\?result=false$")


def running_part(job_id: str, total: int) -> dict[str, Any]:
    now = int(time.time())
    return {
        "id": job_id,
        "kind": "import_models",
        "state": "running",
        "created_at": now,
        "started_at": now,
        "finished_at": None,
        "progress": {"done": 0, "total": total},
        "result": None,
        "error": None,
    }


def import_with_the_first_part_held(page: Any, job_id: str) -> tuple[dict[str, Any], list[Any]]:
    """Import selected pressed, its first part answered by a batch `job_id` that runs until the
    test changes it in the returned jobs; the later parts go to the server. Returns the jobs
    and the batch requests the page sent."""
    jobs = {job_id: running_part(job_id, 2)}
    sent: list[Any] = []

    def first_part_held(route: Any) -> None:
        sent.append(route.request)
        if len(sent) == 1:
            route.fulfill(status=202, json={"job": jobs[job_id]})
        else:
            route.fallback()

    page.route(BATCH, first_part_held)
    page.route(f"**/api/jobs/{job_id}", lambda route: route.fulfill(json=jobs[job_id]))
    page.route(f"**/api/jobs/{job_id}/events", lambda route: route.abort())
    page.get_by_role("button", name="Import selected").click()
    progress = page.get_by_role("list", name="Batch progress")
    expect(progress.locator(f"li[data-id='{job_id}']")).to_have_count(1)
    return jobs, sent


def end_the_held_part(page: Any, jobs: dict[str, Any], job_id: str, ids: list[int]) -> None:
    """The held part's batch ends done, having imported the pending models `ids` (really, one
    by one, so that the queue and the library are as after a batch)."""
    results = []
    for pending_id in ids:
        body = {"id": pending_id, "conf_strategy": None}
        done = page.request.post("/api/migration/import_a_model", data=body).json()
        results.append({"id": pending_id, "result": "success", **done})
    report = {"results": results, "counts": {"success": len(ids)}}
    ended = {"state": "done", "finished_at": int(time.time()), "result": report}
    progress = {"done": len(ids), "total": len(ids)}
    jobs[job_id] = {**jobs[job_id], **ended, "progress": progress}


def test_an_import_in_parts_goes_on_when_the_page_is_left_while_a_part_runs(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    page = visit_with_limit(own_visit, 2)
    roles = [f"fresh{n}" for n in range(4)]
    ids = [own_library.pending[r] for r in roles]
    select(page, own_library, roles)
    # The first part's batch runs until the test ends it; the second goes to the server.
    jobs, sent = import_with_the_first_part_held(page, "first-part")

    page.get_by_role("link", name="Library", exact=True).click()
    page.get_by_role("heading", name="Library").wait_for()
    # The first part ends, having imported its two.
    end_the_held_part(page, jobs, "first-part", ids[:2])

    # The second part is sent all the same, and its end is said here, in the library.
    page.get_by_role("status").get_by_text("4 models imported").wait_for(timeout=TIMEOUT_MS)
    assert ids_sent(sent) == [ids[:2], ids[2:]]
    listed = {m["id"] for m in page.request.get("/api/migration/pending_models").json()["models"]}
    assert not listed & set(ids)
    page.get_by_role("link", name="Pending", exact=True).click()
    row(page, own_library, "fresh4").wait_for()
    for role in roles:
        expect(row(page, own_library, role)).to_have_count(0)


def test_closing_the_page_while_parts_of_an_import_are_left_to_send_asks_first(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    # The parts not sent yet would be lost, as a run in parts of the library's would be.
    page = visit_with_limit(own_visit, 2)
    roles = [f"fresh{n}" for n in range(5, 9)]
    ids = [own_library.pending[r] for r in roles]
    select(page, own_library, roles)
    jobs, sent = import_with_the_first_part_held(page, "held-part")

    with page.expect_event("dialog") as asked:
        page.close(run_before_unload=True)
    assert asked.value.type == "beforeunload"
    asked.value.dismiss()  # stay
    end_the_held_part(page, jobs, "held-part", ids[:2])
    page.get_by_role("status").get_by_text("4 models imported").wait_for(timeout=TIMEOUT_MS)
    assert ids_sent(sent) == [ids[:2], ids[2:]]
    assert not page.is_closed()


def test_closing_the_page_while_parts_of_a_discard_are_left_to_send_asks_first(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """Discard selected over two parts, the page closed while the first was on its way: it
    closed without asking (Import selected asked), and the second part was never sent."""
    page = visit_with_limit(own_visit, 2)
    roles = [f"fresh{n}" for n in range(9, 13)]
    ids = [own_library.pending[r] for r in roles]
    select(page, own_library, roles)
    sent: list[Any] = []
    page.on("request", lambda r: sent.append(r) if DISCARD.match(r.url) else None)
    gate = Gate(page, DISCARD, "POST")
    page.get_by_role("button", name="Discard selected").click()
    page.get_by_role("dialog").get_by_role("button", name="Discard 4 models").click()
    gate.wait_held(page, 1)

    with page.expect_event("dialog") as asked:
        page.close(run_before_unload=True)
    assert asked.value.type == "beforeunload"
    asked.value.dismiss()  # stay
    gate.open()
    page.get_by_role("status").get_by_text("4 models discarded", exact=True).wait_for()
    assert ids_sent(sent) == [ids[:2], ids[2:]]
    assert not page.is_closed()


class HeldAnswer:
    """The first request to `pattern` goes to the server, which starts its work, and its answer
    is held from the page until `release()`; later ones go through."""

    def __init__(self, page: Any, pattern: Any) -> None:
        self.route: Any = None
        self.answer: Any = None
        page.route(pattern, self.handle)

    def handle(self, route: Any) -> None:
        if self.route is not None:
            route.fallback()
            return
        self.answer = route.fetch()
        self.route = route

    def wait_held(self, page: Any) -> dict[str, Any]:
        """Until the answer is held; its body."""
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while self.route is None:
            assert time.monotonic() < deadline, "no request held"
            page.wait_for_timeout(20)  # Playwright calls the route handlers meanwhile
        body: dict[str, Any] = self.answer.json()
        return body

    def release(self) -> None:
        self.route.fulfill(response=self.answer)


def test_a_part_whose_batch_a_look_found_first_is_said_once(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """Import selected in two parts, the first's batch listed by a look for batches started
    elsewhere (running) before the page had its answer, and ended meanwhile: the look followed
    it as another tab's and said what it did, then the answer came and the page followed the
    same batch again as its part: two lines for it, and its models said twice."""
    with own_visit.page.expect_response(LOOK):
        page = visit_with_limit(own_visit, 1)
    roles = ["fresh13", "fresh14"]
    ids = [own_library.pending[r] for r in roles]
    select(page, own_library, roles)
    held = HeldAnswer(page, BATCH)
    page.get_by_role("button", name="Import selected").click()
    job = held.wait_held(page)["job"]

    # The look lists the batch as it was before the page had the answer: running.
    running = {**job, "state": "running"}
    page.route(LOOK, lambda route: route.fulfill(json={"jobs": [running]}), times=1)
    page.evaluate("document.dispatchEvent(new Event('visibilitychange'))")
    progress = page.get_by_role("list", name="Batch progress")
    progress.locator(f"li[data-id='{job['id']}'] .badge.state-done").wait_for()
    held.release()

    page.get_by_role("status").get_by_text("2 models imported", exact=True).wait_for()
    for role in roles:
        expect(row(page, own_library, role)).to_have_count(0)
    expect(progress.locator(f"li[data-id='{job['id']}']")).to_have_count(1)
    expect(page.locator(".toast", has_text="imported")).to_have_count(1)
    listed = {m["id"] for m in page.request.get("/api/migration/pending_models").json()["models"]}
    assert not listed & set(ids)
