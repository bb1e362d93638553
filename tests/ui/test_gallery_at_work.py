"""The gallery as a collector reorders it, in a real browser, on a library of its own (these
tests move, add and delete images): a drag made while a move is on its way; uploads under way
while the page is drawn anew or more images are chosen; a position typed to move an image
to; the place in a long strip; the cover deleted; the lightbox as a screen reader says it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from tests.factories import make_image
from tests.ui.conftest import Visit, open_model
from tests.ui.seed import SeededLibrary
from tests.ui.test_after_changes import same_pictures, served
from tests.ui.test_unsaved_work import Gate

REORDER = re.compile(r".*/api/images/reorder$")
UPLOAD = re.compile(r".*/api/images/upload$")


def test_an_image_dragged_while_a_move_is_on_its_way_lands_where_it_was_dropped(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """Alt+Right on the cover, then, before the server answered, the second image dragged to
    the end: the drag named the image by its place in the strip as shown, which the move had
    given to the cover, and the cover went to the end in its stead."""
    name = "Aurora Lineart XL"
    sha = own_library.hashes[name]
    page = open_model(own_visit, own_library, name)
    first, second, third, fourth = served(page, sha, range(4), "low")
    gate = Gate(page, REORDER, "POST")
    page.get_by_role("button", name=f"Example image 1 of 4 of {name} (cover)").focus()
    page.keyboard.press("Alt+ArrowRight")
    gate.wait_held(page, 1)
    thumbs = page.locator(".thumbs li")
    box = thumbs.nth(3).bounding_box()
    assert box
    thumbs.nth(1).drag_to(thumbs.nth(3), target_position={"x": box["width"] - 5, "y": 20})
    gate.open()
    page.get_by_role("status").get_by_text("Image moved to position 4").wait_for()
    assert same_pictures(served(page, sha, range(4), "low"), [first, third, fourth, second])


class OneByOne(Gate):
    """Holds every `method` request to `pattern`; `release()` lets the first held one go."""

    def release(self) -> None:
        self.held.pop(0).fallback()


def test_uploads_stay_listed_while_the_page_is_drawn_anew(
    own_visit: Visit, own_library: SeededLibrary, tmp_path: Path
) -> None:
    """Three files chosen, a tag added while the first was on its way: saved after it, the
    tag drew the page anew with an empty Uploads list, and the files still to go (the refused
    one's reason too) were not shown while they went."""
    name = "Ghibli Lora v3"
    page = open_model(own_visit, own_library, name)
    files = [make_image(tmp_path / f"{n}.png", width=80, height=100) for n in ("one", "two")]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image, whatever its name says")
    gate = OneByOne(page, UPLOAD, "POST")
    page.locator("#upload-input").set_input_files([str(p) for p in [*files, broken]])
    gate.wait_held(page, 1)
    tags = page.get_by_role("region", name="Tags")
    tags.get_by_label("Add a tag").fill("added-while-uploading")
    tags.get_by_label("Add a tag").press("Enter")
    gate.release()
    tags.get_by_role("link", name="added-while-uploading").wait_for()
    gate.wait_held(page, 1)
    uploads = page.get_by_role("list", name="Uploads")
    expect(uploads.get_by_role("progressbar", name="Uploading two.png")).to_be_visible()
    gate.open()
    page.get_by_role("alert").get_by_text("2 images added, 1 failed", exact=True).wait_for()
    expect(uploads.get_by_role("listitem").filter(has_text="broken.png")).to_contain_text(
        "Not added:"
    )


def test_images_chosen_while_others_upload_join_the_gallery_after_them(
    own_visit: Visit, own_library: SeededLibrary, tmp_path: Path
) -> None:
    """Two images chosen, then a third while the first was on its way: the second choice
    cleared the list of the first (its file still going unseen) and its image went in
    between the first two, each choice with a summary of its own."""
    name = "Pastel Lora v3"
    sha = own_library.hashes[name]
    page = open_model(own_visit, own_library, name)
    colours = [(200, 30, 30), (30, 200, 30), (30, 30, 200)]
    files = [
        make_image(tmp_path / f"{n}.png", width=80, height=100, colour=c)
        for n, c in zip("abc", colours, strict=True)
    ]
    gate = OneByOne(page, UPLOAD, "POST")
    page.locator("#upload-input").set_input_files([str(files[0]), str(files[1])])
    gate.wait_held(page, 1)
    page.locator("#upload-input").set_input_files(str(files[2]))
    uploads = page.get_by_role("list", name="Uploads")
    expect(uploads.get_by_role("progressbar", name="Uploading a.png")).to_be_visible()
    gate.open()
    page.get_by_role("status").get_by_text("3 images added", exact=True).wait_for()
    assert [nearest(colours, shown) for shown in served(page, sha, range(3), "low")] == [0, 1, 2]


def nearest(colours: list[tuple[int, int, int]], shown: list[float]) -> int:
    """Which of `colours` (the left half of a made image; its right half is blue) the mean
    colour `shown` comes from."""
    means = [[(a + b) / 2 for a, b in zip(c, (0, 0, 255), strict=True)] for c in colours]
    return min(
        range(len(means)),
        key=lambda i: sum(abs(x - y) for x, y in zip(means[i], shown, strict=True)),
    )


def add_images(page: Any, sha: str, folder: Path, count: int) -> None:
    """`count` images of distinct colours added to the model through the API."""
    for n in range(count):
        colour = (40 + 5 * n % 200, 200 - 3 * n % 150, 60 + 7 * n % 180)
        path = make_image(folder / f"added-{n}.png", width=40, height=50, colour=colour)
        image = {"name": path.name, "mimeType": "image/png", "buffer": path.read_bytes()}
        answer = page.request.post("/api/images/upload", multipart={"sha256": sha, "image": image})
        assert answer.ok, answer.text()


def test_an_image_moves_to_a_position_typed_with_the_keyboard(
    own_visit: Visit, own_library: SeededLibrary, tmp_path: Path
) -> None:
    """A collector's model of 40 images, the keyboard only: Alt+arrow moved an image one place
    per press, each a save and the page drawn anew; the 38th to the second place took 36."""
    name = "Noir Lora v2"
    sha = own_library.hashes[name]
    page = open_model(own_visit, own_library, name)
    add_images(
        page,
        sha,
        tmp_path,
        40 - len(page.request.post("/api/images/get_sample_imgs", data={"hash": sha}).json()),
    )
    page.reload()
    page.locator("#gallery-title", has_text="(40)").wait_for()
    before = served(page, sha, range(40), "low")
    page.get_by_role("button", name=f"Example image 1 of 40 of {name} (cover)").focus()
    page.keyboard.press("End")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowLeft")
    field = page.get_by_role("spinbutton", name="Move to position")
    expect(field).to_have_value("38")
    field.fill("2")
    field.press("Enter")
    page.get_by_role("status").get_by_text("Image moved to position 2").wait_for()
    moved = [before[0], before[37], *before[1:37], *before[38:]]
    assert same_pictures(served(page, sha, range(40), "low"), moved)
    expect(page.get_by_role("button", name=f"Example image 2 of 40 of {name}")).to_be_focused()


def test_the_place_in_the_strip_is_kept_when_an_upload_ends(
    own_visit: Visit, own_library: SeededLibrary, tmp_path: Path
) -> None:
    """A model of 40 images and more uploading: the page is drawn anew when the uploads end,
    and the strip scrolled far along went back to its start, the image with the focus lost
    it (to the page's body) as the person went through the images with the arrow keys."""
    name = "Noir Lora v2"
    sha = own_library.hashes[name]
    page = open_model(own_visit, own_library, name)
    count = len(page.request.post("/api/images/get_sample_imgs", data={"hash": sha}).json())
    strip = page.get_by_role("list", name=re.compile("^Example images"))
    strip.hover()
    page.mouse.wheel(0, 0)  # the strip takes the wheel's sideways scroll
    page.mouse.wheel(2000, 0)
    page.wait_for_function("el => el.scrollLeft > 500", arg=strip.element_handle())
    scrolled = strip.evaluate("el => el.scrollLeft")
    picture = make_image(tmp_path / "later.png", width=40, height=50)
    page.locator("#upload-input").set_input_files(str(picture))
    page.locator("#gallery-title", has_text=f"({count + 1})").wait_for()
    assert strip.evaluate("el => el.scrollLeft") == scrolled

    gate = Gate(page, UPLOAD, "POST")
    another = make_image(tmp_path / "last.png", width=40, height=50, colour=(9, 9, 9))
    page.locator("#upload-input").set_input_files(str(another))
    gate.wait_held(page, 1)
    strip.get_by_role("button").first.focus()
    page.keyboard.press("End")
    page.keyboard.press("ArrowLeft")
    gate.open()
    page.locator("#gallery-title", has_text=f"({count + 2})").wait_for()
    shown = f"Example image {count} of {count + 2} of {name}"
    expect(page.get_by_role("button", name=shown)).to_be_focused()


def test_deleting_the_cover_says_which_image_takes_its_place(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """Delete image on the cover asked "Delete image 1?", as for any image: that the library's
    card would show another picture was not said, before or after."""
    name = "Sketch Checkpoint v3"
    sha = own_library.hashes[name]
    page = open_model(own_visit, own_library, name)
    _, second = served(page, sha, range(2), "low")
    page.get_by_role("button", name="Delete image").click()
    dialog = page.get_by_role("dialog", name="Delete the cover?")
    expect(dialog).to_contain_text("Image 2 becomes the cover")
    dialog.get_by_role("button", name="Delete image").click()
    said = "Cover deleted; the next image is the cover now"
    page.get_by_role("status").get_by_text(said).wait_for()
    assert same_pictures(served(page, sha, range(1), "low"), [second])


def test_the_image_the_lightbox_steps_to_is_said_to_a_screen_reader(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """An arrow key in the lightbox showed the next image, and a screen reader said nothing:
    the focus stays where it was (a button, the dialog), and the caption that changed was not
    a live region."""
    page = open_model(own_visit, own_library, "Aurora Lineart XL")
    page.get_by_role("button", name="Open image 1 large").click()
    dialog = page.get_by_role("dialog")
    page.keyboard.press("ArrowRight")
    caption = dialog.locator("figcaption")
    expect(caption).to_have_text("2 / 4 · Aurora Lineart XL")
    expect(caption).to_have_attribute("aria-live", "polite")


def test_move_later_pressed_from_the_keyboard_keeps_the_focus_for_the_next_press(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """Move later pressed with Enter sent the focus to the image moved: Enter again selected
    it and moved nothing, and the button was four Tabs away."""
    name = "Aurora Lineart XL"
    page = open_model(own_visit, own_library, name)
    page.get_by_role("button", name=f"Example image 2 of 4 of {name}").click()
    later = page.get_by_role("button", name="Move later")
    later.focus()
    page.keyboard.press("Enter")
    page.get_by_role("status").get_by_text("Image moved to position 3").wait_for()
    expect(later).to_be_focused()
    page.keyboard.press("Enter")
    page.get_by_role("status").get_by_text("Image moved to position 4").wait_for()
    # The image is last: Move later can do no more, and the focus is on the image.
    expect(page.get_by_role("button", name=f"Example image 4 of 4 of {name}")).to_be_focused()
