"""Pages that grow with a collector's library, in a real browser: they draw a page of what
they list and more on request, never everything at once (bench/ui_scale.py measured a model
edited a thousand times: 26 MB asked for, 9,000 elements drawn; 2,000 duplicated models:
22,000 elements). The jobs endpoints are answered in the browser, as in test_job_views."""

from __future__ import annotations

from tests.ui.conftest import Visit, needs, open_model, route_duplicates, serve_as_if
from tests.ui.seed import SeededLibrary
from tests.ui.test_jobs_and_prefix import DONE, with_jobs

NAME = "Oil Paint Checkpoint v3"  # no other test looks at its history
EDITS = 25  # more than the 20 entries a page of the history shows


def test_a_long_history_is_drawn_twenty_entries_at_a_time(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    needs(operations, "GET /api/models/{sha256}/history", "PATCH /api/models/{sha256}")
    sha = library.hashes[NAME]
    for n in range(EDITS - 1):
        patch = {"meta_json": {"ui_probe": n}}
        assert visit.page.request.patch(f"/api/models/{sha}", data=patch).ok
    # The model ends as it began: only its history grew.
    assert visit.page.request.patch(f"/api/models/{sha}", data={"meta_json": {"ui_probe": None}}).ok
    page = open_model(visit, library, NAME)
    history = page.get_by_role("region", name="History")
    older = history.get_by_role("button", name="Show older changes")
    older.wait_for()
    entries = history.locator("ol.history > li")
    assert entries.count() == 20
    asked = [u for u in visit.requests if "/api/models/" in u and "/history" in u]
    assert asked and all("limit=21" in u for u in asked)

    older.click()
    page.wait_for_function(f"() => document.querySelectorAll('ol.history > li').length >= {EDITS}")
    assert entries.count() == EDITS
    assert older.is_hidden()
    # Focus on the first entry drawn (its Restore: it differs from now in ui_probe).
    focused = page.evaluate("() => document.activeElement.id")
    assert focused == entries.nth(20).get_by_role("button").get_attribute("id")


def test_duplicates_are_drawn_a_hundred_groups_at_a_time(visit: Visit) -> None:
    page = visit.page
    route_duplicates(page, 250)
    page.goto("/jobs")
    region = page.get_by_role("region", name="Duplicates")
    region.get_by_text("250 models on disk more than once; 250 MB could be freed.").wait_for()
    links = region.get_by_role("link")
    assert links.count() == 100
    more = region.get_by_role("button", name="Show more (150 left)")

    more.click()
    assert links.count() == 200
    assert page.evaluate("() => document.activeElement.textContent") == "Copied 100"
    region.get_by_role("button", name="Show more (50 left)").click()
    assert links.count() == 250
    assert region.get_by_role("button", name="Show more").is_hidden()
    assert region.get_by_text("/b/copied 249.safetensors").is_visible()


def test_a_jobs_long_list_of_problems_shows_ten_then_all(visit: Visit) -> None:
    problems = [
        {"path": f"/models/broken/{n:03d}.safetensors", "reason": "bad"} for n in range(120)
    ]
    result = {"counts": {"files_found": 500, "failed": 125}, "problems": problems}
    job = {**DONE, "id": "j1", "result": result | {"problems_not_listed": 5}}
    page = visit.page
    serve_as_if(page, with_jobs(True))
    page.route("**/api/jobs", lambda r: r.fulfill(json={"jobs": [job]}))
    page.goto("/jobs")
    found = page.locator(".job[data-id='j1'] .findings.problems")
    found.get_by_text("125 problems", exact=True).wait_for()
    rows = found.locator("li")
    assert rows.count() == 10
    assert found.get_by_text("and 5 more problems not listed").is_visible()

    found.get_by_role("button", name="Show 110 more problems").click()
    assert rows.all_inner_texts() == [f"{p['path']}: bad" for p in problems]
    assert page.evaluate("() => document.activeElement.textContent") == rows.nth(10).inner_text()
    assert found.get_by_role("button").count() == 0
