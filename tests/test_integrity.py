"""The oracle: `modelshelf check` finds each kind of disagreement it claims to find.

Every crash and fault test ends with "the check finds nothing", so a check that always finds
nothing would pass them all. Here a consistent library is corrupted in one way at a time and the
check must name exactly that problem; the command's exit codes are part of its interface.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelshelf.cli import EXIT_FAILED, EXIT_NO_LIBRARY, EXIT_OK
from modelshelf.errors import NotFound
from modelshelf.integrity import check_library
from modelshelf.renditions import qualities
from modelshelf.storage.dirlock import DirectoryLock
from tests.conftest import Client, Prepared, migrate, read_only_file
from tests.factories import (
    LegacyLibrary,
    fake_sha,
    make_image,
    service_environ,
    snapshot,
)

A, B, UNLISTED = fake_sha(1), fake_sha(2), fake_sha(3)
PENDING_WITH_IMAGE, PENDING_WITHOUT_IMAGE = 11, 12
QUALITIES = qualities()


async def build_consistent(client: Client, legacy: LegacyLibrary) -> None:
    """Model A with images 0..2, model B with image 0, pending 11 with its original and
    pending 12 without one."""
    a_images = [legacy.image(f"a{i}.png", width=40 + i, height=30) for i in range(3)]
    legacy.add_model(1, hash_hex=A, images=a_images, tags=[legacy.add_tag(5, "anime")])
    legacy.add_model(2, hash_hex=B, images=[legacy.image("b0.png")])
    legacy.add_model(PENDING_WITH_IMAGE, images=[legacy.image("p.png")])
    legacy.add_model(PENDING_WITHOUT_IMAGE)
    await migrate(client, legacy)


@pytest.fixture
async def library(prepared: Prepared, data_dir: Path) -> Path:
    """A consistent library at rest (the service stopped); returns its data directory."""
    client = await prepared("consistent", build_consistent)
    await client.close()
    return data_dir


def rendition(data_dir: Path, sha256: str, seq: int, quality: str) -> Path:
    return data_dir / "images" / f"{sha256}_{seq}_{quality}.webp"


def execute(data_dir: Path, sql: str, *params: object) -> int:
    """Run one statement with foreign keys off (as a careless tool would); returns the rowid."""
    with sqlite3.connect(data_dir / "modelshelf.db") as conn:
        conn.execute("PRAGMA foreign_keys=OFF")
        return int(conn.execute(sql, params).lastrowid or 0)


# --- one corruption at a time: (what is done, the problems the check must report) ----------


def no_renditions_of_a_listed_image(d: Path) -> list[str]:
    for q in QUALITIES:
        rendition(d, A, 1, q).unlink()
    return [f"image {A}_1 is listed but none of its renditions is on disk"]


def one_rendition_missing(d: Path) -> list[str]:
    rendition(d, A, 2, QUALITIES[1]).unlink()
    return [f"image {A}_2 is listed but lacks {QUALITIES[1]}"]


def two_renditions_missing(d: Path) -> list[str]:
    for q in QUALITIES[1:]:
        rendition(d, B, 0, q).unlink()
    return [f"image {B}_0 is listed but lacks {', '.join(QUALITIES[1:])}"]


def orphan_renditions(d: Path) -> list[str]:
    for q in QUALITIES:
        shutil.copyfile(rendition(d, A, 0, q), rendition(d, A, 7, q))
    return [f"image {A}_7 is on disk but not listed (orphan)"]


def orphan_of_an_unknown_model(d: Path) -> list[str]:
    shutil.copyfile(rendition(d, A, 0, QUALITIES[0]), rendition(d, UNLISTED, 0, QUALITIES[0]))
    return [f"image {UNLISTED}_0 is on disk but not listed (orphan)"]


def seq_gap(d: Path) -> list[str]:
    execute(d, "DELETE FROM images WHERE model_hash = ? AND seq = 1", A)
    for q in QUALITIES:
        rendition(d, A, 1, q).unlink()
    return [f"model {A} has image seqs [0, 2], not 0..1"]


def seqs_not_starting_at_zero(d: Path) -> list[str]:
    execute(d, "UPDATE images SET seq = 3 WHERE model_hash = ?", B)
    for q in QUALITIES:
        rendition(d, B, 0, q).rename(rendition(d, B, 3, q))
    return [f"model {B} has image seqs [3], not 0..0"]


def index_row_for_an_unknown_model(d: Path) -> list[str]:
    execute(d, "INSERT INTO images(model_hash, seq) VALUES (?, 0)", UNLISTED)
    for q in QUALITIES:
        shutil.copyfile(rendition(d, B, 0, q), rendition(d, UNLISTED, 0, q))
    return [f"image index row {UNLISTED}_0 for unknown model"]


def model_hash_not_hex(d: Path) -> list[str]:
    execute(d, "INSERT INTO models(sha256, path, type) VALUES ('ABC', '/m', 'lora')")
    return ["model hash 'ABC' is not 64 lowercase hex"]


def broken_foreign_key(d: Path) -> list[str]:
    rowid = execute(d, "INSERT INTO model_tags(model_hash, tag_id) VALUES (?, 999)", B)
    return [f"foreign key broken: ('model_tags', {rowid}, 'tags', 0)"]


def pending_image_recorded_but_missing(d: Path) -> list[str]:
    (d / "images" / "pending" / f"{PENDING_WITH_IMAGE}.png").unlink()
    return [f"pending image {PENDING_WITH_IMAGE}.png is recorded but missing"]


def pending_image_on_disk_but_not_recorded(d: Path) -> list[str]:
    make_image(d / "images" / "pending" / f"{PENDING_WITHOUT_IMAGE}.jpg")
    return [f"pending image {PENDING_WITHOUT_IMAGE}.jpg is on disk but not recorded"]


def pending_image_under_another_extension(d: Path) -> list[str]:
    pending = d / "images" / "pending"
    (pending / f"{PENDING_WITH_IMAGE}.png").rename(pending / f"{PENDING_WITH_IMAGE}.webp")
    return [
        f"pending image {PENDING_WITH_IMAGE}.png is recorded but missing",
        f"pending image {PENDING_WITH_IMAGE}.webp is on disk but not recorded",
    ]


def unfinished_journal_entry(d: Path) -> list[str]:
    entry = execute(d, "INSERT INTO file_journal(created_at, ops) VALUES (1, '[]')")
    return [f"unfinished file journal entry {entry} (the next start carries it out)"]


def set_aside_journal_entry(d: Path) -> list[str]:
    entry = execute(
        d,
        "INSERT INTO file_journal(created_at, ops, set_aside_at, problem)"
        " VALUES (1, '[]', 2, 'FileOpError: a reason')",
    )
    return [f"file journal entry {entry} was set aside: FileOpError: a reason"]


def temporary_file_left_behind(d: Path) -> list[str]:
    (d / "images" / f".{A}_0_high.webp.tmp").write_bytes(b"half")
    return [f"temporary file left behind: .{A}_0_high.webp.tmp"]


def staging_not_empty(d: Path) -> list[str]:
    (d / "images" / ".staging" / "0123abcd").mkdir(parents=True)
    return ["staging not empty: 0123abcd"]


def images_folder_gone(d: Path) -> list[str]:
    shutil.rmtree(d / "images")
    listed = [f"image {A}_{s} is listed but none of its renditions is on disk" for s in range(3)]
    listed.append(f"image {B}_0 is listed but none of its renditions is on disk")
    return [*listed, f"pending image {PENDING_WITH_IMAGE}.png is recorded but missing"]


def two_problems_at_once(d: Path) -> list[str]:
    return staging_not_empty(d) + one_rendition_missing(d)


CORRUPTIONS: list[Callable[[Path], list[str]]] = [
    no_renditions_of_a_listed_image,
    one_rendition_missing,
    two_renditions_missing,
    orphan_renditions,
    orphan_of_an_unknown_model,
    seq_gap,
    seqs_not_starting_at_zero,
    index_row_for_an_unknown_model,
    model_hash_not_hex,
    broken_foreign_key,
    pending_image_recorded_but_missing,
    pending_image_on_disk_but_not_recorded,
    pending_image_under_another_extension,
    unfinished_journal_entry,
    set_aside_journal_entry,
    temporary_file_left_behind,
    staging_not_empty,
    images_folder_gone,
    two_problems_at_once,
]


def test_the_consistent_library_has_what_the_corruptions_break(library: Path) -> None:
    """The starting point is what the corruptions assume, and the check finds it clean."""
    assert sorted(p.name for p in (library / "images").glob("*.webp")) == sorted(
        f"{h}_{s}_{q}.webp" for h, n in ((A, 3), (B, 1)) for s in range(n) for q in QUALITIES
    )
    assert sorted(p.name for p in (library / "images" / "pending").iterdir()) == ["11.png"]
    assert check_library(library) == []


@pytest.mark.parametrize("corrupt", CORRUPTIONS, ids=lambda f: f.__name__)
def test_the_check_reports_exactly_the_corruption(
    library: Path, corrupt: Callable[[Path], list[str]]
) -> None:
    expected = corrupt(library)
    assert sorted(check_library(library)) == sorted(expected)


def test_the_check_changes_nothing(library: Path) -> None:
    expected = seq_gap(library) + temporary_file_left_behind(library)
    before = snapshot(library)
    assert sorted(check_library(library)) == sorted(expected)
    assert snapshot(library) == before


@pytest.mark.parametrize("where", ["missing", "empty", "a file"])
def test_a_data_dir_without_a_library_is_not_found_and_is_left_alone(
    tmp_path: Path, where: str
) -> None:
    data_dir = tmp_path / "nowhere"
    if where == "empty":
        data_dir.mkdir()
    elif where == "a file":
        data_dir.write_text("not a folder")
    with pytest.raises(NotFound) as caught:
        check_library(data_dir)
    assert str(data_dir) in caught.value.detail
    assert "no modelshelf library" in caught.value.detail
    assert sorted(p.name for p in tmp_path.iterdir()) == ([] if where == "missing" else ["nowhere"])


# --- the command ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def run_check(data_dir: Path) -> Run:
    """`python -m modelshelf check --data-dir ...` as a separate process."""
    result = subprocess.run(
        [sys.executable, "-m", "modelshelf", "check", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=service_environ(),
        timeout=60,
        check=False,
    )
    return Run(result.returncode, result.stdout, result.stderr)


def test_check_command_on_a_consistent_library_exits_0_and_prints_no_problem(
    library: Path,
) -> None:
    run = run_check(library)
    assert (run.code, run.out) == (EXIT_OK, ""), run.err
    assert f"0 problem(s) in {library}" in run.err


def test_check_command_beside_a_running_service_says_what_that_means(library: Path) -> None:
    service = DirectoryLock(library)  # what a running service holds
    service.acquire()
    try:
        run = run_check(library)
    finally:
        service.release()
    assert (run.code, run.out) == (EXIT_OK, ""), run.err
    assert f"a service is running on {library}" in run.err


def test_check_command_prints_each_problem_and_exits_1(library: Path) -> None:
    expected = seq_gap(library) + unfinished_journal_entry(library)
    run = run_check(library)
    assert run.code == EXIT_FAILED, run.err
    assert sorted(run.out.splitlines()) == sorted(expected)
    assert f"2 problem(s) in {library}" in run.err


@pytest.mark.parametrize("make", [False, True], ids=["missing", "empty"])
def test_check_command_without_a_library_says_so_with_its_own_exit_code(
    tmp_path: Path, make: bool
) -> None:
    data_dir = tmp_path / "typo"
    if make:
        data_dir.mkdir()
    run = run_check(data_dir)
    assert run.code == EXIT_NO_LIBRARY
    assert run.out == ""
    assert run.err.strip() == (
        f"modelshelf: {data_dir} holds no modelshelf library (no modelshelf.db)"
    )
    assert not (data_dir / "modelshelf.db").exists()


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"garbage, not an SQLite file " * 100, "is not a modelshelf library: file is not a"),
        (None, "is not a modelshelf library: it has no models table"),
    ],
    ids=["not-sqlite", "another-database"],
)
def test_check_command_on_a_database_that_is_not_a_library_exits_3(
    tmp_path: Path, content: bytes | None, says: str
) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    database = data_dir / "modelshelf.db"
    if content is None:
        with contextlib.closing(sqlite3.connect(database)) as conn:
            conn.execute("CREATE TABLE notes (text TEXT)")
    else:
        database.write_bytes(content)
    run = run_check(data_dir)
    assert run.code == EXIT_NO_LIBRARY, run.err
    assert says in run.err and "Traceback" not in run.err


def test_check_command_reads_a_library_in_a_folder_it_cannot_write(library: Path) -> None:
    # SQLite cannot make a WAL database's -shm file there; the library was closed cleanly.
    assert not (library / "modelshelf.db-wal").exists()
    with read_only_file(library):
        run = run_check(library)
    assert (run.code, run.out) == (EXIT_OK, ""), run.err
    assert f"0 problem(s) in {library}" in run.err
