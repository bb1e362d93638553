"""Conflict strategies are one table of rules: every strategy has its row, and a new strategy
is a new combination of rules that promotion applies without knowing its name."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelshelf.domain.promotion import promote
from modelshelf.domain.strategies import (
    FieldRule,
    ImageRule,
    MetaRule,
    Resolution,
    Strategy,
    TagRule,
    actions_taken,
    resolution,
)
from tests.conftest import Client, migrate, shelf_of
from tests.factories import LegacyLibrary, make_model_file


def test_every_strategy_has_a_row_with_its_own_action() -> None:
    rows = {s: resolution(s) for s in Strategy}
    assert {s: r.action_taken for s, r in rows.items()} == {
        Strategy.OVERRIDE: "overridden",
        Strategy.MERGE: "merged",
        Strategy.DELETE: "deleted",
    }
    assert actions_taken() == ["imported", "overridden", "merged", "deleted"]


@pytest.mark.parametrize(
    ("strategy", "changes_record"),
    [(Strategy.OVERRIDE, True), (Strategy.MERGE, True), (Strategy.DELETE, False)],
)
def test_history_is_kept_exactly_when_a_strategy_changes_the_record(
    strategy: Strategy, changes_record: bool
) -> None:
    assert resolution(strategy).changes_record is changes_record


async def seed_conflict(legacy: LegacyLibrary, models_dir: Path) -> str:
    """Model 1 in the library and pending model 2 with the same content."""
    legacy.add_tag(1, "old")
    legacy.add_tag(2, "new")
    path, copy = models_dir / "same.safetensors", models_dir / "copy.safetensors"
    sha = make_model_file(path, seed=7)
    assert make_model_file(copy, seed=7) == sha
    legacy.add_model(
        1,
        hash_hex=sha,
        path=str(path),
        name="kept name",
        extra={"description": "old", "notes": {"a": 1}},
        tags=[1],
        images=[legacy.image("model_1_1_a.png", width=40, height=30)],
    )
    legacy.add_model(
        2,
        path=str(copy),
        name="pending name",
        extra={"description": "new", "notes": {"b": 2}, "extra": True},
        tags=[2],
        images=[legacy.image("model_2_1_b.png", width=50, height=30)],
    )
    return sha


async def test_a_made_up_fourth_strategy_runs_from_the_table_alone(
    client: Client, legacy: LegacyLibrary, models_dir: Path
) -> None:
    sha = await seed_conflict(legacy, models_dir)
    await migrate(client, legacy)
    # "adopt": take the pending fields, merge metadata, keep the tags, add the image.
    adopt = Resolution(
        "adopt", "adopted", FieldRule.TAKE_PENDING, MetaRule.MERGE, TagRule.KEEP, ImageRule.APPEND
    )
    outcome = await promote(shelf_of(client), 2, adopt)
    assert (outcome.sha256, outcome.action_taken) == (sha, "adopted")
    model = await (await client.get(f"/api/models/{sha}")).json()
    assert model["name"] == "pending name"
    assert model["meta_json"] == {"description": "old", "notes": {"a": 1, "b": 2}, "extra": True}
    assert [t["name"] for t in model["tags"]] == ["old"]
    assert model["images"] == [f"{sha}_0.webp", f"{sha}_1.webp"]
    pending = await (await client.get("/api/migration/pending_models")).json()
    assert pending == {"models": []}


async def test_a_strategy_that_changes_nothing_keeps_no_history_and_discards_the_image(
    client: Client, legacy: LegacyLibrary, models_dir: Path, data_dir: Path
) -> None:
    sha = await seed_conflict(legacy, models_dir)
    await migrate(client, legacy)
    before = await (await client.get(f"/api/models/{sha}")).json()
    keep = Resolution(
        "keep", "kept", FieldRule.KEEP, MetaRule.KEEP, TagRule.KEEP, ImageRule.DISCARD
    )
    assert (await promote(shelf_of(client), 2, keep)).action_taken == "kept"
    assert await (await client.get(f"/api/models/{sha}")).json() == before
    assert not list((data_dir / "images" / "pending").iterdir())
