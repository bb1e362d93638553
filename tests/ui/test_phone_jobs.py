"""On a phone (390 CSS px wide) the jobs page fits the screen, long paths included, and the
small controls (checkboxes, the button that removes a tag) are touch targets of at least 24 by
24 CSS px (WCAG 2.2, 2.5.8)."""

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
