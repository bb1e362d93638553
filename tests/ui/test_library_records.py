"""What the library page asks of the server for its cards, in a real browser: each page of
records carries only the base model of its meta_json (a card shows nothing else of it), the
card shows the base model the filter matches, and a model is found by its AutoV2."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import Visit, wait_frames
from tests.ui.seed import SeededLibrary


def open_library(visit: Visit, path: str = "/") -> Any:
    page = visit.page
    page.goto(path)
    page.locator(".card[data-state='full']").first.wait_for()
    return page


def test_pages_of_cards_carry_only_the_base_model_of_meta_json(visit: Visit) -> None:
    page = visit.page
    with page.expect_response(lambda r: "/api/models?" in r.url) as answer:
        page.goto("/")
    records = json.loads(answer.value.body())["models"]
    assert records and all(set(r["meta_json"]) <= {"base_model"} for r in records)
    assert any(r["meta_json"] for r in records)
    first = page.locator(".card[data-state='full']").first
    first.wait_for()
    assert "SD 1.5" in first.inner_text()  # Aurora Lineart XL's base model, on its card


def test_a_model_is_found_by_its_autov2_pasted_in_the_search(
    visit: Visit, library: SeededLibrary
) -> None:
    page = open_library(visit)
    autov2 = library.hashes["Aurora Lineart XL"][:10].upper()  # as Civitai and A1111 show it
    page.get_by_role("searchbox", name="Search").fill(autov2)
    page.get_by_text("1 model", exact=True).wait_for()
    # The count is shown a frame before the grid draws its cards.
    expect(page.locator(".card[data-state='full'] .name")).to_have_text(["Aurora Lineart XL"])


LONG_TYPE = "LyCORIS-LoCon-Hadamard-Product-Adapter"
PHONE = {"width": 390, "height": 844}


def test_a_long_type_on_a_card_without_a_cover_is_seen_whole(visit: Visit) -> None:
    """A card with no cover shows its model's type in the cover's place; a long type (a
    collector's own, or a scanned folder's name) was set flush against the cover's left edge,
    where the ring of a picked card (Select) lies over its first letters: "YCORIS-LOCON-"."""
    page = visit.page
    page.set_viewport_size(PHONE)

    def long_type(route: Any) -> None:
        answer = route.fetch().json()
        for record in answer["models"]:
            record["type"], record["images"] = LONG_TYPE, []
        route.fulfill(json=answer)

    page.route("**/api/models?*", long_type)
    page = open_library(visit)
    card = page.locator(".card[data-state='full']").first
    placeholder = card.locator(".cover .placeholder")
    expect(placeholder).to_have_text(LONG_TYPE)
    page.get_by_role("button", name="Select", exact=True).click()
    card.locator(".pick").check()
    expect(card).to_have_class(re.compile(r"\bpicked\b"))
    ring = 3  # px, .card.picked::after
    cover = card.locator(".cover").bounding_box()
    text = placeholder.evaluate(
        """(el) => {
             const range = document.createRange();
             range.selectNodeContents(el);
             const box = range.getBoundingClientRect();
             return { left: box.left, right: box.right, top: box.top, bottom: box.bottom };
           }"""
    )
    assert text["left"] >= cover["x"] + ring, (text, cover)
    assert text["right"] <= cover["x"] + cover["width"] - ring, (text, cover)
    assert text["top"] >= cover["y"] and text["bottom"] <= cover["y"] + cover["height"], text


# Whether `end` is drawn inside the element's box (not cut off below its last line).
SHOWN_AT_END = """(el, end) => {
  const box = el.getBoundingClientRect();
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const at = node.data.lastIndexOf(end);
    if (at < 0) continue;
    const range = document.createRange();
    range.setStart(node, at);
    range.setEnd(node, at + end.length);
    const drawn = range.getBoundingClientRect();
    if (drawn.width && drawn.top >= box.top - 1 && drawn.bottom <= box.bottom + 1
        && drawn.left >= box.left - 1 && drawn.right <= box.right + 1) return true;
  }
  // Or drawn by CSS (generated content) in an element inside the box.
  const inside = (drawn) => drawn.width && drawn.top >= box.top - 1
    && drawn.bottom <= box.bottom + 1 && drawn.left >= box.left - 1
    && drawn.right <= box.right + 1;
  const says = (part, at) => getComputedStyle(part, at).content.endsWith(`${end}"`);
  return [...el.querySelectorAll("*")].some((part) => inside(part.getBoundingClientRect())
    && (says(part, "::before") || says(part, "::after")));
}"""
STEM = "realisticVisionV60B1_v51HyperVAE_inpainting_fp16_pruned_"


@pytest.mark.parametrize("viewport", [{"width": 1440, "height": 900}, PHONE])
def test_long_names_that_differ_at_their_end_are_told_apart_on_the_cards(
    visit: Visit, viewport: dict[str, int]
) -> None:
    """Scanned models are named after their files, and a collector's files share long stems
    ("realisticVisionV60B1_v51HyperVAE_inpainting_fp16_pruned_007"): cut after two lines, every
    card read "realisticVisionV60B1_v51HyperVAE_inpainting…", the part that tells them apart
    never shown. A name cut keeps its end in sight; one that fits is shown once, as it is."""
    page = visit.page
    page.set_viewport_size(viewport)

    def stems(route: Any) -> None:
        answer = route.fetch().json()
        for n, record in enumerate(answer["models"]):
            if n != 2:
                record["name"] = f"{STEM}{n:03d}"
        route.fulfill(json=answer)

    page.route("**/api/models?*", stems)
    page = open_library(visit)
    cards = page.locator(".card[data-state='full']")
    expect(cards.nth(0).locator(".name")).to_have_attribute("title", f"{STEM}000")
    wait_frames(page, 3)
    for n in (0, 1):
        assert cards.nth(n).locator(".name").evaluate(SHOWN_AT_END, f"{n:03d}"), n
    short = cards.nth(2).locator(".name")
    assert short.inner_text() == short.get_attribute("title")  # whole, and its end not twice
    # The name's text is the name alone, for what reads it.
    assert cards.nth(0).locator(".name").evaluate("(el) => el.textContent") == f"{STEM}000"
