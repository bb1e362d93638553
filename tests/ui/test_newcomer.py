"""A newcomer's model page, in a real browser: the notes they wrote in A1111 or LoRA Manager are
shown, and the editor holds Name and Type to what the server takes, so Save is never refused
for a length the field let them type."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.ui.conftest import Visit, needs, open_model
from tests.ui.seed import SeededLibrary


def test_notes_written_in_a1111_or_lora_manager_are_shown(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    needs(operations, "PATCH /api/models/{sha256}")
    page = visit.page
    for name, meta in [
        ("Oil Paint Checkpoint v3", {"a1111": {"notes": "best at cfg 5, from A1111"}}),
        ("Noir Lora v3", {"lora_manager": {"notes": "0.6 for portraits, from LM"}}),
    ]:
        url = f"/api/models/{library.hashes[name]}"
        etag = page.request.get(url).headers["etag"]
        mine = {"notes": None}  # none of the person's own, which would come first
        answer = page.request.patch(
            url, data={"meta_json": meta | mine}, headers={"If-Match": etag}
        )
        assert answer.ok, answer.text()
        open_model(visit, library, name)
        about = page.get_by_role("region", name="About")
        expect(about.get_by_role("heading", name="Notes")).to_be_visible()
        [said] = [value["notes"] for value in meta.values()]
        expect(about.get_by_text(said, exact=True)).to_be_visible()


def test_the_editor_takes_no_longer_a_name_or_type_than_the_server(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    needs(operations, "PATCH /api/models/{sha256}")
    page = open_model(visit, library, "Ink Embedding v3")
    page.get_by_role("button", name="Edit").click()
    # Held at the field as the server counts (dde0fc8), not cut: nothing longer is sent.
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.method) if "/api/models/" in r.url else None)
    page.get_by_label("Type").fill("x" * 150)
    page.get_by_label("Name").fill("n" * 1200)
    expect(page.get_by_label("Type")).to_have_accessible_description(
        re.compile("At most 100 characters once trimmed; this has 150")
    )
    expect(page.get_by_label("Name")).to_have_accessible_description(
        re.compile("At most 1000 characters once trimmed; this has 1200")
    )
    page.get_by_role("button", name="Save").click()
    assert "PATCH" not in sent
