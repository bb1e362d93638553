"""The pending page under a slow server, a second click and other tabs, in a real browser: a
row's request shows it is running and is sent once; a model imported or removed elsewhere
leaves the queue with a word instead of an error that can never clear; focus is kept while
a batch runs."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import Visit, needs
from tests.ui.pending_queue import open_pending, row
from tests.ui.seed import SeededLibrary
from tests.ui.test_unsaved_work import Gate

IMPORT = re.compile(r".*/api/migration/import_a_model$")
DISCARD = re.compile(r".*/api/migration/pending_models/\d+$")
GONE_ELSEWHERE = "was already imported or removed elsewhere"


def test_a_model_imported_elsewhere_leaves_the_queue_on_import(
    visit: Visit, library: SeededLibrary
) -> None:
    page = open_pending(visit)
    body = {"id": library.pending["fresh8"], "conf_strategy": None}
    assert page.request.post("/api/migration/import_a_model", data=body).ok
    page.get_by_role("button", name="Import Fresh Pending 8").click()
    row(page, library, "fresh8").wait_for(state="detached")
    page.get_by_role("status").get_by_text(f"Fresh Pending 8 {GONE_ELSEWHERE}").wait_for()


def test_a_conflict_resolved_elsewhere_leaves_the_queue_on_a_strategy(
    visit: Visit, library: SeededLibrary
) -> None:
    page = open_pending(visit)
    # A conflict still in the queue (other tests resolve theirs; this one leaves it there).
    present = [n for n in range(3) if row(page, library, f"conflict{n}").count()]
    if not present:
        pytest.skip("every seeded conflict was resolved by the tests before this one")
    role, name = f"conflict{present[0]}", f"Pending Conflict {present[0]}"
    pending_id = library.pending[role]
    page.get_by_role("button", name=f"Import {name}").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Override", exact=True).wait_for()

    def resolved_elsewhere(route: Any) -> None:
        """The server's answer once another tab has imported the model (this one is left
        as it is for the other tests)."""
        if json.loads(route.request.post_data or "{}").get("conf_strategy") is None:
            route.fallback()
            return
        detail = f"no pending model with id {pending_id}"
        route.fulfill(status=404, json={"error": "Not Found", "detail": detail})

    page.route(IMPORT, resolved_elsewhere)
    dialog.get_by_role("button", name="Override", exact=True).click()
    row(page, library, role).wait_for(state="detached")
    page.get_by_role("status").get_by_text(f"{name} {GONE_ELSEWHERE}").wait_for()


@pytest.mark.parametrize(
    ("button", "busy", "role", "pattern", "method"),
    [
        ("Import", "Importing…", "fresh9", IMPORT, "POST"),
        ("Discard", "Discarding…", "fresh10", DISCARD, "DELETE"),
    ],
)
def test_a_row_s_request_is_shown_as_running_and_sent_once(
    visit: Visit,
    library: SeededLibrary,
    operations: set[str],
    button: str,
    busy: str,
    role: str,
    pattern: re.Pattern[str],
    method: str,
) -> None:
    if button == "Discard":
        needs(operations, "DELETE /api/migration/pending_models/{id}")
    page = open_pending(visit)
    gate = Gate(page, pattern, method)
    name = f"{button} Fresh Pending {role.removeprefix('fresh')}"
    control = page.get_by_role("button", name=name)
    if button == "Discard":
        control.click()
        page.get_by_role("dialog").get_by_role("button", name="Discard", exact=True).click()
        control.click(force=True)  # a second click while the first runs
    else:
        control.dblclick()
    expect(control).to_have_text(busy)
    expect(control).to_be_disabled()
    assert control.get_attribute("aria-busy") == "true"
    gate.wait_held(page, 1)
    assert len(gate.held) == 1
    gate.open()
    row(page, library, role).wait_for(state="detached")
    assert page.locator(".toast.error").count() == 0


def test_focus_goes_to_the_batch_progress_while_it_runs(
    visit: Visit, library: SeededLibrary
) -> None:
    page = open_pending(visit)
    page.get_by_role("checkbox", name="Select Fresh Pending 11").check()
    run = page.get_by_role("button", name="Import selected")
    run.focus()
    page.keyboard.press("Enter")
    row(page, library, "fresh11").wait_for(state="detached")
    page.get_by_role("status").get_by_text("1 model imported").wait_for()
    # Nothing is selected any more, so the button is disabled: focus stays on the progress.
    focused = page.evaluate("document.activeElement.getAttribute('aria-label')")
    assert focused == "Batch progress"
