"""Pages that grow with a collector's library, in a real browser: they draw a page of what
they list and more on request, never everything at once (bench/ui_scale.py measured a model
edited a thousand times: 26 MB asked for, 9,000 elements drawn)."""

from __future__ import annotations

from tests.ui.conftest import Visit, needs, open_model
from tests.ui.seed import SeededLibrary

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
    groups = [
        {
            "sha256": f"{n:064x}",
            "name": f"Copied {n:03d}",
            "size_bytes": 2**20,
            "files": [f"/a/copied {n:03d}.safetensors", f"/b/copied {n:03d}.safetensors"],
            "wasted_bytes": 2**20,
        }
        for n in range(250)
    ]
    page = visit.page
    page.route("**/api/jobs", lambda r: r.fulfill(json={"jobs": []}))
    answer = {"groups": groups, "wasted_bytes": 250 * 2**20}
    page.route("**/api/duplicates", lambda r: r.fulfill(json=answer))
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
