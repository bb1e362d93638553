"""Tagging many models at once in a real browser: Select mode picks cards (a click, a Shift
range, Space), the bar adds a tag to every picked model and removes it again, in one request
per part of the most the server takes (saying how far it is, with Stop between parts), and
Escape ends the mode."""

from __future__ import annotations

import re
from typing import Any

import pytest
import pyvips
from playwright.sync_api import expect

from tests.ui.conftest import Visit, needs, serve_as_if, wait_frames
from tests.ui.seed import SeededLibrary
from tests.ui.test_unsaved_work import Gate

TAGS = "POST /api/models/tags"
MANY_TAGS = re.compile(r".*/api/models/tags$")


def tags_of(page: Any, sha256: str) -> list[str]:
    return [t["name"] for t in page.request.get(f"/api/models/{sha256}").json()["tags"]]


def selecting(visit: Visit, path: str) -> tuple[Any, list[str]]:
    """The library at `path` in Select mode, and the hashes of its cards in order."""
    page = visit.page
    page.goto(path)
    page.locator(".card[data-state='full']").first.wait_for()
    page.get_by_role("button", name="Select", exact=True).click()
    page.locator(".card .pick").first.wait_for()
    hashes = page.locator(".card[data-state='full']").evaluate_all(
        "cards => cards.map((c) => c.dataset.sha)"
    )
    return page, hashes


def test_a_tag_is_added_to_the_picked_models_and_removed_again(
    visit: Visit, operations: set[str]
) -> None:
    needs(operations, TAGS)
    page, hashes = selecting(visit, "/?type=lora")
    cards = page.locator(".card[data-state='full']")
    cards.nth(0).click()
    cards.nth(2).click(modifiers=["Shift"])  # the range 0-2
    bar = page.get_by_role("region", name="Selection")
    bar.get_by_text("3 models selected").wait_for()
    assert page.url.endswith("/?type=lora")  # picking opened nothing
    before = {sha: tags_of(page, sha) for sha in hashes[:4]}

    bar.get_by_label("Tag for the selected models").fill("  Batch Ü ")
    bar.get_by_role("button", name="Add tag").click()
    page.get_by_role("status").get_by_text("Tag “batch ü” added to 3 models").wait_for()
    for sha in hashes[:3]:
        assert sorted(tags_of(page, sha)) == sorted([*before[sha], "batch ü"])
    assert tags_of(page, hashes[3]) == before[hashes[3]]  # not picked, not changed
    # The new tag is offered at once by the bar, which was used, with its count.
    offered = page.locator("#selection-tag-options option[value='batch ü']")
    offered.wait_for(state="attached")
    assert offered.get_attribute("label") == "batch ü (3)"

    bar.get_by_label("Tag for the selected models").fill("batch ü")
    bar.get_by_role("button", name="Remove tag").click()
    page.get_by_role("status").get_by_text("Tag “batch ü” removed from 3 models").wait_for()
    assert {sha: tags_of(page, sha) for sha in hashes[:4]} == before


def test_the_picked_models_are_tagged_in_one_request(visit: Visit, operations: set[str]) -> None:
    needs(operations, TAGS)
    page, hashes = selecting(visit, "/?type=embedding")
    bar = page.get_by_role("region", name="Selection")
    bar.get_by_role("button", name=re.compile("^Select all")).click()
    bar.get_by_text(f"{len(hashes)} models selected").wait_for()
    sent: list[Any] = []
    page.on("request", lambda r: sent.append(r) if "/api/models/" in r.url else None)
    bar.get_by_label("Tag for the selected models").fill("one-go")
    bar.get_by_role("button", name="Add tag").click()
    page.get_by_role("status").get_by_text(f"Tag “one-go” added to {len(hashes)} models").wait_for()
    posts = [r for r in sent if r.method == "POST"]
    assert len(posts) == 1 and not [r for r in sent if r.method == "PUT"], sent
    body = posts[0].post_data_json
    assert sorted(body["hashes"]) == sorted(hashes)
    assert (body["add"], body["remove"]) == (["one-go"], [])
    assert all("one-go" in tags_of(page, sha) for sha in hashes)
    bar.get_by_label("Tag for the selected models").fill("one-go")
    bar.get_by_role("button", name="Remove tag").click()
    page.get_by_role("status").get_by_text(
        f"Tag “one-go” removed from {len(hashes)} models"
    ).wait_for()
    bar.get_by_role("button", name="Clear selection").click()


def test_a_tagging_shows_how_far_it_is_and_can_be_stopped(
    visit: Visit, operations: set[str]
) -> None:
    needs(operations, TAGS)
    # A server that takes one model a request: three requests, Stop between them.
    serve_as_if(visit.page, lambda _: None, limits={"models_tagged_at_once": 1})
    page, hashes = selecting(visit, "/?type=lora")
    cards = page.locator(".card[data-state='full']")
    cards.nth(0).click()
    cards.nth(2).click(modifiers=["Shift"])
    bar = page.get_by_role("region", name="Selection")
    bar.get_by_text("3 models selected").wait_for()
    before = {sha: tags_of(page, sha) for sha in hashes[:3]}
    gate = Gate(page, MANY_TAGS, "POST")  # the first request waits
    bar.get_by_label("Tag for the selected models").fill("by-mistake")
    with page.expect_request(lambda r: r.method == "POST"):
        bar.get_by_role("button", name="Add tag").click()
    bar.get_by_text("0 of 3").wait_for()
    assert bar.get_by_role("progressbar").get_attribute("aria-valuetext") == "0 of 3 models"
    bar.get_by_role("button", name="Stop").click()
    gate.open()
    said = "Stopped: tag “by-mistake” added to 1 model; 2 not done"
    page.get_by_role("status").get_by_text(said).wait_for()
    assert bar.get_by_role("button", name="Stop").is_hidden()
    assert "by-mistake" in tags_of(page, hashes[0])
    assert [tags_of(page, sha) for sha in hashes[1:3]] == [before[sha] for sha in hashes[1:3]]
    # What was typed is kept, to take the tag off again.
    bar.get_by_role("button", name="Remove tag").click()
    page.get_by_role("status").get_by_text("Tag “by-mistake” removed from 1 model").wait_for()
    assert {sha: tags_of(page, sha) for sha in hashes[:3]} == before


def test_a_picked_card_is_framed_over_its_cover(visit: Visit, operations: set[str]) -> None:
    needs(operations, TAGS)
    page, _ = selecting(visit, "/")
    card = page.locator(".card[data-state='full']").first
    card.click()
    page.get_by_role("region", name="Selection").get_by_text("1 model selected").wait_for()
    page.mouse.move(0, 0)  # no hover outline
    box = card.bounding_box()
    # A line 1 px inside the card's top edge, over the cover, across its middle half.
    line = {"x": box["x"] + box["width"] / 4, "y": box["y"] + 1, "width": box["width"] / 2}
    image = pyvips.Image.new_from_buffer(page.screenshot(clip={**line, "height": 1}), "")
    accent = (0x54, 0x43, 0xC7)  # --accent in the light scheme
    shown = [image[band].avg() for band in range(3)]
    assert all(abs(a - b) <= 6 for a, b in zip(shown, accent, strict=True)), shown
    page.get_by_role("button", name="Clear selection").click()


def test_space_picks_the_focused_card_and_escape_ends_select_mode(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    needs(operations, TAGS)
    page, _ = selecting(visit, "/?type=checkpoint")
    page.locator(".card-link").first.focus()
    page.keyboard.press("Space")
    page.get_by_role("region", name="Selection").get_by_text("1 model selected").wait_for()
    assert page.locator(".card.picked").count() == 1
    page.keyboard.press("Escape")
    page.get_by_role("region", name="Selection").wait_for(state="hidden")
    assert page.locator(".card .pick").count() == 0
    page.locator(".card-link").first.click()  # out of Select mode a click opens the model
    page.locator("h1").filter(has_not_text="Library").wait_for()


def test_picks_outlive_back_and_a_range_never_starts_in_other_results(
    visit: Visit, operations: set[str]
) -> None:
    needs(operations, TAGS)
    page, _ = selecting(visit, "/?type=lora")
    bar = page.get_by_role("region", name="Selection")
    page.locator(".card[data-state='full']").nth(1).click()
    page.locator(".card[data-state='full']").nth(2).click()
    page.get_by_label("Type", exact=True).select_option("embedding")
    page.wait_for_url("**/?type=embedding")
    bar.get_by_text("2 models selected").wait_for()
    # The last pick is not in these results: a Shift+click picks the one card.
    page.locator(".card[data-state='full']").nth(3).click(modifiers=["Shift"])
    bar.get_by_text("3 models selected").wait_for()
    page.go_back()
    page.wait_for_url("**/?type=lora")
    bar.get_by_text("3 models selected").wait_for()
    select = page.get_by_role("button", name="Select", exact=True)
    assert select.get_attribute("aria-pressed") == "true"
    page.locator(".card.picked").nth(1).wait_for()  # the two picks of these results
    assert page.locator(".card.picked").count() == 2
    bar.get_by_role("button", name="Clear selection").click()
    bar.get_by_text("Click cards to select them").wait_for()


def test_the_mark_itself_ticks_and_the_bar_keeps_the_focus_and_its_keys(
    visit: Visit, operations: set[str]
) -> None:
    needs(operations, TAGS)
    page, hashes = selecting(visit, "/?type=checkpoint")
    mark = page.locator(".card[data-state='full']").nth(0).locator(".pick")
    mark.click()
    page.get_by_role("region", name="Selection").get_by_text("1 model selected").wait_for()
    assert mark.is_checked()
    field = page.get_by_label("Tag for the selected models")
    field.fill("kept-focus")
    field.press("Enter")
    page.get_by_role("status").get_by_text("Tag “kept-focus” added to 1 model").wait_for()
    assert page.evaluate("document.activeElement.id") == "selection-tag"
    field.fill("kept-focus")
    page.get_by_role("button", name="Remove tag").focus()
    page.keyboard.press("Enter")
    page.get_by_role("status").get_by_text("Tag “kept-focus” removed from 1 model").wait_for()
    assert page.evaluate("document.activeElement.textContent") == "Remove tag"
    field.fill("draft")
    field.press("Escape")  # empties the field first
    assert field.input_value() == ""
    field.press("Escape")  # then leaves Select mode
    page.get_by_role("region", name="Selection").wait_for(state="hidden")
    assert "kept-focus" not in tags_of(page, hashes[0])


def test_on_a_phone_the_bar_leaves_the_last_row_in_view(visit: Visit, operations: set[str]) -> None:
    needs(operations, TAGS)
    page = visit.page
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto("/")
    page.locator(".card[data-state='full']").first.wait_for()
    page.get_by_role("button", name="Select", exact=True).click()
    page.locator(".card[data-state='full']").first.click()
    # At the bottom of the page, once its last row is drawn (a busy machine draws the cards
    # there a little after the scroll), what is drawn where the last card's name is: the card
    # itself, not the bar.
    page.wait_for_function(
        """() => {
             window.scrollTo(0, document.body.scrollHeight);
             const top = (card) => card.getBoundingClientRect().top;
             const cards = [...document.querySelectorAll(".card")];
             const lowest = cards.sort((a, b) => top(a) - top(b)).at(-1);
             if (!lowest || lowest.dataset.state !== "full") return false;
             const box = lowest.querySelector(".name").getBoundingClientRect();
             const hit = document.elementFromPoint(box.left + 5, box.top + box.height / 2);
             return Boolean(hit) && lowest.contains(hit);
           }""",
        timeout=10_000,
    )


@pytest.mark.parametrize("width", [390, 900])
def test_the_toast_of_a_tagging_is_above_the_bar_at_any_height(
    visit: Visit, operations: set[str], width: int
) -> None:
    """Below about 1,000 px the bar takes two rows (four on a phone): the toast that says what
    a tagging did was drawn over it, on the tag field and the buttons just used, for as long as
    it stayed; and the page's end left the last row half under it."""
    needs(operations, TAGS)
    page = visit.page
    page.set_viewport_size({"width": width, "height": 800})
    page, _ = selecting(visit, "/?type=embedding")
    page.locator(".card[data-state='full']").first.click()
    bar = page.get_by_role("region", name="Selection")
    assert bar.bounding_box()["height"] > 80  # more than one row
    tag = f"over-the-bar-{width}"
    bar.get_by_label("Tag for the selected models").fill(tag)
    bar.get_by_role("button", name="Add tag").click()
    said = page.locator(".toast").filter(has_text=f"Tag “{tag}” added to 1 model")
    said.wait_for()
    assert said.bounding_box()["y"] + said.bounding_box()["height"] <= bar.bounding_box()["y"]
    page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
    wait_frames(page, 2)
    lowest = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('.card')]"
        ".map((c) => c.getBoundingClientRect().bottom))"
    )
    assert lowest <= bar.bounding_box()["y"]
    bar.get_by_label("Tag for the selected models").fill(tag)
    bar.get_by_role("button", name="Remove tag").click()
    page.get_by_role("status").get_by_text(f"Tag “{tag}” removed from 1 model").wait_for()


def test_by_keyboard_clear_selection_and_escape_leave_the_focus_where_it_goes_on(
    visit: Visit, operations: set[str]
) -> None:
    needs(operations, TAGS)
    page, _ = selecting(visit, "/?type=checkpoint")
    bar = page.get_by_role("region", name="Selection")
    page.locator(".card-link").first.focus()
    page.keyboard.press("Space")
    bar.get_by_text("1 model selected").wait_for()
    bar.get_by_role("button", name="Clear selection").focus()
    page.keyboard.press("Enter")
    # The button pressed is disabled once nothing is picked: the focus goes to what the bar
    # says (it fell to the page's body, and the next Tab began at the top of the page).
    expect(bar.get_by_text("Click cards to select them")).to_be_focused()

    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    expect(bar.get_by_label("Tag for the selected models")).to_be_focused()
    page.keyboard.press("Escape")  # leaves Select mode: the bar goes, with the focus in it
    bar.wait_for(state="hidden")
    select = page.get_by_role("button", name="Select", exact=True)
    assert select.get_attribute("aria-pressed") == "false"
    expect(select).to_be_focused()  # where Select mode is turned on again
