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


def test_a_base_model_longer_than_the_filter_takes_left_as_it_is_does_not_stop_a_save(
    own_visit: Visit, own_library: SeededLibrary
) -> None:
    """A base model over the filter's 100 characters, brought in with a model's meta_json (a
    legacy record, a script's PATCH), is the record's, not typed: the field is not sent while
    left as it is (a maxlength flagged only what was typed), so it must not stop the Save of
    another field, as it did once the field was held to the limit from the start."""
    sha = own_library.hashes["Aurora Lineart XL"]
    page = open_model(own_visit, own_library, "Aurora Lineart XL")
    long = "b" * 150
    answer = page.request.patch(f"/api/models/{sha}", data={"meta_json": {"base_model": long}})
    assert answer.status == 200, answer.text()
    page.reload()
    page.get_by_role("button", name="Edit", exact=True).click()
    base = page.get_by_label("Base model", exact=True)
    expect(base).to_have_value(long)
    expect(base).not_to_have_accessible_description(re.compile("At most"))
    page.get_by_label("Notes", exact=True).fill("kept")
    page.get_by_role("button", name="Save").click()
    record = saved(page, sha)
    assert (record["meta_json"]["notes"], record["meta_json"]["base_model"]) == ("kept", long)
    page.get_by_role("button", name="Edit", exact=True).click()
    base.fill(long + "b")
    expect(base).to_have_accessible_description(
        re.compile("At most 100 characters once trimmed; this has 151")
    )
