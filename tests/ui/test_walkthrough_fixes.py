"""What a walkthrough of a large library found, on a small library of its own: a model's tags
in the Tags page's order (numbers by their value) on its page and on its card, a card that
says how many of its tags it does not show, an empty Pending page without controls that act
on nothing, and a model without images that does not take a screen to say so."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.server import ServerProcess
from tests.ui.conftest import Visit, visit_of
from tests.ui.shelf import name_of, sha_of, shelf_server
from tests.ui.test_tags_page import open_tags, shown_names


@pytest.fixture(scope="module")
def shelf(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[ServerProcess]:
    yield from shelf_server(tmp_path_factory.mktemp("ui-walkthrough"))


@pytest.fixture
def shelf_visit(browser: Any, shelf: ServerProcess) -> Iterator[Visit]:
    yield from visit_of(browser, shelf)


def put_tags(page: Any, i: int, tags: list[str]) -> None:
    answer = page.request.put(f"/api/models/{sha_of(i)}/tags", data=json.dumps({"tags": tags}))
    assert answer.ok, answer.text()


def card_of(page: Any, i: int) -> Any:
    card = page.locator(f".card[data-sha='{sha_of(i)}'][data-state='full']")
    card.wait_for()
    return card


NUMBERED = ["chibi-22", "chibi-3", "chibi-100"]
BY_VALUE = ["chibi-3", "chibi-22", "chibi-100"]


def test_a_models_tags_are_in_the_tags_pages_order(shelf_visit: Visit) -> None:
    page = shelf_visit.page
    put_tags(page, 11, NUMBERED)
    open_tags(shelf_visit, "/tags?q=chibi")
    assert shown_names(page) == BY_VALUE
    page.goto(f"/models/{sha_of(11)}")
    tags = page.get_by_role("region", name="Tags")
    tags.get_by_role("link", name="chibi-3", exact=True).wait_for()
    assert tags.locator(".chip > a").all_inner_texts() == BY_VALUE
    page.goto(f"/?q={name_of(11).replace(' ', '+')}")
    assert card_of(page, 11).locator(".chip").all_inner_texts() == BY_VALUE


def test_a_card_says_how_many_tags_it_does_not_show(shelf_visit: Visit) -> None:
    page = shelf_visit.page
    put_tags(page, 10, [f"caption tag {n:03d}" for n in range(120)])
    page.goto(f"/?q={name_of(10).replace(' ', '+')}")
    card = card_of(page, 10)
    shown = card.locator(".chips > li.chip:visible").count()
    assert 0 < shown < 120
    more = card.locator(".chips .more")
    expect(more).to_be_visible()
    assert more.inner_text() == f"+{120 - shown}"
    assert more.get_attribute("aria-label") == f"and {120 - shown} more tags"
    # On the chips' row, inside the card: the card is as tall as one with a tag or two.
    box, chips = card.bounding_box(), card.locator(".chips").bounding_box()
    more_box = more.bounding_box()
    assert more_box["y"] + more_box["height"] <= chips["y"] + chips["height"] + 0.5
    assert more_box["x"] + more_box["width"] <= box["x"] + box["width"]
    page.goto("/?q=Shelf+model+0")
    assert card_of(page, 1).bounding_box()["height"] == box["height"]


def test_a_card_with_few_tags_shows_no_count(shelf_visit: Visit) -> None:
    page = shelf_visit.page
    page.goto(f"/?q={name_of(6).replace(' ', '+')}")
    card = card_of(page, 6)
    expect(card.locator(".chip")).to_have_count(1)
    expect(card.locator(".chips .more")).to_be_hidden()


def test_an_empty_pending_page_shows_no_controls_that_act_on_nothing(shelf_visit: Visit) -> None:
    page = shelf_visit.page
    page.goto("/pending")
    page.get_by_text("Nothing is pending.").wait_for()
    expect(page.get_by_text("0 pending models")).to_be_visible()
    expect(page.get_by_label(re.compile("^Select all"))).to_be_hidden()
    expect(page.get_by_role("button", name="Import selected")).to_be_hidden()
    expect(page.get_by_role("button", name="Discard selected")).to_be_hidden()
    expect(page.get_by_label("When the model is already in the library:")).to_be_hidden()
    expect(page.get_by_label("Filter pending models")).to_be_hidden()


def test_a_model_without_images_says_so_in_a_short_box_beside_the_upload(
    shelf_visit: Visit,
) -> None:
    page = shelf_visit.page
    page.goto(f"/models/{sha_of(3)}")
    page.get_by_role("heading", level=1, name=name_of(3)).wait_for()
    empty = page.locator(".gallery .stage")
    expect(empty).to_have_text("No images yet")
    assert empty.bounding_box()["height"] < 120
    gallery = page.get_by_role("region", name=re.compile("^Images"))
    expect(gallery.get_by_label("Choose images")).to_have_attribute("type", "file")
    expect(gallery.get_by_text("Choose images", exact=True)).to_be_visible()
