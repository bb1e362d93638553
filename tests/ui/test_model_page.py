"""The model page in a real browser: the full SHA256 as text, the gallery (high in the
lightbox, arrow keys, Escape), upload with the file picker, delete with confirmation, the
library's tags read once for models stepped through, 30 of a model's 200 tags until all are
asked for, a model that could not be loaded offered again, and controls whose endpoint the
server lacks shown disabled, never broken."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.factories import make_image
from tests.ui.conftest import Operations, Visit, open_model, serve_as_if
from tests.ui.seed import SeededLibrary
from tests.ui.test_unsaved_work import FAILURES, fail


def image_count(page: Any) -> int:
    heading = page.locator("#gallery-title").inner_text()
    return int(re.search(r"\((\d+)\)", heading).group(1))


def test_the_full_sha256_and_autov2_are_shown_as_text(visit: Visit, library: SeededLibrary) -> None:
    sha = library.hashes["Aurora Lineart XL"]
    page = open_model(visit, library, "Aurora Lineart XL")
    assert page.get_by_text(sha, exact=True).is_visible()
    assert page.get_by_text(sha[:10].upper(), exact=True).is_visible()
    visit.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy SHA256").click()
    page.get_by_role("status").get_by_text("SHA256 copied").wait_for()
    assert page.evaluate("() => navigator.clipboard.readText()") == sha
    # Copied again: the new toast takes the old one's place, not a second one stacked.
    page.evaluate("() => document.querySelector('#status .toast').dataset.first = 'yes'")
    page.get_by_role("button", name="Copy SHA256").click()
    page.locator("#status .toast:not([data-first])").wait_for()
    assert page.locator("#status .toast").count() == 1
    assert page.get_by_role("button", name="Copy trigger word lineart style").is_visible()
    assert page.get_by_role("link", name="https://example.org/models/1").is_visible()
    page.locator(".thumbs img").first.wait_for()
    assert page.locator("img:not([alt]), img[alt='']").count() == 0


@pytest.mark.parametrize("images", [1, 2, 4])
def test_the_image_actions_hold_their_buttons_and_no_stray_text(
    visit: Visit, library: SeededLibrary, images: int
) -> None:
    """With fewer than three images there is no "Move to" form, and the row of actions showed
    the word "null" after Delete image in its place."""
    seeded = enumerate(library.hashes, start=1)  # model i has i % 4 images, the first 4
    name = next(n for i, n in seeded if (4 if i == 1 else i % 4) == images)
    page = open_model(visit, library, name)
    assert image_count(page) == images
    actions = page.locator(".image-actions")
    actions.get_by_role("button", name="Delete image").wait_for()
    stray = actions.evaluate(
        "(el) => [...el.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE)"
        ".map((n) => n.textContent)"
    )
    assert stray == []
    assert "null" not in actions.inner_text()


def test_the_lightbox_shows_high_and_follows_the_arrow_keys(
    visit: Visit, library: SeededLibrary
) -> None:
    page = open_model(visit, library, "Aurora Lineart XL")
    page.get_by_role("button", name="Open image 1 large").click()
    dialog = page.get_by_role("dialog")
    image = dialog.get_by_role("img")
    assert image.get_attribute("src").endswith("_0.webp?quality=high")
    page.keyboard.press("ArrowRight")
    assert image.get_attribute("src").endswith("_1.webp?quality=high")
    assert dialog.get_by_text("2 / 4").is_visible()
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    assert dialog.get_by_text("4 / 4").is_visible()
    page.keyboard.press("Escape")
    dialog.wait_for(state="detached")
    # Focus returns to the stage, which now shows the image last seen.
    page.wait_for_function(
        "() => document.activeElement.getAttribute('aria-label') === 'Open image 4 large'"
    )


def test_a_portrait_image_is_shown_whole_and_sharp_on_the_stage(
    visit: Visit, library: SeededLibrary
) -> None:
    # The seeded pictures are portrait (96x128): the stage (4:3) must letterbox them, not crop
    # them to its width; and drawn far larger than the medium rendition, it shows the high one.
    page = open_model(visit, library, "Aurora Lineart XL")
    image = page.get_by_role("button", name="Open image 1 large").get_by_role("img")
    expect(image).to_have_attribute("src", re.compile(r"_0\.webp\?quality=high"))
    drawn, stage = page.evaluate(
        """() => [document.querySelector('.stage img').getBoundingClientRect().height,
                  document.querySelector('.stage').getBoundingClientRect().height]"""
    )
    assert drawn <= stage + 0.5, (drawn, stage)


def test_thumbnails_follow_the_arrow_keys(visit: Visit, library: SeededLibrary) -> None:
    page = open_model(visit, library, "Aurora Lineart XL")
    thumbs = page.get_by_role("list", name=re.compile("Example images"))
    thumbs.get_by_role("button").first.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    focused = page.evaluate("() => document.activeElement.getAttribute('aria-label')")
    assert focused.startswith("Example image 3 of 4")
    stage = page.locator(".stage img")
    # Medium, or high once loaded when drawn larger than medium's pixels.
    assert re.search(r"_2\.webp\?quality=(medium|high)$", stage.get_attribute("src"))


def test_an_image_uploaded_with_the_picker_joins_the_gallery(
    visit: Visit, library: SeededLibrary, tmp_path: Path
) -> None:
    page = open_model(visit, library, "Aurora Lora v2")
    before = image_count(page)
    picture = make_image(tmp_path / "new.png", width=80, height=100, colour=(10, 200, 120))
    page.locator("#upload-input").set_input_files(str(picture))
    page.locator("#gallery-title", has_text=f"({before + 1})").wait_for()
    last = page.get_by_role("button", name=f"Example image {before + 1} of {before + 1} of")
    src = last.get_by_role("img").get_attribute("src")
    assert re.search(rf"_{before}\.webp\?quality=low(&|$)", src), src


def test_files_that_are_not_images_are_counted_as_skipped(
    visit: Visit, library: SeededLibrary, tmp_path: Path
) -> None:
    page = open_model(visit, library, "Aurora Lora v2")
    picture = make_image(tmp_path / "more.png", width=80, height=100, colour=(200, 20, 120))
    notes = tmp_path / "notes.txt"
    notes.write_text("trained on 40 images")
    page.locator("#upload-input").set_input_files([str(picture), str(notes)])
    said = "1 image added; 1 file skipped, not images"
    page.get_by_role("status").get_by_text(said).wait_for()


def test_deleting_an_image_asks_first(visit: Visit, library: SeededLibrary) -> None:
    page = open_model(visit, library, "Watercolor Checkpoint v3")
    before = image_count(page)
    assert before >= 2
    page.get_by_role("button", name="Delete image").click()
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    assert image_count(page) == before
    page.get_by_role("button", name="Delete image").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete image").click()
    page.locator("#gallery-title", has_text=f"({before - 1})").wait_for()


def test_an_image_reordered_elsewhere_is_not_deleted_in_its_old_place(
    visit: Visit, library: SeededLibrary
) -> None:
    sha = library.hashes["Aurora Lineart XL"]
    page = open_model(visit, library, "Aurora Lineart XL")
    names = [f"{sha}_{seq}.webp" for seq in range(4)]
    covers = [page.request.get(f"/api/images/{n}?quality=low").body() for n in names]
    # Another tab moves the last image to the front: the cover this page shows is now _1.
    moved = [names[3], *names[:3]]
    assert page.request.post("/api/images/reorder", data={"hash": sha, "order": moved}).ok
    page.get_by_role("button", name="Delete image").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete image").click()
    page.get_by_role("alert").get_by_text(re.compile("Could not delete the image")).wait_for()
    assert image_count(page) == 4
    after = [page.request.get(f"/api/images/{n}?quality=low").body() for n in names]
    assert after == [covers[3], *covers[:3]]
    # The order the rest of the suite expects.
    assert page.request.post(
        "/api/images/reorder", data={"hash": sha, "order": [*names[1:], names[0]]}
    ).ok


@pytest.mark.parametrize("failure", FAILURES)
def test_a_model_that_could_not_be_loaded_offers_to_try_again(
    visit: Visit, library: SeededLibrary, failure: str
) -> None:
    """As the library and the Tags page do: a server down a moment left a dead end, to be
    left by reloading the whole page."""
    page = visit.page
    sha = library.hashes["Pixel Embedding v3"]
    fail(page, re.compile(f".*/api/models/{sha}$"), "GET", failure)
    page.goto(f"/models/{sha}")
    page.get_by_role("heading", level=1, name="The model could not be loaded").wait_for()
    page.unroute(re.compile(f".*/api/models/{sha}$"))
    page.get_by_role("button", name="Try again").click()
    page.get_by_role("heading", level=1, name="Pixel Embedding v3").wait_for()
    assert page.url.endswith(f"/models/{sha}")


def test_a_model_with_200_tags_shows_30_until_asked_and_the_field_after_them(
    visit: Visit, library: SeededLibrary
) -> None:
    """The 200 chips put the field to add a tag, and every panel after them, three screens
    down (a caption list brought in with a model is that long)."""
    sha = library.hashes["Pixel Embedding v3"]
    names = [f"caption tag {n:03d}" for n in range(200)]

    def many_tags(route: Any) -> None:
        record = route.fetch().json()
        record["tags"] = [{"id": 1000 + n, "name": name} for n, name in enumerate(names)]
        route.fulfill(json=record)

    page = visit.page
    page.route(f"**/api/models/{sha}", many_tags)
    page.goto(f"/models/{sha}")
    tags = page.get_by_role("region", name="Tags")
    tags.get_by_role("link", name=names[0], exact=True).wait_for()
    # The field is less than a screen below the panel's heading.
    top = tags.get_by_role("heading", name="Tags").bounding_box()["y"]
    below = tags.get_by_label("Add a tag").bounding_box()["y"] - top
    assert below < page.viewport_size["height"], below
    removes = tags.get_by_role("button", name=re.compile("^Remove tag "))
    expect(removes).to_have_count(30)
    more = tags.get_by_role("button", name="Show all 200 tags")
    more.click()
    expect(removes).to_have_count(200)
    expect(tags.get_by_role("link", name=names[30], exact=True)).to_be_focused()
    expect(more).to_have_count(0)


def test_an_unknown_model_says_so(visit: Visit) -> None:
    visit.page.goto("/models/" + "0" * 64)
    visit.page.get_by_role("heading", level=1, name="No such model").wait_for()


def test_a_mistyped_address_says_no_such_page_and_leads_back(visit: Visit) -> None:
    page = visit.page
    page.goto("/nonexistent/page")
    page.get_by_role("heading", level=1, name="No such page").wait_for()
    page.get_by_role("link", name="Back to the library").click()
    page.get_by_role("heading", level=1, name="Library").wait_for()


def test_a_sha256_pasted_in_upper_case_opens_the_model_at_its_own_address(
    visit: Visit, library: SeededLibrary
) -> None:
    sha = library.hashes["Chibi Lora v1"]
    response = visit.page.goto("/models/" + sha.upper())
    assert response is not None and response.status == 200
    visit.page.get_by_role("heading", level=1, name="Chibi Lora v1").wait_for()
    assert visit.page.url.endswith(f"/models/{sha}")
    visit.page.go_back()  # the upper-case address was replaced, not left behind
    assert not visit.page.url.endswith(f"/models/{sha.upper()}")


def without_part_two(operations: Operations) -> None:
    """The endpoint table of a server without the editing endpoints."""
    for key in list(operations):
        if key.endswith(("/tags", "/history", "/reorder")) or key.startswith(
            ("PATCH /api/models/", "DELETE /api/models/")
        ):
            del operations[key]


def test_controls_the_server_lacks_are_disabled_with_a_note(
    visit: Visit, library: SeededLibrary
) -> None:
    serve_as_if(visit.page, without_part_two)
    page = open_model(visit, library, "Aurora Lineart XL")
    assert page.get_by_role("button", name="Edit").is_disabled()
    assert page.get_by_role("button", name="Delete model").is_disabled()
    assert page.get_by_role("button", name="Set as cover").is_disabled()
    assert page.get_by_text("This server does not offer tag editing yet.").is_visible()
    assert page.get_by_text("This server cannot reorder images yet").is_visible()


def with_files(route: Any) -> None:
    """The server's answer, with the locations a scanning server adds to a record: two
    copies on disk and one gone (model folders are not on this branch yet)."""
    body = route.fetch().json()
    for record in body.get("models", [body]):
        record["files"] = [
            {"path": f"/models/a/{record['name']}.safetensors", "present": True},
            {"path": f"/models/b/{record['name']}.safetensors", "present": True},
            {"path": f"/models/old/{record['name']}.safetensors", "present": False},
        ]
        record["missing"] = record["name"].startswith("Aurora")
        record["autov2"] = record["sha256"][:10]
    route.fulfill(json=body)


def test_files_missing_and_duplicates_are_shown(visit: Visit, library: SeededLibrary) -> None:
    page = visit.page
    page.route(re.compile(r".*/api/models(/[0-9a-f]{64})?(\?.*)?$"), with_files)
    page.goto("/")
    card = page.locator(".card[data-state='full']").first
    card.wait_for()
    assert card.locator(".badge.missing").inner_text() == "Missing"
    assert card.locator(".badge.dup").inner_text() == "Duplicate \u00d72"
    assert "file missing, 2 copies on disk" in card.get_by_role("link").get_attribute("aria-label")
    card.get_by_role("link").click()
    files = page.get_by_role("region", name="Files (3)")
    files.wait_for()
    assert files.get_by_text("The same content is on disk 2 times").is_visible()
    assert files.locator(".badge.missing").inner_text() == "Missing"
    assert files.get_by_role("button", name="Copy path").nth(1).is_visible()


def test_a_model_opened_from_the_grid_leads_to_the_next_one(visit: Visit) -> None:
    page = visit.page
    page.goto("/?type=embedding")
    page.locator(".card[data-state='full']").first.wait_for()
    names = page.locator(".card[data-state='full'] .name").all_inner_texts()
    page.locator(".card-link").first.click()
    around = page.get_by_role("navigation", name="Around this model")
    around.get_by_text(f"1 of {len(names)}").wait_for()
    around.get_by_role("link", name=f"Next model: {names[1]}").click()
    page.get_by_role("heading", level=1, name=names[1]).wait_for()
    around.get_by_role("link", name=f"Previous model: {names[0]}").click()
    page.get_by_role("heading", level=1, name=names[0]).wait_for()
    around.get_by_role("link", name="← Library").click()
    page.wait_for_url("**/?type=embedding")


def test_j_and_k_step_to_the_next_and_previous_model_but_not_while_typing(visit: Visit) -> None:
    page = visit.page
    page.goto("/?type=embedding")
    page.locator(".card[data-state='full']").first.wait_for()
    names = page.locator(".card[data-state='full'] .name").all_inner_texts()
    page.locator(".card-link").first.click()
    page.get_by_role("heading", level=1, name=names[0]).wait_for()
    page.keyboard.press("j")
    page.get_by_role("heading", level=1, name=names[1]).wait_for()
    page.get_by_label("Add a tag").press("k")  # typed into the field: no step
    assert page.get_by_label("Add a tag").input_value() == "k"
    page.get_by_role("heading", level=1, name=names[1]).wait_for()
    page.get_by_label("Add a tag").fill("")
    page.locator("h1").click()
    page.keyboard.press("k")
    page.get_by_role("heading", level=1, name=names[0]).wait_for()


def test_stepping_through_models_reads_the_tags_once_and_again_after_a_change(
    visit: Visit,
) -> None:
    page = visit.page
    page.goto("/?type=lora")
    page.locator(".card[data-state='full']").first.wait_for()
    names = page.locator(".card[data-state='full'] .name").all_inner_texts()
    page.locator(".card-link").first.click()
    page.get_by_role("heading", level=1, name=names[0]).wait_for()
    for name in names[1:4]:
        page.keyboard.press("j")
        page.get_by_role("heading", level=1, name=name).wait_for()
    field = page.get_by_label("Add a tag")
    field.focus()  # the suggestions are chosen once the field is used
    page.locator("#tag-suggestions option").first.wait_for(state="attached")
    read = [url for url in visit.requests if url.endswith("/api/tags")]
    assert len(read) == 1, read  # once the field was used; the model pages share it

    field.fill("stepped-on")
    field.press("Enter")
    tags = page.get_by_role("region", name="Tags")
    tags.get_by_role("link", name="stepped-on").wait_for()
    # The new tag is offered at once: a change made here reads the tags again.
    page.locator("#tag-suggestions option[value='stepped-on']").wait_for(state="attached")
    tags.get_by_role("button", name="Remove tag stepped-on").click()
    tags.get_by_role("link", name="stepped-on").wait_for(state="detached")


def refused_files(folder: Path) -> list[Path]:
    """Files the server refuses as images: a PNG cut short, and text named .jpg."""
    corrupt = folder / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    fake = folder / "fake.jpg"
    fake.write_text("this is not a picture, only text named like one\n" * 20)
    return [corrupt, fake]


SUMMARIES = [(True, "1 image added, 2 failed"), (False, "No image added, 2 failed")]


@pytest.mark.parametrize(("with_good", "summary"), SUMMARIES)
def test_uploads_that_fail_stay_listed_with_their_reasons(
    visit: Visit, library: SeededLibrary, tmp_path: Path, with_good: bool, summary: str
) -> None:
    name = "Cyberpunk Embedding v1" if with_good else "Cyberpunk Embedding v2"
    page = open_model(visit, library, name)
    before = image_count(page)
    refused = refused_files(tmp_path)
    good = [make_image(tmp_path / "good.png", width=80, height=100)] if with_good else []
    page.locator("#upload-input").set_input_files([str(p) for p in good + refused])
    # Files that failed make it an error, said at once.
    page.get_by_role("alert").get_by_text(summary, exact=True).wait_for()
    assert image_count(page) == before + len(good)
    uploads = page.get_by_role("list", name="Uploads")
    assert uploads.get_attribute("aria-live") == "polite"
    for path in refused:  # the server's whole reason, after the page was drawn anew
        with path.open("rb") as data:
            answer = page.request.post(
                "/api/images/upload",
                multipart={
                    "sha256": library.hashes[name],
                    "image": {"name": path.name, "mimeType": "image/png", "buffer": data.read()},
                },
            )
        assert answer.status >= 400
        assert len(answer.json()["detail"]) > 60  # longer than the page used to show
        row = uploads.get_by_role("listitem").filter(has_text=path.name)
        assert row.inner_text().endswith(answer.json()["detail"]), row.inner_text()
    page.get_by_role("button", name="Dismiss").click()
    assert uploads.get_by_role("listitem").count() == 0
