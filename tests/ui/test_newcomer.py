"""A newcomer's model page, in a real browser: the notes they wrote in A1111 or LoRA Manager are
shown, and the editor holds Name and Type to what the server takes, so Save is never refused
for a length the field let them type."""

from __future__ import annotations

from tests.ui.conftest import Visit, needs, open_model
from tests.ui.seed import SeededLibrary


def test_the_editor_takes_no_longer_a_name_or_type_than_the_server(
    visit: Visit, library: SeededLibrary, operations: set[str]
) -> None:
    needs(operations, "PATCH /api/models/{sha256}")
    page = open_model(visit, library, "Ink Embedding v3")
    page.get_by_role("button", name="Edit").click()
    page.get_by_label("Type").fill("x" * 150)
    page.get_by_label("Name").fill("n" * 1200)
    assert len(page.get_by_label("Type").input_value()) == 100
    assert len(page.get_by_label("Name").input_value()) == 1000
