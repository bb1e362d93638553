"""On a phone (390 CSS px wide) the jobs page and a model's page fit the screen, long paths
and unbroken words included, the small controls (checkboxes, the button that removes a tag)
are touch targets of at least 24 by 24 CSS px (WCAG 2.2, 2.5.8), and a conflict's two records
stay side by side with the choices near."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.server import ServerProcess
from tests.ui.conftest import Operations, Visit, open_model, serve_as_if
from tests.ui.seed import SeededLibrary
from tests.ui.test_job_views import SCAN_RESULT, ended
from tests.ui.test_jobs_and_prefix import with_jobs

PHONE = {"width": 390, "height": 844}
LONG = "/srv/comfyui/models/loras/" + "very_long_folder_name_without_any_break" * 3
TARGET_PX = 24


@pytest.fixture
def phone(browser: Any, server: ServerProcess) -> Iterator[Visit]:
    opened = Visit(browser, server.url, viewport=PHONE, has_touch=True, is_mobile=True)
    yield opened
    opened.close()
    assert not opened.errors, opened.errors


def test_the_jobs_page_does_not_scroll_sideways_on_a_phone(phone: Visit) -> None:
    def edit(operations: Operations) -> None:
        with_jobs(True)(operations)
        operations["GET /api/duplicates"] = {"query": [], "statuses": [200]}

    page = phone.page
    serve_as_if(page, edit)
    problems = [{"path": f"{LONG}/broken.safetensors", "reason": "safetensors header: bad"}]
    done = ended("j1", 0, result={**SCAN_RESULT, "problems": problems})
    page.route("**/api/jobs", lambda r: r.fulfill(json={"jobs": [done]}))
    group = {
        "sha256": "a" * 64,
        "name": "Aurora",
        "size_bytes": 2**30,
        "files": [f"{LONG}/aurora.safetensors", f"{LONG}/aurora copy.safetensors"],
        "wasted_bytes": 2**30,
    }
    page.route(
        "**/api/duplicates", lambda r: r.fulfill(json={"groups": [group], "wasted_bytes": 2**30})
    )
    page.goto("/jobs")
    page.get_by_text(f"{LONG}/aurora copy.safetensors").wait_for()
    page.get_by_text("1 problem", exact=True).wait_for()
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], widths


def size_of(locator: Any) -> tuple[float, float]:
    box = locator.bounding_box()
    return box["width"], box["height"]


def test_checkboxes_are_touch_targets(phone: Visit) -> None:
    page = phone.page
    page.goto("/pending")
    page.locator(".queue > li").first.wait_for()
    for box in (
        page.get_by_role("checkbox", name="Select all"),
        page.locator(".queue input").first,
    ):
        width, height = size_of(box)
        assert width >= TARGET_PX and height >= TARGET_PX, (width, height)


def test_a_tags_remove_button_is_a_touch_target(phone: Visit, library: SeededLibrary) -> None:
    page = open_model(phone, library, "Aurora Lineart XL")
    width, height = size_of(page.get_by_role("button", name="Remove tag lora"))
    assert width >= TARGET_PX and height >= TARGET_PX, (width, height)


def test_a_model_with_long_unbroken_words_does_not_scroll_sideways_on_a_phone(
    phone: Visit, library: SeededLibrary
) -> None:
    """A tag as long as a tag name may be, a trigger word and a base model written without a
    space (an underscored caption, a version string) widened the page to 970 px: every panel
    then scrolled sideways with it."""
    word = "masterpiece_best_quality_" * 4  # 100 characters
    sha = library.hashes["Pixel Embedding v1"]

    def long_words(route: Any) -> None:
        record = route.fetch().json()
        record["meta_json"] |= {"trigger_words": [word], "base_model": word}
        record["tags"] = [*record["tags"], {"id": 999, "name": word}]
        route.fulfill(json=record)

    page = phone.page
    page.route(f"**/api/models/{sha}", long_words)
    page.goto(f"/models/{sha}")
    page.get_by_role("button", name=f"Copy trigger word {word}").wait_for()
    page.get_by_role("button", name=f"Remove tag {word}").wait_for()
    widths = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1], widths


def record(name: str, **extra: Any) -> dict[str, Any]:
    fields = {"sha256": "ab" * 32, "path": f"/models/loras/{name}.safetensors", "name": name}
    fields |= {"type": "lora", "size_bytes": 1000, "created_at": 1_700_000_000_000}
    return fields | {"meta_json": {"notes": "mine"}, "tags": [], "images": []} | extra


def test_a_conflict_on_a_phone_shows_both_records_side_by_side_and_the_choices_near(
    phone: Visit,
) -> None:
    """The records stacked, each image a screen high, put the choices three screens down."""
    page = phone.page
    existing = record("Library one", images=[f"{'ab' * 32}_0.webp"])
    pending = record("Pending one", id=7, images=["pending/7"]) | {"meta_json": {}}
    page.route("**/api/migration/pending_models?*", lambda r: r.fulfill(json={"models": [pending]}))
    conflict = {"error": "Conflict", "detail": "x", "existing": existing, "pending": pending}
    page.route("**/api/migration/import_a_model", lambda r: r.fulfill(status=409, json=conflict))
    # The comparison reads the conflict as the library has it now, with its version (9dec7b1).
    preview = {
        "action_taken": "deleted",
        "result": existing,
        "existing": existing,
        "pending": pending,
    }
    page.route(
        "**/api/migration/preview_import",
        lambda r: r.fulfill(json=preview, headers={"ETag": '"v1"'}),
    )
    page.goto("/pending")
    page.get_by_role("button", name="Import Pending one").click()
    dialog = page.get_by_role("dialog")
    sides = dialog.locator(".compare .side")
    sides.nth(1).wait_for()
    first, second = sides.nth(0).bounding_box(), sides.nth(1).bounding_box()
    assert first is not None and second is not None
    assert first["y"] == second["y"] and second["x"] > first["x"]  # side by side
    override = dialog.get_by_role("button", name="Override", exact=True)
    top = override.evaluate("b => b.getBoundingClientRect().top + b.closest('dialog').scrollTop")
    assert top < 2 * PHONE["height"], top  # within two screens of the dialog's top
