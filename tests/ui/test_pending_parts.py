"""Import selected and Discard selected over more pending models than a request takes (a legacy
library leaves tens of thousands unhashed; the server takes MAX_BATCH ids a request): the page
sends them in parts of the server's limit, which comes with the page (set small here, as a
server with a small limit would serve it), and says one outcome of the whole. A part that fails
is said without losing what the parts before it did. On a library of its own: these tests
import and discard."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from playwright.sync_api import expect

from modelshelf.web.bodies import MAX_BATCH
from modelshelf.web.ui_api import capabilities
from tests.ui.conftest import TIMEOUT_MS, Visit, serve_as_if
from tests.ui.pending_queue import open_pending, row
from tests.ui.seed import SeededLibrary

BATCH = re.compile(r".*/api/migration/import_models$")
DISCARD = re.compile(r".*/api/migration/discard_models$")
LIMIT = "pending_models_at_once"


def visit_with_limit(visit: Visit, limit: int) -> Any:
    serve_as_if(visit.page, lambda _: None, limits={LIMIT: limit})
    return open_pending(visit)


def select(page: Any, library: SeededLibrary, roles: list[str]) -> None:
    for role in roles:
        row(page, library, role).get_by_role("checkbox").check()
    expect(page.get_by_text(f"{len(roles)} models selected")).to_be_visible()


def failing_the_second(answered: list[Any]) -> Any:
    """A route handler that answers the second request 503 ("busy") and lets the others
    through, keeping every request in `answered`."""

    def second_fails(route: Any) -> None:
        answered.append(route.request)
        if len(answered) == 2:
            route.fulfill(status=503, json={"error": "Service Unavailable", "detail": "busy"})
        else:
            route.fallback()

    return second_fails


def ids_sent(sent: list[Any]) -> list[list[int]]:
    return [json.loads(r.post_data or "{}")["ids"] for r in sent]


def test_the_page_is_served_the_most_pending_models_a_request_takes() -> None:
    assert json.loads(capabilities())["limits"][LIMIT] == MAX_BATCH


def test_an_import_of_more_than_a_request_takes_goes_in_parts_and_says_one_outcome(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    page = visit_with_limit(own_visit, 2)
    roles = [f"fresh{n}" for n in range(5)]
    select(page, own_library, roles)
    sent: list[Any] = []
    page.on("request", lambda r: sent.append(r) if BATCH.match(r.url) else None)

    page.get_by_role("button", name="Import selected").click()

    page.get_by_role("status").get_by_text("5 models imported", exact=True).wait_for()
    assert [len(ids) for ids in ids_sent(sent)] == [2, 2, 1]
    assert sorted(i for ids in ids_sent(sent) for i in ids) == sorted(
        own_library.pending[r] for r in roles
    )
    for role in roles:
        expect(row(page, own_library, role)).to_have_count(0)
    # One outcome for the whole, not one per part.
    expect(page.locator(".toast", has_text="imported")).to_have_count(1)
    expect(page.get_by_role("button", name="Import selected")).to_be_disabled()  # none left
    listed = {m["id"] for m in page.request.get("/api/migration/pending_models").json()["models"]}
    assert not listed & {own_library.pending[r] for r in roles}


def test_a_part_that_fails_is_said_and_the_parts_before_it_stay_done(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    page = visit_with_limit(own_visit, 2)
    roles = [f"fresh{n}" for n in range(5, 10)]
    select(page, own_library, roles)
    answered: list[Any] = []
    second_fails = failing_the_second(answered)
    page.route(BATCH, second_fails)
    page.get_by_role("button", name="Import selected").click()

    said = "2 models imported, 3 not done: busy"
    page.get_by_role("alert").get_by_text(said, exact=True).wait_for()
    assert len(answered) == 2  # the parts after the failed one are not sent
    for role in roles[:2]:
        expect(row(page, own_library, role)).to_have_count(0)
    for role in roles[2:]:
        expect(row(page, own_library, role)).to_be_visible()
    expect(page.get_by_text("3 models selected")).to_be_visible()
    expect(page.get_by_role("button", name="Import selected")).to_be_enabled()


def test_a_part_stopped_stops_the_import_and_the_whole_is_followed_on_one_line(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    page = visit_with_limit(own_visit, 2)
    roles = ["fresh13", "fresh14", "spare", "twin", "lost"]  # in the queue's order
    select(page, own_library, roles)
    held: list[Any] = []

    def hold_the_second(route: Any) -> None:
        held.append(route)
        if len(held) != 2:
            route.fallback()

    page.route(BATCH, hold_the_second)
    page.get_by_role("button", name="Import selected").click()
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while len(held) < 2:
        assert time.monotonic() < deadline, f"{len(held)} of 2 parts sent"
        page.wait_for_timeout(20)
    progress = page.get_by_role("list", name="Batch progress")
    line = "Batch import of 5 models in 3 parts: part 2, 2 done"
    expect(progress.get_by_text(line)).to_be_visible()
    expect(page.get_by_role("button", name="Import selected")).to_be_disabled()
    # The second part's batch is stopped before it did anything.
    now = int(time.time())
    stopped = {
        "id": "stopped-part",
        "kind": "import_models",
        "state": "cancelled",
        "created_at": now,
        "started_at": now,
        "finished_at": now,
        "progress": {"done": 0, "total": 2},
        "result": None,
        "error": "cancelled on request",
    }
    held[1].fulfill(status=202, json={"job": stopped})

    page.get_by_role("alert").get_by_text("The batch ended cancelled").wait_for()
    said = "2 models imported, 1 not done"
    page.get_by_role("status").get_by_text(said, exact=True).wait_for()
    assert len(held) == 2  # the third part is not sent
    for role in roles[:2]:
        expect(row(page, own_library, role)).to_have_count(0)
    for role in roles[2:]:
        expect(row(page, own_library, role)).to_be_visible()
    expect(progress.get_by_text("Batch import of 5 models")).to_have_count(0)


def test_a_discard_of_more_than_a_request_takes_goes_in_parts_and_says_one_outcome(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    page = visit_with_limit(own_visit, 2)
    roles = [f"fresh{n}" for n in range(10, 13)]
    select(page, own_library, roles)
    sent: list[Any] = []
    page.on("request", lambda r: sent.append(r) if DISCARD.match(r.url) else None)

    page.get_by_role("button", name="Discard selected").click()
    page.get_by_role("dialog").get_by_role("button", name="Discard 3 models").click()

    page.get_by_role("status").get_by_text("3 models discarded", exact=True).wait_for()
    assert [len(ids) for ids in ids_sent(sent)] == [2, 1]
    for role in roles:
        expect(row(page, own_library, role)).to_have_count(0)
    expect(page.locator(".toast", has_text="discarded")).to_have_count(1)


def test_a_discard_part_that_fails_is_said_and_the_parts_before_it_stay_done(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    page = visit_with_limit(own_visit, 2)
    roles = ["conflict0", "conflict1", "conflict2"]
    select(page, own_library, roles)
    answered: list[Any] = []
    second_fails = failing_the_second(answered)
    page.route(DISCARD, second_fails)
    page.get_by_role("button", name="Discard selected").click()
    page.get_by_role("dialog").get_by_role("button", name="Discard 3 models").click()

    said = "2 models discarded; 1 not done: busy"
    page.get_by_role("alert").get_by_text(said, exact=True).wait_for()
    for role in roles[:2]:
        expect(row(page, own_library, role)).to_have_count(0)
    expect(row(page, own_library, roles[2])).to_be_visible()
    expect(page.get_by_text("1 model selected")).to_be_visible()
