"""What a collector met using the pages as they are, in a real browser over a library of its
own (these tests hash the pending queue): each test is one defect seen on a screen."""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import expect

from tests.ui.conftest import Visit, needs, open_model
from tests.ui.seed import SeededLibrary


def test_the_focus_stays_on_the_page_when_the_check_of_the_pending_models_ends(
    own_visit: Visit, operations: set[str]
) -> None:
    """Check them became Stop checking under the focus; when every model was checked the note
    and its button went, and the focus fell to the page's body: a keyboard user started again
    from the top. It goes to the group chip shown, which the check has just filled."""
    needs(operations, "POST /api/migration/preview_import")
    page = own_visit.page
    page.goto("/pending")
    page.get_by_role("button", name=re.compile(r"^Check (them|it)$")).click()
    expect(page.get_by_role("button", name="Stop checking")).to_be_focused()

    page.get_by_role("status").get_by_text(re.compile(r"^\d+ models? checked$")).wait_for()
    expect(page.get_by_role("button", name="Stop checking")).to_be_hidden()
    chips = page.get_by_role("group", name="Show")
    expect(chips.get_by_role("button", name=re.compile(r"^All \(\d+\)$"))).to_be_focused()


def test_a_tag_the_server_refuses_is_named_not_numbered(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """A tag typed with a control character in it (pasted from a caption file) was refused
    with "Not saved: tags.2: needs a character…": the API's place in the list it was sent,
    which the person never saw. The message names the tag typed, its invisible character
    spelled out."""
    name = "Aurora Lineart XL"
    page = open_model(own_visit, own_library, name)
    field = page.get_by_label("Add a tag")
    field.fill("bad\u0007tag")
    field.press("Enter")
    said = page.get_by_role("alert").get_by_text(re.compile("^Not saved"))
    expect(said).to_have_text(
        re.compile(r"^Not saved: the tag “bad<U\+0007>tag” needs a character other than white")
    )
    expect(field).to_have_value("bad\u0007tag")  # back in the field, to be mended


def test_every_tag_the_server_refuses_in_one_save_is_named(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """Two tags typed at once, each with a control character, were refused in one answer
    ("tags.2: …; tags.3: …"): the page named the first and left the second as "tags.3: …",
    its place in a list the person never saw. Every refused tag is named as typed."""
    page = open_model(own_visit, own_library, "Aurora Lineart XL")
    field = page.get_by_label("Add a tag")
    field.fill("bad\u0007tag, odd\u0008one")
    field.press("Enter")
    said = page.get_by_role("alert").get_by_text(re.compile("^Not saved"))
    expect(said).to_have_text(
        re.compile(
            r"^Not saved: the tag “bad<U\+0007>tag” needs a character other than white[^;]*;"
            r" the tag “odd<U\+0008>one” needs a character other than white"
        )
    )
    expect(said).not_to_contain_text("tags.")
    expect(field).to_have_value("bad\u0007tag, odd\u0008one")


def test_a_file_that_is_no_image_is_refused_in_one_plain_sentence(
    own_visit: Visit, own_library: SeededLibrary, tmp_path: Path
) -> None:
    """A file that is no image, dropped on the gallery, was listed with "Not added: the uploaded
    file is not a usable image: upload is not an image: its bytes are…": the reason said twice,
    the second time of "upload", the server's name for its staged copy. It is said once, of
    the file the person chose, by the name they know it by."""
    page = open_model(own_visit, own_library, "Aurora Lineart XL")
    notes = tmp_path / "notes.png"
    notes.write_bytes(b"not an image at all\n" * 10)
    page.locator("input[type=file]").set_input_files(str(notes))
    refused = page.locator(".failed", has_text="notes.png").locator(".reason")
    expect(refused).to_have_text(
        re.compile(r"^Not added: notes\.png is not an image: its bytes are in no image")
    )
