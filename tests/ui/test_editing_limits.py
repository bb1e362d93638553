"""The editor's fields held to what the server takes, in a real browser: a name, a type, a base
model and a tag are counted as the server counts them, in characters (code points) once
trimmed; a `maxlength` counted UTF-16 units of the text as typed. On a library of its own: it
renames."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from tests.ui.conftest import Visit, open_model
from tests.ui.seed import SeededLibrary

FOX = "\U0001f98a"  # one character, two UTF-16 units
A_MODEL = re.compile(r".*/api/models/[0-9a-f]{64}$")


def edit(visit: Visit, library: SeededLibrary, name: str) -> Any:
    page = open_model(visit, library, name)
    page.get_by_role("button", name="Edit", exact=True).click()
    return page


def saved(page: Any, sha: str) -> dict[str, Any]:
    page.get_by_role("status").get_by_text("Saved", exact=True).wait_for()
    record: dict[str, Any] = page.request.get(f"/api/models/{sha}").json()
    return record


def test_a_name_and_a_type_of_as_many_characters_as_the_server_takes_are_saved_whole(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """A name of 1000 emoji (the server's limit) was cut to 500 by the field, and a name of
    1000 letters pasted with spaces around it lost its end, though the server takes both."""
    sha = own_library.hashes["Pastel Lora v1"]
    page = edit(own_visit, own_library, "Pastel Lora v1")
    page.get_by_label("Name", exact=True).fill(FOX * 1000)
    page.get_by_label("Type", exact=True).fill("  " + FOX * 100 + "  ")
    page.get_by_role("button", name="Save").click()
    record = saved(page, sha)
    assert (record["name"], record["type"]) == (FOX * 1000, FOX * 100)

    page.get_by_role("button", name="Edit", exact=True).click()
    page.get_by_label("Name", exact=True).fill("   " + "n" * 1000 + "   ")
    page.get_by_role("button", name="Save").click()
    assert saved(page, sha)["name"] == "n" * 1000


def test_a_name_longer_than_the_server_takes_is_said_at_the_field_and_not_sent(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    page = edit(own_visit, own_library, "Ink Embedding v2")
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.method) if A_MODEL.match(r.url) else None)
    field = page.get_by_label("Name", exact=True)
    field.fill(" " + FOX * 1001 + " ")
    expect(field).to_have_accessible_description(
        re.compile("At most 1000 characters once trimmed; this has 1001")
    )
    page.get_by_role("button", name="Save").click()
    expect(field).to_be_focused()
    assert "PATCH" not in sent
    field.fill(FOX * 1000)
    expect(field).not_to_have_accessible_description(re.compile("At most"))
