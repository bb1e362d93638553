"""Stage 1's progress: it moves as rows are brought in, not only when a batch of rows ends.

Rendering a row's images is what takes the time: a library of 200 rows (150 models with two
1-megapixel pictures each) took 93 s on two cores, its bar at 0/200 for all of it (one batch),
and an interrupted run threw all of that away."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from modelshelf.domain.legacy_import import BATCH_SIZE, IMAGES_PER_CHANGE, migrate_legacy
from modelshelf.progress import Progress
from tests.conftest import Client, shelf_of
from tests.factories import LegacyLibrary, fake_sha

MODELS = IMAGES_PER_CHANGE * 2 + 3  # fewer rows than a batch: one batch only
assert MODELS < BATCH_SIZE


def brought_in(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "modelshelf.db") as conn:
        return int(conn.execute("SELECT count(*) FROM legacy_import_log").fetchone()[0])


async def test_progress_counts_rows_as_they_are_written_within_a_batch(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    picture = legacy.image("pic.png", width=40, height=30)
    for i in range(1, MODELS + 1):
        hashed = fake_sha(i) if i % 3 else ""
        legacy.add_model(i, hash_hex=hashed, images=[picture])
    progress = Progress(None, "legacy import", bar=False)
    heard: list[tuple[int, int]] = []  # (rows the progress says are done, rows written)
    progress.listen(lambda: heard.append((progress.done, brought_in(data_dir))))

    with progress:
        report = await migrate_legacy(
            shelf_of(client), legacy.db_path, legacy.images_dir, progress=progress
        )

    assert report.db_migration["models_imported"] + report.db_migration["pending_created"] == MODELS
    steps = sorted({done for done, _written in heard if done > 0})
    assert steps[-1] == MODELS
    assert len(steps) >= 3, steps  # it moved before the end of the batch
    assert all(b - a <= IMAGES_PER_CHANGE for a, b in zip([0, *steps], steps, strict=False))
    # What it says is done is in the library: an interrupted run loses no row it counted.
    assert all(written >= done for done, written in heard), heard
