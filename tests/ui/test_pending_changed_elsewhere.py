"""The Pending page left open while the rows it shows change elsewhere: a tag they carry
renamed (the Tags page, PATCH /api/tags/{id}), a model's name or type rewritten by another
program. The rows show what the server now says while the page stays visible, without a
person's selection, focus or scroll position moving, and the filter by words reads the new
text."""

from __future__ import annotations

import sqlite3
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import TIMEOUT_MS, Visit
from tests.ui.pending_queue import row
from tests.ui.seed import SeededLibrary
from tests.ui.test_pending_elsewhere import opened_at_work

QUEUE = "/api/migration/pending_models"
# A look every 5 s (pendingbatch.js LOOK_AGAIN_MS): a change shows at the second look at most.
CHANGE_SHOWN_MS = 2 * TIMEOUT_MS


@pytest.fixture
def visit(own_visit: Visit) -> Visit:
    return own_visit


def tag_carried_by(page: Any, pending_id: int) -> int:
    answer = page.request.get(QUEUE)
    assert answer.ok, answer.text()
    record = next(m for m in answer.json()["models"] if m["id"] == pending_id)
    return int(record["tags"][0]["id"])


def test_rows_changed_elsewhere_show_the_server_s_text_while_the_page_stays_visible(
    visit: Visit, own_library: SeededLibrary
) -> None:
    page, anchor, seen_at = opened_at_work(visit, own_library)
    anchor.get_by_role("checkbox").focus()

    changed = own_library.pending["fresh10"]
    tag_id = tag_carried_by(page, changed)
    renamed = page.request.patch(f"/api/tags/{tag_id}", data={"name": "renamed elsewhere"})
    assert renamed.ok, renamed.text()
    with sqlite3.connect(own_library.data_dir / "modelshelf.db") as other_program:
        other_program.execute(
            "UPDATE pending_import SET name = 'Fresh Rewritten', type = 'lora' WHERE id = ?",
            (changed,),
        )

    expect(anchor.locator(".name")).to_have_text("Fresh Rewritten", timeout=CHANGE_SHOWN_MS)
    expect(anchor).to_contain_text("renamed elsewhere")
    expect(anchor.locator(".sub").first).to_contain_text("lora")
    expect(anchor.get_by_role("checkbox", name="Select Fresh Rewritten")).to_be_focused()
    expect(anchor.get_by_role("button", name="Import Fresh Rewritten")).to_be_visible()
    # A row not renamed itself shows its tag's new name too.
    expect(row(page, own_library, "fresh0")).to_contain_text("renamed elsewhere")
    for role in ("fresh0", "fresh1"):
        expect(row(page, own_library, role).get_by_role("checkbox")).to_be_checked()
    expect(page.get_by_text("2 models selected")).to_be_visible()
    assert abs(anchor.bounding_box()["y"] - seen_at) < 1

    # The words typed find the rows by what they say now.
    page.get_by_label("Filter pending models").fill("rewritten")
    expect(page.locator(".queue > li:not([hidden])")).to_have_count(1)
    expect(anchor).to_be_visible()
