"""The version in the URLs of a model's images: it changes when its pictures do, and only
then. A browser shows the image it holds for a URL again within one page, so a URL kept over
a change of the pictures shows the old one, and a URL changed without one downloads a picture
already shown. On a library of its own: it reorders and tags."""

from __future__ import annotations

from typing import Any

from tests.ui.conftest import Visit
from tests.ui.seed import SeededLibrary
from tests.ui.test_after_changes import same_pictures, served, shown
from tests.ui.test_gallery_gestures import (
    ImageRequests,
    loaded,
    open_with_its_images_loaded,
    swap_first_two_elsewhere,
)

NAME = "Aurora Lineart XL"
CHANGED = "This model was changed elsewhere; showing the current version"


def stage(page: Any, n: int) -> None:
    """Image `n` (from 1) of the four on the stage, once loaded."""
    page.get_by_role("button", name=f"Example image {n} of 4 of {NAME}").click()
    loaded(page, ".stage img")


def tag_meets_a_change_elsewhere(page: Any, tag: str) -> None:
    """A tag added on the page after the model changed elsewhere: refused (412), and the
    model read and drawn again."""
    tags = page.get_by_role("region", name="Tags")
    tags.get_by_label("Add a tag").fill(tag)
    tags.get_by_label("Add a tag").press("Enter")
    page.get_by_text(CHANGED).first.wait_for()
    page.wait_for_load_state("networkidle")


def test_a_tag_changed_elsewhere_downloads_no_picture_again(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """A tag added in another tab, met by the page's own tag save (412): the page read the
    model again and took its new ETag as the version of its images' URLs, so every picture
    shown after (the stage's, the lightbox's, the library's cover) was downloaded again,
    though none had changed."""
    page, sha = open_with_its_images_loaded(own_visit, own_library, NAME)
    stage(page, 2)
    stage(page, 1)
    page.wait_for_load_state("networkidle")
    requests = ImageRequests(page, sha)
    elsewhere = page.request.put(f"/api/models/{sha}/tags", data={"tags": ["tagged-elsewhere"]})
    assert elsewhere.ok, elsewhere.text()
    tag_meets_a_change_elsewhere(page, "mine")
    stage(page, 2)
    page.wait_for_load_state("networkidle")
    assert requests.taken() == []


def test_pictures_reordered_elsewhere_are_shown_where_they_are_on_coming_back(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """The pictures swapped by another client, the page left and opened again: its images'
    URLs, which kept their version over the tag changed elsewhere, take a new one, so the
    browser does not show the pictures it holds for the old ones (the old cover first)."""
    page, sha = open_with_its_images_loaded(own_visit, own_library, NAME)
    tag_meets_a_change_elsewhere_first(page, sha)
    swap_first_two_elsewhere(page, sha, 4)
    page.get_by_role("link", name="← Library").click()
    page.locator(".card").first.wait_for()
    page.go_back()
    page.get_by_role("heading", level=1, name=NAME).wait_for()
    assert same_pictures(shown(page, ".thumbs img"), served(page, sha, range(4), "low"))
    assert same_pictures(shown(page, ".stage img"), served(page, sha, range(1), "medium"))


def tag_meets_a_change_elsewhere_first(page: Any, sha: str) -> None:
    """The page's images' URLs given a version, as any change seen by the page does."""
    elsewhere = page.request.put(f"/api/models/{sha}/tags", data={"tags": ["also-elsewhere"]})
    assert elsewhere.ok, elsewhere.text()
    tag_meets_a_change_elsewhere(page, "mine-too")
