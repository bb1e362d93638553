"""An upload made after the images were reordered elsewhere (another tab or client): the
gallery keeps the <img> of each picture it shows from one drawing to the next, and must not
keep them where the pictures are no longer. On a library of its own: it reorders and uploads."""

from __future__ import annotations

from pathlib import Path

from tests.factories import make_image
from tests.ui.conftest import Visit
from tests.ui.seed import SeededLibrary
from tests.ui.test_after_changes import same_pictures, served, shown
from tests.ui.test_gallery_gestures import (
    loaded,
    open_with_its_images_loaded,
    swap_first_two_elsewhere,
)


def test_an_upload_after_a_reorder_elsewhere_shows_each_picture_where_it_is_now(
    own_visit: Visit, own_library: SeededLibrary, tmp_path: Path
) -> None:
    name = "Aurora Lineart XL"
    page, sha = open_with_its_images_loaded(own_visit, own_library, name)
    swap_first_two_elsewhere(page, sha, 4)

    picture = make_image(tmp_path / "new.png", width=60, height=80, colour=(9, 200, 9))
    page.locator("#upload-input").set_input_files(str(picture))
    page.get_by_role("status").get_by_text("1 image added").wait_for()
    loaded(page, ".thumbs li:nth-child(5) img")

    # Kept by the places the page knew, the first two showed each other's picture: Delete
    # image on the cover shown deleted the other one.
    assert same_pictures(shown(page, ".thumbs img"), served(page, sha, range(5), "low"))
    assert same_pictures(shown(page, ".stage img"), served(page, sha, range(1), "medium"))
