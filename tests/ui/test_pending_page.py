"""The pending page in a real browser: the queue with the originals' thumbnails, importing one,
a conflict compared side by side before Override, Merge or Delete, a batch of many, and a
queue that could not be loaded offered again."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import Visit, needs
from tests.ui.pending_queue import open_pending, row
from tests.ui.seed import SeededLibrary
from tests.ui.test_unsaved_work import fail

QUEUE = re.compile(r".*/api/migration/pending_models\?.*")


# A library and server of this module's own: these tests import and discard pending models,
# which other modules' tests (the conflict previews of test_editing) expect still pending.
@pytest.fixture
def visit(own_visit: Visit) -> Visit:
    return own_visit


def test_the_queue_shows_each_pending_original(visit: Visit, own_library: SeededLibrary) -> None:
    page = open_pending(visit)
    thumb = row(page, own_library, "fresh3").get_by_role("img")
    assert thumb.get_attribute("alt") == "Image of Fresh Pending 3"
    assert thumb.get_attribute("src") == f"api/images/pending/{own_library.pending['fresh3']}"


def test_a_model_without_conflict_is_imported_at_once(
    visit: Visit, own_library: SeededLibrary
) -> None:
    page = open_pending(visit)
    page.get_by_role("button", name="Import Fresh Pending 0").click()
    row(page, own_library, "fresh0").wait_for(state="detached")
    page.get_by_role("status").get_by_text("Fresh Pending 0 imported").wait_for()


def test_a_conflict_is_compared_side_by_side_then_merged(
    visit: Visit, own_library: SeededLibrary
) -> None:
    existing = own_library.hashes["Existing Conflict 0"]
    page = open_pending(visit)
    page.get_by_role("button", name="Import Pending Conflict 0").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("heading", name="In the library", exact=True).wait_for()
    assert dialog.get_by_role("heading", name="Pending", exact=True).is_visible()
    assert (
        dialog.get_by_role("img", name="Cover of Existing Conflict 0")
        .get_attribute("src")
        .endswith("quality=medium")
    )
    assert dialog.get_by_role("img", name="Image of pending Pending Conflict 0").is_visible()
    diff = dialog.locator("table.diff").first
    assert diff.locator("tr.added", has_text="version").is_visible()
    assert diff.locator("tr.changed", has_text="description").is_visible()
    for name in ("Override", "Merge", "Delete"):
        assert dialog.get_by_role("button", name=name, exact=True).is_visible()
    dialog.get_by_role("button", name="Merge", exact=True).click()
    row(page, own_library, "conflict0").wait_for(state="detached")
    page.goto(f"/models/{existing}")
    page.get_by_role("heading", level=1, name="Existing Conflict 0").wait_for()
    assert page.locator("#gallery-title").inner_text() == "Images (2)"
    assert page.get_by_text("the library's version", exact=True).is_visible()


def test_deciding_later_leaves_the_conflict_in_the_queue(
    visit: Visit, own_library: SeededLibrary
) -> None:
    page = open_pending(visit)
    page.get_by_role("button", name="Import Pending Conflict 2").click()
    page.get_by_role("dialog").get_by_role("button", name="Decide later").click()
    assert row(page, own_library, "conflict2").get_by_text("Already in the library").is_visible()
    page.get_by_role("button", name="Import Pending Conflict 2").click()
    page.get_by_role("dialog").get_by_role("button", name="Override", exact=True).click()
    row(page, own_library, "conflict2").wait_for(state="detached")


def test_a_batch_imports_the_selected_and_applies_the_chosen_strategy(
    visit: Visit, own_library: SeededLibrary, operations: set[str]
) -> None:
    page = open_pending(visit)
    page.get_by_role("checkbox", name="Select Fresh Pending 1", exact=True).check()
    page.get_by_role("checkbox", name="Select Fresh Pending 2").check()
    page.get_by_role("checkbox", name="Select Pending Conflict 1").check()
    assert page.get_by_text("3 models selected").is_visible()
    page.get_by_label("When the model is already in the library:").select_option("delete")
    page.get_by_role("button", name="Import selected").click()
    for role in ("fresh1", "fresh2", "conflict1"):
        row(page, own_library, role).wait_for(state="detached")
    # What each strategy did, in words: the conflict's pending copy went, the library's stayed.
    said = "2 models imported, 1 deleted from the queue (the library's kept)"
    page.get_by_role("status").get_by_text(said).wait_for()
    if "GET /api/jobs" in operations:  # the batch ran as a job, followed live
        job = page.get_by_role("list", name="Batch progress").locator(".job")
        assert job.locator(".badge.state-done").is_visible()


def test_a_model_whose_file_is_gone_says_why_and_can_be_discarded(
    visit: Visit, own_library: SeededLibrary, operations: set[str]
) -> None:
    page = open_pending(visit)
    failed = row(page, own_library, "gone").locator(".badge.missing")
    expect(failed).to_have_text("Model file missing or unreadable")  # before any import
    page.get_by_role("button", name="Import Gone Pending").click()
    expect(failed).to_contain_text("gone.safetensors")  # the import's own reason
    needs(operations, "DELETE /api/migration/pending_models/{id}")
    page.get_by_role("button", name="Discard Gone Pending").click()
    dialog = page.get_by_role("dialog", name="Discard “Gone Pending”?")
    dialog.get_by_role("button", name="Cancel").click()
    assert row(page, own_library, "gone").is_visible()  # nothing without a yes
    page.get_by_role("button", name="Discard Gone Pending").click()
    dialog.get_by_role("button", name="Discard", exact=True).click()
    row(page, own_library, "gone").wait_for(state="detached")
    page.get_by_role("status").get_by_text("Gone Pending discarded").wait_for()
    listed = page.request.get("/api/migration/pending_models").json()["models"]
    assert own_library.pending["gone"] not in [m["id"] for m in listed]


def test_a_queue_that_could_not_be_loaded_offers_to_try_again(visit: Visit) -> None:
    """As the library and the Tags page do: a server down a moment left a dead end."""
    page = visit.page
    fail(page, QUEUE, "GET", "unreachable")
    page.goto("/pending")
    page.get_by_text("The pending models could not be loaded").wait_for()
    page.unroute(QUEUE)
    page.get_by_role("button", name="Try again").click()
    page.locator(".queue > li").first.wait_for()
    expect(page.get_by_text("could not be loaded")).to_have_count(0)


PHONE = {"width": 390, "height": 844}


def test_a_missing_file_import_says_why_once_and_leaves_discard_in_reach(
    visit: Visit, own_library: SeededLibrary
) -> None:
    """The reason an import failed was said twice, in the row and in a toast over the page;
    on a phone the toast lay for seconds over the row's Discard, the button to press next.
    The row says it; a screen reader hears it from the alert region, unseen."""
    page = visit.page
    page.set_viewport_size(PHONE)
    page.goto("/pending")
    lost = row(page, own_library, "lost")
    discard = lost.get_by_role("button", name="Discard Lost Pending")
    lost.get_by_role("button", name="Import Lost Pending").click()
    reason = lost.locator(".badge.missing")
    expect(reason).to_contain_text("lost.safetensors")
    # The row at the foot of the screen, where the toasts are.
    discard.scroll_into_view_if_needed()
    box = discard.bounding_box()
    page.evaluate("y => window.scrollBy(0, y)", box["y"] + box["height"] + 24 - PHONE["height"])
    box = discard.bounding_box()
    on_top = page.evaluate(
        "([x, y]) => document.elementFromPoint(x, y).closest('button')?.getAttribute('aria-label')",
        [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
    )
    assert on_top == "Discard Lost Pending"
    alert = page.locator("#alerts")
    expect(alert).to_contain_text("lost.safetensors")  # heard
    shown = page.locator("#alerts .toast:visible, #status .toast:visible")
    expect(shown.filter(has_text="lost.safetensors")).to_have_count(0)  # seen once, in the row
