"""Back to a page after following one of its links: the page shows the place it was left,
with the focus on the link followed. The Tags and Jobs pages and a model's opened at their
top with the focus nowhere: a collector who followed the 300th tag's "models" link, or a
duplicate's model far down the Jobs page, was sent back to the top of the list to find their
place again (the library had this already: test_back_from_a_model_puts_the_focus_on_its_card).
The tags and the duplicates are answered in the browser, as in test_tags_page and
test_long_pages."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.ui.conftest import Visit, open_model, route_duplicates
from tests.ui.seed import SeededLibrary


def follow_and_come_back(page: Any, link: Any, arrived: Any) -> None:
    """`link` followed from the keyboard, `arrived` waited for, then Back."""
    link.focus()
    page.keyboard.press("Enter")
    arrived.wait_for()
    page.go_back()


def test_back_to_the_tags_page_returns_to_the_tag_left(visit: Visit) -> None:
    page = visit.page
    many = [{"id": 10_000 + n, "name": f"tag {n:04d}", "models": 1 + n % 40} for n in range(1000)]
    page.route("**/api/tags", lambda route: route.fulfill(json={"tags": many}))
    page.goto("/tags")
    page.get_by_role("button", name="Show more (800 left)").focus()
    page.keyboard.press("Enter")
    link = page.get_by_role("link", name="22 models tagged tag 0301", exact=True)
    follow_and_come_back(page, link, page.get_by_role("heading", level=1, name="Library"))
    # Its row is past the first 200 drawn: they are drawn again down to it.
    expect(link).to_be_focused()
    expect(link).to_be_in_viewport()


def test_back_to_the_jobs_page_returns_to_the_duplicate_left(visit: Visit) -> None:
    page = visit.page
    route_duplicates(page, 100)
    page.goto("/jobs")
    link = page.get_by_role("region", name="Duplicates").get_by_role("link", name="Copied 090")
    follow_and_come_back(page, link, page.get_by_role("heading", level=1, name="No such model"))
    expect(link).to_be_focused()
    expect(link).to_be_in_viewport()
    assert page.evaluate("scrollY") > 1000


def test_back_to_a_model_returns_to_the_tag_left(visit: Visit, library: SeededLibrary) -> None:
    visit.page.set_viewport_size({"width": 1280, "height": 500})
    page = open_model(visit, library, "Ink Embedding v2")
    tags = page.get_by_role("region", name="Tags")
    link = tags.get_by_role("link").first
    name = link.inner_text()
    follow_and_come_back(page, link, page.locator("#filter-tag"))
    # Not the "← Library" link, which leads to the library filtered by that tag too.
    expect(tags.get_by_role("link", name=name, exact=True)).to_be_focused()
    expect(link).to_be_in_viewport()
    assert page.evaluate("scrollY") > 0


def test_a_reloaded_model_opens_where_it_was(visit: Visit, library: SeededLibrary) -> None:
    visit.page.set_viewport_size({"width": 1280, "height": 500})
    page = open_model(visit, library, "Ink Embedding v2")
    page.get_by_role("region", name="Tags").scroll_into_view_if_needed()
    page.wait_for_function("() => scrollY > 0")
    at = page.evaluate("scrollY")
    # Saved once scrolling pauses (a fifth of a second), in the page's history entry.
    page.wait_for_function("at => history.state && history.state.scrollY === at", arg=at)
    page.reload()
    page.get_by_role("heading", level=1, name="Ink Embedding v2").wait_for()
    page.wait_for_function("at => Math.abs(scrollY - at) < 2", arg=at)


# The page's own fetch, slowed: every answer comes `ms` late (a busy server, a slow link).
SLOW_ANSWERS = """ms => {
  const fetched = window.fetch;
  const later = () => new Promise((wait) => setTimeout(wait, ms));
  window.fetch = (...args) => later().then(() => fetched(...args));
}"""


def test_back_to_a_page_whose_lists_come_slowly_returns_to_the_place_left(visit: Visit) -> None:
    page = visit.page
    route_duplicates(page, 100)
    page.goto("/jobs")
    link = page.get_by_role("region", name="Duplicates").get_by_role("link", name="Copied 090")
    link.focus()
    page.keyboard.press("Enter")
    page.get_by_role("heading", level=1, name="No such model").wait_for()
    # Longer than the pause after which a scroll is saved: the page left blank while its
    # lists load must not be saved as the place it was left.
    page.evaluate(SLOW_ANSWERS, 600)
    page.go_back()
    expect(link).to_be_focused()
    expect(link).to_be_in_viewport()
    assert page.evaluate("scrollY") > 1000


def test_back_after_j_puts_the_focus_on_the_step_taken(visit: Visit) -> None:
    """J moved to the next model as its Next link does, but Back from there left the focus on
    nothing (the page's body): the next Tab began at the top of the page, and a screen reader
    said nothing of where it was. The focus is on Next, as after a click on it."""
    page = visit.page
    page.goto("/?type=embedding")
    page.locator(".card[data-state='full']").first.wait_for()
    names = page.locator(".card[data-state='full'] .name").all_inner_texts()
    page.locator(".card-link").nth(1).click()
    page.get_by_role("heading", level=1, name=names[1]).wait_for()
    page.keyboard.press("j")
    page.get_by_role("heading", level=1, name=names[2]).wait_for()
    page.go_back()
    page.get_by_role("heading", level=1, name=names[1]).wait_for()
    around = page.get_by_role("navigation", name="Around this model")
    expect(around.get_by_role("link", name=f"Next model: {names[2]}")).to_be_focused()
    page.keyboard.press("k")  # and the keys go on from there
    page.get_by_role("heading", level=1, name=names[0]).wait_for()
    page.go_back()
    expect(around.get_by_role("link", name=f"Previous model: {names[0]}")).to_be_focused()
