"""The library's filters in a real browser, over a library some of whose model files are
present and the others missing: the files filter has three states (all, present only, missing
only), and the lists the filters offer (types, base models: the library's own, most used
first) are read once and shared, read again after a change the page makes."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.server import ServerProcess
from tests.ui.conftest import Visit, needs, visit_of
from tests.ui.shelf import MODELS, PRESENT, name_of, sha_of, shelf_server

TYPES = "/api/models/get_types"
BASE_MODELS = "/api/models/base_models"


@pytest.fixture(scope="module")
def shelf(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[ServerProcess]:
    yield from shelf_server(tmp_path_factory.mktemp("ui-lists"))


@pytest.fixture
def shelf_visit(browser: Any, shelf: ServerProcess) -> Iterator[Visit]:
    yield from visit_of(browser, shelf)


def open_library(visit: Visit, path: str = "/") -> Any:
    page = visit.page
    page.goto(path)
    page.locator(".card[data-state='full']").first.wait_for()
    return page


def shown(page: Any) -> list[str]:
    return sorted(page.locator(".card[data-state='full'] .name").all_inner_texts())


def test_the_api_answers_missing_false_with_the_models_whose_files_are_present(
    shelf_visit: Visit,
) -> None:
    page = shelf_visit.page
    for missing, numbers in [("false", PRESENT), ("true", range(len(PRESENT), MODELS))]:
        answer = page.request.get(f"/api/models?missing={missing}&limit=100").json()
        assert answer["total"] == len(numbers)
        assert {m["sha256"] for m in answer["models"]} == {sha_of(i) for i in numbers}
        assert {m["missing"] for m in answer["models"]} == {missing == "true"}


def test_the_files_filter_shows_all_present_only_or_missing_only(shelf_visit: Visit) -> None:
    page = open_library(shelf_visit)
    files = page.get_by_label("Files", exact=True)
    assert files.input_value() == ""
    page.get_by_text(f"{MODELS} models", exact=True).wait_for()

    files.select_option(label="Files present")
    page.wait_for_url(re.compile(r"/\?missing=false$"))
    page.get_by_text(f"{len(PRESENT)} models", exact=True).wait_for()
    expect(page.locator(".card[data-state='full']")).to_have_count(len(PRESENT))
    assert shown(page) == sorted(name_of(i) for i in PRESENT)
    assert page.locator(".card .badge.missing").count() == 0
    assert page.get_by_role("button", name="Remove filter files present").is_visible()

    files.select_option(label="Files missing")
    page.wait_for_url(re.compile(r"/\?missing=true$"))
    page.get_by_text(f"{MODELS - len(PRESENT)} models", exact=True).wait_for()
    expect(page.locator(".card .badge.missing")).to_have_count(MODELS - len(PRESENT))

    page.go_back()  # each choice is a step in the history
    page.get_by_text(f"{len(PRESENT)} models", exact=True).wait_for()
    assert files.input_value() == "false"
    page.get_by_role("button", name="Remove filter files present").click()
    page.get_by_text(f"{MODELS} models", exact=True).wait_for()
    assert files.input_value() == ""

    # A bookmark opens as it was; an old one's `missing=1` (which the API refuses) shows all.
    page.goto("/?missing=false")
    page.get_by_text(f"{len(PRESENT)} models", exact=True).wait_for()
    assert files.input_value() == "false"
    page.goto("/?missing=1")
    page.get_by_text(f"{MODELS} models", exact=True).wait_for()
    assert not page.get_by_text("could not be loaded").count()


def type_reads(visit: Visit) -> int:
    return len([url for url in visit.requests if url.endswith(TYPES)])


def test_the_types_are_read_once_and_again_after_a_change_made_here(shelf_visit: Visit) -> None:
    page = open_library(shelf_visit)
    types = page.get_by_label("Type", exact=True)
    expect(types.locator("option")).to_have_text(["All types", "checkpoint", "lora"])
    for _ in range(2):  # to a model and back
        page.locator(".card-link").first.click()
        page.locator("h1").filter(has_not_text="Library").wait_for()
        page.go_back()
        page.locator(".card[data-state='full']").first.wait_for()
        expect(types.locator("option")).to_have_text(["All types", "checkpoint", "lora"])
    assert type_reads(shelf_visit) == 1

    # A change of a model's type made on its page: the library offers the new type.
    sha = sha_of(0)
    page.goto(f"/models/{sha}")
    page.get_by_role("heading", level=1, name=name_of(0)).wait_for()
    page.get_by_role("button", name="Edit", exact=True).click()
    page.get_by_label("Type", exact=True).fill("vae")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("status").get_by_text("Saved").wait_for()
    page.get_by_role("link", name="← Library").click()
    expect(types.locator("option")).to_have_text(["All types", "checkpoint", "lora", "vae"])
    assert type_reads(shelf_visit) >= 2
    page.request.patch(f"/api/models/{sha}", data={"type": "checkpoint"})


def offered(page: Any, datalist: str) -> list[tuple[str, str]]:
    options = page.locator(f"#{datalist} option")
    return [(o.get_attribute("value"), o.get_attribute("label")) for o in options.all()]


def test_the_base_models_offered_are_the_librarys_most_used_first(
    shelf_visit: Visit, operations: set[str]
) -> None:
    needs(operations, f"GET {BASE_MODELS}")
    page = open_library(shelf_visit)
    field = page.get_by_label("Base model", exact=True)
    assert field.get_attribute("list") == "base-options"
    page.locator("#base-options option").first.wait_for(state="attached")
    assert offered(page, "base-options") == [("SDXL 1.0", "SDXL 1.0 (8)"), ("Pony", "Pony (4)")]
    field.fill("Pony")
    field.press("Enter")
    page.get_by_text("4 models", exact=True).wait_for()

    # The model editor offers the same, without asking again; a base model typed there is
    # offered once saved.
    page.locator(".card-link").nth(1).click()
    page.get_by_role("heading", level=1, name=name_of(3)).wait_for()
    page.get_by_role("button", name="Edit", exact=True).click()
    base = page.get_by_label("Base model", exact=True)
    assert base.get_attribute("list") == "edit-bases"
    page.locator("#edit-bases option").first.wait_for(state="attached")
    assert [value for value, _ in offered(page, "edit-bases")] == ["SDXL 1.0", "Pony"]
    base.fill("Flux.1 D")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("status").get_by_text("Saved").wait_for()
    page.get_by_role("link", name="← Library").click()
    page.get_by_text("3 models", exact=True).wait_for()
    page.locator("#base-options option[value='Flux.1 D']").wait_for(state="attached")
    assert offered(page, "base-options") == [
        ("SDXL 1.0", "SDXL 1.0 (8)"),
        ("Pony", "Pony (3)"),
        ("Flux.1 D", "Flux.1 D (1)"),
    ]
    reads = [url for url in shelf_visit.requests if url.endswith(BASE_MODELS)]
    assert len(reads) == 2, reads  # by the library; again after the change
    page.request.patch(f"/api/models/{sha_of(3)}", data={"meta_json": {"base_model": "Pony"}})
