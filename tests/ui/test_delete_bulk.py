"""Deleting many models at once from the library, over a small library of its own: the picked
models are confirmed once (their number said, and that their model files stay), go in parts of
the most the server takes in a request (POST /api/models/delete), leave the grid and the
selection, and Undo in the message restores every one of them from its history, in parts too
(POST /api/models/restore)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.server import ServerProcess
from tests.ui.conftest import Visit, needs, visit_of
from tests.ui.shelf import MODELS, sha_of, shelf_server
from tests.ui.test_tagging_bulk import MANY_TAGS, pick
from tests.ui.test_unsaved_work import Gate

DELETE = "POST /api/models/delete"
MANY_DELETES = re.compile(r".*/api/models/delete$")
MANY_RESTORES = re.compile(r".*/api/models/restore$")


@pytest.fixture(scope="module")
def shelf(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[ServerProcess]:
    yield from shelf_server(tmp_path_factory.mktemp("ui-delete-bulk"))


@pytest.fixture
def shelf_visit(browser: Any, shelf: ServerProcess, operations: set[str]) -> Iterator[Visit]:
    needs(operations, DELETE)
    yield from visit_of(browser, shelf)


def status_of(page: Any, number: int) -> int:
    return int(page.request.get(f"/api/models/{sha_of(number)}").status)


def confirm_dialog(page: Any, bar: Any, count: int) -> Any:
    bar.get_by_role("button", name="Delete", exact=True).click()
    dialog = page.get_by_role("dialog", name=f"Delete {count} models?")
    dialog.wait_for()
    return dialog


def test_cancel_deletes_nothing(shelf_visit: Visit) -> None:
    page, bar = pick(shelf_visit, range(2))
    sent: list[Any] = []
    page.on("request", lambda r: sent.append(r) if MANY_DELETES.match(r.url) else None)
    dialog = confirm_dialog(page, bar, 2)
    expect(dialog).to_contain_text("their model files stay on disk")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    bar.get_by_text("2 models selected").wait_for()
    assert sent == []
    assert [status_of(page, i) for i in range(2)] == [200, 200]


def test_the_picked_models_are_deleted_in_parts_and_undo_brings_them_all_back(
    shelf_visit: Visit,
) -> None:
    page, bar = pick(shelf_visit, range(5), part=2)
    tags_before = page.request.get(f"/api/models/{sha_of(1)}").json()["tags"]
    sent: list[Any] = []
    page.on("request", lambda r: sent.append(r) if MANY_DELETES.match(r.url) else None)
    dialog = confirm_dialog(page, bar, 5)
    dialog.get_by_role("button", name="Delete 5 models").click()

    message = page.get_by_role("status").locator(".toast", has_text="Deleted 5 models")
    message.wait_for()
    assert [len(r.post_data_json["hashes"]) for r in sent] == [2, 2, 1]
    assert [status_of(page, i) for i in range(6)] == [404] * 5 + [200]
    page.get_by_text(f"{MODELS - 5} models", exact=True).wait_for()  # the library read again
    bar.get_by_text("Click cards to select them").wait_for()  # nothing left picked

    restores: list[Any] = []
    page.on("request", lambda r: restores.append(r) if MANY_RESTORES.match(r.url) else None)
    message.get_by_role("button", name="Undo").click()
    said = page.get_by_role("status").get_by_text("Restored 5 models, without their pictures")
    said.wait_for()
    assert [len(r.post_data_json["hashes"]) for r in restores] == [2, 2, 1]
    assert [status_of(page, i) for i in range(6)] == [200] * 6
    assert page.request.get(f"/api/models/{sha_of(1)}").json()["tags"] == tags_before
    page.get_by_text(f"{MODELS} models", exact=True).wait_for()


def test_by_keyboard_the_focus_stays_in_the_bar_after_a_delete_and_its_undo(
    shelf_visit: Visit,
) -> None:
    page, bar = pick(shelf_visit, range(2))
    delete = bar.get_by_role("button", name="Delete", exact=True)
    delete.focus()
    page.keyboard.press("Enter")
    dialog = page.get_by_role("dialog", name="Delete 2 models?")
    dialog.get_by_role("button", name="Delete 2 models").focus()
    page.keyboard.press("Enter")
    message = page.get_by_role("status").locator(".toast", has_text="Deleted 2 models")
    message.wait_for()
    bar.get_by_text("Click cards to select them").wait_for()
    # The Delete pressed is disabled now that nothing is picked: the focus goes on in the bar,
    # on what it says (it fell to the page's body, and the next Tab began at the top of the
    # page); not on its text field, which would open a phone's keyboard.
    said = bar.get_by_text("Click cards to select them")
    expect(said).to_be_focused()

    message.get_by_role("button", name="Undo").focus()
    page.keyboard.press("Enter")
    page.get_by_role("status").get_by_text("Restored 2 models, without their pictures").wait_for()
    expect(said).to_be_focused()  # not the page's body, where the Undo pressed was taken away


def test_an_undo_cut_short_by_a_failure_offers_to_restore_the_rest(shelf_visit: Visit) -> None:
    page, bar = pick(shelf_visit, range(5), part=2)
    dialog = confirm_dialog(page, bar, 5)
    dialog.get_by_role("button", name="Delete 5 models").click()
    message = page.get_by_role("status").locator(".toast", has_text="Deleted 5 models")
    message.wait_for()

    # The server fails the second of the three requests of the Undo (it restarts meanwhile).
    answered: list[int] = []

    def second_fails(route: Any) -> None:
        answered.append(len(answered))
        if len(answered) == 2:
            route.fulfill(status=503, json={"error": "Service Unavailable"})
        else:
            route.fallback()

    page.route(MANY_RESTORES, second_fails)
    message.get_by_role("button", name="Undo").click()
    failed = page.get_by_role("alert").locator(".toast", has_text="Restored 2 models")
    expect(failed).to_contain_text("3 not done")
    assert [status_of(page, i) for i in range(5)].count(404) == 3
    # The three still deleted are one press away (the Undo went with its message, and their
    # hashes were nowhere on the page: they were lost to the person).
    failed.get_by_role("button", name="Restore the other 3").click()
    page.get_by_role("status").get_by_text("Restored 3 models, without their pictures").wait_for()
    assert [status_of(page, i) for i in range(6)] == [200] * 6
    assert len(answered) == 4  # the other 3 in two parts: nothing was sent twice


def test_an_undo_pressed_while_another_change_runs_is_offered_again(shelf_visit: Visit) -> None:
    page, bar = pick(shelf_visit, range(2))
    dialog = confirm_dialog(page, bar, 2)
    dialog.get_by_role("button", name="Delete 2 models").click()
    message = page.get_by_role("status").locator(".toast", has_text="Deleted 2 models")
    message.wait_for()
    # A tagging of other models, on a slow server, runs when Undo is pressed.
    gate = Gate(page, MANY_TAGS, "POST")
    page.locator(".card[data-state='full']").first.click()
    bar.get_by_label("Tag for the selected models").fill("while-undoing")
    bar.get_by_role("button", name="Add tag").click()
    gate.wait_held(page, 1)
    message.get_by_role("button", name="Undo").click()
    refused = page.get_by_role("alert").locator(".toast", has_text="under way")
    # The Undo pressed went with its message: it is offered again, not lost.
    again = refused.get_by_role("button", name="Undo")
    gate.open()
    page.get_by_role("status").get_by_text("Tag “while-undoing” added to 1 model").wait_for()
    again.click()
    page.get_by_role("status").get_by_text("Restored 2 models, without their pictures").wait_for()
    assert [status_of(page, i) for i in range(3)] == [200] * 3
