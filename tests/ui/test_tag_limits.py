"""The tag name fields held to what the server takes (a tag name of 100 characters, the page's
tag_name), counted as the server counts them, in characters (code points) of the trimmed text
sent: the library's selection bar, New tag and a rename on the Tags page. A `maxlength` counted
UTF-16 units and cut a name of emoji at half. Over the limit, the field says so beside it and
nothing is sent."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.server import ServerProcess
from tests.ui.conftest import Visit, needs, visit_of
from tests.ui.shelf import shelf_server
from tests.ui.test_tagging_many import TAGS, selecting, tags_of
from tests.ui.test_tags_page import open_tags, row, server_tags

FOX = "\U0001f98a"  # one character, two UTF-16 units
OWL = "\U0001f989"  # another (the rename's: a name New tag did not take)
OVER = re.compile("At most 100 characters once trimmed; this has 101")


@pytest.fixture(scope="module")
def shelf(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[ServerProcess]:
    yield from shelf_server(tmp_path_factory.mktemp("ui-tag-limits"))


@pytest.fixture
def shelf_visit(browser: Any, shelf: ServerProcess) -> Iterator[Visit]:
    yield from visit_of(browser, shelf)


def sent_to(page: Any, method: str, part: str) -> list[str]:
    """The requests of `method` to a URL with `part` the page makes from now on."""
    sent: list[str] = []

    def seen(request: Any) -> None:
        if request.method == method and part in request.url:
            sent.append(request.url)

    page.on("request", seen)
    return sent


def one_selected(visit: Visit, operations: set[str]) -> tuple[Any, list[str], Any, Any, list[str]]:
    """The library with one model picked: its page, the models' hashes, the selection bar, its
    tag field, and the POST /api/models/tags the page makes from now on."""
    needs(operations, TAGS)
    page, hashes = selecting(visit, "/?type=checkpoint")
    page.locator(".card[data-state='full']").nth(0).click()
    bar = page.get_by_role("region", name="Selection")
    bar.get_by_text("1 model selected").wait_for()
    field = bar.get_by_label("Tag for the selected models")
    return page, hashes, bar, field, sent_to(page, "POST", "/api/models/tags")


def test_the_selection_bar_adds_a_tag_of_100_emoji_and_says_101(
    visit: Visit, operations: set[str]
) -> None:
    page, hashes, bar, field, sent = one_selected(visit, operations)
    field.fill(FOX * 101)
    expect(field).to_have_accessible_description(OVER)
    field.press("Enter")
    bar.get_by_role("button", name="Add tag").click()
    expect(page.get_by_text("could not", exact=False)).to_have_count(0)
    assert sent == [] and field.input_value() == FOX * 101  # kept, to be shortened

    field.fill(" " + FOX * 100 + "  ")
    expect(field).to_have_accessible_description("")
    field.press("Enter")
    page.get_by_role("status").get_by_text(f"Tag “{FOX * 100}” added to 1 model").wait_for()
    assert FOX * 100 in tags_of(page, hashes[0])
    field.fill(FOX * 100)
    bar.get_by_role("button", name="Remove tag").click()
    page.get_by_role("status").get_by_text(f"Tag “{FOX * 100}” removed from 1 model").wait_for()
    assert len(sent) == 2


def test_the_selection_bar_counts_a_tag_as_folded_as_it_is_sent(
    visit: Visit, operations: set[str]
) -> None:
    """The bar sends the tag folded (NFKC, lower case) but counted it as typed: 60 "㍻" (one
    character each, two once folded: "平成") passed the field, went out as 120 characters and
    came back as the server's refusal; 60 "é" typed as e and a combining accent (120 code
    points, 60 once folded) were held as too long. It counts what it sends, as the model
    page does."""
    page, hashes, bar, field, sent = one_selected(visit, operations)
    field.fill("\u337b" * 60)
    expect(field).to_have_accessible_description(re.compile("At most 100 characters.*120"))
    bar.get_by_role("button", name="Add tag").click()
    assert sent == [] and field.input_value() == "\u337b" * 60  # kept, to be shortened

    field.fill("e\u0301" * 60)
    expect(field).to_have_accessible_description("")
    bar.get_by_role("button", name="Add tag").click()
    folded = "\u00e9" * 60
    page.get_by_role("status").get_by_text(f"Tag “{folded}” added to 1 model").wait_for()
    assert folded in tags_of(page, hashes[0])
    assert len(sent) == 1


def test_new_tag_makes_a_tag_of_100_emoji_and_says_101(shelf_visit: Visit) -> None:
    page = open_tags(shelf_visit)
    field = page.get_by_label("New tag", exact=True)
    sent = sent_to(page, "POST", "/api/tags")
    field.fill(FOX * 101)
    expect(field).to_have_accessible_description(OVER)
    field.press("Enter")
    page.get_by_role("button", name="Create tag").click()
    assert sent == [] and field.input_value() == FOX * 101
    assert FOX * 101 not in server_tags(page)

    field.fill("  " + FOX * 100 + " ")
    expect(field).to_have_accessible_description("")
    field.press("Enter")
    page.get_by_role("status").get_by_text(f"Tag “{FOX * 100}” created").wait_for()
    assert server_tags(page)[FOX * 100] == 0
    assert field.input_value() == ""
    expect(field).to_have_accessible_description("")


def test_a_rename_to_100_emoji_is_saved_and_101_is_said(shelf_visit: Visit) -> None:
    page = shelf_visit.page
    page.request.post("/api/tags", data={"name": "to be foxes"})
    page = open_tags(shelf_visit)
    sent = sent_to(page, "PATCH", "/api/tags/")
    row(page, "to be foxes").get_by_role("button", name="Rename tag to be foxes").click()
    field = page.get_by_label("New name for the tag to be foxes")
    field.fill(OWL * 101)
    expect(field).to_have_accessible_description(OVER)
    field.press("Enter")
    assert sent == [] and field.input_value() == OWL * 101
    field.fill(" " + OWL * 100 + " ")
    expect(field).to_have_accessible_description("")
    field.press("Enter")
    page.get_by_role("status").get_by_text(f"Tag “to be foxes” renamed to “{OWL * 100}”").wait_for()
    assert OWL * 100 in server_tags(page) and len(sent) == 1
