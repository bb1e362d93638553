"""A deleted model can be brought back from the web UI, in a real browser: the delete's toast
offers Undo, and the page of a deleted model's SHA256 shows its history with Restore."""

from __future__ import annotations

from typing import Any

from tests.ui.conftest import Visit, needs
from tests.ui.seed import SeededLibrary

NEEDED = (
    "DELETE /api/models/{sha256}",
    "GET /api/models/{sha256}/history",
    "POST /api/models/{sha256}/history/{id}/restore",
)


def imported(page: Any, library: SeededLibrary, role: str) -> str:
    """The sha256 of the pending model `role`, imported into the library with a tag."""
    body = {"id": library.pending[role], "conf_strategy": None}
    sha = str(page.request.post("/api/migration/import_a_model", data=body).json()["sha256"])
    assert page.request.put(f"/api/models/{sha}/tags", data={"tags": ["keepme"]}).ok
    return sha


def test_undo_in_the_delete_toast_brings_the_model_back(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    needs(operations, *NEEDED)
    page = visit.page
    sha = imported(page, library, "fresh6")
    page.goto(f"/models/{sha}")
    page.get_by_role("heading", level=1, name="Fresh Pending 6").wait_for()
    page.get_by_role("button", name="Delete model").click()
    dialog = page.get_by_role("dialog")
    # Said before it is done: the images will not come back with an Undo.
    dialog.get_by_text("Undo brings back the record and tags, not the images").wait_for()
    dialog.get_by_role("button", name="Delete model").click()
    page.get_by_role("heading", level=1, name="Library").wait_for()
    toast = page.get_by_role("status").locator(".toast", has_text="Deleted Fresh Pending 6")
    toast.get_by_role("button", name="Undo").click()
    page.get_by_role("heading", level=1, name="Fresh Pending 6").wait_for()
    said = page.get_by_role("status").get_by_text("Restored Fresh Pending 6, without its images")
    said.wait_for()
    page.get_by_role("region", name="Tags").get_by_role("link", name="keepme").wait_for()
    assert page.request.get(f"/api/models/{sha}").ok


def test_the_page_of_a_deleted_model_offers_its_history_to_restore(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    needs(operations, *NEEDED)
    page = visit.page
    sha = imported(page, library, "fresh7")
    assert page.request.delete(f"/api/models/{sha}").ok
    page.goto(f"/models/{sha}")
    page.get_by_role("heading", level=1, name="No such model").wait_for()
    history = page.get_by_role("region", name="History")
    history.get_by_text("Deleted", exact=True).wait_for()
    # Every field of a deleted model "differs": the entry says what a restore brings back.
    back = "Brings the model back as it was then, without its images"
    assert history.locator(".changes").first.inner_text() == back
    assert history.get_by_text("Differs in").count() == 0
    history.get_by_role("button", name="Restore the version before “Deleted”").click()
    dialog = page.get_by_role("dialog")
    assert back in dialog.inner_text()
    dialog.get_by_role("button", name="Restore").click()
    page.get_by_role("heading", level=1, name="Fresh Pending 7").wait_for()
    page.get_by_role("region", name="Tags").get_by_role("link", name="keepme").wait_for()


def test_a_sha256_never_in_the_library_shows_no_history(visit: Visit) -> None:
    visit.page.goto("/models/" + "1" * 64)
    visit.page.get_by_role("heading", level=1, name="No such model").wait_for()
    assert visit.page.get_by_role("region", name="History").count() == 0
