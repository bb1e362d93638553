"""The Pending page left open while the queue changes elsewhere (a stage 1 run, a discard in
another tab or a script): the models added come in and those taken go, while the page stays
visible, without a person's selection or scroll position moving; between changes its looks
are answered 304 (the queue is not read again)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.factories import LegacyLibrary
from tests.ui.conftest import TIMEOUT_MS, Visit
from tests.ui.pending_queue import open_pending, row
from tests.ui.seed import SeededLibrary

QUEUE_LOOK = "/api/migration/pending_models"
# A look every 5 s (pendingbatch.js LOOK_AGAIN_MS): a change shows at the second look at most.
CHANGE_SHOWN_MS = 2 * TIMEOUT_MS


@pytest.fixture
def visit(own_visit: Visit) -> Visit:
    return own_visit


def stage_one_elsewhere(page: Any, library: SeededLibrary) -> None:
    """A second legacy library brought in by stage 1 through the API (as the command line or
    a script would): one more pending model, "Arrived Elsewhere"."""
    legacy = LegacyLibrary(library.data_dir / "legacy" / "more")
    legacy.add_model(1, type="lora", name="Arrived Elsewhere", path="/nowhere/arrived.safetensors")
    body = {"legacy_db_path": "more/hikaze.db", "legacy_images_dir": "more/images"}
    answer = page.request.post("/api/migration/migrate_legacy_db", data=body)
    assert answer.ok, answer.text()


def is_a_queue_look(response: Any, status: int) -> bool:
    return response.url.endswith(QUEUE_LOOK) and response.status == status


def opened_at_work(visit: Visit, library: SeededLibrary) -> tuple[Any, Any, float]:
    """The Pending page with two rows selected and the row of "fresh10" in the middle of the
    screen: the page, that row, and where it is on the screen."""
    visit.page.set_viewport_size({"width": 1000, "height": 600})
    page = open_pending(visit)
    for role in ("fresh0", "fresh1"):
        row(page, library, role).get_by_role("checkbox").check()
    expect(page.get_by_text("2 models selected")).to_be_visible()
    anchor = row(page, library, "fresh10")
    anchor.evaluate("(el) => el.scrollIntoView({ block: 'center' })")
    assert page.evaluate("window.scrollY") > 0
    return page, anchor, anchor.bounding_box()["y"]


def test_models_added_or_taken_elsewhere_show_while_the_page_stays_visible(
    visit: Visit, own_library: SeededLibrary
) -> None:
    # What the person looks at, in the middle of the screen, stays where it is (a row above
    # it goes below).
    page, anchor, seen_at = opened_at_work(visit, own_library)
    stage_one_elsewhere(page, own_library)
    arrived = page.locator(".queue > li", has_text="Arrived Elsewhere")
    arrived.wait_for(state="attached", timeout=CHANGE_SHOWN_MS)
    expect(page.get_by_text("2 models selected")).to_be_visible()
    expect(arrived.get_by_role("checkbox")).not_to_be_checked()
    with page.expect_response(lambda r: is_a_queue_look(r, 304), timeout=CHANGE_SHOWN_MS):
        pass  # the next look, the queue unchanged since: answered without being read

    gone = own_library.pending["fresh5"]
    assert page.request.delete(f"/api/migration/pending_models/{gone}").ok  # another tab
    row(page, own_library, "fresh5").wait_for(state="detached", timeout=CHANGE_SHOWN_MS)

    for role in ("fresh0", "fresh1"):
        expect(row(page, own_library, role).get_by_role("checkbox")).to_be_checked()
    expect(page.get_by_text("2 models selected")).to_be_visible()
    assert abs(anchor.bounding_box()["y"] - seen_at) < 1  # the browser keeps it in place
