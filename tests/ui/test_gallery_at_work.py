"""The gallery as a collector reorders it, in a real browser, on a library of its own (these
tests move, add and delete images): a drag made while a move is on its way, a message's
button pressed from the keyboard."""

from __future__ import annotations

import re

from tests.ui.conftest import Visit, open_model
from tests.ui.seed import SeededLibrary
from tests.ui.test_after_changes import same_pictures, served
from tests.ui.test_unsaved_work import Gate

REORDER = re.compile(r".*/api/images/reorder$")


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
