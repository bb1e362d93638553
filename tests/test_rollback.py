"""Rollback, proven where it matters: every writer, failing after it has written rows and before
its commit, leaves the whole store (every table, every file's bytes) as it was.

The failure is real SQLite: a trigger makes a later statement of the change fail (the journal
entry, written last; or a later row of a writer that moves no files). Tests that refuse bad input
raise before any write, so they cannot tell a ROLLBACK from a COMMIT; these can.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from modelshelf.domain import gallery
from modelshelf.domain.legacy_import import migrate_legacy
from modelshelf.domain.promotion import import_a_model
from modelshelf.domain.strategies import Strategy
from modelshelf.recovery import fill_missing_renditions, recover
from modelshelf.renditions import qualities
from tests.conftest import Client, migrate, shelf_of
from tests.factories import LegacyLibrary, Library, fake_sha, make_image, snapshot

FAILURE = "injected failure"
MODEL = fake_sha(1)


def fail_inserts_into(data_dir: Path, table: str, when: str = "1") -> None:
    """From now on, an INSERT into `table` for which `when` holds (NEW.<column> usable) fails,
    aborting that statement inside whatever transaction is open."""
    with sqlite3.connect(data_dir / "modelshelf.db") as conn:
        conn.execute(
            f"CREATE TRIGGER injected_failure BEFORE INSERT ON {table} WHEN {when}"
            f" BEGIN SELECT RAISE(ABORT, '{FAILURE}'); END"
        )


def model_with_images(legacy: LegacyLibrary, count: int) -> None:
    images = [legacy.image(f"g{i}.png", width=40 + 4 * i, height=30) for i in range(count)]
    legacy.add_model(1, hash_hex=MODEL, images=images)


# --- stage 2 ----------------------------------------------------------------------------------


@pytest.fixture
async def promotion(client: Client, lib: Library) -> Client:
    """Pending 1 (new content); model 3 and pending 2 share content. Digests already cached,
    so that an import writes nothing but its own change."""
    lib.tag(1, "anime")
    lib.tag(2, "lora")
    lib.model(1, content=1, tags=[1])
    lib.model(3, content=3, hashed=True, tags=[1], extra={"description": "old"})
    lib.model(2, content=3, tags=[2], image=(90, 60), extra={"description": "new", "x": 1})
    await migrate(client, lib.legacy)
    shelf = shelf_of(client)
    for legacy_id in (1, 2):
        await shelf.hasher.digest(lib.models_dir / f"m{legacy_id}.safetensors")
    return client


@pytest.mark.parametrize(
    ("pending_id", "strategy"),
    [(1, None), (2, Strategy.OVERRIDE), (2, Strategy.MERGE), (2, Strategy.DELETE)],
    ids=["import", "override", "merge", "delete"],
)
async def test_an_import_failing_before_its_commit_changes_nothing(
    promotion: Client, data_dir: Path, pending_id: int, strategy: Strategy | None
) -> None:
    shelf = shelf_of(promotion)
    fail_inserts_into(data_dir, "file_journal")
    before = snapshot(data_dir)
    with pytest.raises(sqlite3.IntegrityError, match=FAILURE):
        await import_a_model(shelf, pending_id, strategy)
    assert snapshot(data_dir) == before
    assert (len(shelf.model_locks), len(shelf.pending_locks)) == (0, 0)


# --- example images ---------------------------------------------------------------------------


async def test_an_upload_failing_before_its_commit_changes_nothing(
    client: Client, legacy: LegacyLibrary, data_dir: Path, tmp_path: Path
) -> None:
    model_with_images(legacy, 2)
    await migrate(client, legacy)
    shelf = shelf_of(client)
    fail_inserts_into(data_dir, "file_journal")
    before = snapshot(data_dir)
    upload = await gallery.start_upload(shelf)
    make_image(tmp_path / "new.png", width=70, height=30)
    shutil.copyfile(tmp_path / "new.png", upload.file)
    with pytest.raises(sqlite3.IntegrityError, match=FAILURE):
        await gallery.add_image(shelf, MODEL, upload)
    assert snapshot(data_dir) == before


async def test_a_delete_and_shift_failing_before_its_commit_changes_nothing(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    model_with_images(legacy, 4)
    await migrate(client, legacy)
    fail_inserts_into(data_dir, "file_journal")
    before = snapshot(data_dir)
    with pytest.raises(sqlite3.IntegrityError, match=FAILURE):
        await gallery.delete_image(shelf_of(client), MODEL, 1)
    assert snapshot(data_dir) == before


# --- stage 1 ----------------------------------------------------------------------------------


async def test_stage_one_failing_in_its_preparation_changes_nothing(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    # The tags are written first, then the library is registered in the same change.
    legacy.add_tag(1, "first")
    legacy.add_tag(2, "second")
    model_with_images(legacy, 1)
    fail_inserts_into(data_dir, "legacy_libraries")
    before = snapshot(data_dir)
    with pytest.raises(sqlite3.IntegrityError, match=FAILURE):
        await migrate_legacy(shelf_of(client), legacy.db_path, legacy.images_dir)
    assert snapshot(data_dir) == before


async def test_stage_one_failing_in_a_batch_changes_nothing(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    model_with_images(legacy, 2)
    legacy.add_model(2, images=[legacy.image("pending.png")])
    legacy.add_model(3)
    fail_inserts_into(data_dir, "file_journal")
    # The preparation before the first batch (registering the library, its tags: none here)
    # is a change of its own that a re-run finds: it stays.
    before = snapshot(data_dir, ignore=("legacy_libraries",))
    with pytest.raises(sqlite3.IntegrityError, match=FAILURE):
        await migrate_legacy(shelf_of(client), legacy.db_path, legacy.images_dir)
    assert snapshot(data_dir, ignore=("legacy_libraries",)) == before


# --- the digest cache -------------------------------------------------------------------------


async def test_a_digest_failing_to_be_cached_changes_nothing(
    client: Client, models_dir: Path, data_dir: Path
) -> None:
    path = models_dir / "m.bin"
    path.write_bytes(b"model" * 1000)
    fail_inserts_into(data_dir, "hash_cache")
    before = snapshot(data_dir)
    with pytest.raises(sqlite3.IntegrityError, match=FAILURE):
        await shelf_of(client).hasher.digest(path)
    assert snapshot(data_dir) == before


# --- start-up repair --------------------------------------------------------------------------


async def test_closing_a_seq_gap_failing_before_its_commit_changes_nothing(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    model_with_images(legacy, 3)
    await migrate(client, legacy)
    with sqlite3.connect(data_dir / "modelshelf.db") as conn:  # a gap in index and folder alike
        conn.execute("DELETE FROM images WHERE model_hash = ? AND seq = 1", (MODEL,))
    for quality in qualities():
        (data_dir / "images" / f"{MODEL}_1_{quality}.webp").unlink()
    fail_inserts_into(data_dir, "file_journal")
    before = snapshot(data_dir)
    shelf = shelf_of(client)
    with pytest.raises(sqlite3.IntegrityError, match=FAILURE):
        await recover(shelf.changes, shelf.folder)
    assert snapshot(data_dir) == before


async def test_rendering_a_missing_rendition_failing_before_its_commit_changes_nothing(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    model_with_images(legacy, 1)
    await migrate(client, legacy)
    high, medium, low = qualities()
    (data_dir / "images" / f"{MODEL}_0_{medium}.webp").unlink()
    fail_inserts_into(data_dir, "file_journal")
    before = snapshot(data_dir)
    shelf = shelf_of(client)
    with pytest.raises(sqlite3.IntegrityError, match=FAILURE):
        await fill_missing_renditions(
            shelf.changes, shelf.folder, shelf.executors.cpu, {(MODEL, 0): {high, low}}
        )
    assert snapshot(data_dir) == before
