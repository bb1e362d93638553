"""Making a tag on the Tags page, over a small library of its own: the new tag is in the list at
once with no models, the library's tag filter offers it (the lists the pages share are read
again), the field keeps the focus for the next one; a name that is taken is said, with a way to
show that tag; a name the server refuses shows the server's reason."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.server import ServerProcess
from tests.ui.conftest import Visit, visit_of
from tests.ui.shelf import sha_of, shelf_server
from tests.ui.test_tags_page import open_tags, row, server_tags, shown_names


@pytest.fixture(scope="module")
def shelf(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[ServerProcess]:
    yield from shelf_server(tmp_path_factory.mktemp("ui-tag-create"))


@pytest.fixture
def shelf_visit(browser: Any, shelf: ServerProcess) -> Iterator[Visit]:
    yield from visit_of(browser, shelf)


def create(page: Any, name: str) -> Any:
    """Types `name` in the New tag field and presses Enter, once the server has answered."""
    field = page.get_by_label("New tag", exact=True)
    field.fill(name)
    with page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith("/api/tags")):
        field.press("Enter")
    return field


def test_a_new_tag_is_listed_at_once_and_the_library_filter_offers_it(shelf_visit: Visit) -> None:
    page = open_tags(shelf_visit)
    field = create(page, "  Fresh Ink ")
    page.get_by_role("status").get_by_text("Tag “fresh ink” created").wait_for()
    assert row(page, "fresh ink").get_by_text("no models").is_visible()
    assert server_tags(page)["fresh ink"] == 0
    # The field is empty and keeps the focus: the next one is typed at once.
    expect(field).to_be_focused()
    assert field.input_value() == ""
    page.keyboard.type("inked")
    page.keyboard.press("Enter")
    row(page, "inked").wait_for()
    assert shown_names(page) == sorted(shown_names(page))
    page.get_by_role("button", name="Create tag").wait_for()  # a button too, beside the field

    # The library, reached without reloading the page, offers it in its tag filter.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Library").click()
    page.locator(".card[data-state='full']").first.wait_for()
    page.get_by_label("Tag", exact=True).focus()  # its suggestions, once it is used
    offered = page.locator("#tag-options option[value='fresh ink']")
    expect(offered).to_have_count(1)
    # Once a model carries it (model 6 carries "animal"), the filter finds that model.
    tagged = {"tags": ["animal", "fresh ink"]}
    page.request.put(f"/api/models/{sha_of(6)}/tags", data=json.dumps(tagged))
    page.get_by_label("Tag", exact=True).fill("fresh ink")
    page.get_by_label("Tag", exact=True).press("Enter")
    page.wait_for_url(re.compile(r"\?tag=fresh\+ink$"))
    page.get_by_text("1 model", exact=True).wait_for()


def test_a_taken_name_is_said_and_the_tag_can_be_shown(shelf_visit: Visit) -> None:
    page = open_tags(shelf_visit)
    before = server_tags(page)
    field = create(page, "Anime")
    said = page.get_by_role("form", name="Create a tag").get_by_role("alert")
    said.get_by_text("A tag named “anime” (5 models) exists already.").wait_for()
    assert field.input_value() == "Anime"  # kept, to be mended
    expect(field).to_be_focused()
    assert server_tags(page) == before
    said.get_by_role("button", name="Show anime").click()
    expect(page.get_by_label("Filter tags")).to_have_value("anime")
    page.wait_for_url(re.compile(r"/tags\?q=anime$"))
    assert shown_names(page) == ["anime"]


def test_a_taken_name_mended_is_no_longer_said_taken(shelf_visit: Visit) -> None:
    """The name is kept in the field to be mended; as it was typed over, "A tag named anime
    exists already" stayed under it, said of a name no longer there (and beside the field's
    own word on a name too long), until the next Create."""
    page = open_tags(shelf_visit)
    field = create(page, "anime")
    said = page.get_by_role("form", name="Create a tag").get_by_role("alert")
    said.get_by_text("exists already").wait_for()
    note = page.locator(".create-tag .create-note")  # the alert region, empty
    field.press("End")
    page.keyboard.type(" sketch")
    expect(note).to_be_empty()
    field.fill("anime")  # back to the name taken: said again only at the next Create
    expect(note).to_be_empty()


@pytest.mark.parametrize("name", ["", "   "])
def test_create_with_no_name_typed_says_so_in_a_persons_words(
    shelf_visit: Visit, name: str
) -> None:
    """Create tag pressed with the field empty said the validator's "name: String should have
    at least 1 character". The page says what to do, asks the server nothing, and keeps the
    focus in the field."""
    page = open_tags(shelf_visit)
    before = server_tags(page)
    posts: list[str] = []
    page.on("request", lambda r: posts.append(r.url) if r.method == "POST" else None)
    field = page.get_by_label("New tag", exact=True)
    field.fill(name)
    page.get_by_role("button", name="Create tag").click()
    said = page.get_by_role("form", name="Create a tag").get_by_role("alert")
    expect(said).to_have_text("Type the new tag's name first.")
    expect(field).to_be_focused()
    assert posts == []
    assert server_tags(page) == before


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("tab\tinside", "tab<U+0009>inside"),
        ("\u200b", "<U+200B>"),  # zero-width spaces alone: a name that shows as nothing
        ("\u200b\u200b\u200b", "<U+200B><U+200B><U+200B>"),
        ("\ufeff\u200b", "<U+200B>"),  # the browser trims the byte-order mark, as spaces
    ],
    ids=["tab", "zero-width-space", "zero-width-spaces", "bom-and-zero-width-space"],
)
def test_a_name_the_server_refuses_shows_its_reason_of_the_name(
    shelf_visit: Visit, name: str, shown: str
) -> None:
    """A name of invisible characters alone (zero-width spaces) was refused with the API's
    words, field path and all: "name: needs a character other than white space, …". The
    server's reason is said of the name, its invisible characters written as their codes, as
    the model page and the selection bar say theirs."""
    page = open_tags(shelf_visit)
    before = server_tags(page)
    refused = page.request.post("/api/tags", data=json.dumps({"name": name}))
    assert refused.status == 400
    reason = refused.json()["detail"].removeprefix("name: ")
    field = create(page, name)
    said = page.get_by_role("form", name="Create a tag").get_by_role("alert")
    expect(said).to_have_text(f"The name “{shown}” {reason}")
    assert field.input_value() == name  # kept, to be mended
    assert server_tags(page) == before


def test_a_rename_to_invisible_characters_alone_is_said_of_the_name(shelf_visit: Visit) -> None:
    """The same for a rename: "name: needs a character…" is said of the name typed."""
    page = open_tags(shelf_visit)
    before = server_tags(page)
    row(page, "style").get_by_role("button", name="Rename tag style").click()
    field = page.get_by_label("New name for the tag style")
    field.fill("\u200b\u200b")
    field.press("Enter")
    said = page.get_by_role("form", name="Rename tag style").get_by_role("alert")
    expect(said).to_have_text(
        "The name “<U+200B><U+200B>” needs a character other than white space, and no control"
        " or invisible characters"
    )
    assert field.input_value() == "\u200b\u200b"
    assert server_tags(page) == before


def test_a_new_tag_the_filter_hides_is_said_with_a_way_to_show_it(shelf_visit: Visit) -> None:
    page = open_tags(shelf_visit, "/tags?q=ani")
    create(page, "zebra")
    toast = page.get_by_role("status").get_by_text(
        "Tag “zebra” created; it is not among the tags shown"
    )
    toast.wait_for()
    page.get_by_role("status").get_by_role("button", name="Show zebra").click()
    expect(page.get_by_label("Filter tags")).to_have_value("zebra")
    assert shown_names(page) == ["zebra"]
    expect(row(page, "zebra")).to_contain_text("no models")


def test_a_messages_button_pressed_from_the_keyboard_leaves_the_focus_where_it_was(
    shelf_visit: Visit,
) -> None:
    """Show zebra, reached with the keyboard in the message that said the filter hides the new
    tag, and pressed: the message went with its button, the focus fell to the page's body and
    the next Tab began again at the top of the page. It goes back to where the person was."""
    page = open_tags(shelf_visit, "/tags?q=ani")
    field = create(page, "okapi")
    show = page.get_by_role("status").get_by_role("button", name="Show okapi")
    show.focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Filter tags")).to_have_value("okapi")
    expect(field).to_be_focused()
