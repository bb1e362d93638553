"""Part-2 features in a real browser: edit fields, edit tags, reorder by drag and by keyboard,
set as cover, restore from history, delete a model, previews of the strategies, sort and the
base-model filter. Each test skips, saying what is missing, on a server without its API."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.ui.conftest import Visit, needs, open_model
from tests.ui.seed import SeededLibrary
from tests.ui.test_unsaved_work import Gate

PATCH = "PATCH /api/models/{sha256}"


def image_digests(page: Any, sha: str, count: int) -> list[str]:
    """What each example image is, by content (names stay `<sha>_<seq>` when order changes)."""
    return [
        hashlib.sha256(
            page.request.get(f"/api/images/{sha}_{seq}.webp?quality=low").body()
        ).hexdigest()[:12]
        for seq in range(count)
    ]


def test_editing_fields_then_restoring_the_earlier_version(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    needs(operations, PATCH, "GET /api/models/{sha256}/history")
    page = open_model(visit, library, "Pastel Lora v1")
    page.get_by_role("button", name="Edit").click()
    page.get_by_label("Name").fill("Pastel Skies")
    page.get_by_label("Notes").fill("great for evening skies")
    page.get_by_role("textbox", name="Trigger words").fill("pastel sky, soft light")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("heading", level=1, name="Pastel Skies").wait_for()
    assert page.get_by_text("great for evening skies", exact=True).is_visible()
    assert page.get_by_role("button", name="Copy trigger word soft light").is_visible()
    page.reload()
    page.get_by_role("heading", level=1, name="Pastel Skies").wait_for()
    history = page.get_by_role("region", name="History")
    history.get_by_text("Edited", exact=True).first.wait_for()
    history.get_by_role("button", name=re.compile("^Restore")).first.click()
    page.get_by_role("dialog").get_by_role("button", name="Restore").click()
    page.get_by_role("heading", level=1, name="Pastel Lora v1").wait_for()


def test_a_cleared_type_is_saved_as_none(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    # The API refuses a blank type: the editor sends a cleared field as null.
    needs(operations, PATCH)
    page = open_model(visit, library, "Pastel Lora v1")
    page.get_by_role("button", name="Edit", exact=True).click()
    page.get_by_label("Type", exact=True).fill("")
    page.get_by_role("button", name="Save").click()
    page.get_by_text("Saved", exact=True).first.wait_for()
    record = page.request.get(f"/api/models/{library.hashes['Pastel Lora v1']}").json()
    assert record["type"] is None


def test_tags_are_added_and_removed_in_place(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    needs(operations, "PUT /api/models/{sha256}/tags")
    page = open_model(visit, library, "Pixel Embedding v1")
    tags = page.get_by_role("region", name="Tags")
    tags.get_by_label("Add a tag").fill("Retro")
    tags.get_by_label("Add a tag").press("Enter")
    tags.get_by_role("link", name="retro").wait_for()
    tags.get_by_role("button", name="Remove tag retro").click()
    tags.get_by_role("link", name="retro").wait_for(state="detached")


def test_a_tag_name_too_long_is_said_and_kept_in_the_field(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    needs(operations, "PUT /api/models/{sha256}/tags")
    page = open_model(visit, library, "Pixel Embedding v1")
    field = page.get_by_role("region", name="Tags").get_by_label("Add a tag")
    typed = "short, " + "x" * 120
    field.fill(typed)
    field.press("Enter")
    page.get_by_role("alert").get_by_text("A tag name has at most 100 characters").wait_for()
    assert field.input_value() == typed


@pytest.mark.parametrize("typed", ["\ufeff", "\ufeff, \ufeff\ufeff"], ids=["bom", "boms-and-comma"])
def test_a_tag_of_what_the_browser_trims_alone_is_said_not_dropped(
    visit: Visit, library: SeededLibrary, operations: set[str], typed: str
) -> None:
    """A byte-order mark the browser trims (the server counts it as no space) emptied the
    field and nothing was said. It is said, as New tag and the selection bar say it, and kept."""
    needs(operations, "PUT /api/models/{sha256}/tags")
    sha = library.hashes["Pixel Embedding v1"]
    page = open_model(visit, library, "Pixel Embedding v1")
    before = page.request.get(f"/api/models/{sha}").json()["tags"]
    field = page.get_by_role("region", name="Tags").get_by_label("Add a tag")
    field.fill(typed)
    field.press("Enter")
    page.get_by_role("alert").get_by_text("Type the tag to add first").wait_for()
    assert field.input_value() == typed
    assert page.request.get(f"/api/models/{sha}").json()["tags"] == before


def test_backspace_removes_the_last_tag_only_when_pressed_twice(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    needs(operations, "PUT /api/models/{sha256}/tags")
    sha = library.hashes["Noir Lora v2"]
    page = open_model(visit, library, "Noir Lora v2")
    tags = page.get_by_role("region", name="Tags")
    before = tags.locator(".chip a").all_inner_texts()
    field = tags.get_by_label("Add a tag")
    field.press("Backspace")
    page.get_by_role("status").get_by_text("Press Backspace again").wait_for()
    assert tags.locator(".chip.armed a").inner_text() == before[-1]
    assert [t["name"] for t in page.request.get(f"/api/models/{sha}").json()["tags"]] == before
    field.press("Backspace")
    tags.get_by_role("link", name=before[-1], exact=True).wait_for(state="detached")
    after = [t["name"] for t in page.request.get(f"/api/models/{sha}").json()["tags"]]
    assert after == before[:-1]
    field.fill(before[-1])  # as it was, for the tests after this one
    field.press("Enter")
    tags.get_by_role("link", name=before[-1], exact=True).wait_for()


def test_images_reorder_by_drag_by_keyboard_and_set_as_cover(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    needs(operations, "POST /api/images/reorder")
    name = "Ink Embedding v2"
    sha = library.hashes[name]
    page = open_model(visit, library, name)
    first, second, third = image_digests(page, sha, 3)
    thumbs = page.locator(".thumbs li")
    thumbs.nth(2).drag_to(thumbs.nth(0), target_position={"x": 5, "y": 20})
    page.get_by_role("status").get_by_text("Cover changed").wait_for()
    assert image_digests(page, sha, 3) == [third, first, second]
    page.get_by_role("button", name=re.compile("^Example image 2 of 3")).focus()
    page.keyboard.press("Alt+ArrowRight")
    # The moved image stays the selected one, now third.
    page.locator(".thumbs li:nth-child(3) .thumb[aria-current='true']").wait_for()
    assert image_digests(page, sha, 3) == [third, second, first]
    page.get_by_role("button", name=re.compile("^Example image 2 of 3")).click()
    page.get_by_role("button", name="Set as cover").click()
    page.locator(".thumbs li:nth-child(1) .thumb[aria-current='true']").wait_for()
    assert image_digests(page, sha, 3) == [second, third, first]


def test_deleting_a_model_asks_first_and_returns_to_the_library(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    needs(operations, "DELETE /api/models/{sha256}")
    page = visit.page
    imported = page.request.post(
        "/api/migration/import_a_model", data={"id": library.pending["fresh4"]}
    ).json()
    page.goto(f"/models/{imported['sha256']}")
    page.get_by_role("heading", level=1, name="Fresh Pending 4").wait_for()
    page.get_by_role("button", name="Delete model").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    page.get_by_role("button", name="Delete model").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete model").click()
    page.get_by_role("heading", level=1, name="Library").wait_for()
    assert page.request.get(f"/api/models/{imported['sha256']}").status == 404


def test_a_slow_delete_is_shown_as_running_and_a_second_click_asks_nothing(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    """On a slow server nothing showed that the delete was under way: a second click asked
    again, and its delete met a 404, said as an error after the model was gone."""
    needs(operations, "DELETE /api/models/{sha256}")
    page = visit.page
    imported = page.request.post(
        "/api/migration/import_a_model", data={"id": library.pending["fresh14"]}
    ).json()
    page.goto(f"/models/{imported['sha256']}")
    page.get_by_role("heading", level=1, name="Fresh Pending 14").wait_for()
    gate = Gate(page, re.compile(r".*/api/models/[0-9a-f]{64}$"), "DELETE")
    control = page.locator(".model-title .actions button.danger")  # "Delete model", then busy
    control.click()
    page.get_by_role("dialog").get_by_role("button", name="Delete model").click()
    expect(control).to_have_text("Deleting…")
    expect(control).to_be_disabled()
    assert control.get_attribute("aria-busy") == "true"
    control.click(force=True)  # a second click while the first runs
    expect(page.get_by_role("dialog")).to_have_count(0)
    gate.wait_held(page, 1)
    assert len(gate.held) == 1
    gate.open()
    page.get_by_role("heading", level=1, name="Library").wait_for()
    page.get_by_role("status").get_by_text("Deleted Fresh Pending 14").wait_for()
    assert page.locator(".toast.error").count() == 0


def test_each_strategy_is_previewed_before_the_choice(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    needs(operations, "POST /api/migration/preview_import")
    page = visit.page
    page.goto("/pending")
    page.get_by_role("button", name="Import Pending Conflict 1").click()
    dialog = page.get_by_role("dialog")
    merge = dialog.locator(".strategy", has=page.get_by_role("button", name="Merge", exact=True))
    merge.get_by_text(re.compile("^Afterwards: “Existing Conflict 1”.*2 images")).wait_for()
    override = dialog.locator(
        ".strategy", has=page.get_by_role("button", name="Override", exact=True)
    )
    override.get_by_text(re.compile("^Afterwards: “Pending Conflict 1”")).wait_for()
    # What an override takes away for good is said apart; a merge takes nothing away.
    said = override.locator(".result").inner_text()
    assert said.endswith("Removes from the library's metadata: base_model, notes.")
    assert "Removes" not in merge.locator(".result").inner_text()
    # The fields that differ are marked on both sides, for the eye and for a screen reader.
    for column in dialog.locator(".compare .side").all():
        marked = column.locator("dd.differs").all_inner_texts()
        assert [text.endswith("(differs)") for text in marked] == [True, True]  # name, tags
    dialog.get_by_role("button", name="Decide later").click()


def test_a_search_is_shown_in_best_match_order_and_can_be_sorted_by_name(
    visit: Visit, operations: set[str]
) -> None:
    needs(operations, "GET /api/models?sort")
    page = visit.page
    page.goto("/")
    page.locator(".card[data-state='full']").first.wait_for()
    sort = page.get_by_label("Sort")
    assert sort.input_value() == "name:asc"
    assert sort.locator("option[value='best:']").evaluate("o => o.hidden && o.disabled")
    page.get_by_role("searchbox", name="Search").press_sequentially("lineart", delay=20)
    page.wait_for_url(re.compile(r"\?q=lineart$"))
    page.get_by_text("3 models").wait_for()
    assert sort.input_value() == "best:"
    sort.select_option("name:asc")
    page.wait_for_url(re.compile(r"\?q=lineart&sort=name&order=asc$"))
    page.locator(".card[data-state='full']").nth(2).wait_for()
    names = page.locator(".card[data-state='full'] .name").all_inner_texts()
    assert names == sorted(names) and len(names) == 3
    sort.select_option("best:")
    page.wait_for_url(re.compile(r"\?q=lineart$"))
    assert sort.input_value() == "best:"


def test_sort_and_base_model_filter_keep_to_the_url(visit: Visit, operations: set[str]) -> None:
    needs(operations, "GET /api/models?sort", "GET /api/models?base_model")
    page = visit.page
    page.goto("/")
    page.locator(".card[data-state='full']").first.wait_for()
    page.get_by_label("Sort").select_option("created_at:desc")
    page.wait_for_url(re.compile(r"sort=created_at&order=desc"))
    page.locator(".card[data-state='full'] .name").first.filter(
        has_text="Portrait Lora v1"
    ).wait_for()
    base = page.get_by_label("Base model")
    base.fill("Pony")
    base.press("Enter")
    page.wait_for_url(re.compile(r"base_model=Pony"))
    page.get_by_text("9 models").wait_for()
    page.go_back()
    page.wait_for_url(re.compile(r"sort=created_at&order=desc$"))


def trigger_words_shown(page: Any) -> list[str]:
    panel = page.get_by_role("region", name="Trigger words")
    return [b.inner_text() for b in panel.locator("ul.chips button").all()]


def test_the_trigger_words_shown_and_copied_are_the_ones_edited(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    needs(operations, PATCH)
    name = "Neon Checkpoint v1"
    downloaded = {
        "trigger_words": ["sty0", "detailed"],
        "civitai": {"trainedWords": ["sty0", "detailed"]},
        "a1111": {"activation text": "detailed, glow"},
    }
    page = visit.page
    assert page.request.patch(
        f"/api/models/{library.hashes[name]}", data={"meta_json": downloaded}
    ).ok
    page = open_model(visit, library, name)
    assert trigger_words_shown(page) == ["sty0", "detailed"]
    page.get_by_role("button", name="Edit", exact=True).click()
    field = page.get_by_role("textbox", name="Trigger words")
    assert field.input_value() == "sty0, detailed"
    field.fill("sty0, new one")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("button", name="Copy trigger word new one").wait_for()
    assert trigger_words_shown(page) == ["sty0", "new one"]
    visit.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy all trigger words").click()
    page.get_by_role("status").get_by_text("Trigger words copied").wait_for()
    assert page.evaluate("() => navigator.clipboard.readText()") == "sty0, new one"


def test_the_trigger_words_heading_is_named_by_its_words_alone(
    visit: Visit, library: SeededLibrary
) -> None:
    page = open_model(visit, library, "Aurora Lineart XL")
    # A screen reader going by headings (or landmarks) hears "Trigger words", not the name of
    # the Copy button beside it too.
    expect(page.get_by_role("heading", name="Trigger words", exact=True)).to_be_visible()
    panel = page.get_by_role("region", name="Trigger words", exact=True)
    expect(panel.get_by_role("button", name="Copy all trigger words")).to_be_visible()


def test_without_their_own_trigger_words_a_download_s_are_shown_until_edited(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    needs(operations, PATCH)
    name = "Neon Checkpoint v2"
    sha = library.hashes[name]
    downloaded = {
        "trigger_words": None,
        "civitai": {"trainedWords": ["sty1"]},
        "a1111": {"activation text": "glow"},
    }
    assert visit.page.request.patch(f"/api/models/{sha}", data={"meta_json": downloaded}).ok
    page = open_model(visit, library, name)
    assert trigger_words_shown(page) == ["sty1", "glow"]
    page.get_by_role("button", name="Edit", exact=True).click()
    field = page.get_by_role("textbox", name="Trigger words")
    assert field.input_value() == "sty1, glow"
    field.fill("")  # every word removed: they must not come back from the download
    page.get_by_role("button", name="Save").click()
    page.locator("#edit-button[aria-expanded='false']").wait_for()
    assert page.get_by_role("region", name="Trigger words").count() == 0
    assert page.request.get(f"/api/models/{sha}").json()["meta_json"]["trigger_words"] == []


def test_the_editors_base_model_takes_what_the_librarys_filter_takes(
    visit: Visit, library: SeededLibrary
) -> None:
    """As the edit of many models: a longer base model could not be chosen in the library's
    base-model filter (the server's filter_text, 100 characters, counted once trimmed): it is
    said at the field, which keeps what was pasted, and Save sends nothing."""
    page = open_model(visit, library, "Aurora Lineart XL")
    page.get_by_role("button", name="Edit", exact=True).click()
    field = page.get_by_label("Base model", exact=True)
    field.focus()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.insert_text("Illustrious XL v2 " * 10)  # 180 characters, as a paste
    assert field.input_value() == "Illustrious XL v2 " * 10
    said = "At most 100 characters once trimmed; this has 179"
    expect(field).to_have_accessible_description(said)
    page.get_by_role("button", name="Save").click()
    expect(field).to_be_focused()
    page.get_by_role("button", name="Cancel editing").click()
    page.get_by_role("dialog").get_by_role("button", name="Drop changes").click()


def test_a_trigger_phrase_with_commas_in_parentheses_stays_whole_when_words_are_added(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    """Civitai's `trainedWords` hold prompt phrases such as "(red hair, blue eyes:1.2)": the
    page shows each as one word (as A1111's activation text is split), and a word added in
    the editor leaves it whole."""
    needs(operations, PATCH)
    name = "Neon Checkpoint v1"
    phrase = "(red hair, blue eyes:1.2)"
    downloaded = {"trigger_words": [phrase, "neon"], "civitai": {"trainedWords": [phrase, "neon"]}}
    page = visit.page
    assert page.request.patch(
        f"/api/models/{library.hashes[name]}", data={"meta_json": downloaded}
    ).ok
    page = open_model(visit, library, name)
    assert trigger_words_shown(page) == [phrase, "neon"]
    page.get_by_role("button", name="Edit", exact=True).click()
    field = page.get_by_role("textbox", name="Trigger words")
    field.press("End")
    field.press_sequentially(", glow")
    page.get_by_role("button", name="Save").click()
    page.get_by_role("button", name="Copy trigger word glow").wait_for()
    assert trigger_words_shown(page) == [phrase, "neon", "glow"]
    meta = page.request.get(f"/api/models/{library.hashes[name]}").json()["meta_json"]
    assert meta["trigger_words"] == [phrase, "neon", "glow"]
