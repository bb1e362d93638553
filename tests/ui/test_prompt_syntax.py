"""The model page says how a prompt names a LoRA or an embedding (A1111's `<lora:name:weight>`,
ComfyUI's `embedding:name`) and copies it; a checkpoint, which no prompt names, shows none."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.ui.conftest import Visit, open_model
from tests.ui.seed import SeededLibrary


def prompt_row(page: Any) -> Any:
    return page.locator(".facts dt", has_text="In a prompt")


@pytest.mark.parametrize(
    ("name", "number", "syntax"),
    [
        ("Aurora Lineart XL", 1, "<lora:model_1:1>"),
        ("Cyberpunk Embedding v1", 3, "embedding:model_3"),
    ],
)
def test_a_lora_or_embedding_shows_its_prompt_syntax_to_copy(
    visit: Visit, library: SeededLibrary, name: str, number: int, syntax: str
) -> None:
    page = open_model(visit, library, name)
    assert page.get_by_text(syntax, exact=True).is_visible()
    visit.context.grant_permissions(["clipboard-read", "clipboard-write"])
    page.get_by_role("button", name="Copy prompt syntax").click()
    page.get_by_role("status").get_by_text("Prompt syntax copied").wait_for()
    assert page.evaluate("() => navigator.clipboard.readText()") == syntax


def test_a_checkpoint_has_no_prompt_syntax(visit: Visit, library: SeededLibrary) -> None:
    page = open_model(visit, library, "Watercolor Checkpoint v3")
    page.get_by_role("region", name="Details").wait_for()
    assert prompt_row(page).count() == 0


@pytest.mark.parametrize(
    ("meta", "path", "syntax"),
    [
        (
            {"a1111": {"preferred weight": 0.7}},
            "/m/loras/Detail Tweaker.safetensors",
            "<lora:Detail Tweaker:0.7>",
        ),
        (
            {"lora_manager": {"usage_tips": '{"strength": 0.85}'}},
            "C:\\ComfyUI\\loras\\x\\add.detail.pt",
            "<lora:add.detail:0.85>",
        ),
        (
            {"lora_manager": {"usage_tips": "not json"}, "a1111": {"preferred weight": 0}},
            "/m/a.safetensors",
            "<lora:a:1>",
        ),
    ],
)
def test_the_lora_weight_follows_what_the_sidecars_suggest(
    visit: Visit, library: SeededLibrary, meta: dict[str, Any], path: str, syntax: str
) -> None:
    def answer(route: Any) -> None:
        record = route.fetch().json()
        record["meta_json"] = {**record["meta_json"], **meta}
        record["path"] = path
        route.fulfill(json=record)

    visit.page.route(re.compile(r".*/api/models/[0-9a-f]{64}(\?.*)?$"), answer)
    page = open_model(visit, library, "Aurora Lineart XL")
    assert page.get_by_text(syntax, exact=True).is_visible()
