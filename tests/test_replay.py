"""Start-up recovery in-process: committed changes cut off before or during their file work are
finished by the next start, replay is idempotent, a delete-and-shift over a missing rendition
never mixes two images, and an entry that cannot be carried out is set aside, not retried.

(The same promises in real processes killed at every step: test_crashpoints.py.)
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from modelshelf import crashpoints
from modelshelf.domain import gallery
from modelshelf.images import fill_renditions
from modelshelf.integrity import check_library
from modelshelf.recovery import fill_missing_renditions, recover
from modelshelf.renditions import qualities
from modelshelf.storage import fileops
from tests.conftest import Client, MakeClient, migrate, shelf_of
from tests.factories import LegacyLibrary, fake_sha, image_size, make_image, query, snapshot

MODEL = fake_sha(1)
HIGH, MEDIUM, LOW = qualities()


class Cut(Exception):
    """Raised by a hook: the process "dies" there, as far as this change is concerned."""


@contextmanager
def cut_at(point: str, hit: int = 1) -> Iterator[None]:
    """Make the `hit`-th arrival at `point` raise Cut, and expect it."""
    arrivals = 0

    def cut() -> None:
        nonlocal arrivals
        arrivals += 1
        if arrivals == hit:
            raise Cut(point)

    with crashpoints.hooked(point, cut), pytest.raises(Cut):
        yield


def widths(data_dir: Path) -> list[tuple[int, int | None, int | None]]:
    """(high, medium, low) widths of each listed image of MODEL, None where a file is missing."""
    found = []
    for (seq,) in query(
        data_dir, "SELECT seq FROM images WHERE model_hash = ? ORDER BY seq", MODEL
    ):
        sizes = []
        for quality in qualities():
            path = data_dir / "images" / f"{MODEL}_{seq}_{quality}.webp"
            sizes.append(image_size(path)[0] if path.exists() else None)
        found.append((sizes[0], sizes[1], sizes[2]))
    return found


def high_widths(data_dir: Path) -> list[int]:
    return [high for high, _, _ in widths(data_dir)]


@pytest.fixture
async def four_images(client: Client, legacy: LegacyLibrary) -> Client:
    """MODEL with images 60, 66, 72 and 78 pixels wide (seq 0..3)."""
    images = [legacy.image(f"g{i}.png", width=60 + 6 * i, height=30) for i in range(4)]
    legacy.add_model(1, hash_hex=MODEL, images=images)
    await migrate(client, legacy)
    return client


async def restart(client: Client, make_client: MakeClient) -> Client:
    await client.close()
    return await make_client()


def unfinished_entries(data_dir: Path) -> list[tuple[int, str]]:
    return query(data_dir, "SELECT id, ops FROM file_journal WHERE set_aside_at IS NULL")


# --- cut off after the commit -----------------------------------------------------------------


async def test_an_upload_cut_off_after_its_commit_is_finished_at_start(
    four_images: Client, make_client: MakeClient, data_dir: Path
) -> None:
    shelf = shelf_of(four_images)
    upload = await gallery.start_upload(shelf)
    make_image(upload.file.with_suffix(".png"), width=90, height=30)
    upload.file.with_suffix(".png").rename(upload.file)
    with cut_at("change.after_commit"):
        await gallery.add_image(shelf, MODEL, upload)
    assert len(unfinished_entries(data_dir)) == 1
    assert high_widths(data_dir)[:4] == [60, 66, 72, 78]  # the new row, its files not moved
    client = await restart(four_images, make_client)
    assert high_widths(data_dir) == [60, 66, 72, 78, 90]
    assert unfinished_entries(data_dir) == []
    await client.close()
    assert check_library(data_dir) == []


@pytest.mark.parametrize(
    ("point", "hit"),
    [
        ("change.after_commit", 1),  # nothing moved yet
        ("renumber.moved_aside", 1),  # one file aside, no marker
        ("renumber.moved_aside", 9),  # all aside, no marker
        ("renumber.moved_out", 1),  # marker written, nothing back
        ("renumber.moved_in", 1),  # one file under its new name
        ("renumber.moved_in", 5),  # most of them
    ],
)
async def test_a_delete_and_shift_cut_off_anywhere_is_finished_at_start(
    four_images: Client, make_client: MakeClient, data_dir: Path, point: str, hit: int
) -> None:
    zero, _, two, three = widths(data_dir)
    with cut_at(point, hit):
        await gallery.delete_image(shelf_of(four_images), MODEL, 1)
    client = await restart(four_images, make_client)
    assert widths(data_dir) == [zero, two, three]
    assert unfinished_entries(data_dir) == []
    await client.close()
    assert check_library(data_dir) == []


async def test_replaying_an_entry_already_carried_out_changes_nothing(
    four_images: Client, make_client: MakeClient, data_dir: Path
) -> None:
    """Cut off after its files were all moved and before its journal entry was forgotten: the
    start replays the whole entry (its staging folder, marker and all, still there), then a
    third run of it finds the folder gone; neither moves a thing."""
    zero, _, two, three = widths(data_dir)
    with cut_at("change.carried_out"):
        await gallery.delete_image(shelf_of(four_images), MODEL, 1)
    [(_, text)] = unfinished_entries(data_dir)
    ops = json.loads(text)
    assert (data_dir / ops[0]["folder"] / fileops.MOVED_OUT_MARKER).exists()
    carried_out = renditions(data_dir)
    client = await restart(four_images, make_client)
    await client.close()
    assert renditions(data_dir) == carried_out
    assert fileops.apply_file_ops(data_dir, ops) == []
    assert renditions(data_dir) == carried_out
    assert widths(data_dir) == [zero, two, three]
    assert unfinished_entries(data_dir) == []


def renditions(data_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((data_dir / "images").glob("*.webp"))}


# --- holes and what cannot be done ------------------------------------------------------------


async def test_a_delete_and_shift_over_a_missing_rendition_never_mixes_two_images(
    four_images: Client, make_client: MakeClient, data_dir: Path
) -> None:
    """Image 2's medium was deleted by hand; deleting image 1 moves image 2 to seq 1 without a
    medium (rendered again from its high at the next start), never with image 1's medium."""
    zero, _, two, three = widths(data_dir)
    (data_dir / "images" / f"{MODEL}_2_{MEDIUM}.webp").unlink()
    await gallery.delete_image(shelf_of(four_images), MODEL, 1)
    assert widths(data_dir) == [zero, (two[0], None, two[2]), three]
    assert check_library(data_dir) == [f"image {MODEL}_1 is listed but lacks {MEDIUM}"]
    client = await restart(four_images, make_client)
    await shelf_of(client).maintenance
    assert widths(data_dir) == [zero, two, three]
    await client.close()
    assert check_library(data_dir) == []


@pytest.mark.parametrize(
    "ops",
    [
        pytest.param("not json", id="not-json"),
        pytest.param('{"op": "move"}', id="not-a-list"),
        pytest.param('[{"op": "explode"}]', id="unknown-operation"),
        pytest.param('[{"op": "unlink", "path": "../outside"}]', id="leaves-the-data-dir"),
        pytest.param('[{"op": "unlink", "path": "/etc/hostname"}]', id="absolute"),
        pytest.param('[{"op": "move", "src": "images/a"}]', id="missing-field"),
    ],
)
async def test_an_entry_that_cannot_be_carried_out_is_set_aside_and_reported(
    four_images: Client,
    make_client: MakeClient,
    data_dir: Path,
    ops: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await four_images.close()
    with sqlite3.connect(data_dir / "modelshelf.db") as conn:
        entry = conn.execute(
            "INSERT INTO file_journal(created_at, ops) VALUES (1, ?)", (ops,)
        ).lastrowid
    (data_dir.parent / "outside").write_text("must stay")
    client = await make_client()  # starts despite it
    assert (await client.get("/api/health")).status == 200
    await client.close()
    [problem] = check_library(data_dir)
    assert problem.startswith(f"file journal entry {entry} was set aside: ")
    reason = problem.removeprefix(f"file journal entry {entry} was set aside: ")
    assert reason
    assert logged(caplog, "modelshelf.recovery", logging.ERROR) == [
        f"journal entry {entry} cannot be carried out ({reason}); set aside, see `modelshelf check`"
    ]
    assert (data_dir.parent / "outside").read_text() == "must stay"
    assert high_widths(data_dir) == [60, 66, 72, 78]
    client = await make_client()  # and is not retried at the next start
    await client.close()
    assert check_library(data_dir) == [problem]


async def test_an_entry_whose_file_is_gone_is_noted_and_forgotten(
    four_images: Client, make_client: MakeClient, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A move whose source vanished (and whose target was never made) is a note in the log,
    not a failed start; the journal entry is done with."""
    await four_images.close()
    op = {"op": "move", "src": "images/.staging/gone/high.webp", "dst": "images/x.webp"}
    with sqlite3.connect(data_dir / "modelshelf.db") as conn:
        conn.execute("INSERT INTO file_journal(created_at, ops) VALUES (1, ?)", (json.dumps([op]),))
    assert fileops.apply_file_ops(data_dir, [op]) == [
        "images/.staging/gone/high.webp is gone and images/x.webp was never made"
    ]
    client = await make_client()
    await client.close()
    assert unfinished_entries(data_dir) == []
    assert check_library(data_dir) == []
    [note] = logged(caplog, "modelshelf.recovery", logging.WARNING)
    assert note.endswith(
        ": images/.staging/gone/high.webp is gone and images/x.webp was never made"
    )


class SourceChangingExecutor(ThreadPoolExecutor):
    """A real pool that, as it is handed a rendering job, touches the rendition the job reads
    from: as if an upload or an override replaced that image while it was rendered."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if fn is fill_renditions:
            os.utime(args[0], ns=(1, 1))
        return super().submit(fn, *args, **kwargs)


async def test_a_missing_rendition_is_not_filled_from_a_source_that_changed_meanwhile(
    four_images: Client, data_dir: Path
) -> None:
    shelf = shelf_of(four_images)
    missing = data_dir / "images" / f"{MODEL}_0_{MEDIUM}.webp"
    missing.unlink()
    before = snapshot(data_dir)
    with SourceChangingExecutor(1) as cpu:
        done = await fill_missing_renditions(
            shelf.changes, shelf.folder, cpu, {(MODEL, 0): {HIGH, LOW}}
        )
    assert done == 0
    assert not missing.exists()
    after = snapshot(data_dir)
    source = f"images/{MODEL}_0_{HIGH}.webp"
    assert after["files"][source] == before["files"][source]  # touched, not rewritten
    assert after == before


def logged(caplog: pytest.LogCaptureFixture, logger: str, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == logger and r.levelno == level]


async def test_closing_a_gap_at_start_says_which_seqs_moved(
    four_images: Client, make_client: MakeClient, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    zero, one, _, three = widths(data_dir)
    await four_images.close()
    for quality in qualities():
        (data_dir / "images" / f"{MODEL}_2_{quality}.webp").unlink()
    client = await make_client()
    await client.close()
    assert widths(data_dir) == [zero, one, three]
    assert f"model {MODEL}: image seqs [0, 1, 3] renumbered 0..2" in logged(
        caplog, "modelshelf.recovery", logging.WARNING
    )


async def test_a_rendition_that_cannot_be_rendered_again_is_reported_and_left_missing(
    four_images: Client, make_client: MakeClient, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    await four_images.close()
    (data_dir / "images" / f"{MODEL}_1_{MEDIUM}.webp").unlink()
    (data_dir / "images" / f"{MODEL}_1_{HIGH}.webp").write_bytes(b"RIFF broken")
    client = await make_client()
    assert await shelf_of(client).maintenance == 0
    await client.close()
    [warning] = [m for m in logged(caplog, "modelshelf.recovery", logging.WARNING) if "_1:" in m]
    assert warning.startswith(f"image {MODEL}_1: cannot render ['{MEDIUM}']: ")
    assert f"{MODEL}_1_{HIGH}.webp could not be decoded" in warning, warning
    assert check_library(data_dir) == [f"image {MODEL}_1 is listed but lacks {MEDIUM}"]


async def test_the_recovery_report_counts_the_entries_set_aside(
    four_images: Client, data_dir: Path
) -> None:
    with sqlite3.connect(data_dir / "modelshelf.db") as conn:
        conn.executemany(
            "INSERT INTO file_journal(created_at, ops) VALUES (1, ?)", [("[1]",), ("nope",)]
        )
    shelf = shelf_of(four_images)
    report = await recover(shelf.changes, shelf.folder)
    assert (report.journal_set_aside, report.journal_replayed) == (2, 0)
