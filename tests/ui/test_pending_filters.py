"""The pending queue narrowed to one group, in a real browser: the conflicts (a model in the
library has the same SHA256), the models whose file is missing, and the fresh ones (no
conflict, file present), each with its count, kept in the URL like the library's filters, and
acted on only as far as shown. These tests import, discard and batch only the seeded models
no other test uses (`twin`, `spare`, `lost`), and leave every conflict in the queue."""

from __future__ import annotations

import json
import re
from typing import Any

from playwright.sync_api import expect

from tests.ui.conftest import Visit, needs
from tests.ui.pending_queue import row
from tests.ui.seed import SeededLibrary

PENDING = "/api/migration/pending_models?checks=true"
PREVIEW = "/api/migration/preview_import"
PHONE = {"width": 390, "height": 844}
CONFLICTS = [f"conflict{n}" for n in range(3)] + ["twin"]
MISSING = ["gone", "lost"]


def listed(page: Any) -> list[dict[str, Any]]:
    models: list[dict[str, Any]] = page.request.get(PENDING).json()["models"]
    return models


def present(page: Any, library: SeededLibrary, roles: list[str]) -> set[int]:
    """The ids of the seeded `roles` still in the queue (other tests import some)."""
    ids = {m["id"] for m in listed(page)}
    return {library.pending[r] for r in roles if library.pending[r] in ids}


def fresh_roles(library: SeededLibrary) -> list[str]:
    return [r for r in library.pending if r not in CONFLICTS and r not in MISSING]


def hash_queue(page: Any) -> None:
    """Every pending file hashed, as a preview or an import does, so that every model is in a
    group (what hashing tells is test_a_model_not_hashed_yet_is_checked_on_request's)."""
    for record in listed(page):
        if not record["missing"] and record["conflict"] is None:
            body = {"id": record["id"], "conf_strategy": None}
            assert page.request.post(PREVIEW, data=body).status in (200, 409)


def open_pending(visit: Visit, query: str = "") -> Any:
    page = visit.page
    page.goto(f"/pending{query}")
    page.locator(".queue > li").first.wait_for(state="attached")
    return page


def chip(page: Any, label: str) -> Any:
    group = page.get_by_role("group", name="Show")
    return group.get_by_role("button", name=re.compile(rf"^{label} \(\d+\)$"))


def count_on(page: Any, label: str) -> int:
    match = re.search(r"\((\d+)\)$", chip(page, label).inner_text())
    assert match
    return int(match.group(1))


def shown_ids(page: Any) -> set[int]:
    rows = page.locator(".queue > li:visible")
    return {int(i) for i in rows.evaluate_all("rows => rows.map(r => r.dataset.id)")}


def expect_shown(page: Any, ids: set[int]) -> None:
    """Wait until exactly the rows `ids` are shown."""
    expect(page.locator(".queue > li:visible")).to_have_count(len(ids))
    assert shown_ids(page) == ids


def test_a_model_not_hashed_yet_is_checked_on_request(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    needs(operations, "POST /api/migration/preview_import")
    page = open_pending(visit)
    twin = row(page, library, "twin")
    expect(page.get_by_text(re.compile(r"not hashed yet, so whether"))).to_be_visible()
    expect(twin.locator(".badge")).to_have_count(0)  # not known to be anything yet
    expect(chip(page, "Conflicts")).to_be_visible()

    page.get_by_role("button", name=re.compile(r"^Check (them|it)$")).click()

    page.get_by_role("status").get_by_text(re.compile(r"^\d+ models? checked$")).wait_for()
    expect(page.get_by_role("button", name="Stop checking")).to_be_hidden()
    expect(page.get_by_role("button", name=re.compile(r"^Check (them|it)$"))).to_be_hidden()
    expect(twin.get_by_text("Already in the library")).to_be_visible()
    conflicts = present(page, library, CONFLICTS)
    expect(chip(page, "Conflicts")).to_have_text(f"Conflicts ({len(conflicts)})")
    # Every model is in one group now.
    total = count_on(page, "All")
    assert total == sum(count_on(page, g) for g in ("Conflicts", "File missing", "Fresh"))


def test_conflicts_filter_shows_only_conflicting_models(
    visit: Visit, library: SeededLibrary
) -> None:
    hash_queue(visit.page)
    page = open_pending(visit)
    conflicts = present(page, library, CONFLICTS)

    chip(page, "Conflicts").click()

    expect_shown(page, conflicts)
    assert re.search(r"/pending\?show=conflicts$", page.url)
    expect(chip(page, "Conflicts")).to_have_attribute("aria-pressed", "true")
    assert count_on(page, "Conflicts") == len(conflicts)
    for pending_id in conflicts:
        shown = page.locator(f".queue > li[data-id='{pending_id}']")
        expect(shown.locator(".badge.dup")).to_have_text("Already in the library")


def test_missing_filter_shows_only_models_whose_file_is_gone(
    visit: Visit, library: SeededLibrary
) -> None:
    page = open_pending(visit)
    missing = present(page, library, MISSING)

    chip(page, "File missing").click()

    expect_shown(page, missing)
    assert count_on(page, "File missing") == len(missing)
    expect(row(page, library, "lost").locator(".badge.missing")).to_have_text(
        "Model file missing or unreadable"
    )


def test_fresh_filter_shows_only_models_that_import_at_once(
    visit: Visit, library: SeededLibrary
) -> None:
    page = visit.page
    hash_queue(page)
    fresh = present(page, library, fresh_roles(library))

    page = open_pending(visit, "?show=fresh")

    expect_shown(page, fresh)
    assert count_on(page, "Fresh") == len(fresh)
    assert library.pending["spare"] in fresh
    assert not fresh & present(page, library, CONFLICTS + MISSING)


def test_the_filter_is_kept_in_the_url_through_back_forward_and_reload(
    visit: Visit, library: SeededLibrary
) -> None:
    page = visit.page
    hash_queue(page)
    conflicts = present(page, library, CONFLICTS)
    missing = present(page, library, MISSING)
    page = open_pending(visit)
    everything = shown_ids(page)
    chip(page, "Conflicts").click()
    expect_shown(page, conflicts)
    chip(page, "File missing").click()
    expect_shown(page, missing)

    page.go_back()
    expect(chip(page, "Conflicts")).to_have_attribute("aria-pressed", "true")
    expect_shown(page, conflicts)
    page.go_back()
    expect(chip(page, "All")).to_have_attribute("aria-pressed", "true")
    expect_shown(page, everything)
    page.go_forward()
    expect_shown(page, conflicts)
    page.reload()
    expect(chip(page, "Conflicts")).to_have_attribute("aria-pressed", "true")
    expect_shown(page, conflicts)


def test_the_filters_are_toggle_buttons_a_keyboard_reaches(
    visit: Visit, library: SeededLibrary
) -> None:
    page = visit.page
    hash_queue(page)
    missing = present(page, library, MISSING)
    page = open_pending(visit)
    chip(page, "All").focus()

    page.keyboard.press("Tab")
    page.keyboard.press("Tab")  # past Conflicts, to File missing
    page.keyboard.press("Space")

    expect(chip(page, "File missing")).to_have_attribute("aria-pressed", "true")
    expect(chip(page, "File missing")).to_be_focused()
    expect(chip(page, "All")).to_have_attribute("aria-pressed", "false")
    expect_shown(page, missing)
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    expect(chip(page, "All")).to_have_attribute("aria-pressed", "true")


def test_select_all_and_import_act_only_on_the_models_shown(
    visit: Visit, library: SeededLibrary
) -> None:
    page = visit.page
    hash_queue(page)
    conflicts = present(page, library, CONFLICTS)
    page = open_pending(visit)
    page.get_by_role("checkbox", name="Select Spare Pending").check()
    chip(page, "Conflicts").click()
    expect_shown(page, conflicts)
    spare = row(page, library, "spare")
    expect(spare).to_be_hidden()
    expect(spare.locator("input[type=checkbox]")).not_to_be_checked()

    page.get_by_role("checkbox", name="Select all").check()
    selected = f"{len(conflicts)} model{'s' if len(conflicts) > 1 else ''} selected"
    expect(page.get_by_text(selected)).to_be_visible()
    # Conflicts are left in the queue: the batch changes nothing, and says what it was sent.
    page.get_by_label("When the model is already in the library:").select_option("")
    with page.expect_request(re.compile(r".*/api/migration/import_models$")) as sent:
        page.get_by_role("button", name="Import selected").click()

    assert set(json.loads(sent.value.post_data)["ids"]) == conflicts
    page.get_by_role("status").get_by_text(f"No model imported, {len(conflicts)} left").wait_for()
    expect_shown(page, conflicts)
    assert row(page, library, "spare").count() == 1


def test_importing_and_discarding_update_the_counts_and_the_list(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    needs(operations, "DELETE /api/migration/pending_models/{id}")
    page = visit.page
    hash_queue(page)
    page = open_pending(visit, "?show=fresh")
    fresh, total = count_on(page, "Fresh"), count_on(page, "All")

    page.get_by_role("button", name="Import Spare Pending").click()

    row(page, library, "spare").wait_for(state="detached")
    expect(chip(page, "Fresh")).to_have_text(f"Fresh ({fresh - 1})")
    expect(chip(page, "All")).to_have_text(f"All ({total - 1})")
    chip(page, "File missing").click()
    missing = count_on(page, "File missing")
    page.get_by_role("button", name="Discard Lost Pending").click()
    page.get_by_role("dialog").get_by_role("button", name="Discard", exact=True).click()
    row(page, library, "lost").wait_for(state="detached")
    expect(chip(page, "File missing")).to_have_text(f"File missing ({missing - 1})")
    expect(chip(page, "All")).to_have_text(f"All ({total - 2})")
    expect_shown(page, present(page, library, MISSING))


def test_the_filters_fit_a_phone(visit: Visit, library: SeededLibrary) -> None:
    page = visit.page
    page.set_viewport_size(PHONE)
    hash_queue(page)
    conflicts = present(page, library, CONFLICTS)
    page = open_pending(visit)

    for label in ("All", "Conflicts", "File missing", "Fresh"):
        box = chip(page, label).bounding_box()
        assert box is not None and box["height"] >= 24, (label, box)
        assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], (label, box)
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")
    chip(page, "Conflicts").click()
    expect_shown(page, conflicts)
