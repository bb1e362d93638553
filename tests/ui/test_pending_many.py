"""A pending queue of a few hundred models, in a real browser: the page draws the first rows at
once and the rest as the list is scrolled or at "Show more", while everything that acts on
the queue acts on every model of the group shown, its row drawn or not: the group chips and
their counts, Select all and the batch import it sends, a range picked with Shift.

The queue is a server of its own (the session's library has two dozen pending models),
seeded through the storage layer: every model has a file, but one in 13 (missing); one in 10
has a file whose cached digest is a library model's (a conflict); the rest are fresh. The
tests run in order; the last two discard every missing model and import every fresh one."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from playwright.sync_api import expect

from modelshelf.app import create_app
from modelshelf.config import Settings
from modelshelf.storage import hash_cache, models, pending
from modelshelf.web.keys import SHELF
from tests.conftest import SLOW_TIMEOUT
from tests.server import ServerProcess, serve_seeded
from tests.ui.conftest import Visit, visit_of, wait_frames
from tests.ui.seed import make_picture

PENDING = 260
ROWS = ".queue > li"
SHOWN = ".queue > li:visible"


def group_of(i: int) -> str:
    if i % 13 == 0:
        return "missing"
    return "conflicts" if i % 10 == 4 else "fresh"


def ids_in(group: str) -> list[int]:
    return [i for i in range(1, PENDING + 1) if group_of(i) == group]


async def seed(data_dir: Path, files: Path, picture: Path) -> None:
    """Pending rows, library models and hash cache entries in one change; each pending model's
    original at images/pending/<id>.png, as stage 1 leaves it."""
    app = create_app(Settings(data_dir=data_dir, port=0).resolve_paths())
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    originals = data_dir / "images" / "pending"
    originals.mkdir(parents=True, exist_ok=True)
    try:
        async with runner.app[SHELF].changes.change() as change:
            for i in range(1, PENDING + 1):
                path = files / f"many_{i:03d}.safetensors"
                fields = {"path": str(path), "name": f"Many Pending {i:03d}", "type": "lora"}
                await pending.insert_pending(change.tx, i, None, fields, [])
                os.link(picture, originals / f"{i}.png")
                await pending.set_pending_image(change.tx, i, "png")
                if group_of(i) == "missing":
                    continue
                content = f"many-pending-{i}".encode().ljust(4096, b".")
                path.write_bytes(content)
                digest = hashlib.sha256(content).hexdigest()
                if group_of(i) == "conflicts":
                    digest = hashlib.sha256(f"many-library-{i}".encode()).hexdigest()
                    await models.insert_model(change.tx, digest, {**fields, "name": f"Lib {i}"})
                st = path.stat()
                await hash_cache.store_digest(
                    change.tx, str(path), st.st_size, st.st_mtime_ns, st.st_ino, digest
                )
    finally:
        await runner.cleanup()


@pytest.fixture(scope="module")
def many_server(tmp_path_factory: pytest.TempPathFactory, browser: Any) -> Iterator[Any]:
    root = tmp_path_factory.mktemp("ui-many-pending")
    (root / "files").mkdir()
    picture = root / "picture.png"
    make_picture(picture, (96, 128), (220, 60, 60), (70, 90, 210))
    yield from serve_seeded(root / "data", seed(root / "data", root / "files", picture))


@pytest.fixture
def visit(browser: Any, many_server: ServerProcess) -> Iterator[Visit]:
    yield from visit_of(browser, many_server)


def open_pending(visit: Visit, query: str = "") -> Any:
    page = visit.page
    page.goto(f"/pending{query}")
    page.locator(ROWS).first.wait_for()
    return page


def chip(page: Any, label: str) -> Any:
    group = page.get_by_role("group", name="Show")
    return group.get_by_role("button", name=re.compile(rf"^{label} \(\d+\)$"))


def row(page: Any, pending_id: int) -> Any:
    return page.locator(f"{ROWS}[data-id='{pending_id}']")


def shown_ids(page: Any) -> list[int]:
    return [int(i) for i in page.locator(SHOWN).evaluate_all("rs => rs.map(r => r.dataset.id)")]


def scroll_to_the_end(page: Any, expected: int) -> None:
    """Scroll down, as a person does, until `expected` rows are shown."""
    for _ in range(20):
        if page.locator(SHOWN).count() >= expected:
            break
        page.mouse.wheel(0, 20_000)
        page.wait_for_timeout(100)
    expect(page.locator(SHOWN)).to_have_count(expected)


def test_the_first_rows_are_drawn_at_once_and_the_rest_as_the_list_scrolls(
    visit: Visit,
) -> None:
    page = open_pending(visit)
    expect(chip(page, "All")).to_have_text(f"All ({PENDING})")
    drawn = page.locator(ROWS).count()
    assert 10 <= drawn < PENDING, drawn
    assert row(page, PENDING).count() == 0  # the last model's row is not made yet
    expect(page.get_by_text(f"Showing {drawn} of {PENDING}.")).to_be_visible()

    scroll_to_the_end(page, PENDING)

    assert shown_ids(page) == list(range(1, PENDING + 1))  # in the queue's order
    expect(row(page, PENDING).get_by_role("img")).to_have_attribute("loading", "lazy")
    expect(page.get_by_role("button", name=re.compile(r"^Show \d+ more$"))).to_be_hidden()


def test_show_more_draws_the_next_rows_from_the_keyboard(visit: Visit) -> None:
    page = open_pending(visit)
    drawn = page.locator(SHOWN).count()
    more = page.get_by_role("button", name=re.compile(r"^Show \d+ more$"))
    more.focus()
    # Reaching the button brings the end of the list near, but no rows are drawn under the
    # focus: the person on the button chooses.
    expect(more).to_be_in_viewport()
    wait_frames(page, 3)
    assert page.locator(SHOWN).count() == drawn
    page.keyboard.press("Enter")
    expect(row(page, drawn + 1)).to_be_visible()
    assert page.locator(SHOWN).count() >= min(PENDING, 2 * drawn)
    assert shown_ids(page) == list(range(1, page.locator(SHOWN).count() + 1))
    # The focus goes on to the first row the button drew, not past them with the button.
    focused = page.evaluate("document.activeElement.closest('.queue > li')?.dataset.id")
    assert focused == str(drawn + 1)


def test_a_group_filter_applies_to_rows_not_drawn_yet(visit: Visit) -> None:
    conflicts, missing = ids_in("conflicts"), ids_in("missing")
    page = open_pending(visit)
    assert row(page, conflicts[-1]).count() == 0  # far down the queue, not drawn

    chip(page, "Conflicts").click()

    expect(page.locator(SHOWN)).to_have_count(len(conflicts))
    assert shown_ids(page) == conflicts
    expect(chip(page, "Conflicts")).to_have_text(f"Conflicts ({len(conflicts)})")
    expect(row(page, conflicts[-1]).locator(".badge.dup")).to_have_text("Already in the library")

    page.goto("/pending?show=missing")
    expect(page.locator(SHOWN)).to_have_count(len(missing))
    assert shown_ids(page) == missing
    expect(page.get_by_role("checkbox", name=f"Select all {len(missing)}")).to_be_visible()


def test_a_shift_range_picks_every_model_between_across_the_rows_drawn_later(
    visit: Visit,
) -> None:
    page = open_pending(visit)
    assert page.locator(SHOWN).count() < PENDING
    page.get_by_role("checkbox", name="Select Many Pending 002").check()
    scroll_to_the_end(page, PENDING)
    page.get_by_role("checkbox", name=f"Select Many Pending {PENDING - 1:03d}").click(
        modifiers=["Shift"]
    )
    expect(page.get_by_text(f"{PENDING - 2} models selected")).to_be_visible()


def words_match(record: dict[str, Any], words: list[str]) -> bool:
    """The page's rule: every word is part of the name, file, type or a tag (case aside)."""
    parts = [record["name"], record["path"], record["type"], *(t["name"] for t in record["tags"])]
    text = "\n".join(p for p in parts if p).lower()
    return all(word in text for word in words)


def test_the_filter_narrows_the_queue_to_the_models_whose_words_match(visit: Visit) -> None:
    page = open_pending(visit)
    records = page.request.get("/api/migration/pending_models").json()["models"]
    # A word no temporary folder's path holds (pytest-139 holds "13": every model matched).
    expected = [r["id"] for r in records if words_match(r, ["many_01"])]
    assert 1 < len(expected) < len(records)
    field = page.get_by_label("Filter pending models")

    field.fill("many_01")

    expect(page.locator(SHOWN)).to_have_count(len(expected))
    assert shown_ids(page) == expected
    expect(chip(page, "All")).to_have_text(f"All ({len(expected)})")
    page.get_by_role("checkbox", name=f"Select all {len(expected)}").check()
    expect(page.get_by_text(f"{len(expected)} models selected")).to_be_visible()
    # Kept in the URL: a reload shows the same models.
    page.wait_for_url(re.compile(r".*[?&]q=many_01"))
    page.reload()
    expect(field).to_have_value("many_01")
    expect(page.locator(SHOWN)).to_have_count(len(expected))
    # Nothing matches: said, and Show all brings every model back.
    field.fill("zzyzx")
    expect(page.get_by_text("No pending model shown here matches the filter.")).to_be_visible()
    page.get_by_role("button", name="Show all").click()
    expect(field).to_have_value("")
    expect(chip(page, "All")).to_have_text(f"All ({len(records)})")
    expect(chip(page, "All")).to_be_focused()


def test_discard_selected_takes_every_model_of_the_group_out_of_the_queue_at_once(
    visit: Visit,
) -> None:
    missing = ids_in("missing")
    page = open_pending(visit, "?show=missing")
    expect(page.locator(SHOWN)).to_have_count(len(missing))
    page.get_by_role("checkbox", name=f"Select all {len(missing)}").check()
    page.get_by_role("button", name="Discard selected").click()
    dialog = page.get_by_role("dialog", name=f"Discard {len(missing)} pending models?")
    expect(dialog).to_contain_text("Their model files stay on disk.")
    with page.expect_request(re.compile(r".*/api/migration/discard_models$")) as sent:
        dialog.get_by_role("button", name=f"Discard {len(missing)} models").click()

    assert sorted(json.loads(sent.value.post_data or "{}")["ids"]) == missing
    page.get_by_role("status").get_by_text(f"{len(missing)} models discarded").wait_for()
    expect(page.locator(SHOWN)).to_have_count(0)
    expect(chip(page, "File missing")).to_have_text("File missing (0)")
    expect(chip(page, "All")).to_have_text(f"All ({PENDING - len(missing)})")
    expect(page.get_by_role("checkbox", name=re.compile(r"^Select all"))).to_be_focused()
    listed = page.request.get("/api/migration/pending_models").json()["models"]
    assert len(listed) == PENDING - len(missing)
    assert not {m["id"] for m in listed} & set(missing)


# It imports 216 models, their pictures rendered: over a minute on a busy 2-core machine.
@pytest.mark.timeout(SLOW_TIMEOUT)
def test_select_all_selects_every_model_of_the_group_and_the_batch_imports_them_all(
    visit: Visit,
) -> None:
    fresh = ids_in("fresh")
    page = open_pending(visit, "?show=fresh")
    # The others stay: the conflicts, and the missing ones unless the test before discarded them.
    queued = {m["id"] for m in page.request.get("/api/migration/pending_models").json()["models"]}
    others = sorted(queued - set(fresh))
    drawn = page.locator(ROWS).count()
    assert drawn < len(fresh), drawn  # most fresh rows are not drawn yet

    page.get_by_role("checkbox", name=f"Select all {len(fresh)}").check()

    expect(page.get_by_text(f"{len(fresh)} models selected")).to_be_visible()
    # From the keyboard: a click's scroll brings the end near, and the list may grow first.
    more = page.get_by_role("button", name=re.compile(r"^Show \d+ more$"))
    more.focus()
    expect(more).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(row(page, fresh[drawn]).get_by_role("checkbox")).to_be_checked()  # drawn checked
    with page.expect_request(re.compile(r".*/api/migration/import_models$")) as sent:
        page.get_by_role("button", name="Import selected").click()
    assert sorted(json.loads(sent.value.post_data)["ids"]) == fresh
    page.get_by_role("status").get_by_text(f"{len(fresh)} models imported").wait_for(
        timeout=180_000
    )
    expect(chip(page, "Fresh")).to_have_text("Fresh (0)")
    expect(chip(page, "All")).to_have_text(f"All ({len(others)})")
    expect(page.locator(SHOWN)).to_have_count(0)
    listed = page.request.get("/api/migration/pending_models").json()["models"]
    assert sorted(m["id"] for m in listed) == others
