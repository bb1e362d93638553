"""The Tags page in a real browser: every tag with how many models carry it (a link to the
library filtered by it), a filter and two orders kept in the URL, rename in place (Enter saves,
Escape cancels), a name that is taken offers to merge into that tag, delete after a
confirmation that says how many models carry it, the focus kept where the person works, and a
thousand tags filtered as fast as a few."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.server import ServerProcess
from tests.ui.conftest import Visit, needs, visit_of, wait_frames
from tests.ui.shelf import TAGGED, shelf_server
from tests.ui.test_unsaved_work import Gate

MERGE = "POST /api/tags/{id}/merge"


@pytest.fixture(scope="module")
def shelf(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[ServerProcess]:
    yield from shelf_server(tmp_path_factory.mktemp("ui-tags"))


@pytest.fixture
def shelf_visit(browser: Any, shelf: ServerProcess) -> Iterator[Visit]:
    yield from visit_of(browser, shelf)


def tag_list(page: Any) -> Any:
    return page.get_by_role("list", name="Tags")


def row(page: Any, name: str) -> Any:
    return (
        tag_list(page)
        .get_by_role("listitem")
        .filter(has=page.locator(".tag-name", has_text=re.compile(f"^{re.escape(name)}$")))
    )


def renaming(page: Any, name: str) -> Any:
    """The form that renames the tag `name`, in its row."""
    return tag_list(page).get_by_role("form", name=f"Rename tag {name}")


def shown_names(page: Any) -> list[str]:
    return list(tag_list(page).locator(".tag-name").all_inner_texts())


def open_tags(visit: Visit, path: str = "/tags") -> Any:
    page = visit.page
    page.goto(path)
    tag_list(page).locator(".tag-name").first.wait_for()
    return page


def server_tags(page: Any) -> dict[str, int]:
    return {t["name"]: t["models"] for t in page.request.get("/api/tags").json()["tags"]}


def focused_label(page: Any) -> str | None:
    return page.evaluate("document.activeElement.getAttribute('aria-label')")  # type: ignore[no-any-return]


def test_the_tags_link_leads_to_every_tag_with_its_count(shelf_visit: Visit) -> None:
    page = shelf_visit.page
    page.goto("/")
    page.locator(".card[data-state='full']").first.wait_for()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tags").click()
    page.wait_for_url("**/tags")
    page.get_by_role("heading", level=1, name="Tags").wait_for()
    tag_list(page).locator(".tag-name").first.wait_for()
    nav = page.get_by_role("navigation", name="Main").get_by_role("link", name="Tags")
    assert nav.get_attribute("aria-current") == "page"
    assert shown_names(page) == sorted(TAGGED)
    page.get_by_text(f"{len(TAGGED)} tags", exact=True).wait_for()
    anime = row(page, "anime").get_by_role("link", name="5 models tagged anime")
    assert anime.inner_text() == "5 models"
    assert row(page, "unused").get_by_text("no models").is_visible()
    assert row(page, "unused").get_by_role("link").count() == 0
    # The count leads to the library filtered by the tag.
    anime.click()
    page.wait_for_url("**/?tag=anime")
    page.get_by_text("5 models", exact=True).wait_for()
    page.go_back()
    page.get_by_role("heading", level=1, name="Tags").wait_for()


def test_the_filter_and_the_order_narrow_the_list_and_stay_in_the_url(
    shelf_visit: Visit,
) -> None:
    page = open_tags(shelf_visit)
    page.get_by_label("Filter tags").press_sequentially("ANI")
    page.get_by_text(f"2 of {len(TAGGED)} tags").wait_for()
    assert shown_names(page) == ["animal", "anime"]
    page.wait_for_url(re.compile(r"/tags\?q=ANI$"))
    page.get_by_label("Sort").select_option(label="Most used first")
    page.wait_for_url(re.compile(r"/tags\?q=ANI&sort=most$"))
    expect(tag_list(page).locator(".tag-name")).to_have_text(["anime", "animal"])
    page.reload()
    expect(tag_list(page).locator(".tag-name")).to_have_text(["anime", "animal"])
    assert page.get_by_label("Filter tags").input_value() == "ANI"
    # Full-width letters (an input method's) filter as the letters they are.
    page.get_by_label("Filter tags").fill("\uff21\uff2e\uff29")
    page.get_by_text(f"2 of {len(TAGGED)} tags").wait_for()
    page.get_by_label("Filter tags").fill("nothing like it")
    page.get_by_text("No tag has “nothing like it” in its name.").wait_for()
    page.get_by_label("Filter tags").fill("")
    page.get_by_label("Sort").select_option(label="Fewest models first")
    assert shown_names(page)[0] == "unused"


def test_rename_in_place_escape_cancels_and_enter_saves(shelf_visit: Visit) -> None:
    page = open_tags(shelf_visit)
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.method) if "/api/tags/" in r.url else None)
    row(page, "style").get_by_role("button", name="Rename tag style").click()
    field = page.get_by_label("New name for the tag style")
    expect(field).to_be_focused()
    field.fill("half typed")
    field.press("Escape")
    field.wait_for(state="detached")
    assert sent == []
    assert focused_label(page) == "Rename tag style"
    assert server_tags(page)["style"] == 1

    page.keyboard.press("Enter")  # the focused Rename opens the form again
    field.fill("  Styles  ")
    field.press("Enter")
    page.get_by_role("status").get_by_text("Tag “style” renamed to “styles”").wait_for()
    row(page, "styles").wait_for()
    assert sent == ["PATCH"]
    assert "style" not in server_tags(page) and server_tags(page)["styles"] == 1
    # The focus is on the renamed tag's Rename, in its new place (the list stays sorted).
    expect(page.get_by_role("button", name="Rename tag styles")).to_be_focused()
    assert shown_names(page) == sorted(shown_names(page))
    # The library's cards show the new name.
    page.goto("/?tag=styles")
    page.get_by_text("1 model", exact=True).wait_for()


def test_a_name_that_is_taken_is_said_and_kept_to_be_mended(shelf_visit: Visit) -> None:
    page = open_tags(shelf_visit)
    row(page, "sketch").get_by_role("button", name="Rename tag sketch").click()
    field = page.get_by_label("New name for the tag sketch")
    field.fill("watercolor")
    field.press("Enter")
    said = renaming(page, "sketch").get_by_role("alert")
    said.get_by_text("A tag named “watercolor” (2 models) exists already").wait_for()
    assert field.input_value() == "watercolor"
    expect(field).to_be_focused()
    assert server_tags(page)["sketch"] == 1
    field.press("Escape")
    field.wait_for(state="detached")


def test_a_taken_name_mended_in_rename_is_no_longer_said_taken(shelf_visit: Visit) -> None:
    """As the field was typed over, "A tag named watercolor exists already" (and its offer to
    merge into watercolor) stayed under a name no longer taken, until the next Enter."""
    page = open_tags(shelf_visit)
    row(page, "sketch").get_by_role("button", name="Rename tag sketch").click()
    field = page.get_by_label("New name for the tag sketch")
    field.fill("watercolor")
    field.press("Enter")
    renaming(page, "sketch").get_by_text("exists already").wait_for()
    page.keyboard.type(" wash")
    expect(renaming(page, "sketch").locator(".rename-note")).to_be_empty()
    field.press("Escape")
    field.wait_for(state="detached")
    assert server_tags(page)["sketch"] == 1


def test_a_name_that_is_taken_offers_to_merge_into_that_tag(
    shelf_visit: Visit, operations: set[str]
) -> None:
    needs(operations, MERGE)
    page = open_tags(shelf_visit)
    page.get_by_label("Filter tags").fill("portrait")
    row(page, "portraits").get_by_role("button", name="Rename tag portraits").click()
    field = page.get_by_label("New name for the tag portraits")
    field.fill("portrait")
    field.press("Enter")
    merge = renaming(page, "portraits").get_by_role("button", name="Merge into portrait")
    merge.wait_for()
    said = renaming(page, "portraits").get_by_role("alert").inner_text()
    assert "A tag named “portrait” (3 models) exists already" in said, said
    with page.expect_request(lambda r: r.method == "POST" and "/merge" in r.url) as sent:
        merge.click()
    assert sent.value.post_data_json == {"into": _id_of(page, "portrait")}
    said = "Tag “portraits” merged into “portrait”; it was on 2 models"
    page.get_by_role("status").get_by_text(said).wait_for()
    row(page, "portraits").wait_for(state="detached")
    # Models 0, 7, 8 and 9 (7 carried both).
    row(page, "portrait").get_by_role("link", name="4 models tagged portrait").wait_for()
    assert server_tags(page)["portrait"] == 4 and "portraits" not in server_tags(page)
    assert focused_label(page) == "Rename tag portrait"


def _id_of(page: Any, name: str) -> int:
    found = [t["id"] for t in page.request.get("/api/tags").json()["tags"] if t["name"] == name]
    return int(found[0])


def test_delete_says_how_many_models_carry_the_tag_and_the_focus_moves_on(
    shelf_visit: Visit,
) -> None:
    page = open_tags(shelf_visit)
    names = shown_names(page)
    after = names[names.index("animal") + 1]
    row(page, "animal").get_by_role("button", name="Delete tag animal").click()
    dialog = page.get_by_role("dialog", name="Delete the tag “animal”?")
    dialog.get_by_text("2 models carry it").wait_for()
    dialog.get_by_role("button", name="Cancel").click()
    assert focused_label(page) == "Delete tag animal"
    assert server_tags(page)["animal"] == 2

    page.keyboard.press("Enter")
    dialog.get_by_role("button", name="Delete tag").click()
    page.get_by_role("status").get_by_text("Tag “animal” deleted from 2 models").wait_for()
    row(page, "animal").wait_for(state="detached")
    assert "animal" not in server_tags(page)
    assert focused_label(page) == f"Delete tag {after}"
    page.get_by_text(f"{len(names) - 1} tags", exact=True).wait_for()


def test_deleting_a_tag_no_model_carries_says_so_plainly(shelf_visit: Visit) -> None:
    """A tag made and never used, deleted, was said as "Tag “x” deleted from 0 models"."""
    page = shelf_visit.page
    page.request.post("/api/tags", data={"name": "never used"})
    page = open_tags(shelf_visit)
    row(page, "never used").get_by_role("button", name="Delete tag never used").click()
    dialog = page.get_by_role("dialog", name="Delete the tag “never used”?")
    dialog.get_by_text("No model carries it.").wait_for()
    dialog.get_by_role("button", name="Delete tag").click()
    said = page.get_by_role("status").get_by_text(re.compile("^Tag “never used” deleted"))
    expect(said).to_have_text("Tag “never used” deleted; no model had it")
    assert "never used" not in server_tags(page)


# A thousand tags: every keystroke in the filter draws the list anew; how many rows each drew.
ROWS_PER_KEY = """async (words) => {
  const field = document.getElementById("tag-filter");
  const drawn = [];
  for (const word of words) {
    field.value = word;
    field.dispatchEvent(new Event("input", { bubbles: true }));
    drawn.push(document.querySelectorAll(".tag-list > li").length);
  }
  return drawn;
}"""


def test_a_keystroke_over_a_thousand_tags_draws_at_most_200_rows(shelf_visit: Visit) -> None:
    page = shelf_visit.page
    many = [{"id": 10_000 + n, "name": f"tag {n:04d}", "models": n % 40} for n in range(1000)]
    page.route("**/api/tags", lambda route: route.fulfill(json={"tags": many}))
    page.goto("/tags")
    page.get_by_text("1,000 tags", exact=True).wait_for()
    # Rows are drawn 200 at a time: a keystroke costs what a few hundred tags do.
    rows = page.locator(".tag-list > li")
    expect(rows).to_have_count(200)
    # Its time is measured by bench/ui_library.py, not here: no keystroke draws more than 200.
    drawn = page.evaluate(ROWS_PER_KEY, ["t", "ta", "tag", "tag 0", "tag 05", "tag 0", ""])
    assert drawn == [200, 200, 200, 200, 100, 200, 200], drawn
    page.get_by_label("Filter tags").fill("tag 05")
    expect(rows).to_have_count(100)
    page.get_by_label("Filter tags").fill("")
    # The next rows come as the end of the list nears, or at the button. On the button, the
    # keyboard's user chooses: the rows are not added under them as it comes into view.
    more = page.get_by_role("button", name="Show more (800 left)")
    more.focus()
    expect(more).to_be_in_viewport()
    wait_frames(page, 3)
    expect(rows).to_have_count(200)
    page.keyboard.press("Enter")
    expect(rows).to_have_count(400)
    assert focused_label(page) == "Rename tag tag 0200"
    # Scrolled to the end again and again, as a person reading on does.
    page.wait_for_function(
        """() => {
             scrollTo(0, document.body.scrollHeight);
             return document.querySelectorAll(".tag-list > li").length === 1000;
           }"""
    )
    page.get_by_role("button", name=re.compile("Show more")).wait_for(state="hidden")


def test_a_slow_delete_is_shown_as_running_and_a_second_click_asks_nothing(
    shelf_visit: Visit,
) -> None:
    """On a slow server a second click asked again, and its delete was told the tag had been
    "changed or deleted elsewhere"."""
    page = shelf_visit.page
    assert page.request.post("/api/tags", data={"name": "slow-to-go"}).ok
    page = open_tags(shelf_visit, "/tags?q=slow-to-go")
    gate = Gate(page, re.compile(r".*/api/tags/\d+$"), "DELETE")
    control = row(page, "slow-to-go").get_by_role("button", name="Delete tag slow-to-go")
    control.click()
    page.get_by_role("dialog").get_by_role("button", name="Delete tag").click()
    expect(control).to_have_text("Deleting…")
    expect(control).to_be_disabled()
    assert control.get_attribute("aria-busy") == "true"
    control.click(force=True)  # a second click while the first runs
    expect(page.get_by_role("dialog")).to_have_count(0)
    gate.wait_held(page, 1)
    assert len(gate.held) == 1
    gate.open()
    page.get_by_role("status").get_by_text("Tag “slow-to-go” deleted; no model had it").wait_for()
    row(page, "slow-to-go").wait_for(state="detached")
    assert page.locator(".toast.error").count() == 0


@pytest.fixture(scope="module")
def many_tags(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[ServerProcess]:
    """A shelf of its own with 250 tags more ("filler 000" to "filler 249"), made as a person
    makes them: more than the 200 rows the list draws at first."""
    for process in shelf_server(tmp_path_factory.mktemp("ui-tags-many")):
        with urllib.request.urlopen(process.url + "/api/tags") as response:
            assert json.load(response)["tags"]
        for n in range(250):
            made = urllib.request.Request(
                process.url + "/api/tags",
                data=json.dumps({"name": f"filler {n:03d}"}).encode(),
                headers={"Content-Type": "application/json"},
                method="POST",
            )
            urllib.request.urlopen(made).close()
        yield process


@pytest.fixture
def many_visit(browser: Any, many_tags: ServerProcess) -> Iterator[Visit]:
    yield from visit_of(browser, many_tags)


def test_a_tag_renamed_to_a_place_past_the_rows_drawn_is_drawn_there_with_the_focus(
    many_visit: Visit,
) -> None:
    page = open_tags(many_visit)
    page.get_by_text("259 tags", exact=True).wait_for()
    expect(page.locator(".tag-list > li")).to_have_count(200)
    row(page, "anime").get_by_role("button", name="Rename tag anime").click()
    field = page.get_by_label("New name for the tag anime")
    field.fill("zz anime")
    field.press("Enter")
    page.get_by_role("status").get_by_text("Tag “anime” renamed to “zz anime”").wait_for()
    # Its new place is the last of the list, past the 200 rows drawn: the rows down to it are
    # drawn, and the focus is on it (it went to the filter at the top, the tag out of sight).
    renamed = page.get_by_role("button", name="Rename tag zz anime")
    expect(renamed).to_be_focused()
    expect(renamed).to_be_in_viewport()
    assert shown_names(page)[-1] == "zz anime"


def test_a_merge_into_a_tag_past_the_rows_drawn_puts_the_focus_on_that_tag(
    many_visit: Visit, operations: set[str]
) -> None:
    needs(operations, MERGE)
    page = many_visit.page
    assert page.request.post("/api/tags", data={"name": "zy target"}).ok
    open_tags(many_visit)
    expect(page.locator(".tag-list > li")).to_have_count(200)
    row(page, "animal").get_by_role("button", name="Rename tag animal").click()
    field = page.get_by_label("New name for the tag animal")
    field.fill("zy target")
    field.press("Enter")
    renaming(page, "animal").get_by_role("button", name="Merge into zy target").click()
    said = "Tag “animal” merged into “zy target”; it was on 2 models"
    page.get_by_role("status").get_by_text(said).wait_for()
    # The tag merged into is past the 200 rows drawn: they are drawn down to it, and the focus
    # is on it with its new count (it went to the row after animal's, the tag unseen).
    target = row(page, "zy target")
    expect(target.get_by_role("button", name="Rename tag zy target")).to_be_focused()
    expect(target.get_by_role("link", name="2 models tagged zy target")).to_be_in_viewport()


def test_a_tag_renamed_to_a_name_the_filter_hides_is_said_with_a_way_to_show_it(
    many_visit: Visit,
) -> None:
    page = open_tags(many_visit, "/tags?q=filler+01")
    expect(page.locator(".tag-list > li")).to_have_count(10)
    row(page, "filler 015").get_by_role("button", name="Rename tag filler 015").click()
    field = page.get_by_label("New name for the tag filler 015")
    field.fill("other 015")
    field.press("Enter")
    # Its row leaves the list, and it is said why, with a way to show it; the focus goes on to
    # the next row (it went to the filter at the top, and the tag seemed lost).
    said = page.get_by_role("status").locator(".toast", has_text="“other 015”")
    expect(said).to_contain_text("not among the tags shown")
    expect(page.get_by_role("button", name="Rename tag filler 016")).to_be_focused()
    said.get_by_role("button", name="Show other 015").click()
    row(page, "other 015").wait_for()
    assert shown_names(page) == ["other 015"]
