"""The tag fields' suggestions at a collector's scale, in a real browser: out of thousands of
tags, the ones that hold what is typed (those that begin with it first, most used first, 50
at most), read once the field is used, on the model page, in the library's tag filter and in
the Select bar."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import Visit, open_model
from tests.ui.seed import SeededLibrary

# A collector's tags: 3,000 used often, and a rare one whose name sorts last.
MANY_TAGS = [{"id": i + 1, "name": f"tag-{i:04d}", "models": 3000 - i} for i in range(3000)]
RARE_TAG = {"id": 5000, "name": "zebra stripes", "models": 1}
FIELDS = ["model page", "library filter", "Select bar"]


def tag_field(visit: Visit, library: SeededLibrary, where: str) -> tuple[Any, Any]:
    """The tag field of `where`, and the options of its datalist."""
    page = visit.page
    if where == "model page":
        open_model(visit, library, "Chibi Lora v1")
        return page.get_by_label("Add a tag"), page.locator("#tag-suggestions option")
    page.goto("/")
    page.locator(".card[data-state='full']").first.wait_for()
    if where == "library filter":
        return page.get_by_label("Tag", exact=True), page.locator("#tag-options option")
    page.get_by_role("button", name="Select").click()
    bar = page.get_by_role("region", name="Selection")
    return bar.get_by_label("Tag for the selected models"), page.locator(
        "#selection-tag-options option"
    )


def values(options: Any) -> list[str]:
    return [str(v) for v in options.evaluate_all("os => os.map((o) => o.value)")]


@pytest.mark.parametrize("where", FIELDS)
def test_a_tag_field_suggests_the_tags_that_hold_what_is_typed_among_thousands(
    visit: Visit, library: SeededLibrary, where: str
) -> None:
    visit.page.route("**/api/tags", lambda r: r.fulfill(json={"tags": [*MANY_TAGS, RARE_TAG]}))
    field, options = tag_field(visit, library, where)
    expect(options).to_have_count(0)  # not read until the field is used
    field.focus()
    expect(options).to_have_count(50)
    assert values(options) == [f"tag-{i:04d}" for i in range(50)]  # the most used first
    assert options.first.get_attribute("label") == "tag-0000 (3,000)"
    field.press_sequentially("zebra")
    expect(options).to_have_count(1)
    assert values(options) == ["zebra stripes"]
    field.fill("")
    field.press_sequentially("stripes")  # held anywhere in the name
    expect(options).to_have_count(1)
    field.fill("")
    field.press_sequentially("tag-29")
    expect(options).to_have_count(50)
    assert values(options)[:2] == ["tag-2900", "tag-2901"]
