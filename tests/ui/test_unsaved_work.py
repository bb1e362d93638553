"""What a person types on the model page is never lost, in a real browser: changes made in
quick succession are sent one after another (never reported as a change made elsewhere), and
a save that fails, or that meets a change made elsewhere, keeps what was typed."""

from __future__ import annotations

import re
import time
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import TIMEOUT_MS, Visit, needs, open_model, wait_frames
from tests.ui.seed import SeededLibrary

PATCH = "PATCH /api/models/{sha256}"
PUT_TAGS = "PUT /api/models/{sha256}/tags"
A_MODEL = re.compile(r".*/api/models/[0-9a-f]{64}$")
ITS_TAGS = re.compile(r".*/api/models/[0-9a-f]{64}/tags$")
FAILURES = ["unreachable", "server error"]


class Gate:
    """Holds the `method` requests to `pattern` until `open()`: a server slow to answer."""

    def __init__(self, page: Any, pattern: re.Pattern[str], method: str) -> None:
        self.method = method
        self.held: list[Any] = []
        self.is_open = False
        page.route(pattern, self.handle)

    def handle(self, route: Any) -> None:
        if route.request.method != self.method or self.is_open:
            route.fallback()
        else:
            self.held.append(route)

    def wait_held(self, page: Any, count: int) -> None:
        """Until `count` requests are held, then three frames more. The page marks a control
        busy before it sends its request, and Playwright tells of the request a few round
        trips later on a loaded machine: a count read at once could still be 0."""
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while len(self.held) < count:
            assert time.monotonic() < deadline, f"{len(self.held)} of {count} requests held"
            page.wait_for_timeout(20)  # Playwright calls the route handlers meanwhile
        wait_frames(page, 3)

    def open(self) -> None:
        self.is_open = True
        for route in self.held:
            route.fallback()


def fail(page: Any, pattern: re.Pattern[str], method: str, failure: str) -> None:
    """Every `method` request to `pattern` fails: the server cannot be reached, or errs."""

    def handle(route: Any) -> None:
        if route.request.method != method:
            route.fallback()
        elif failure == "unreachable":
            route.abort("connectionrefused")
        else:
            route.fulfill(status=503, json={"error": "Service Unavailable", "detail": "busy"})

    page.route(pattern, handle)


def stored(page: Any, sha: str) -> dict[str, Any]:
    return dict(page.request.get(f"/api/models/{sha}").json())


def test_tags_added_while_the_last_is_saving_are_all_saved(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    needs(operations, PUT_TAGS)
    page = open_model(visit, library, "Chibi Lora v1")
    gate = Gate(page, ITS_TAGS, "PUT")
    tags = page.get_by_role("region", name="Tags")
    field = tags.get_by_label("Add a tag")
    field.fill("quick-one")
    field.press("Enter")
    tags.locator(".chip.saving", has_text="quick-one").wait_for()
    field.fill("quick-two")
    field.press("Enter")
    tags.locator(".chip.saving", has_text="quick-two").wait_for()
    gate.wait_held(page, 1)
    assert len(gate.held) == 1  # the second change waits for the first
    gate.open()
    tags.get_by_role("link", name="quick-two").wait_for()
    tags.get_by_role("link", name="quick-one").wait_for()
    names = [t["name"] for t in stored(page, library.hashes["Chibi Lora v1"])["tags"]]
    assert {"quick-one", "quick-two"} <= set(names)
    assert page.get_by_text("changed elsewhere").count() == 0


def test_a_double_click_on_save_sends_one_change(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    needs(operations, PATCH)
    page = open_model(visit, library, "Chibi Lora v2")
    gate = Gate(page, A_MODEL, "PATCH")
    page.get_by_role("button", name="Edit").click()
    page.get_by_label("Notes").fill("saved once")
    page.get_by_role("button", name="Save").dblclick()
    saving = page.get_by_role("button", name="Saving…")
    expect(saving).to_be_disabled()
    assert saving.get_attribute("aria-busy") == "true"
    gate.wait_held(page, 1)
    assert len(gate.held) == 1
    gate.open()
    page.get_by_text("saved once", exact=True).wait_for()
    assert page.locator("#edit-button").get_attribute("aria-expanded") == "false"
    assert page.get_by_text("changed elsewhere").count() == 0


def test_a_save_over_a_change_made_elsewhere_keeps_what_was_typed(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    needs(operations, PATCH)
    sha = library.hashes["Sketch Checkpoint v1"]
    page = open_model(visit, library, "Sketch Checkpoint v1")
    page.get_by_role("button", name="Edit").click()
    page.get_by_label("Notes").fill("my careful note")
    elsewhere = {"meta_json": {"description": "changed in another tab"}}
    assert page.request.patch(f"/api/models/{sha}", data=elsewhere).ok
    page.get_by_role("button", name="Save").click()
    page.get_by_role("alert").get_by_text("changed elsewhere").wait_for()
    # The editor shows the other version, with the person's own change over it.
    expect(page.get_by_label("Description")).to_have_value("changed in another tab")
    expect(page.get_by_label("Notes")).to_have_value("my careful note")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("button", name="Edit", exact=True).wait_for()
    meta = stored(page, sha)["meta_json"]
    assert (meta["notes"], meta["description"]) == ("my careful note", "changed in another tab")


@pytest.mark.parametrize("failure", FAILURES)
def test_a_failed_save_keeps_the_editor_and_can_be_tried_again(
    visit: Visit, library: SeededLibrary, operations: set[str], failure: str
) -> None:
    needs(operations, PATCH)
    name = {"unreachable": "Film Grain Lora v1", "server error": "Film Grain Lora v2"}[failure]
    page = open_model(visit, library, name)
    fail(page, A_MODEL, "PATCH", failure)
    edit = page.locator("#edit-button")
    edit.click()
    page.get_by_label("Notes").fill("second careful note")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("alert").get_by_text("Not saved").wait_for()
    expect(page.get_by_label("Notes")).to_have_value("second careful note")
    expect(page.get_by_role("button", name="Save")).to_be_enabled()
    assert (edit.inner_text(), edit.get_attribute("aria-expanded")) == ("Cancel editing", "true")
    page.unroute(A_MODEL)
    page.get_by_role("button", name="Save").click()
    page.get_by_text("second careful note", exact=True).wait_for()
    assert (edit.inner_text(), edit.get_attribute("aria-expanded")) == ("Edit", "false")


@pytest.mark.parametrize("failure", FAILURES)
def test_a_tag_that_could_not_be_saved_stays_in_the_field(
    visit: Visit, library: SeededLibrary, operations: set[str], failure: str
) -> None:
    needs(operations, PUT_TAGS)
    # A word of its own for each failure: the field the last case left holding its word is
    # a field with text in it as its page closes, and a field that loses the focus adds what
    # it holds (its change event), past the routes of a context being closed.
    word = f"unsaved-{failure.replace(' ', '-')}"
    page = open_model(visit, library, "Oil Paint Checkpoint v2")
    fail(page, ITS_TAGS, "PUT", failure)
    tags = page.get_by_role("region", name="Tags")
    field = tags.get_by_label("Add a tag")
    field.fill(word)
    field.press("Enter")
    page.get_by_role("alert").get_by_text("Not saved").wait_for()
    expect(field).to_have_value(word)
    expect(tags.locator(".chip", has_text=word)).to_have_count(0)


def test_a_reorder_made_while_tags_are_saving_waits_its_turn(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    needs(operations, PUT_TAGS, "POST /api/images/reorder")
    page = open_model(visit, library, "Pixel Embedding v3")
    gate = Gate(page, ITS_TAGS, "PUT")
    field = page.get_by_role("region", name="Tags").get_by_label("Add a tag")
    field.fill("while-moving")
    field.press("Enter")
    page.locator(".chip.saving", has_text="while-moving").wait_for()
    page.get_by_role("button", name="Example image 2 of 3").click()
    page.get_by_role("button", name="Set as cover").click()
    gate.open()
    page.get_by_role("status").get_by_text("Cover changed").wait_for()
    page.get_by_role("region", name="Tags").get_by_role("link", name="while-moving").wait_for()
    assert page.locator(".toast.error").count() == 0


def test_an_edit_left_unsaved_is_back_when_its_model_is_opened_again(
    visit: Visit, operations: set[str]
) -> None:
    """A step to the next model (J, Next, a link, Back) while the editor held changes threw
    them away; now they are kept, said on the page stepped to, and the editor is open with
    them on the way back."""
    needs(operations, PATCH)
    page = visit.page
    page.goto("/?type=checkpoint")
    page.locator(".card[data-state='full']").first.wait_for()
    names = page.locator(".card[data-state='full'] .name").all_inner_texts()
    page.locator(".card-link").first.click()
    page.get_by_role("heading", level=1, name=names[0]).wait_for()
    sha = page.url.rsplit("/", 1)[1]
    page.get_by_role("button", name="Edit", exact=True).click()
    page.get_by_label("Description").fill("a long description, written with care")
    page.locator("h1").click()
    page.keyboard.press("j")
    page.get_by_role("heading", level=1, name=names[1]).wait_for()
    left = page.get_by_role("status").get_by_text(f"Your changes to {names[0]} are not saved")
    left.wait_for()
    page.get_by_role("status").get_by_role("button", name="Back to it").click()
    page.get_by_role("heading", level=1, name=names[0]).wait_for()
    page.get_by_role("status").get_by_text("(description) are back in the editor").wait_for()
    expect(page.get_by_label("Description")).to_have_value("a long description, written with care")
    expect(page.get_by_role("button", name="Save")).to_be_enabled()
    # Kept by the page, not saved: the library is left as it was until Save.
    assert stored(page, sha)["meta_json"]["description"] != "a long description, written with care"


def test_escape_or_cancel_editing_asks_before_dropping_what_was_typed(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    """Escape in a field (by habit, to close its suggestions) closed the editor and dropped
    every change without a word."""
    needs(operations, PATCH)
    sha = library.hashes["Noir Lora v2"]
    before = stored(page := open_model(visit, library, "Noir Lora v2"), sha)
    page.get_by_role("button", name="Edit", exact=True).click()
    page.get_by_label("Notes").fill("a note I mean to keep")
    page.get_by_label("Base model").press("Escape")
    ask = page.get_by_role("dialog", name="Drop your changes?")
    ask.get_by_text("What you typed in notes is not saved.").wait_for()
    ask.get_by_role("button", name="Cancel").click()
    expect(page.get_by_label("Notes")).to_have_value("a note I mean to keep")
    expect(page.get_by_label("Base model")).to_be_focused()
    page.get_by_role("button", name="Cancel editing").click()
    ask.get_by_role("button", name="Drop changes").click()
    page.get_by_role("button", name="Edit", exact=True).wait_for()
    assert stored(page, sha) == before
    # Nothing typed, nothing to ask: Escape closes at once.
    page.get_by_role("button", name="Edit", exact=True).click()
    page.get_by_label("Notes").press("Escape")
    expect(page.get_by_role("button", name="Edit", exact=True)).to_be_focused()
