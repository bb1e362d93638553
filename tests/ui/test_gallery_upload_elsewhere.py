"""An upload made after, or while, the images were reordered elsewhere (another tab or
client): the gallery keeps the <img> of each picture it shows from one drawing to the next,
and must not keep them where the pictures are no longer. The upload carries the model's ETag
as If-Match: met by a reorder made elsewhere, it is refused (412), said as a change made
elsewhere, and the current version is shown. On a library of its own: it reorders and uploads
(each test reads how many images the model has when it begins)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from tests.conftest import http_post
from tests.factories import make_image
from tests.server import ServerProcess
from tests.ui.conftest import Visit, open_model
from tests.ui.seed import SeededLibrary
from tests.ui.test_after_changes import same_pictures, served, shown
from tests.ui.test_gallery_gestures import loaded, swap_first_two_elsewhere

NAME = "Aurora Lineart XL"
UPLOAD = re.compile(r".*/api/images/upload$")
REFUSED = "Not added: this model was changed elsewhere; showing the current version"


def opened(visit: Visit, library: SeededLibrary) -> tuple[Any, str, int]:
    """The model's page with its images loaded, its SHA256, and how many images it has."""
    sha = library.hashes[NAME]
    page = open_model(visit, library, NAME)
    count = len(page.request.post("/api/images/get_sample_imgs", data={"hash": sha}).json())
    for n in range(count):
        loaded(page, f".thumbs li:nth-child({n + 1}) img")
    loaded(page, ".stage img")
    return page, sha, count


def shows_each_picture_where_it_is(page: Any, sha: str, count: int) -> None:
    # Kept by the places the page knew, the first two showed each other's picture: Delete
    # image on the cover shown deleted the other one.
    assert same_pictures(shown(page, ".thumbs img"), served(page, sha, range(count), "low"))
    assert same_pictures(shown(page, ".stage img"), served(page, sha, range(1), "medium"))


def test_an_upload_met_by_a_reorder_made_elsewhere_on_its_way_is_refused_and_says_so(
    own_visit: Visit, own_library: SeededLibrary, own_server: ServerProcess, tmp_path: Path
) -> None:
    """The first two images swapped by another client while the upload is on its way (after
    the page last read the model): the upload, which carried no If-Match, was added, and the
    gallery kept each picture where the page knew it, the old cover shown first."""
    page, sha, count = opened(own_visit, own_library)
    sent: list[str | None] = []

    def reorder_first(route: Any) -> None:
        if route.request.method == "POST" and not sent:
            sent.append(route.request.headers.get("if-match"))
            order = [f"{sha}_{seq}.webp" for seq in (1, 0, *range(2, count))]
            status, answer = http_post(
                own_server, "/api/images/reorder", {"hash": sha, "order": order}
            )
            assert status == 200, answer
        route.fallback()

    page.route(UPLOAD, reorder_first)
    picture = make_image(tmp_path / "new.png", width=60, height=80, colour=(9, 200, 9))
    page.locator("#upload-input").set_input_files(str(picture))
    page.get_by_role("alert").get_by_text("No image added, 1 failed").wait_for()
    page.get_by_role("list", name="Uploads").get_by_text(REFUSED).wait_for()
    assert sent[0], "the upload carried no If-Match"
    assert len(page.request.post("/api/images/get_sample_imgs", data={"hash": sha}).json()) == count
    page.get_by_role("heading", name=f"Images ({count})").wait_for()
    shows_each_picture_where_it_is(page, sha, count)


def test_an_upload_after_a_reorder_elsewhere_is_refused_then_added_to_the_version_shown(
    own_visit: Visit, own_library: SeededLibrary, tmp_path: Path
) -> None:
    page, sha, count = opened(own_visit, own_library)
    swap_first_two_elsewhere(page, sha, count)

    picture = make_image(tmp_path / "new.png", width=60, height=80, colour=(9, 200, 9))
    page.locator("#upload-input").set_input_files(str(picture))
    page.get_by_role("alert").get_by_text("No image added, 1 failed").wait_for()
    page.get_by_role("list", name="Uploads").get_by_text(REFUSED).wait_for()
    shows_each_picture_where_it_is(page, sha, count)

    # The page now holds the current version: the same file again is added to it.
    page.locator("#upload-input").set_input_files(str(picture))
    page.get_by_role("status").get_by_text("1 image added").wait_for()
    loaded(page, f".thumbs li:nth-child({count + 1}) img")
    shows_each_picture_where_it_is(page, sha, count + 1)


def test_an_upload_after_a_tag_added_elsewhere_is_added_not_refused(
    own_visit: Visit, own_library: SeededLibrary, tmp_path: Path
) -> None:
    """A tag added in another tab changes the model's ETag but leaves its pictures where they
    were (Images-Version): the upload's 412 made the person choose the file again, though
    nothing it guards against had happened. The page reads the model and sends it again."""
    page, sha, count = opened(own_visit, own_library)
    tags = [t["name"] for t in page.request.get(f"/api/models/{sha}").json()["tags"]]
    answer = page.request.put(f"/api/models/{sha}/tags", data={"tags": [*tags, "elsewhere"]})
    assert answer.ok, answer.text()

    picture = make_image(tmp_path / "new.png", width=60, height=80, colour=(9, 200, 9))
    page.locator("#upload-input").set_input_files(str(picture))
    page.get_by_role("status").get_by_text("1 image added").wait_for()
    loaded(page, f".thumbs li:nth-child({count + 1}) img")
    shows_each_picture_where_it_is(page, sha, count + 1)
    page.get_by_role("region", name="Tags").get_by_role("link", name="elsewhere").wait_for()


def test_a_reorder_made_elsewhere_as_the_pages_own_move_is_answered_is_shown_as_it_is(
    own_visit: Visit, own_library: SeededLibrary, own_server: ServerProcess
) -> None:
    """The first two images swapped back by another client (without If-Match) in the instant
    between the page's own move and its reading of the model after it: the page took the new
    version as the one its move left, kept each picture where its move had put it, and showed
    the old cover second though the server had it first again (Delete image on it deleted the
    other picture)."""
    page, sha, count = opened(own_visit, own_library)

    def swap_back_before_the_answer(route: Any) -> None:
        if route.request.method != "POST":
            route.fallback()
            return
        answer = route.fetch()
        order = [f"{sha}_{seq}.webp" for seq in (1, 0, *range(2, count))]
        status, body = http_post(own_server, "/api/images/reorder", {"hash": sha, "order": order})
        assert status == 200, body
        route.fulfill(response=answer)

    page.route(re.compile(r".*/api/images/reorder$"), swap_back_before_the_answer)
    page.get_by_role("button", name=f"Example image 1 of {count} of {NAME} (cover)").click()
    page.get_by_role("button", name="Move later").click()
    page.get_by_role("status").get_by_text("Image moved to position 2").wait_for()
    for n in range(count):
        loaded(page, f".thumbs li:nth-child({n + 1}) img")
    loaded(page, ".stage img")
    assert same_pictures(shown(page, ".thumbs img"), served(page, sha, range(count), "low"))
    # The stage shows the second place, the one the move went to and left selected.
    assert same_pictures(shown(page, ".stage img"), served(page, sha, range(1, 2), "medium"))


def swap_back_before_the_answer(server: ServerProcess, sha: str, count: int, method: str) -> Any:
    """A route handler: the page's `method` request made, then the first two of `count`
    images swapped by another client (without If-Match), then its answer given to the page."""

    def handle(route: Any) -> None:
        if route.request.method != method:
            route.fallback()
            return
        answer = route.fetch()
        order = [f"{sha}_{seq}.webp" for seq in (1, 0, *range(2, count))]
        status, body = http_post(server, "/api/images/reorder", {"hash": sha, "order": order})
        assert status == 200, body
        route.fulfill(response=answer)

    return handle


def test_a_reorder_made_elsewhere_as_the_pages_own_delete_is_answered_is_shown_as_it_is(
    own_visit: Visit, own_library: SeededLibrary, own_server: ServerProcess
) -> None:
    """The first two images swapped by another client in the instant between the answer to
    the page's Delete image (on the last) and its reading of the model after it: the delete's
    answer carried no version, the page took the model it read as the one its delete left,
    and kept each picture where it knew it, the old cover first."""
    page, sha, count = opened(own_visit, own_library)
    handle = swap_back_before_the_answer(own_server, sha, count - 1, "DELETE")
    page.route(re.compile(rf".*/api/images/{sha}_\d+\.webp$"), handle)
    page.get_by_role("button", name=f"Example image {count} of {count} of {NAME}").click()
    page.get_by_role("button", name="Delete image").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete image").click()
    page.get_by_role("status").get_by_text("Image deleted", exact=True).wait_for()
    page.get_by_role("heading", name=f"Images ({count - 1})").wait_for()
    for n in range(count - 1):
        loaded(page, f".thumbs li:nth-child({n + 1}) img")
    assert same_pictures(shown(page, ".thumbs img"), served(page, sha, range(count - 1), "low"))


def test_a_reorder_made_elsewhere_as_the_pages_own_upload_is_answered_is_shown_as_it_is(
    own_visit: Visit, own_library: SeededLibrary, own_server: ServerProcess, tmp_path: Path
) -> None:
    """As for a delete: the upload's answer carried no version, and the page kept each
    picture where it knew it, the old cover first, though the server had swapped them."""
    page, sha, count = opened(own_visit, own_library)
    # The upload's body (a file) cannot be sent again from a route: the swap is made as the
    # page reads the model after the upload's answer, before the read reaches the server.
    swaps: list[int] = []

    def swap_as_the_page_reads_after_the_upload(request: Any) -> None:
        if UPLOAD.match(request.url):
            swaps.append(count + 1)

    def read(route: Any) -> None:
        if swaps:
            order = [f"{sha}_{seq}.webp" for seq in (1, 0, *range(2, swaps.pop()))]
            status, body = http_post(
                own_server, "/api/images/reorder", {"hash": sha, "order": order}
            )
            assert status == 200, body
        route.fallback()

    page.on("requestfinished", swap_as_the_page_reads_after_the_upload)
    page.route(re.compile(rf".*/api/models/{sha}$"), read)
    picture = make_image(tmp_path / "new.png", width=60, height=80, colour=(9, 200, 9))
    page.locator("#upload-input").set_input_files(str(picture))
    page.get_by_role("status").get_by_text("1 image added").wait_for()
    for n in range(count + 1):
        loaded(page, f".thumbs li:nth-child({n + 1}) img")
    shows_each_picture_where_it_is(page, sha, count + 1)
