"""The model page as a collector works with it, in a real browser, on a library of its own
(these tests rename and delete): a change made in another tab met by a delete or a move;
writes made faster than the server answers (moves, a delete or a cover chosen while a move is
on its way, a tag added while images upload); a save or a tag answered after the page was
left; images dropped beside the gallery or left uploading; a model named after its file and
an upload's long file name on a phone; the editor's fields as the page shows them; focus after
an image is deleted or a word copied without the Clipboard API; a hint a screen reader reads."""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.ui.conftest import Visit, open_model, wait_frames
from tests.ui.seed import SeededLibrary
from tests.ui.test_after_changes import same_pictures, served
from tests.ui.test_gallery_gestures import swap_first_two_elsewhere
from tests.ui.test_model_focus import FOCUSED_NAME
from tests.ui.test_unsaved_work import A_MODEL, ITS_TAGS, Gate

PHONE = {"width": 390, "height": 844}
UPLOAD = re.compile(r".*/api/images/upload$")
REORDER = re.compile(r".*/api/images/reorder$")
# Whether an element's text is all inside it (none cut at its edge).
WHOLE = "el => el.scrollWidth <= el.clientWidth"
PAGE_WIDTH = "document.documentElement.scrollWidth"


def focus_delete_image(page: Any, shown: int) -> None:
    """Shows image `shown` (from 1) with the keyboard, then deletes it with the keyboard."""
    page.locator(".thumb").first.focus()
    for _ in range(shown - 1):
        page.keyboard.press("ArrowRight")
    page.get_by_role("button", name="Delete image").focus()
    page.keyboard.press("Enter")
    page.get_by_role("dialog").wait_for()
    page.keyboard.press("Tab")  # from Cancel to Delete image
    page.keyboard.press("Enter")


def test_after_an_image_is_deleted_focus_is_on_the_image_shown_next(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    name = "Cyberpunk Embedding v1"
    page = open_model(own_visit, own_library, name)
    focus_delete_image(page, 2)
    page.locator("#gallery-title", has_text="(2)").wait_for()
    page.wait_for_function("() => document.activeElement !== document.body")
    assert page.evaluate(FOCUSED_NAME) == f"Example image 1 of 2 of {name} (cover)"


def test_after_the_last_image_is_deleted_focus_is_on_the_file_picker(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    page = open_model(own_visit, own_library, "Ghibli Lora v3")
    focus_delete_image(page, 1)
    page.locator("#gallery-title", has_text="(0)").wait_for()
    page.wait_for_function("() => document.activeElement !== document.body")
    assert page.evaluate(FOCUSED_NAME) == "upload-input"


def test_a_model_changed_in_another_tab_is_shown_before_it_can_be_deleted(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    name = "Neon Checkpoint v1"
    sha = own_library.hashes[name]
    page = open_model(own_visit, own_library, name)
    other_tab = {"meta_json": {"notes": "written in another tab"}}
    assert page.request.patch(f"/api/models/{sha}", data=other_tab).ok
    delete = page.get_by_role("button", name="Delete model")
    delete.click()
    page.get_by_role("dialog").get_by_role("button", name="Delete model").click()
    # Said in words, and the other tab's version is on the page for the person to look at.
    alert = page.get_by_role("alert").get_by_text(re.compile("changed elsewhere"))
    alert.wait_for()
    assert "If-Match" not in alert.inner_text()
    page.get_by_text("written in another tab", exact=True).wait_for()
    assert page.request.get(f"/api/models/{sha}").ok
    # Deleting it now deletes it.
    delete.click()
    page.get_by_role("dialog").get_by_role("button", name="Delete model").click()
    page.get_by_role("status").get_by_text(f"Deleted {name}").wait_for()
    assert page.request.get(f"/api/models/{sha}").status == 404


def test_a_tag_added_while_images_upload_is_saved(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """The page's own upload is no change made elsewhere: a tag added after the first of two
    images is in, while the second is on its way, is saved, not refused with a 412."""
    name = "Ink Embedding v2"
    sha = own_library.hashes[name]
    page = open_model(own_visit, own_library, name)
    images = own_library.data_dir.parent / "legacy" / "images"
    gate = HoldSecond(page)
    page.locator("#upload-input").set_input_files(
        [str(images / "m1_0.png"), str(images / "m1_1.png")]
    )
    gate.wait_held(page, 1)
    tags = page.get_by_role("region", name="Tags")
    field = tags.get_by_label("Add a tag")
    field.fill("added-while-uploading")
    field.press("Enter")
    gate.open()
    page.get_by_role("status").get_by_text("2 images added").wait_for()
    tags.get_by_role("link", name="added-while-uploading").wait_for()
    assert page.get_by_text("changed elsewhere").count() == 0
    names = [t["name"] for t in page.request.get(f"/api/models/{sha}").json()["tags"]]
    assert "added-while-uploading" in names


class HoldSecond(Gate):
    """Lets the first upload through and holds the next ones until `open()`."""

    def __init__(self, page: Any) -> None:
        self.passed = 0
        super().__init__(page, UPLOAD, "POST")

    def handle(self, route: Any) -> None:
        if self.passed == 0:
            self.passed += 1
            route.fallback()
        else:
            super().handle(route)


def test_a_model_named_after_its_file_is_seen_whole_on_a_phone(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """Scanned models are named after their file's stem, one long word: the lightbox was as
    wide as its caption, so on a phone the image sat off centre, cut, and the caption ran off
    the screen; the delete dialog's title was cut at its edge."""
    stem = "realisticVisionV60B1_v51HyperVAE_inpainting_fp16_pruned_emaonly"
    sha = own_library.hashes["Watercolor Checkpoint v3"]
    page = own_visit.page
    page.set_viewport_size(PHONE)
    assert page.request.patch(f"/api/models/{sha}", data={"name": stem}).ok
    page.goto(f"/models/{sha}")
    page.get_by_role("heading", level=1, name=stem).wait_for()
    page.get_by_role("button", name="View large").click()
    lightbox = page.get_by_role("dialog", name=f"Images of {stem}")
    image = lightbox.get_by_role("img")
    expect(image).to_have_js_property("complete", True)
    box = image.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert abs(box["x"] + box["width"] / 2 - PHONE["width"] / 2) < 2
    caption = lightbox.locator("figcaption")
    box = caption.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"]
    assert caption.evaluate(WHOLE)
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Delete model").click()
    dialog = page.get_by_role("dialog")
    assert dialog.get_by_role("heading").evaluate(WHOLE)
    dialog.get_by_role("button", name="Cancel").click()


# What a page served over plain http from another machine (a phone on the LAN reading
# http://192.168.1.10:8080) lacks: the Clipboard API is given to secure contexts only.
NO_CLIPBOARD = "delete Navigator.prototype.clipboard"
# The text a copy command put on the clipboard, as the copy event sees it.
RECORD_COPIES = """
window.copied = [];
document.addEventListener("copy", (event) => {
  const area = event.target;
  window.copied.push(area.value.slice(area.selectionStart, area.selectionEnd));
});
"""


def test_a_trigger_word_copied_without_the_clipboard_api_keeps_the_focus(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """Copied with the keyboard on the LAN, focus fell to the page's body (the hidden text
    field the copy used took it, and went), so the next Tab began again at the top."""
    page = own_visit.page
    page.add_init_script(NO_CLIPBOARD)
    page.add_init_script(RECORD_COPIES)
    open_model(own_visit, own_library, "Aurora Lineart XL")
    word = page.get_by_role("button", name="Copy trigger word masterpiece")
    word.focus()
    page.keyboard.press("Enter")
    page.get_by_role("status").get_by_text("“masterpiece” copied").wait_for()
    assert page.evaluate("window.copied") == ["masterpiece"]
    expect(word).to_be_focused()


def test_a_move_that_meets_a_change_made_in_another_tab_says_so_and_keeps_the_focus(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """Alt+arrow on an image of a model changed elsewhere: said in the person's words (it was
    the server's "If-Match does not match"), and focus stays on the image (it fell to the
    page's body when the gallery was drawn anew). The other tab also swapped the first two
    images: a change of the notes alone leaves the pictures where they were, and the move is
    then sent again and made (see test_gallery_gestures.py)."""
    name = "Aurora Lineart XL"
    sha = own_library.hashes[name]
    page = open_model(own_visit, own_library, name)
    other_tab = {"meta_json": {"notes": "written in another tab"}}
    assert page.request.patch(f"/api/models/{sha}", data=other_tab).ok
    count = len(page.request.post("/api/images/get_sample_imgs", data={"hash": sha}).json())
    swap_first_two_elsewhere(page, sha, count)
    page.locator(".thumb").first.focus()
    page.keyboard.press("Alt+ArrowRight")
    alert = page.get_by_role("alert").get_by_text(re.compile("^Could not reorder"))
    alert.wait_for()
    assert "changed elsewhere" in alert.inner_text()
    assert "If-Match" not in alert.inner_text()
    page.get_by_text("written in another tab", exact=True).wait_for()
    page.wait_for_function("() => document.activeElement !== document.body")
    assert page.evaluate(FOCUSED_NAME) == f"Example image 1 of 4 of {name} (cover)"


def test_an_upload_with_a_long_file_name_keeps_the_page_to_a_phones_width(
    own_visit: Visit, own_library: SeededLibrary, tmp_path: Path
) -> None:
    """A downloaded image's name is often one long word: its row in the uploads list pushed
    the page past the screen, its name over the progress bar, and then over the reason it
    failed."""
    page = own_visit.page
    page.set_viewport_size(PHONE)
    open_model(own_visit, own_library, "Lineart Lora v3")
    images = own_library.data_dir.parent / "legacy" / "images"
    picture = tmp_path / "realisticVisionV60B1_v51HyperVAE_inpainting_00042_upscaled.png"
    shutil.copy(images / "m1_0.png", picture)
    gate = Gate(page, UPLOAD, "POST")
    page.locator("#upload-input").set_input_files(str(picture))
    gate.wait_held(page, 1)
    uploads = page.get_by_role("list", name="Uploads")
    assert page.evaluate(PAGE_WIDTH) <= PHONE["width"]
    assert uploads.get_by_text(picture.name).evaluate(WHOLE)
    gate.held[0].fulfill(status=503, json={"error": "Service Unavailable", "detail": "busy"})
    uploads.get_by_text("Not added: busy").wait_for()
    assert page.evaluate(PAGE_WIDTH) <= PHONE["width"]
    assert uploads.get_by_text(picture.name).evaluate(WHOLE)


def test_closing_the_page_while_images_upload_asks_first(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """As for a tagging of many models: images still on their way are not dropped without a
    word when the tab is closed (the rest of a batch never arrived)."""
    name = "Aurora Lora v2"
    page = open_model(own_visit, own_library, name)
    page.get_by_role("heading", level=1).click()  # a person's page: one they have used
    images = own_library.data_dir.parent / "legacy" / "images"
    gate = Gate(page, UPLOAD, "POST")
    page.locator("#upload-input").set_input_files(str(images / "m1_2.png"))
    gate.wait_held(page, 1)
    with page.expect_event("dialog") as asked:
        page.close(run_before_unload=True)
    assert asked.value.type == "beforeunload"
    asked.value.dismiss()  # stay
    gate.open()
    page.get_by_role("status").get_by_text("1 image added").wait_for()
    assert not page.is_closed()


# A drag of files from the desktop, as the page sees it: a DataTransfer holding them.
FILES_DRAGGED = """(files) => {
  const dragged = new DataTransfer();
  for (const [name, b64] of files) {
    const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    dragged.items.add(new File([bytes], name, { type: "image/png" }));
  }
  return dragged;
}"""


def test_images_dropped_beside_the_gallery_join_it(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """Only the gallery's panel took a drop: images let go a little beside it (on the Details
    beside it at a desktop's width, the page's margin) were not added, and the browser
    opened the file in place of the page."""
    page = open_model(own_visit, own_library, "Watercolor Checkpoint v1")
    images = own_library.data_dir.parent / "legacy" / "images"
    files = [
        (f"dropped_{n}.png", base64.b64encode((images / f"m1_{n}.png").read_bytes()).decode())
        for n in range(2)
    ]
    dragged = page.evaluate_handle(FILES_DRAGGED, files)
    details = page.get_by_role("region", name="Details")
    details.dispatch_event("dragenter", {"dataTransfer": dragged})
    details.dispatch_event("dragover", {"dataTransfer": dragged})
    expect(page.locator(".dropzone")).to_have_class(re.compile(r"\bover\b"))
    details.dispatch_event("drop", {"dataTransfer": dragged})
    page.get_by_role("status").get_by_text("2 images added").wait_for()
    expect(page.locator(".dropzone")).not_to_have_class(re.compile(r"\bover\b"))


def test_the_editor_starts_from_the_description_and_notes_the_page_shows(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """A scanned model's description comes from its Civitai record and its notes from A1111's
    sidecar: the page showed them, and Edit showed empty fields, so a typo fixed meant the
    whole text typed again. The editor starts from them; a save keeps the others' keys."""
    name = "Noir Lora v2"
    sha = own_library.hashes[name]
    page = own_visit.page
    downloaded = {
        "description": None,
        "civitai": {"description": "<p>Trained on <b>ink</b> drawings.</p>"},
        "a1111": {"notes": "use it at 0.8"},
    }
    assert page.request.patch(f"/api/models/{sha}", data={"meta_json": downloaded}).ok
    open_model(own_visit, own_library, name)
    about = page.get_by_role("region", name="About")
    about.get_by_text("Trained on ink drawings.", exact=True).wait_for()
    about.get_by_text("use it at 0.8", exact=True).wait_for()
    page.get_by_role("button", name="Edit", exact=True).click()
    expect(page.get_by_label("Description")).to_have_value("Trained on ink drawings.")
    notes = page.get_by_label("Notes")
    expect(notes).to_have_value("use it at 0.8")
    notes.press("End")
    notes.press_sequentially(", 0.6 for faces")
    page.get_by_role("button", name="Save").click()
    about.get_by_text("use it at 0.8, 0.6 for faces", exact=True).wait_for()
    meta = page.request.get(f"/api/models/{sha}").json()["meta_json"]
    assert meta["notes"] == "use it at 0.8, 0.6 for faces"
    assert "description" not in meta  # the field left as it was is not made the person's
    assert meta["civitai"] == downloaded["civitai"]
    assert meta["a1111"] == downloaded["a1111"]


def test_a_save_answered_after_the_page_was_left_leaves_the_next_page_alone(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """Save, then back to the library before the server answered: the answer closed the
    editor of a page no longer shown and drew the model over the library (its address the
    library's), after a toast that said the changes were not saved."""
    name = "Lineart Lora v3"
    sha = own_library.hashes[name]
    page = open_model(own_visit, own_library, name)
    gate = Gate(page, A_MODEL, "PATCH")
    page.get_by_role("button", name="Edit", exact=True).click()
    page.get_by_label("Notes").fill("saved on the way out")
    page.get_by_role("button", name="Save").click()
    gate.wait_held(page, 1)
    page.get_by_role("link", name="← Library").click()
    heading = page.get_by_role("heading", level=1)
    expect(heading).to_have_text("Library")
    gate.open()
    page.get_by_role("status").get_by_text("Saved", exact=True).wait_for()
    wait_frames(page, 3)
    expect(heading).to_have_text("Library")
    assert page.get_by_text("are not saved").count() == 0
    assert page.request.get(f"/api/models/{sha}").json()["meta_json"]["notes"] == (
        "saved on the way out"
    )


def test_tags_not_saved_after_the_page_was_left_do_not_land_in_another_models_field(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """A tag added, then on to another model before the server refused it: the tag went back
    into the Add a tag field of the model shown then, where Enter added it to that one."""
    page = open_model(own_visit, own_library, "Pixel Embedding v3")
    gate = Gate(page, ITS_TAGS, "PUT")
    field = page.get_by_label("Add a tag")
    field.fill("meant-for-pixel")
    field.press("Enter")
    gate.wait_held(page, 1)
    page.get_by_role("link", name="← Library").click()
    page.get_by_role("heading", level=1, name="Library").wait_for()
    page.get_by_role("link", name="Aurora Lineart XL").first.click()
    page.get_by_role("heading", level=1, name="Aurora Lineart XL").wait_for()
    gate.held[0].fulfill(status=503, json={"error": "Service Unavailable", "detail": "busy"})
    said = page.get_by_role("alert").get_by_text(re.compile("meant-for-pixel"))
    said.wait_for()
    assert "Pixel Embedding v3" in said.inner_text()
    expect(page.get_by_label("Add a tag")).to_have_value("")


def test_the_trigger_words_field_tells_a_screen_reader_how_to_separate_them(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """The hint "Separated by commas" stood beside the field, tied to nothing: a screen
    reader, on the field, read its name alone."""
    page = open_model(own_visit, own_library, "Aurora Lineart XL")
    page.get_by_role("button", name="Edit", exact=True).click()
    words = page.get_by_role("textbox", name="Trigger words")
    expect(words).to_have_accessible_description("Separated by commas")


def test_alt_arrow_pressed_faster_than_the_server_answers_moves_the_image_each_time(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """Three presses of Alt+Right on the cover while the first move was on its way: each
    move was worked out from the order the page showed, so the second and third sent the
    first's order again and the image went one place, not three."""
    name = "Aurora Lineart XL"
    sha = own_library.hashes[name]
    page = open_model(own_visit, own_library, name)
    first, second, third, fourth = served(page, sha, range(4), "low")
    gate = Gate(page, REORDER, "POST")
    page.get_by_role("button", name=f"Example image 1 of 4 of {name} (cover)").focus()
    for _ in range(3):
        page.keyboard.press("Alt+ArrowRight")
    gate.wait_held(page, 1)
    gate.open()
    page.locator(".thumbs li:nth-child(4) .thumb[aria-current='true']").wait_for()
    expect(page.get_by_role("button", name=f"Example image 4 of 4 of {name}")).to_be_focused()
    assert same_pictures(served(page, sha, range(4), "low"), [second, third, fourth, first])


def test_deleting_an_image_just_moved_never_deletes_another(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """Move later on the cover, then Delete image on it before the move was answered: the
    delete named the image by the place it had when the page showed it, and once the move
    was done that place held the other picture, which was deleted in its stead."""
    name = "Sketch Checkpoint v3"
    sha = own_library.hashes[name]
    page = open_model(own_visit, own_library, name)
    _, other = served(page, sha, range(2), "low")
    gate = Gate(page, REORDER, "POST")
    page.get_by_role("button", name="Move later").click()
    gate.wait_held(page, 1)
    page.get_by_role("button", name="Delete image").click()
    confirm = page.get_by_role("dialog").get_by_role("button", name="Delete image")
    gate.open()
    page.get_by_role("status").get_by_text("Image moved to position 2").wait_for()
    confirm.click()
    page.get_by_text(re.compile("^(Image deleted|Could not delete)")).wait_for()
    left = page.request.post("/api/images/get_sample_imgs", data={"hash": sha}).json()
    kept = served(page, sha, range(len(left)), "low")
    assert any(same_pictures([picture], [other]) for picture in kept)


def test_set_as_cover_after_a_move_on_its_way_makes_the_chosen_image_the_cover(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """The third image moved one place left with Alt+Left, then Set as cover before the move
    was answered: the cover was worked out from the place the image had when shown, which the
    move had given to another picture, and that one became the cover."""
    name = "Ink Embedding v2"
    sha = own_library.hashes[name]
    page = open_model(own_visit, own_library, name)
    first, second, third = served(page, sha, range(3), "low")
    page.locator(".thumb").first.focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    gate = Gate(page, REORDER, "POST")
    page.keyboard.press("Alt+ArrowLeft")
    gate.wait_held(page, 1)
    page.get_by_role("button", name="Set as cover").click()
    gate.open()
    page.get_by_role("status").get_by_text("Cover changed").wait_for()
    assert same_pictures(served(page, sha, range(3), "low"), [third, first, second])


def test_the_page_shows_the_description_lora_manager_keeps(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """LoRA Manager keeps the model's description as `modelDescription` (HTML), and nothing
    else in a record of a model Civitai does not know: the page shows it as text."""
    name = "Noir Lora v2"
    sha = own_library.hashes[name]
    page = own_visit.page
    manager = {"civitai": {}, "modelDescription": "<p>Bold <b>noir</b> shadows.</p>"}
    downloaded = {"description": None, "civitai": None, "a1111": None, "lora_manager": manager}
    assert page.request.patch(f"/api/models/{sha}", data={"meta_json": downloaded}).ok
    open_model(own_visit, own_library, name)
    about = page.get_by_role("region", name="About")
    about.get_by_text("Bold noir shadows.", exact=True).wait_for()


def test_notes_a1111s_sidecar_holds_as_html_are_shown_as_text(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """The Civitai Helper (zixaphir's, with its default settings: `ch_dl_webui_metadata` on,
    `ch_clean_html` off) writes A1111's `<stem>.json` with the Civitai version's description,
    HTML, as its "notes" (ch_lib/model.py, process_sd15_info)."""
    name = "Noir Lora v2"
    sha = own_library.hashes[name]
    page = own_visit.page
    helper = {
        "description": "",
        "notes": "<p>Version 2 fixes <strong>hands</strong> &amp; faces.</p>",
        "sd version": "SDXL",
        "activation text": "noir",
        "preferred weight": 0,
        "extensions": {"sd_civitai_helper": {"version": "1.8.13"}},
    }
    downloaded = {"description": None, "notes": None, "civitai": None, "a1111": helper}
    assert page.request.patch(f"/api/models/{sha}", data={"meta_json": downloaded}).ok
    open_model(own_visit, own_library, name)
    about = page.get_by_role("region", name="About")
    about.get_by_text("Version 2 fixes hands & faces.", exact=True).wait_for()
    page.get_by_role("button", name="Edit", exact=True).click()
    expect(page.get_by_label("Notes")).to_have_value("Version 2 fixes hands & faces.")


def test_a_description_naming_a_lora_in_prompt_syntax_is_shown_whole(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """A1111's "description" is what a person typed in its "Edit user metadata" dialog
    (modules/ui_extra_networks_user_metadata.py): prompt text such as `<lora:name:0.5>` is
    no markup to take out."""
    name = "Noir Lora v2"
    sha = own_library.hashes[name]
    page = own_visit.page
    typed = {"description": "Pair it with <lora:detail:0.5> & film grain.", "notes": ""}
    downloaded = {"description": None, "notes": None, "civitai": None, "a1111": typed}
    assert page.request.patch(f"/api/models/{sha}", data={"meta_json": downloaded}).ok
    open_model(own_visit, own_library, name)
    about = page.get_by_role("region", name="About")
    about.get_by_text("Pair it with <lora:detail:0.5> & film grain.", exact=True).wait_for()


PHRASE = (
    "ultra-detailed watercolor illustration of a girl standing in a field of sunflowers at"
    " golden hour"
)
# Whether every line of the element's text lies inside its rounded box (its corners drawn
# with the border radius as computed, which a browser caps at half the shorter side).
TEXT_INSIDE_CORNERS = """el => {
  const box = el.getBoundingClientRect();
  const r = Math.min(parseFloat(getComputedStyle(el).borderTopLeftRadius), box.width / 2,
    box.height / 2);
  const inside = (x, y) => {
    const cx = Math.min(Math.max(x, box.left + r), box.right - r);
    const cy = Math.min(Math.max(y, box.top + r), box.bottom - r);
    return Math.hypot(x - cx, y - cy) <= r + 0.5;
  };
  const range = document.createRange();
  range.selectNodeContents(el);
  return [...range.getClientRects()].every((line) => inside(line.left, line.top)
    && inside(line.right, line.top) && inside(line.left, line.bottom)
    && inside(line.right, line.bottom));
}"""


def test_a_long_trigger_phrase_is_read_whole_on_a_phone(
    visit: Visit, library: SeededLibrary
) -> None:
    """A trigger phrase longer than the panel wraps in its chip, but the chip kept the pill's
    round ends, as tall as three lines: the corners cut the ends of its first and last lines
    ("illustration o" for "illustration of")."""
    page = visit.page
    page.set_viewport_size(PHONE)
    sha = library.hashes["Ink Embedding v2"]

    def with_phrase(route: Any) -> None:
        response = route.fetch()
        record = response.json()
        record["meta_json"]["trigger_words"] = [PHRASE, "inkwash_style_v2"]
        route.fulfill(response=response, json=record)

    page.route(f"**/api/models/{sha}", with_phrase)
    page.goto(f"/models/{sha}")
    chip = page.get_by_role("button", name=f"Copy trigger word {PHRASE}")
    box = chip.bounding_box()
    assert box["height"] > 40  # wrapped
    assert chip.evaluate(TEXT_INSIDE_CORNERS)
