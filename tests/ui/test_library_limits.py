"""The library's filter fields held to what the server takes (GET /api/models: q, tag and
base_model of 100 characters, the page's filter_text), counted as the server counts them, in
characters (code points) of the trimmed text the page sends; a `maxlength` counted UTF-16
units, and cut a tag or a base model of emoji at half. A prompt pasted into the search is cut,
never in the middle of a character; a tag or base model over the limit is said at its field
and not asked for."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, quote, urlparse

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import Visit

FOX = "\U0001f98a"  # one character, two UTF-16 units
MODELS_ASKED = re.compile(r".*/api/models\?")


def open_library(visit: Visit) -> Any:
    page = visit.page
    page.goto("/")
    page.locator(".card[data-state='full']").first.wait_for()
    return page


def filter_in_url(page: Any, name: str) -> str:
    values = parse_qs(urlparse(page.url).query).get(name, [""])
    return values[0]


def test_a_pasted_prompt_of_emoji_is_cut_at_the_server_s_count_between_characters(
    visit: Visit,
) -> None:
    page = open_library(visit)
    search = page.get_by_role("searchbox", name="Search")
    search.focus()
    page.keyboard.insert_text("zq" + FOX * 150)  # 152 characters, 302 UTF-16 units, as a paste
    expect(page.get_by_text("No model matches these filters.")).to_be_visible()
    assert search.input_value() == "zq" + FOX * 98
    assert filter_in_url(page, "q") == "zq" + FOX * 98
    expect(page.get_by_text("could not be loaded")).to_have_count(0)
    # Typed in the middle of a full field: refused there, as a maxlength refuses it, and
    # the caret stays where it was.
    for key in ("Home", "ArrowRight", "ArrowRight"):
        search.press(key)
    page.keyboard.type("x")
    assert search.input_value() == "zq" + FOX * 98
    assert search.evaluate("(el) => el.selectionStart") == 2


def test_a_tag_and_a_base_model_of_as_many_emoji_as_the_server_takes_are_asked_whole(
    visit: Visit,
) -> None:
    page = open_library(visit)
    for label, name in (("Tag", "tag"), ("Base model", "base_model")):
        field = page.get_by_label(label, exact=True)
        field.fill("  " + FOX * 100 + " ")
        field.press("Tab")
        page.wait_for_url(lambda url, name=name: name in url)
        assert filter_in_url(page, name) == FOX * 100
        expect(page.get_by_text("No model matches these filters.")).to_be_visible()
        expect(page.get_by_text("could not be loaded")).to_have_count(0)
        page.get_by_role("button", name="Clear filters").click()
        page.locator(".card[data-state='full']").first.wait_for()


def test_a_tag_or_base_model_longer_than_the_server_takes_is_said_and_not_asked(
    visit: Visit,
) -> None:
    page = open_library(visit)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if MODELS_ASKED.match(r.url) else None)
    for label in ("Tag", "Base model"):
        field = page.get_by_label(label, exact=True)
        field.fill(FOX * 101)
        expect(field).to_have_accessible_description(
            re.compile("At most 100 characters once trimmed; this has 101")
        )
        field.press("Tab")
        assert field.input_value() == FOX * 101  # kept, to be shortened
        field.fill("")
        expect(field).to_have_accessible_description("")
    # A look the page makes anyway shows whether one of those was asked for.
    page.get_by_role("searchbox", name="Search").fill("aurora")
    page.wait_for_url(lambda url: "q=aurora" in url)
    expect(page.get_by_text("could not be loaded")).to_have_count(0)
    assert not [url for url in asked if "tag=" in url or "base_model=" in url], asked
    assert "tag" not in page.url and "base_model" not in page.url


def test_a_search_longer_than_the_server_takes_in_the_url_is_cut_as_typing_cuts_it(
    visit: Visit,
) -> None:
    """An old bookmark or a link from another tool: answered 400 before, and the page said
    only that the library could not be loaded."""
    page = visit.page
    page.goto("/?q=" + quote("  zq" + FOX * 150))
    expect(page.get_by_text("No model matches these filters.")).to_be_visible()
    expect(page.get_by_text("could not be loaded")).to_have_count(0)
    assert page.get_by_role("searchbox", name="Search").input_value() == "zq" + FOX * 98
    assert filter_in_url(page, "q") == "zq" + FOX * 98  # the URL says what is searched


def test_a_tag_or_base_model_too_long_in_the_url_is_said_at_its_field_and_the_rest_shown(
    visit: Visit,
) -> None:
    page = visit.page
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if MODELS_ASKED.match(r.url) else None)
    for label, name in (("Tag", "tag"), ("Base model", "base_model")):
        page.goto(f"/?type=lora&{name}=" + quote(FOX * 101))
        page.locator(".card[data-state='full']").first.wait_for()  # the other filters hold
        expect(page.get_by_text("could not be loaded")).to_have_count(0)
        field = page.get_by_label(label, exact=True)
        assert field.input_value() == FOX * 101  # kept, to be shortened
        expect(field).to_have_accessible_description(
            re.compile("At most 100 characters once trimmed; this has 101")
        )
        assert filter_in_url(page, "type") == "lora" and name not in page.url
    assert asked and not [url for url in asked if "tag=" in url or "base_model=" in url], asked


@pytest.mark.parametrize("name", ["q", "tag", "base_model"])
def test_a_filter_at_the_limit_with_spaces_around_in_the_url_is_asked_trimmed(
    visit: Visit, name: str
) -> None:
    """At the limit once trimmed, so not cut, but sent with its spaces: the server's limit is
    on the text as it comes, and the page said the library could not be loaded."""
    page = visit.page
    page.goto(f"/?{name}=" + quote(" " + "z" * 100 + "  "))
    expect(page.get_by_text("No model matches these filters.")).to_be_visible()
    expect(page.get_by_text("could not be loaded")).to_have_count(0)
