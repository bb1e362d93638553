"""A conflict resolved over a library model edited elsewhere (another tab, a script) after the
comparison showed it: the choice is sent with the model's version (If-Match, from the
preview's ETag header), so the edit is not overwritten; the comparison is shown again with the
model as it is now, said in plain words, and the pending model stays pending. On a library of
its own: it edits a model and imports a pending one."""

from __future__ import annotations

import json
import re
import urllib.request
from typing import Any

import pytest

from tests.server import ServerProcess
from tests.ui.conftest import Visit
from tests.ui.pending_queue import open_pending, row
from tests.ui.seed import SeededLibrary

IMPORT = re.compile(r".*/api/migration/import_a_model$")
# Said after "The library's" (written with a typographic apostrophe).
CHANGED = "model changed since this comparison opened"


@pytest.fixture
def visit(own_visit: Visit) -> Visit:
    return own_visit


def rename_elsewhere(server: ServerProcess, sha: str, name: str) -> None:
    """PATCH the model's name, as another tab or a script would (blocking, off the page)."""
    request = urllib.request.Request(
        f"{server.url}/api/models/{sha}",
        data=json.dumps({"name": name}).encode(),
        method="PATCH",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 200


def stored_name(page: Any, sha: str) -> str:
    return str(page.request.get(f"/api/models/{sha}").json()["name"])


def test_an_override_met_by_an_edit_made_elsewhere_on_its_way_shows_the_model_again(
    visit: Visit, own_library: SeededLibrary, own_server: ServerProcess
) -> None:
    """The library's model renamed by another client in the instant between Override and
    the import (after the page last read it): the import overwrote the new name unseen."""
    sha = own_library.hashes["Existing Conflict 0"]
    page = open_pending(visit)
    sent: list[str | None] = []

    def edit_first(route: Any) -> None:
        choice = (route.request.post_data_json or {}).get("conf_strategy")
        if route.request.method == "POST" and choice == "override" and not sent:
            sent.append(route.request.headers.get("if-match"))
            rename_elsewhere(own_server, sha, "Renamed Elsewhere")
        route.fallback()

    page.route(IMPORT, edit_first)
    page.get_by_role("button", name="Import Pending Conflict 0").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_role("button", name="Override", exact=True).click()

    dialog.get_by_text(CHANGED).wait_for()
    library_side = dialog.locator(".side", has=page.get_by_role("heading", name="In the library"))
    library_side.get_by_text("Renamed Elsewhere").wait_for()
    assert sent[0], "the override carried no If-Match"
    assert stored_name(page, sha) == "Renamed Elsewhere"
    assert row(page, own_library, "conflict0").is_visible()  # still pending

    # Compared again, the choice made over the model as it is now goes through.
    dialog.get_by_role("button", name="Override", exact=True).click()
    row(page, own_library, "conflict0").wait_for(state="detached")
    assert stored_name(page, sha) == "Pending Conflict 0"


def test_an_override_met_by_the_models_deletion_elsewhere_imports_nothing_and_says_so(
    visit: Visit, own_library: SeededLibrary, own_server: ServerProcess
) -> None:
    """The library's model deleted by another client between Override and the import: with
    no conflict any more the import would have added the pending model as a new one, which is
    not what the person chose between. It is refused (412), said on the row and in a toast,
    and the pending model stays, to be imported again as a new model if the person wants."""
    sha = own_library.hashes["Existing Conflict 1"]
    page = open_pending(visit)
    sent: list[str | None] = []

    def delete_first(route: Any) -> None:
        choice = (route.request.post_data_json or {}).get("conf_strategy")
        if route.request.method == "POST" and choice == "override" and not sent:
            sent.append(route.request.headers.get("if-match"))
            request = urllib.request.Request(f"{own_server.url}/api/models/{sha}", method="DELETE")
            with urllib.request.urlopen(request, timeout=60) as response:
                assert response.status == 200
        route.fallback()

    page.route(IMPORT, delete_first)
    page.get_by_role("button", name="Import Pending Conflict 1").click()
    page.get_by_role("dialog").get_by_role("button", name="Override", exact=True).click()
    said = "model of this content was deleted elsewhere; nothing was imported"
    row(page, own_library, "conflict1").get_by_text(said).wait_for()
    page.get_by_role("alert").get_by_text(said).wait_for()
    assert sent[0], "the override carried no If-Match"
    assert page.request.get(f"/api/models/{sha}").status == 404
    assert page.get_by_role("dialog").count() == 0
