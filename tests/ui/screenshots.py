"""Screenshots of every page (library, model, pending, a conflict, tags, jobs), desktop
(1280x800) and phone (390x844), light and one dark, for the README. Run from the repository root:

    .venv/bin/python -m tests.ui.screenshots docs/screenshots

It seeds the browser tests' library (with larger pictures), starts a real server on it and
photographs the pages. The pending queue is shown once its files are hashed ("Check them"),
so that every model is in a group. The jobs page is shown with a running scan answered in the
browser in the API's shapes (as the jobs tests do), so that the picture does not depend on
timing.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.server import ServerProcess
from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS, missing_browser, serve_as_if
from tests.ui.test_jobs_and_prefix import JOB, PROGRESS, events, with_jobs

SIZES = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


def fake_running_scan(page: Any) -> None:
    running = {**JOB, "progress": PROGRESS}
    serve_as_if(page, with_jobs(True))
    page.route("**/api/jobs", lambda r: r.fulfill(json={"jobs": [running]}))
    page.route("**/api/jobs/j1", lambda r: r.fulfill(json=running))
    page.route(
        "**/api/jobs/j1/events",
        lambda r: r.fulfill(body=events(("progress", PROGRESS)), content_type="text/event-stream"),
    )


def shoot(browser: Any, url: str, out: Path, hashes: dict[str, str]) -> list[Path]:
    shots = []
    model = hashes["Aurora Lineart XL"]
    for size, viewport in SIZES.items():
        for scheme in ("light", "dark") if size == "desktop" else ("light",):
            context = browser.new_context(base_url=url, viewport=viewport, color_scheme=scheme)
            page = context.new_page()
            suffix = f"{size}" + ("-dark" if scheme == "dark" else "")
            page.goto("/")
            page.locator(".card img.loaded").first.wait_for()
            page.wait_for_timeout(400)
            shots.append(out / f"library-{suffix}.png")
            page.screenshot(path=shots[-1])
            if scheme == "dark":
                context.close()
                continue
            page.goto(f"/models/{model}")
            page.locator(".stage img").wait_for()
            page.wait_for_timeout(400)
            shots.append(out / f"model-{suffix}.png")
            page.screenshot(path=shots[-1])
            page.goto("/pending")
            page.locator(".queue img").first.wait_for()
            check = page.get_by_role("button", name=re.compile(r"^Check (them|it)$"))
            if check.is_visible():  # the files hashed, every model is in a group
                check.click()
                page.get_by_role("button", name="Stop checking").wait_for(state="hidden")
                page.goto("/pending")  # as the queue is shown from now on (no toast)
                page.locator(".queue img").first.wait_for()
            page.wait_for_timeout(300)
            shots.append(out / f"pending-{suffix}.png")
            page.screenshot(path=shots[-1])
            page.get_by_role("button", name="Import Pending Conflict 0").click()
            page.get_by_role("dialog").locator(".strategy").first.wait_for()
            page.get_by_role("dialog").evaluate("d => { d.scrollTop = 0; }")
            page.wait_for_timeout(400)
            shots.append(out / f"conflict-{suffix}.png")
            page.screenshot(path=shots[-1])
            page.get_by_role("button", name="Decide later").click()
            page.goto("/tags?sort=most")
            page.get_by_role("button", name=re.compile(r"^Rename tag ")).first.wait_for()
            shots.append(out / f"tags-{suffix}.png")
            page.screenshot(path=shots[-1])
            fake_running_scan(page)
            page.goto("/jobs")
            page.locator(".job .stats").get_by_text("hashing").wait_for()
            shots.append(out / f"jobs-{suffix}.png")
            page.screenshot(path=shots[-1])
            context.close()
    return shots


def main(out: Path) -> int:
    reason = missing_browser()
    if reason:
        print(reason)
        return 2
    from playwright.sync_api import sync_playwright

    from tests.ui.seed import seed_library

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        library = seed_library(Path(tmp), picture=(384, 512))
        server = ServerProcess(library.data_dir, Path(tmp) / "server.log").start()
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
                )
                for shot in shoot(browser, server.url, out, library.hashes):
                    print(shot)
                browser.close()
        finally:
            server.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/screenshots")))
