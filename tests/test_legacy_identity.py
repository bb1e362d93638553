"""Stage 1 run again on the same legacy library after it was used a little longer in the old
manager. Its first rows tell a library apart (`library_fingerprint`); when a model was deleted
there, or a model file moved, the library is still known by the (id, created_at) of the rows
logged from it, and nothing comes in twice. Another library with the same ids made at other
times, or rows all made in one instant (as a script makes them), is not taken for it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from tests.conftest import Client, migrate
from tests.factories import LegacyLibrary, fake_sha


def pending_names(data_dir: Path) -> list[str]:
    with sqlite3.connect(data_dir / "modelshelf.db") as conn:
        return [r[0] for r in conn.execute("SELECT name FROM pending_import ORDER BY name")]


@pytest.fixture
def used_library(legacy: LegacyLibrary) -> LegacyLibrary:
    legacy.add_model(1, hash_hex=fake_sha(1), name="oldest")
    for i in range(2, 6):
        legacy.add_model(i, name=f"unhashed {i}", created_at=1_700_000_000_000 + i)
    return legacy


@pytest.mark.parametrize("change", ["first model deleted", "first model's file moved"])
async def test_the_same_library_used_longer_adds_nothing_twice(
    client: Client, used_library: LegacyLibrary, data_dir: Path, change: str
) -> None:
    await migrate(client, used_library)
    before = pending_names(data_dir)
    if change == "first model deleted":
        used_library.execute("DELETE FROM models WHERE id = 1")
    else:
        used_library.execute(
            "UPDATE models SET path = '/elsewhere/oldest.safetensors' WHERE id = 1"
        )
    again = await migrate(client, used_library)
    assert again["db_migration"]["pending_created"] == 0, again["problems"]
    assert pending_names(data_dir) == before


async def test_another_library_with_the_same_ids_made_at_other_times_is_not_taken_for_it(
    client: Client, used_library: LegacyLibrary, data_dir: Path
) -> None:
    await migrate(client, used_library)
    other = LegacyLibrary(data_dir / "legacy" / "other")
    for i in range(2, 6):
        other.add_model(i, name=f"other {i}", created_at=1_600_000_000_000 + i)

    report = await migrate(client, other)

    assert report["library"]["seen_before"] is False
    assert report["db_migration"]["pending_created"] == 4


async def test_rows_made_in_one_instant_do_not_tell_a_library(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    for i in range(1, 5):
        legacy.add_model(i, name=f"scripted {i}")  # one created_at for all
    await migrate(client, legacy)
    other = LegacyLibrary(data_dir / "legacy" / "other")
    for i in range(1, 5):
        other.add_model(i, name=f"scripted elsewhere {i}", path=f"/elsewhere/{i}.safetensors")

    report = await migrate(client, other)

    assert report["library"]["seen_before"] is False
    assert report["db_migration"]["pending_created"] == 4
