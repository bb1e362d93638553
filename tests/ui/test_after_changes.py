"""After a change, the pages show what it left, in a real browser: the images in their new
order (not the ones the page held under the same names), the focus where the person was, the
place in the library kept, the controls in step with the filters, and a deleted model gone
from Back."""

from __future__ import annotations

from typing import Any

import pyvips

from tests.ui.conftest import Visit, needs, open_model
from tests.ui.seed import SeededLibrary

NARROW = {"width": 390, "height": 844}
# The mean colour of what an <img> shows, read back through a canvas (same origin: readable).
SHOWN_COLOUR = """img => {
  const canvas = document.createElement("canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const context = canvas.getContext("2d");
  context.drawImage(img, 0, 0);
  const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
  const sums = [0, 0, 0];
  for (let i = 0; i < data.length; i += 4) for (let b = 0; b < 3; b += 1) sums[b] += data[i + b];
  return sums.map((s) => s / (data.length / 4));
}"""
# At least one image, each loaded (a list not drawn yet is not "every image loaded").
LOADED = """s => {
  const found = [...document.querySelectorAll(s)];
  return found.length > 0 && found.every(i => i.complete && i.naturalWidth > 0);
}"""


def shown(page: Any, selector: str) -> list[list[float]]:
    """The mean colour of each image `selector` finds, as the page shows it."""
    page.wait_for_function(LOADED, arg=selector)
    return list(page.locator(selector).evaluate_all(f"els => els.map({SHOWN_COLOUR})"))


def served(page: Any, sha: str, seqs: range, quality: str) -> list[list[float]]:
    """The mean colour of each of the model's images as the server has them now."""
    colours = []
    for seq in seqs:
        body = page.request.get(f"/api/images/{sha}_{seq}.webp?quality={quality}").body()
        image = pyvips.Image.new_from_buffer(body, "")
        colours.append([image[band].avg() for band in range(3)])
    return colours


def same_pictures(a: list[list[float]], b: list[list[float]]) -> bool:
    # Decoders may round differently by a level or two; the seeded pictures differ by dozens.
    return len(a) == len(b) and all(
        abs(x - y) <= 4 for p, q in zip(a, b, strict=True) for x, y in zip(p, q, strict=True)
    )


def test_the_gallery_and_the_card_show_the_new_cover_at_once(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    needs(operations, "POST /api/images/reorder")
    name = "Vapor Embedding v1"
    sha = library.hashes[name]
    page = visit.page
    page.goto(f"/?q={name.replace(' ', '+')}")
    page.get_by_role("link", name=f"{name}, embedding").first.click()
    page.get_by_role("heading", level=1, name=name).wait_for()
    before = served(page, sha, range(3), "low")
    assert same_pictures(shown(page, ".thumbs img"), before)
    page.get_by_role("button", name="Example image 3 of 3").click()
    page.get_by_role("button", name="Set as cover").click()
    page.get_by_role("status").get_by_text("Cover changed").wait_for()
    after = served(page, sha, range(3), "low")
    assert same_pictures(after, [before[2], before[0], before[1]])
    assert same_pictures(shown(page, ".thumbs img"), after)
    assert same_pictures(shown(page, ".stage img"), served(page, sha, range(1), "medium"))
    page.get_by_role("link", name="← Library").click()
    cover = f".card:has(a[href='models/{sha}']) .cover img[src]"
    assert same_pictures(shown(page, cover), after[:1])


def test_alt_arrow_moves_an_image_again_and_again(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    needs(operations, "POST /api/images/reorder")
    name = "Vapor Embedding v2"
    sha = library.hashes[name]
    page = open_model(visit, library, name)
    first, second, third = served(page, sha, range(3), "low")
    page.get_by_role("button", name="Example image 1 of 3 of Vapor Embedding v2 (cover)").focus()
    for place in (2, 3):
        page.keyboard.press("Alt+ArrowRight")
        page.locator(f".thumbs li:nth-child({place}) .thumb[aria-current='true']").wait_for()
        focused = page.evaluate("document.activeElement.getAttribute('aria-label')")
        assert focused.startswith(f"Example image {place} of 3")
    assert same_pictures(served(page, sha, range(3), "low"), [second, third, first])


def test_back_to_the_library_returns_to_the_same_place_after_a_reload(visit: Visit) -> None:
    page = visit.page
    page.set_viewport_size({"width": 800, "height": 600})
    page.goto("/")
    page.locator(".card[data-state='full']").first.wait_for()
    page.evaluate("window.scrollTo(0, 900)")
    page.wait_for_function("window.scrollY === 900")
    # A card on screen, opened by a click as a person would.
    href = page.wait_for_function(
        """() => [...document.querySelectorAll(".card-link")].find((a) => {
             const box = a.getBoundingClientRect();
             return box.top > 60 && box.top < innerHeight - 120;
           })?.getAttribute("href")"""
    ).json_value()
    page.locator(f".card-link[href='{href}']").click()
    page.wait_for_url(f"**/{href}")
    page.reload()  # the kept results are gone: the library is asked again on the way back
    page.locator("h1").wait_for()
    page.go_back()
    page.get_by_role("heading", level=1, name="Library").wait_for()
    page.locator(f".card-link[href='{href}']").wait_for()
    # Where the page was when the card was opened (the click may have scrolled it a little).
    left_at = page.evaluate("history.state.scrollY")
    assert left_at >= 850
    assert page.evaluate("window.scrollY") == left_at


def test_an_edit_keeps_the_way_to_the_previous_and_next_model(
    visit: Visit, operations: set[str]
) -> None:
    needs(operations, "PUT /api/models/{sha256}/tags")
    page = visit.page
    total = page.request.get("/api/models?type=checkpoint&limit=1").json()["total"]
    page.goto("/?type=checkpoint")
    page.locator(".card[data-state='full']").first.wait_for()
    names = page.locator(".card[data-state='full'] .name").all_inner_texts()
    page.locator(".card-link").nth(1).click()
    around = page.get_by_role("navigation", name="Around this model")
    around.get_by_text(f"2 of {total}").wait_for()
    tags = page.get_by_role("region", name="Tags")
    tags.get_by_label("Add a tag").fill("kept-around")
    tags.get_by_label("Add a tag").press("Enter")
    tags.get_by_role("link", name="kept-around").wait_for()
    assert around.get_by_text(f"2 of {total}").is_visible()
    assert around.get_by_role("link", name=f"Next model: {names[2]}").is_visible()
    tags.get_by_role("button", name="Remove tag kept-around").click()
    tags.get_by_role("link", name="kept-around").wait_for(state="detached")
    assert around.get_by_role("link", name=f"Previous model: {names[0]}").is_visible()


def test_removing_filters_clears_their_controls(visit: Visit) -> None:
    page = visit.page
    page.goto("/?type=lora&tag=anime")
    page.locator(".card[data-state='full']").first.wait_for()
    page.get_by_role("button", name="Remove filter tag anime").click()
    page.wait_for_url("**/?type=lora")
    assert page.get_by_label("Tag", exact=True).input_value() == ""
    page.get_by_role("button", name="Remove filter type lora").click()
    page.wait_for_url(lambda url: url.endswith("/"))
    assert page.get_by_label("Type", exact=True).input_value() == ""
    page.goto("/?q=zzzqqq&type=lora")
    page.get_by_role("button", name="Clear filters").click()
    page.locator(".card[data-state='full']").first.wait_for()
    assert page.get_by_role("searchbox", name="Search").input_value() == ""
    assert page.get_by_label("Type", exact=True).input_value() == ""


def test_a_model_deleted_from_the_library_leaves_no_entry_to_come_back_to(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    needs(operations, "DELETE /api/models/{sha256}")
    page = visit.page
    imported = page.request.post(
        "/api/migration/import_a_model", data={"id": library.pending["fresh5"]}
    ).json()
    page.goto("/?type=checkpoint")
    page.get_by_role("link", name="Fresh Pending 5, checkpoint").click()
    page.get_by_role("heading", level=1, name="Fresh Pending 5").wait_for()
    entries = page.evaluate("history.length")
    page.get_by_role("button", name="Delete model").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete model").click()
    page.get_by_role("heading", level=1, name="Library").wait_for()
    page.wait_for_url("**/?type=checkpoint")
    page.locator(".card[data-state='full']").first.wait_for()
    assert page.get_by_role("link", name="Fresh Pending 5, checkpoint").count() == 0
    # Back went to the library's own entry; no new one leads back to the deleted model.
    assert page.evaluate("history.length") == entries
    assert page.request.get(f"/api/models/{imported['sha256']}").status == 404


def test_the_comparison_opens_at_its_top_and_fits_a_phone(visit: Visit) -> None:
    page = visit.page
    for viewport in ({"width": 1280, "height": 800}, NARROW):
        page.set_viewport_size(viewport)
        page.goto("/pending")
        page.get_by_role("button", name="Import Pending Conflict 2").click()
        dialog = page.get_by_role("dialog")
        title = "“Pending Conflict 2” is already in the library"
        dialog.get_by_role("heading", name=title).wait_for()
        assert dialog.evaluate("d => d.scrollTop") == 0
        assert dialog.evaluate("d => d.scrollWidth <= d.clientWidth")
        dialog.get_by_role("button", name="Decide later").click()
        dialog.wait_for(state="detached")
