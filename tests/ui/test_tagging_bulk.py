"""Tagging many models at once, over a small library of its own: the picked models go in parts
of the most the server takes in a request, the answer's counts are said (models that had the
tag, models deleted meanwhile, which are then no longer picked), and a tagging outlives a visit
to another page: it goes on, its end is said there, the library shows it again while it runs,
and closing the page meanwhile asks first."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.server import ServerProcess
from tests.ui.conftest import Visit, needs, serve_as_if, visit_of
from tests.ui.shelf import sha_of, shelf_server
from tests.ui.test_unsaved_work import Gate

TAGS = "POST /api/models/tags"
MANY_TAGS = re.compile(r".*/api/models/tags$")


@pytest.fixture(scope="module")
def shelf(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[ServerProcess]:
    yield from shelf_server(tmp_path_factory.mktemp("ui-bulk"))


@pytest.fixture
def shelf_visit(browser: Any, shelf: ServerProcess) -> Iterator[Visit]:
    yield from visit_of(browser, shelf)


def tags_of(page: Any, sha256: str) -> list[str]:
    return [t["name"] for t in page.request.get(f"/api/models/{sha256}").json()["tags"]]


def pick(visit: Visit, numbers: range, *, part: int | None = None) -> tuple[Any, Any]:
    """The library in Select mode with the models `numbers` picked (the cards are in the order
    of their numbers), and the bar; `part`: the most models a request takes."""
    page = visit.page
    if part:
        serve_as_if(page, lambda _: None, limits={"models_tagged_at_once": part})
    page.goto("/")
    cards = page.locator(".card[data-state='full']")
    cards.first.wait_for()
    page.get_by_role("button", name="Select", exact=True).click()
    cards.nth(numbers[0]).click()
    cards.nth(numbers[-1]).click(modifiers=["Shift"])
    bar = page.get_by_role("region", name="Selection")
    bar.get_by_text(f"{len(numbers)} models selected").wait_for()
    return page, bar


def start(page: Any, bar: Any, name: str, button: str = "Add tag") -> None:
    bar.get_by_label("Tag for the selected models").fill(name)
    with page.expect_request(lambda r: r.method == "POST" and "/api/models/tags" in r.url):
        bar.get_by_role("button", name=button).click()


def test_parts_of_the_most_a_request_takes_and_what_they_did_is_said(
    shelf_visit: Visit, operations: set[str]
) -> None:
    needs(operations, TAGS)
    page, bar = pick(shelf_visit, range(5), part=2)
    page.request.put(f"/api/models/{sha_of(3)}/tags", data=json.dumps({"tags": ["parts"]}))
    sent: list[Any] = []
    page.on("request", lambda r: sent.append(r) if r.url.endswith("/api/models/tags") else None)
    start(page, bar, "parts")
    said = "Tag “parts” added to 4 models; 1 had it already"
    page.get_by_role("status").get_by_text(said, exact=True).wait_for()
    assert [len(r.post_data_json["hashes"]) for r in sent] == [2, 2, 1]
    assert {h for r in sent for h in r.post_data_json["hashes"]} == {sha_of(i) for i in range(5)}
    assert all("parts" in tags_of(page, sha_of(i)) for i in range(5))


def test_models_deleted_meanwhile_are_said_and_no_longer_picked(
    shelf_visit: Visit, operations: set[str]
) -> None:
    needs(operations, TAGS)
    page, bar = pick(shelf_visit, range(9, 12))
    page.request.delete(f"/api/models/{sha_of(11)}")  # elsewhere, after it was picked
    start(page, bar, "survivor")
    said = "Tag “survivor” added to 2 models; 1 no longer exists"
    page.get_by_role("status").get_by_text(said, exact=True).wait_for()
    bar.get_by_text("2 models selected").wait_for()
    page.get_by_text("11 models", exact=True).wait_for()  # the library read again


def test_a_tagging_goes_on_on_another_page_and_its_end_is_said_there(
    shelf_visit: Visit, operations: set[str]
) -> None:
    needs(operations, TAGS)
    page, bar = pick(shelf_visit, range(3))
    gate = Gate(page, MANY_TAGS, "POST")
    start(page, bar, "while away")
    bar.get_by_text("0 of 3").wait_for()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Jobs").click()
    page.get_by_role("heading", level=1, name="Jobs").wait_for()
    gate.open()
    said = page.get_by_role("status").get_by_text("Tag “while away” added to 3 models")
    said.wait_for()
    assert all("while away" in tags_of(page, sha_of(i)) for i in range(3))
    # Back in the library, its cards show the tag (it was read again).
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Library").click()
    first = page.locator(".card[data-state='full']").first
    expect(first.locator(".chips")).to_contain_text("while away")


def test_the_library_shows_a_tagging_under_way_again_with_its_stop(
    shelf_visit: Visit, operations: set[str]
) -> None:
    needs(operations, TAGS)
    page, bar = pick(shelf_visit, range(3, 6), part=1)
    gate = Gate(page, MANY_TAGS, "POST")  # the first request waits
    start(page, bar, "came back")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tags").click()
    page.get_by_role("heading", level=1, name="Tags").wait_for()
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Library").click()
    bar.get_by_text("0 of 3").wait_for()
    assert bar.get_by_role("progressbar").get_attribute("aria-valuetext") == "0 of 3 models"
    stop = bar.get_by_role("button", name="Stop")
    stop.click()
    expect(stop).to_have_text("Stopping…")
    expect(stop).to_be_focused()
    gate.open()
    said = "Stopped: tag “came back” added to 1 model; 2 not done"
    page.get_by_role("status").get_by_text(said).wait_for()
    expect(bar.get_by_label("Tag for the selected models")).to_be_focused()
    assert ["came back" in tags_of(page, sha_of(i)) for i in range(3, 6)] == [True, False, False]


def test_closing_the_page_while_a_tagging_runs_asks_first(
    shelf_visit: Visit, operations: set[str]
) -> None:
    needs(operations, TAGS)
    page, bar = pick(shelf_visit, range(6, 9))
    gate = Gate(page, MANY_TAGS, "POST")
    start(page, bar, "not lost")
    bar.get_by_text("0 of 3").wait_for()
    with page.expect_event("dialog") as asked:
        page.close(run_before_unload=True)
    assert asked.value.type == "beforeunload"
    asked.value.dismiss()  # stay
    gate.open()
    page.get_by_role("status").get_by_text("Tag “not lost” added to 3 models").wait_for()
    assert not page.is_closed()


def test_a_tag_name_the_server_refuses_is_said_of_the_name_not_of_its_place(
    shelf_visit: Visit, operations: set[str]
) -> None:
    """A tag with a control character in it, added to the models picked, ended with "it failed:
    add.0: needs a character…": the API's place in a list the person never saw, and the tag
    in the summary showing nothing where the character is. The reason is said of the name,
    the character written as its code; no model changed."""
    needs(operations, TAGS)
    page, bar = pick(shelf_visit, range(2))
    start(page, bar, "bad\u0007x")
    said = page.get_by_role("alert").get_by_text(re.compile("^Tag"))
    expect(said).to_have_text(
        "Tag “bad<U+0007>x” added to 0 models; 2 not done; it failed: the name needs a"
        " character other than white space, and no control or invisible characters"
    )
    assert all("bad\u0007x" not in tags_of(page, sha_of(i)) for i in range(2))


@pytest.mark.parametrize(
    "name",
    [
        "\U0001f469\u200d\U0001f4bb",  # woman technologist: two emoji joined by a ZWJ
        "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",  # Persian, with its ZWNJ
    ],
)
def test_a_tag_of_joined_characters_is_said_as_written(
    shelf_visit: Visit, operations: set[str], name: str
) -> None:
    """The joiners the server keeps in a name (the ZWJ of an emoji sequence, the ZWNJ of
    Persian) were written as their codes in the summary of a tagging that worked ("Tag
    “👩<U+200D>💻” added to 2 models"): only what the server refuses is spelled out."""
    needs(operations, TAGS)
    page, bar = pick(shelf_visit, range(2))
    start(page, bar, name)
    said = f"Tag “{name}” added to 2 models"
    page.get_by_role("status").get_by_text(said, exact=True).wait_for()
    assert all(name in tags_of(page, sha_of(i)) for i in range(2))
