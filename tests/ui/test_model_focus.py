"""Keyboard focus after a change on the model page, in a real browser: it goes somewhere
sensible when the element that had it is gone (a removed tag, a restored version), never to
the page's body; and the hidden file input shows where it is."""

from __future__ import annotations

from typing import Any

import pytest

from tests.ui.conftest import Visit, needs, open_model
from tests.ui.seed import SeededLibrary

FOCUSED_NAME = """() => {
  const el = document.activeElement;
  return el.getAttribute("aria-label") || el.id || el.tagName;
}"""


def imported(page: Any, library: SeededLibrary, role: str, tags: list[str]) -> str:
    body = {"id": library.pending[role], "conf_strategy": None}
    sha = str(page.request.post("/api/migration/import_a_model", data=body).json()["sha256"])
    assert page.request.put(f"/api/models/{sha}/tags", data={"tags": tags}).ok
    return sha


@pytest.mark.parametrize(
    ("role", "tags"), [("fresh12", ["focus-only"]), ("fresh13", ["focus-a", "focus-b", "focus-c"])]
)
def test_removing_a_tag_with_its_x_leaves_focus_nearby(
    visit: Visit, library: SeededLibrary, operations: set[str], role: str, tags: list[str]
) -> None:
    needs(operations, "PUT /api/models/{sha256}/tags")
    page = visit.page
    sha = imported(page, library, role, tags)
    page.goto(f"/models/{sha}")
    region = page.get_by_role("region", name="Tags")
    region.get_by_role("link", name=tags[-1], exact=True).wait_for()
    shown = region.locator(".chip a").all_inner_texts()
    assert shown == tags
    removed = shown[0]
    expected = f"Remove tag {shown[1]}" if len(shown) > 1 else "Add a tag"
    region.get_by_role("button", name=f"Remove tag {removed}").focus()
    page.keyboard.press("Enter")
    region.get_by_role("link", name=removed, exact=True).wait_for(state="detached")
    assert page.evaluate(FOCUSED_NAME) == expected


def test_focus_stays_in_the_history_after_a_restore(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    needs(operations, "GET /api/models/{sha256}/history", "PATCH /api/models/{sha256}")
    name = "Sketch Checkpoint v3"
    sha = library.hashes[name]
    assert visit.page.request.patch(
        f"/api/models/{sha}", data={"meta_json": {"notes": "to be undone"}}
    ).ok
    page = open_model(visit, library, name)
    history = page.get_by_role("region", name="History")
    history.get_by_role("button", name="Restore the version before “Edited”").first.focus()
    page.keyboard.press("Enter")
    page.get_by_role("dialog").get_by_role("button", name="Restore").click()
    history.get_by_text("Restored", exact=True).wait_for()
    page.wait_for_function("() => document.activeElement !== document.body")
    assert page.evaluate(FOCUSED_NAME).startswith("Restore the version before")
    assert history.evaluate("(region, el) => region.contains(document.activeElement)", None)


def test_the_file_picker_shows_keyboard_focus(visit: Visit, library: SeededLibrary) -> None:
    page = open_model(visit, library, "Aurora Lineart XL")
    zone = page.locator(".dropzone")
    assert zone.evaluate("z => getComputedStyle(z).outlineStyle") == "none"
    page.get_by_role("button", name="Move", exact=True).focus()  # the image's last action
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.id") == "upload-input"
    assert zone.evaluate("z => getComputedStyle(z).outlineStyle") != "none"
