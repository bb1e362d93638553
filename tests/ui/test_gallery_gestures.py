"""Gallery gestures in a real browser, on a library of its own (these tests move and delete
images): a move or a delete queued behind a tag save that meets a change made elsewhere;
moves waiting behind one that meets a change made elsewhere to the tags alone."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.factories import make_image
from tests.ui.conftest import Visit, open_model
from tests.ui.seed import SeededLibrary
from tests.ui.test_after_changes import same_pictures, served, shown
from tests.ui.test_unsaved_work import Gate

TAGS = re.compile(r".*/api/models/[0-9a-f]{64}/tags$")
REORDER = re.compile(r".*/api/images/reorder$")
GONE = "the images changed before the {} was sent; nothing was {}d, choose the image again"


def swap_first_two_elsewhere(page: Any, sha: str, count: int) -> None:
    """The first two images swapped, as another tab or client would."""
    order = [f"{sha}_{seq}.webp" for seq in (1, 0, *range(2, count))]
    answer = page.request.post("/api/images/reorder", data={"hash": sha, "order": order})
    assert answer.ok, answer.text()


def hold_a_tag_save(page: Any) -> Gate:
    """A tag added, its save held by a slow server: the gallery's next gesture waits for it."""
    gate = Gate(page, TAGS, "PUT")
    tags = page.get_by_role("region", name="Tags")
    tags.get_by_label("Add a tag").fill("saved-late")
    tags.get_by_label("Add a tag").press("Enter")
    gate.wait_held(page, 1)
    return gate


def test_a_move_queued_behind_a_tag_save_that_meets_a_change_elsewhere_moves_no_other_picture(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """Move later on image 2 while a tag save was on its way, the first two images swapped
    elsewhere meanwhile: the save met a 412, the page showed the model anew, and the move,
    which named its picture by the place it had, moved the picture now there (the old cover)."""
    name = "Aurora Lineart XL"
    sha = own_library.hashes[name]
    page = open_model(own_visit, own_library, name)
    first, second, third, fourth = served(page, sha, range(4), "low")
    gate = hold_a_tag_save(page)
    page.get_by_role("button", name=f"Example image 2 of 4 of {name}").click()
    page.get_by_role("button", name="Move later").click()
    swap_first_two_elsewhere(page, sha, 4)
    gate.open()
    page.get_by_text(re.compile("^(Image moved|Could not move)")).wait_for()
    assert same_pictures(served(page, sha, range(4), "low"), [second, first, third, fourth])
    said = f"Could not move image 2: {GONE.format('move', 'move')}"
    page.get_by_role("alert").get_by_text(said).wait_for()
    # The strip shows the pictures where they are now, none of them as the page had them.
    assert same_pictures(shown(page, ".thumbs img"), [second, first, third, fourth])


def test_a_delete_queued_behind_a_tag_save_that_meets_a_change_elsewhere_deletes_no_other_picture(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """Delete image on image 2 while a tag save was on its way, the first two images swapped
    elsewhere meanwhile: the delete, sent after the save's 412, deleted the old cover."""
    name = "Aurora Lineart XL"
    sha = own_library.hashes[name]
    page = open_model(own_visit, own_library, name)
    before = served(page, sha, range(4), "low")
    gate = hold_a_tag_save(page)
    page.get_by_role("button", name=f"Example image 2 of 4 of {name}").click()
    page.get_by_role("button", name="Delete image").click()
    page.get_by_role("dialog", name="Delete image 2?").get_by_role(
        "button", name="Delete image"
    ).click()
    swap_first_two_elsewhere(page, sha, 4)
    gate.open()
    page.get_by_text(re.compile("^(Image deleted|Could not delete)")).wait_for()
    count = len(page.request.post("/api/images/get_sample_imgs", data={"hash": sha}).json())
    assert count == 4
    assert same_pictures(served(page, sha, range(4), "low"), [before[1], before[0], *before[2:]])
    said = f"Could not delete image 2: {GONE.format('delete', 'delete')}"
    page.get_by_role("alert").get_by_text(said).wait_for()


def test_moves_waiting_behind_one_that_meets_a_tag_added_elsewhere_are_still_made(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """Alt+Right pressed three times on the cover, a tag added in another tab while the first
    move was on its way: the first met a 412 and was said, and the two waiting behind it were
    dropped too (said as images changed), though the change touched no image: the cover went
    nowhere. Then the first alone was refused, the cover going two places of the three. The
    pictures being where the page knew them, the first is sent again with the new ETag and
    the two waiting after it: the cover goes three places, and nothing is said refused."""
    name = "Aurora Lineart XL"
    sha = own_library.hashes[name]
    page = open_model(own_visit, own_library, name)
    first, second, third, fourth = served(page, sha, range(4), "low")
    gate = Gate(page, REORDER, "POST")
    page.get_by_role("button", name=f"Example image 1 of 4 of {name} (cover)").focus()
    for _ in range(3):
        page.keyboard.press("Alt+ArrowRight")
    gate.wait_held(page, 1)
    elsewhere = page.request.put(f"/api/models/{sha}/tags", data={"tags": ["added-elsewhere"]})
    assert elsewhere.ok, elsewhere.text()
    gate.open()
    # The first refused, it said "Could not reorder: this model was changed elsewhere".
    page.get_by_role("status").get_by_text("Image moved to position 4", exact=True).wait_for()
    assert same_pictures(served(page, sha, range(4), "low"), [second, third, fourth, first])
    page.get_by_role("region", name="Tags").get_by_text("added-elsewhere").wait_for()


def test_a_delete_that_meets_a_tag_added_elsewhere_is_made(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """Delete image confirmed, a tag added in another tab while the delete was on its way:
    the delete met a 412 and was refused (the person had to choose the image and confirm
    again), though the picture was still where the page knew it (Images-Version). It is
    sent again with the new ETag, as an upload is."""
    name = "Cyberpunk Embedding v1"  # three images: the others' tests count on four
    sha = own_library.hashes[name]
    page = open_model(own_visit, own_library, name)
    before = served(page, sha, range(3), "low")
    gate = Gate(page, re.compile(r".*/api/images/[0-9a-f]{64}_\d+\.webp$"), "DELETE")
    page.get_by_role("button", name=f"Example image 2 of 3 of {name}").click()
    page.get_by_role("button", name="Delete image").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete image").click()
    gate.wait_held(page, 1)
    elsewhere = page.request.put(
        f"/api/models/{sha}/tags", data={"tags": ["tagged-beside-a-delete"]}
    )
    assert elsewhere.ok, elsewhere.text()
    gate.open()
    # Refused, it said "Could not delete the image: this model was changed elsewhere".
    page.get_by_role("status").get_by_text("Image deleted", exact=True).wait_for()
    assert same_pictures(served(page, sha, range(2), "low"), [before[0], before[2]])


def test_a_thumbnail_dropped_in_the_gap_between_two_lands_between_them(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """The cover dragged and let go in the gap between the third and fourth thumbnails (on the
    strip, not on a thumbnail): the drop was ignored, and the image stayed where it was."""
    name = "Aurora Lineart XL"
    sha = own_library.hashes[name]
    page = open_model(own_visit, own_library, name)
    first, second, third, fourth = served(page, sha, range(4), "low")
    strip = page.get_by_role("list", name=re.compile("^Example images"))
    thumbs = strip.locator("li")
    box, left, right = (
        strip.bounding_box(),
        thumbs.nth(2).bounding_box(),
        thumbs.nth(3).bounding_box(),
    )
    assert box and left and right
    gap = (left["x"] + left["width"] + right["x"]) / 2
    assert left["x"] + left["width"] < gap < right["x"]
    spot = {"x": gap - box["x"], "y": left["y"] + left["height"] / 2 - box["y"]}
    thumbs.nth(0).drag_to(strip, target_position=spot)
    page.get_by_role("status").get_by_text("Image moved to position 3").wait_for()
    assert same_pictures(served(page, sha, range(4), "low"), [second, third, first, fourth])


def loaded(page: Any, selector: str) -> None:
    """Until the image `selector` is loaded."""
    page.locator(selector).evaluate(
        "img => img.complete || new Promise((done) => img.addEventListener('load', done))"
    )


def open_with_its_images_loaded(visit: Visit, library: SeededLibrary, name: str) -> tuple[Any, str]:
    """The model page of `name` (seeded with four images) once its four thumbnails and the
    stage's image are loaded; and the model's SHA256."""
    page = open_model(visit, library, name)
    for n in range(4):
        loaded(page, f".thumbs li:nth-child({n + 1}) img")
    loaded(page, ".stage img")
    return page, library.hashes[name]


class ImageRequests:
    """The model's image requests the page makes (the cache's revalidations included)."""

    def __init__(self, page: Any, sha: str) -> None:
        self.urls: list[str] = []
        self.pattern = re.compile(rf"/api/images/{sha}_\d+\.webp")
        page.on("request", self.seen)

    def seen(self, request: Any) -> None:
        if self.pattern.search(request.url):
            self.urls.append(request.url)

    def taken(self) -> list[str]:
        urls, self.urls = self.urls, []
        return urls


def test_a_redraw_of_the_gallery_downloads_no_image_that_did_not_change(
    own_visit: Visit, own_library: SeededLibrary, tmp_path: Path
) -> None:
    """Each redraw of the page (a tag saved, an image moved, one uploaded) made every
    thumbnail and the stage's image anew, with a new version in their URLs after a change of
    the images: all were downloaded again, though only the new upload was a picture not shown."""
    name = "Aurora Lineart XL"
    page, sha = open_with_its_images_loaded(own_visit, own_library, name)
    page.wait_for_load_state("networkidle")
    requests = ImageRequests(page, sha)
    tags = page.get_by_role("region", name="Tags")
    tags.get_by_label("Add a tag").fill("redrawn")
    tags.get_by_label("Add a tag").press("Enter")
    page.get_by_role("status").get_by_text("Tags saved").wait_for()
    page.wait_for_load_state("networkidle")
    assert requests.taken() == []

    page.get_by_role("button", name=f"Example image 2 of 4 of {name}").click()
    loaded(page, ".stage img")
    page.wait_for_load_state("networkidle")
    requests.taken()  # the second image on the stage: a picture not shown before
    page.get_by_role("button", name="Move later").click()
    page.get_by_role("status").get_by_text("Image moved to position 3").wait_for()
    page.wait_for_load_state("networkidle")
    assert requests.taken() == []
    # The thumbnails kept show the pictures where they are now.
    assert same_pictures(shown(page, ".thumbs img"), served(page, sha, range(4), "low"))

    picture = make_image(tmp_path / "new.png", width=60, height=80, colour=(9, 200, 9))
    page.locator("#upload-input").set_input_files(str(picture))
    page.get_by_role("status").get_by_text("1 image added").wait_for()
    loaded(page, ".thumbs li:nth-child(5) img")
    page.wait_for_load_state("networkidle")
    assert [re.sub(r".*/api/images/|&v=.*", "", url) for url in requests.taken()] == [
        f"{sha}_4.webp?quality=low"
    ]
    assert same_pictures(shown(page, ".thumbs img"), served(page, sha, range(5), "low"))
