"""Editing many models at once from the library, over a small library of its own: the base
model (set from the library's or typed, or cleared) and the type of every picked model, in
parts of the most the server takes in a request (POST /api/models/edit), with only the fields
chosen sent; what it did is said (models deleted meanwhile included), Stop stops between parts,
the cards and the lists offered show the new values, and more than 50 models are confirmed
first, their number said."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from tests.server import ServerProcess
from tests.ui.conftest import Visit, needs, visit_of
from tests.ui.shelf import MODELS, sha_of, shelf_server
from tests.ui.test_tagging_bulk import pick
from tests.ui.test_unsaved_work import Gate

EDIT = "POST /api/models/edit"
MANY_EDITS = re.compile(r".*/api/models/edit$")
MODEL_LIST = re.compile(r".*/api/models\?.*")


@pytest.fixture(scope="module")
def shelf(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[ServerProcess]:
    yield from shelf_server(tmp_path_factory.mktemp("ui-edit-bulk"))


@pytest.fixture
def shelf_visit(browser: Any, shelf: ServerProcess, operations: set[str]) -> Iterator[Visit]:
    needs(operations, EDIT)
    yield from visit_of(browser, shelf)


def record(page: Any, number: int) -> dict[str, Any]:
    answer: dict[str, Any] = page.request.get(f"/api/models/{sha_of(number)}").json()
    return answer


def base_model(page: Any, number: int) -> str | None:
    return record(page, number)["meta_json"].get("base_model")  # type: ignore[no-any-return]


def edit_dialog(page: Any, bar: Any) -> Any:
    bar.get_by_role("button", name="Edit", exact=True).click()
    dialog = page.get_by_role("dialog", name=re.compile(r"^Edit \d+ models?$"))
    dialog.wait_for()
    return dialog


def apply(page: Any, dialog: Any) -> Any:
    """Apply in `dialog`; the first request it sends."""
    with page.expect_request(lambda r: r.method == "POST" and MANY_EDITS.match(r.url)) as sent:
        dialog.get_by_role("button", name="Apply").click()
    return sent.value


def said(page: Any, text: str) -> None:
    page.get_by_role("status").get_by_text(text, exact=True).wait_for()


def test_the_base_model_is_set_on_every_picked_model(shelf_visit: Visit) -> None:
    page, bar = pick(shelf_visit, range(4))
    dialog = edit_dialog(page, bar)
    expect(dialog.get_by_label("Base model", exact=True)).to_be_focused()
    # The library's base models are offered, most used first (8 of 12 models are SDXL 1.0).
    offered = dialog.locator("datalist option")
    expect(offered.first).to_have_attribute("value", "SDXL 1.0")
    dialog.get_by_label("Base model", exact=True).fill("Illustrious")
    sent = apply(page, dialog)
    # Only what was chosen is sent: the type is left alone.
    hashes = [sha_of(i) for i in range(4)]
    assert sent.post_data_json == {"hashes": hashes, "meta_json": {"base_model": "Illustrious"}}
    said(page, "Base model set to “Illustrious” on 4 models")
    assert [base_model(page, i) for i in range(5)] == ["Illustrious"] * 4 + ["SDXL 1.0"]
    assert record(page, 1)["type"] == "lora"
    history = page.request.get(f"/api/models/{sha_of(2)}/history").json()["entries"]
    assert history[0]["action"] == "edit"
    # The cards shown are read again, and the base-model filter offers the new one.
    first = page.locator(".card[data-state='full']").first
    expect(first).to_contain_text("Illustrious")
    expect(page.locator("#base-options option[value='Illustrious']")).to_have_count(1)
    # The focus is back on Edit, the models still picked.
    expect(bar.get_by_role("button", name="Edit", exact=True)).to_be_focused()
    bar.get_by_text("4 models selected").wait_for()


def test_the_base_model_is_cleared(shelf_visit: Visit) -> None:
    page, bar = pick(shelf_visit, range(4, 6))
    dialog = edit_dialog(page, bar)
    dialog.get_by_label("Clear the base model").check()
    expect(dialog.get_by_label("Base model", exact=True)).to_be_disabled()
    sent = apply(page, dialog)
    assert sent.post_data_json["meta_json"] == {"base_model": None}
    said(page, "Base model cleared on 2 models")
    assert "base_model" not in record(page, 4)["meta_json"]
    assert "base_model" not in record(page, 5)["meta_json"]


def test_a_base_model_is_held_to_what_the_librarys_filter_takes(
    shelf_visit: Visit,
) -> None:
    """No longer than the server's filter_text (100 characters once trimmed): a longer base
    model was set, then offered by the library's base-model filter, which was answered 400 when
    it was chosen, so those models could never be listed by it. A longer one is said at the
    field, and Apply sends nothing; one of 100 emoji (a maxlength counted 200 UTF-16 units,
    and cut it to 50) is set whole, and the filter lists its models."""
    page, bar = pick(shelf_visit, range(4, 6))
    dialog = edit_dialog(page, bar)
    field = dialog.get_by_label("Base model", exact=True)
    field.focus()
    pasted = "Illustrious XL v2 " * 10  # 180 characters, 179 once trimmed
    page.keyboard.insert_text(pasted)
    expect(field).to_have_accessible_description(
        "At most 100 characters once trimmed; this has 179"
    )
    sent: list[Any] = []
    page.on("request", lambda r: sent.append(r) if MANY_EDITS.match(r.url) else None)
    dialog.get_by_role("button", name="Apply").click()
    expect(field).to_be_focused()
    assert not sent

    fox = "\U0001f98a" * 100
    field.fill(f"  {fox}  ")
    assert apply(page, dialog).post_data_json["meta_json"] == {"base_model": fox}
    said(page, f"Base model set to “{fox}” on 2 models")
    page.goto(f"/?base_model={quote(fox)}")
    page.get_by_text("2 models", exact=True).wait_for()
    assert not page.get_by_text("could not be loaded").count()


def test_the_type_is_set_from_the_librarys_types(shelf_visit: Visit) -> None:
    page, bar = pick(shelf_visit, range(6, 9))  # checkpoint, lora, checkpoint
    dialog = edit_dialog(page, bar)
    dialog.get_by_label("Type").select_option("lora")
    sent = apply(page, dialog)
    assert sent.post_data_json == {"hashes": [sha_of(i) for i in range(6, 9)], "type": "lora"}
    said(page, "Type set to “lora” on 2 models; 1 was so already")
    assert [record(page, i)["type"] for i in range(6, 9)] == ["lora"] * 3
    assert base_model(page, 6) == "Pony"  # left alone
    card = page.locator(".card[data-state='full']").nth(6)
    expect(card).to_contain_text("lora")


def test_nothing_chosen_sends_nothing_and_says_so(shelf_visit: Visit) -> None:
    page, bar = pick(shelf_visit, range(2))
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if MANY_EDITS.match(r.url) else None)
    dialog = edit_dialog(page, bar)
    dialog.get_by_role("button", name="Apply").click()
    dialog.get_by_role("alert").get_by_text("nothing would change").wait_for()
    dialog.get_by_role("button", name="Cancel").click()
    dialog.wait_for(state="detached")
    expect(bar.get_by_role("button", name="Edit", exact=True)).to_be_focused()
    assert sent == []


def test_a_stop_stops_between_parts(shelf_visit: Visit) -> None:
    page, bar = pick(shelf_visit, range(9, 12), part=1)
    gate = Gate(page, MANY_EDITS, "POST")  # the first request waits
    dialog = edit_dialog(page, bar)
    dialog.get_by_label("Base model", exact=True).fill("Stopped early")
    apply(page, dialog)
    bar.get_by_text("0 of 3").wait_for()
    assert bar.get_by_role("progressbar", name="Editing progress").is_visible()
    stop = bar.get_by_role("button", name="Stop")
    stop.click()
    expect(stop).to_have_text("Stopping…")
    gate.open()
    said(page, "Stopped: base model set to “Stopped early” on 1 model; 2 not done")
    assert [base_model(page, i) for i in range(9, 12)] == ["Stopped early", "SDXL 1.0", "SDXL 1.0"]
    expect(bar.get_by_role("button", name="Edit", exact=True)).to_be_focused()


def test_models_deleted_meanwhile_are_said_and_no_longer_picked(shelf_visit: Visit) -> None:
    page, bar = pick(shelf_visit, range(9, 12))
    page.request.delete(f"/api/models/{sha_of(11)}")  # elsewhere, after it was picked
    dialog = edit_dialog(page, bar)
    dialog.get_by_label("Base model", exact=True).fill("Survivor")
    apply(page, dialog)
    said(page, "Base model set to “Survivor” on 2 models; 1 no longer exists")
    bar.get_by_text("2 models selected").wait_for()
    assert [base_model(page, i) for i in range(9, 11)] == ["Survivor", "Survivor"]


def sixty_models(route: Any) -> None:
    """The library's models and copies of them under unknown hashes, 60 in all."""
    answer = route.fetch().json()
    real = answer["models"]
    copies = [
        {**real[n % len(real)], "sha256": f"{n:064x}", "name": f"Copy {n}"}
        for n in range(60 - len(real))
    ]
    route.fulfill(json={**answer, "models": real + copies, "total": 60})


def test_more_than_50_models_are_confirmed_first(shelf_visit: Visit) -> None:
    page = shelf_visit.page
    page.route(MODEL_LIST, sixty_models)
    page.goto("/")
    page.get_by_text("60 models", exact=True).wait_for()
    page.get_by_role("button", name="Select", exact=True).click()
    bar = page.get_by_role("region", name="Selection")
    bar.get_by_role("button", name="Select all 60").click()
    bar.get_by_text("60 models selected").wait_for()
    sent: list[Any] = []
    page.on("request", lambda r: sent.append(r) if MANY_EDITS.match(r.url) else None)

    dialog = edit_dialog(page, bar)
    dialog.get_by_label("Type").select_option("checkpoint")
    dialog.get_by_role("button", name="Apply").click()
    confirm = page.get_by_role("dialog", name="Edit 60 models?")
    asked = "Type set to “checkpoint” on every one of the 60 models selected"
    confirm.get_by_text(asked).wait_for()
    confirm.get_by_role("button", name="Cancel").click()
    confirm.wait_for(state="detached")
    assert sent == []

    dialog = edit_dialog(page, bar)
    dialog.get_by_label("Type").select_option("checkpoint")
    dialog.get_by_role("button", name="Apply").click()
    real = [i for i in range(MODELS) if page.request.get(f"/api/models/{sha_of(i)}").ok]
    were = sum(record(page, i)["type"] == "checkpoint" for i in real)
    with page.expect_request(lambda r: MANY_EDITS.match(r.url)):
        confirm.get_by_role("button", name="Edit 60 models").click()
    said(
        page,
        f"Type set to “checkpoint” on {len(real) - were} models; {were} were so already;"
        f" {60 - len(real)} no longer exist",
    )
    assert all(record(page, i)["type"] == "checkpoint" for i in real)
