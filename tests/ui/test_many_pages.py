"""A library of several pages (the grid asks for 100 models at a time) in a real browser: a
Shift range and Select all pick every card, pages not fetched yet included, J/K go on past the end
of a page, the way back to the library leads to the card of the model left, and a page that
cannot be fetched is said, and asked for again later, not at every frame."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.sync_api import expect

from modelshelf.app import create_app
from modelshelf.config import Settings
from modelshelf.storage import models
from modelshelf.web.keys import SHELF
from tests.server import ServerProcess, serve_seeded
from tests.ui.conftest import Visit, visit_of, wait_frames

MODELS = 250


def sha_of(i: int) -> str:
    return hashlib.sha256(f"many-pages-{i}".encode()).hexdigest()


async def seed(data_dir: Path) -> None:
    """MODELS models named "Page model 000" and on (so the name order is the index order),
    written through the storage layer in one change."""
    runner = web.AppRunner(create_app(Settings(data_dir=data_dir).resolve_paths()))
    await runner.setup()
    try:
        async with runner.app[SHELF].changes.change() as change:
            for i in range(MODELS):
                fields = {
                    "path": f"/models/page_{i:03d}.safetensors",
                    "name": f"Page model {i:03d}",
                    "type": "lora",
                    "size_bytes": 1_000_000 + i,
                    "created_at": 1_700_000_000_000 + i,
                    "meta_json": {},
                }
                await models.insert_model(change.tx, sha_of(i), fields)
    finally:
        await runner.cleanup()


@pytest.fixture(scope="module")
def pages_server(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[ServerProcess]:
    root = tmp_path_factory.mktemp("ui-pages")
    yield from serve_seeded(root / "data", seed(root / "data"))


@pytest.fixture
def pages_visit(browser: Any, pages_server: ServerProcess) -> Iterator[Visit]:
    yield from visit_of(browser, pages_server)


def card(page: Any, index: int) -> Any:
    """The card at `index`, scrolled into the grid's window and drawn."""
    page.locator(".card[data-state='full']").first.wait_for()
    page.evaluate(
        """index => {
             const grid = document.querySelector(".grid-viewport");
             const row = grid.querySelector(".card");
             const columns = Math.round(grid.clientWidth / row.getBoundingClientRect().width);
             const top = grid.getBoundingClientRect().top + scrollY;
             scrollTo(0, top + Math.floor(index / columns) * (row.offsetHeight + 12) - 200);
           }""",
        index,
    )
    found = page.locator(f".card[data-index='{index}'][data-state='full']")
    found.wait_for()
    return found


def test_a_shift_range_picks_every_card_between_pages_not_fetched_included(
    pages_visit: Visit,
) -> None:
    page = pages_visit.page
    page.goto("/")
    page.get_by_role("button", name="Select", exact=True).click()
    card(page, 0).click()
    card(page, MODELS - 1).click(modifiers=["Shift"])
    selected = page.get_by_role("region", name="Selection").get_by_text(f"{MODELS} models selected")
    selected.wait_for()


def test_select_all_picks_every_model_of_the_results_pages_not_fetched_included(
    pages_visit: Visit,
) -> None:
    page = pages_visit.page
    page.goto("/?q=page+model+2")  # Page model 200 to 249
    page.get_by_text("50 models").wait_for()
    page.get_by_role("button", name="Select", exact=True).click()
    bar = page.get_by_role("region", name="Selection")
    bar.get_by_role("button", name="Select all 50").click()
    bar.get_by_text("50 models selected").wait_for()
    page.get_by_role("searchbox", name="Search").fill("")
    page.get_by_text(f"{MODELS} models").wait_for()  # three pages, the first one fetched
    bar.get_by_role("button", name=f"Select all {MODELS}").click()
    bar.get_by_text(f"{MODELS} models selected").wait_for()
    bar.get_by_role("button", name="Clear selection").click()
    bar.get_by_text("Click cards to select them").wait_for()


def test_the_selection_bar_is_one_row_on_a_desktop_window(pages_visit: Visit) -> None:
    """With every model picked (the counts at their longest here), the bar's controls sit on
    one row from 1280 to 1920 px wide: a second row covered more of the grid, for nothing."""
    page = pages_visit.page
    page.goto("/")
    page.get_by_role("button", name="Select", exact=True).click()
    bar = page.get_by_role("region", name="Selection")
    bar.get_by_role("button", name=f"Select all {MODELS}").click()
    bar.get_by_text(f"{MODELS} models selected").wait_for()
    for width in (1280, 1440, 1920):
        page.set_viewport_size({"width": width, "height": 900})
        wait_frames(page, 2)
        rows = bar.evaluate(
            """bar => new Set([...bar.children]
                 .filter((c) => c.getClientRects().length && c.offsetWidth > 1)
                 .map((c) => Math.round(c.getBoundingClientRect().top + c.offsetHeight / 2))
               ).size"""
        )
        assert rows == 1, f"the selection bar has {rows} rows at {width} px"


def test_j_goes_on_past_the_end_of_a_page(pages_visit: Visit) -> None:
    page = pages_visit.page
    page.goto("/")
    card(page, 99).locator(".card-link").click()
    page.get_by_role("heading", level=1, name="Page model 099").wait_for()
    around = page.get_by_role("navigation", name="Around this model")
    around.get_by_role("link", name="Next model: Page model 100").wait_for()
    page.keyboard.press("j")
    page.get_by_role("heading", level=1, name="Page model 100").wait_for()
    page.keyboard.press("k")
    page.get_by_role("heading", level=1, name="Page model 099").wait_for()


FOCUSED_CARD = """() => {
  const link = document.activeElement.closest(".card-link");
  if (!link) return null;
  const box = link.getBoundingClientRect();
  const bar = document.querySelector(".toolbar").getBoundingClientRect().bottom;
  return { href: link.getAttribute("href"), inView: box.top >= bar && box.bottom <= innerHeight };
}"""


def test_the_library_link_after_j_returns_to_the_card_of_the_model_left(
    pages_visit: Visit,
) -> None:
    page = pages_visit.page
    page.goto("/")
    card(page, 140).locator(".card-link").click()
    page.get_by_role("heading", level=1, name="Page model 140").wait_for()
    for shown in (141, 142, 143):
        page.keyboard.press("j")
        page.get_by_role("heading", level=1, name=f"Page model {shown:03d}").wait_for()
    page.get_by_role("navigation", name="Around this model").get_by_role(
        "link", name="← Library"
    ).click()
    page.get_by_role("heading", level=1, name="Library").wait_for()
    page.wait_for_function(f"() => document.activeElement.closest(\"[href$='{sha_of(143)}']\")")
    assert page.evaluate(FOCUSED_CARD) == {"href": f"models/{sha_of(143)}", "inView": True}
    # The arrow keys go on from there.
    page.keyboard.press("ArrowRight")
    assert page.evaluate(FOCUSED_CARD) == {"href": f"models/{sha_of(144)}", "inView": True}


def test_back_from_a_model_puts_the_focus_on_its_card(pages_visit: Visit) -> None:
    page = pages_visit.page
    page.goto("/")
    card(page, 180).locator(".card-link").focus()
    page.keyboard.press("Enter")
    page.get_by_role("heading", level=1, name="Page model 180").wait_for()
    page.go_back()
    page.get_by_role("heading", level=1, name="Library").wait_for()
    page.wait_for_function(f"() => document.activeElement.closest(\"[href$='{sha_of(180)}']\")")
    assert page.evaluate(FOCUSED_CARD) == {"href": f"models/{sha_of(180)}", "inView": True}


def test_a_page_that_cannot_be_fetched_is_said_and_not_asked_for_every_frame(
    pages_visit: Visit,
) -> None:
    page = pages_visit.page
    page.goto("/")
    page.locator(".card[data-state='full']").first.wait_for()
    refused: list[str] = []

    def down(route: Any) -> None:
        """The server went away after the first page."""
        if "offset=0" in route.request.url:
            route.fallback()
        else:
            refused.append(route.request.url)
            route.abort("connectionrefused")

    page.route("**/api/models?*", down)
    page.evaluate("scrollTo(0, document.documentElement.scrollHeight / 2)")
    page.locator(".card[data-state='failed']", has_text="Not loaded").first.wait_for()
    said = page.get_by_role("alert")
    said.get_by_text("Some models could not be loaded: The server cannot be reached").wait_for()
    # Time for the grid to ask again, were it to ask every frame.
    wait_frames(page, 30)
    assert 1 <= len(refused) <= 2, refused  # the pages on screen, once each

    page.unroute("**/api/models?*")
    said.get_by_role("button", name="Try again").click()
    page.locator(".card.skeleton").first.wait_for(state="detached")
    assert page.locator(".card[data-state='full']").evaluate_all(
        "cards => cards.some((c) => c.dataset.index >= 100)"
    )


def test_the_toast_that_says_models_could_not_be_loaded_goes_once_they_load(
    pages_visit: Visit,
) -> None:
    page = pages_visit.page
    page.goto("/")
    page.locator(".card[data-state='full']").first.wait_for()

    def down(route: Any) -> None:
        """The server went away after the first page."""
        if "offset=0" in route.request.url:
            route.fallback()
        else:
            route.abort("connectionrefused")

    page.route("**/api/models?*", down)
    page.evaluate("scrollTo(0, document.documentElement.scrollHeight / 2)")
    said = page.get_by_role("alert").get_by_text("Some models could not be loaded")
    said.wait_for()
    page.unroute("**/api/models?*")
    # Asked for again by itself (after 5 s): once the cards are there, the toast has gone
    # (it stayed for its 21 s, saying the models could not be loaded under the models). The
    # wait is the default 10 s, under those 21 s: the failed cards become loading ones when
    # the retry starts, before its answer, which a loaded machine may give late.
    page.locator(".card[data-state='failed']").first.wait_for(state="detached")
    expect(said).to_have_count(0)
