"""`modelshelf backup`: a copy of the library that is itself the library (its rows and its
image files as one moment left them), made while the service runs or not, again and again into
one folder, copying only what changed. A collector's library is worth backing up while it
serves: the README's way (stop the service, copy the folder) was the only one."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import sqlite3
import subprocess
import sys
import threading
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from modelshelf.backup import ATTEMPTS, BACKUP_MARK, back_up
from modelshelf.errors import Conflict, InvalidInput, NotFound, Unprocessable
from modelshelf.integrity import check_library
from modelshelf.storage.dirlock import LOCK_NAME, DirectoryLock
from modelshelf.storage.schema import MIGRATIONS
from tests.conftest import SLOW_TIMEOUT, Client, MakeClient, migrate, read_only_file
from tests.factories import (
    LegacyLibrary,
    environ_without_modelshelf,
    fake_sha,
    make_image,
    snapshot,
)
from tests.server import ServerProcess

MODELS = 3
# Per model two example images of three renditions each, and one pending model's original.
FILES = MODELS * 2 * 3 + 1


async def seed(client: Client, legacy: LegacyLibrary) -> None:
    """Stage 1 of MODELS hashed models with two images each and one pending model."""
    for n in range(1, MODELS + 1):
        names = [f"m{n}_{k}.png" for k in range(2)]
        for k, name in enumerate(names):
            make_image(legacy.images_dir / name, 64 + 8 * k, 48)
        legacy.add_model(n, hash_hex=fake_sha(n), images=names)
    make_image(legacy.images_dir / "pending.png")
    legacy.add_model(MODELS + 1, images=["pending.png"])
    await migrate(client, legacy)


def delete_first_image(server: ServerProcess, model: int) -> None:
    """A change that removes a file and renames the next: the worst for a copy made meanwhile."""
    request = urllib.request.Request(
        f"{server.url}/api/images/{fake_sha(model)}_0.webp", method="DELETE"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


@pytest.fixture
async def seeded(client: Client, legacy: LegacyLibrary, data_dir: Path) -> Path:
    """The data directory of the seeded library, with no service on it."""
    await seed(client, legacy)
    await client.close()
    return data_dir


@pytest.fixture
async def served(
    client: Client, legacy: LegacyLibrary, data_dir: Path, tmp_path: Path
) -> AsyncIterator[ServerProcess]:
    """The seeded library served by a process of its own: the backup runs beside it, as a
    person's would."""
    await seed(client, legacy)
    await client.close()
    # Started and stopped in a thread: the process takes a second or more to answer, and
    # this fixture's task must not hold the event loop meanwhile.
    server = ServerProcess(data_dir, tmp_path / "server.log")
    await asyncio.to_thread(server.start)
    try:
        yield server
    finally:
        await asyncio.to_thread(server.kill)


@pytest.mark.parametrize("copied_by", ["sendfile", "a buffer"])
async def test_a_backup_of_a_stopped_library_is_that_library(
    client: Client,
    legacy: LegacyLibrary,
    data_dir: Path,
    tmp_path: Path,
    copied_by: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if copied_by == "a buffer":  # as where the kernel cannot copy a file (macOS, Windows)
        monkeypatch.delattr(os, "sendfile")
    await seed(client, legacy)
    await client.close()
    report = await asyncio.to_thread(back_up, data_dir, tmp_path / "backup", bar=False)
    assert (report.attempts, report.problems) == (1, [])
    assert (report.files_copied, report.files_kept, report.files_removed) == (FILES, 0, 0)
    assert snapshot(tmp_path / "backup") == snapshot(data_dir)


async def test_a_second_backup_copies_only_what_changed(
    make_client: MakeClient, legacy: LegacyLibrary, data_dir: Path, tmp_path: Path
) -> None:
    client = await make_client()
    await seed(client, legacy)
    await client.close()
    await asyncio.to_thread(back_up, data_dir, tmp_path / "backup", bar=False)
    client = await make_client()
    response = await client.delete(f"/api/images/{fake_sha(1)}_0.webp")
    assert response.status == 200, await response.text()
    await client.close()

    report = await asyncio.to_thread(back_up, data_dir, tmp_path / "backup", bar=False)
    # Image 1 of model 1 became its image 0: three renditions copied, three removed.
    assert (report.files_copied, report.files_removed) == (3, 3)
    assert report.files_kept == FILES - 6
    assert report.problems == []
    assert snapshot(tmp_path / "backup") == snapshot(data_dir)


async def test_a_backup_leaves_the_hard_linked_snapshots_of_earlier_ones_as_they_were(
    make_client: MakeClient, legacy: LegacyLibrary, data_dir: Path, tmp_path: Path
) -> None:
    """`cp -al backup backup.monday` keeps a day's backup for the space of what changes: the
    next backup must replace a changed file, never write into the inode the snapshot shares."""
    client = await make_client()
    await seed(client, legacy)
    await client.close()
    backup, monday = tmp_path / "backup", tmp_path / "backup.monday"
    await asyncio.to_thread(back_up, data_dir, backup, bar=False)
    await asyncio.to_thread(subprocess.run, ["cp", "-al", str(backup), str(monday)], check=True)
    kept = snapshot(monday)
    client = await make_client()
    response = await client.delete(f"/api/images/{fake_sha(1)}_0.webp")
    assert response.status == 200, await response.text()
    await client.close()

    report = await asyncio.to_thread(back_up, data_dir, backup, bar=False)
    assert report.files_copied == 3
    assert snapshot(backup) == snapshot(data_dir)
    assert snapshot(monday) == kept


@pytest.mark.timeout(SLOW_TIMEOUT)
async def test_a_backup_while_the_service_changes_images_is_made_again(
    served: ServerProcess, data_dir: Path, tmp_path: Path
) -> None:
    def change_during_the_first(attempt: int) -> None:
        if attempt == 1:
            delete_first_image(served, 1)

    report = await asyncio.to_thread(
        back_up, data_dir, tmp_path / "backup", bar=False, copied=change_during_the_first
    )
    assert (report.attempts, report.problems) == (2, [])
    assert snapshot(tmp_path / "backup") == snapshot(data_dir)


@pytest.mark.timeout(SLOW_TIMEOUT)
async def test_a_backup_while_images_never_stop_changing_says_so_and_is_no_library(
    served: ServerProcess, data_dir: Path, tmp_path: Path
) -> None:
    def change_during_each(attempt: int) -> None:
        delete_first_image(served, 1 + attempt % MODELS)

    with pytest.raises(Conflict, match=f"changed during each of {ATTEMPTS} copies"):
        await asyncio.to_thread(
            back_up, data_dir, tmp_path / "backup", bar=False, copied=change_during_each
        )
    with pytest.raises(NotFound):
        check_library(tmp_path / "backup")


def upload_image(server: ServerProcess, model: int, image: bytes) -> None:
    boundary = "backup-test-boundary"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="sha256"\r\n\r\n'
            f"{fake_sha(model)}\r\n--{boundary}\r\n"
            'Content-Disposition: form-data; name="image"; filename="u.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + image
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        f"{server.url}/api/images/upload",
        data=body,
        method="POST",
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status in (200, 201)


@pytest.mark.timeout(SLOW_TIMEOUT)
async def test_every_backup_made_while_images_change_is_a_consistent_library(
    served: ServerProcess, data_dir: Path, tmp_path: Path
) -> None:
    """Backups one after another while another client adds and removes images without pause:
    each either is made and checks clean, or says the images kept changing; none is a library
    with missing, orphan or partial renditions (what a copy of files moved meanwhile holds)."""
    image = make_image(tmp_path / "upload.png", 96, 64).read_bytes()
    changing = threading.Event()

    def change_without_pause() -> None:
        changing.set()
        for n in range(60):
            model = 1 + n % MODELS
            if n % 2:
                delete_first_image(served, model)
            else:
                upload_image(served, model, image)

    changes = asyncio.create_task(asyncio.to_thread(change_without_pause))
    await asyncio.to_thread(changing.wait)
    while not changes.done():
        try:
            report = await asyncio.to_thread(back_up, data_dir, tmp_path / "backup", bar=False)
        except Conflict:
            continue
        assert report.problems == [], report
    await changes
    report = await asyncio.to_thread(back_up, data_dir, tmp_path / "backup", bar=False)
    assert (report.attempts, report.problems) == (1, [])
    assert snapshot(tmp_path / "backup") == snapshot(data_dir)


async def test_a_backup_while_a_change_waits_for_its_files_says_so_and_keeps_the_last_one(
    make_client: MakeClient, legacy: LegacyLibrary, data_dir: Path, tmp_path: Path
) -> None:
    """The images folder refused a committed change's files (full, read-only): until the
    service puts them in place, the library on disk is not as its rows say. Last night's
    backup in the same folder stays a library (a review found it removed)."""
    client = await make_client()
    await seed(client, legacy)
    backup = tmp_path / "backup"
    await asyncio.to_thread(back_up, data_dir, backup, bar=False)
    last_night = snapshot(backup)
    with read_only_file(data_dir / "images"):
        response = await client.delete(f"/api/images/{fake_sha(1)}_0.webp")
        assert response.status == 200, await response.text()
        with pytest.raises(Conflict, match="still not in place after"):
            await asyncio.to_thread(back_up, data_dir, backup, bar=False)
    await client.close()
    assert snapshot(backup) == last_night
    assert check_library(backup) == []
    assert not (backup / ".modelshelf.db.partial").exists()


@pytest.mark.parametrize(
    ("target", "refused"),
    [
        ("inside", InvalidInput),
        ("someone else's folder", InvalidInput),
        ("a file", InvalidInput),
    ],
)
async def test_a_backup_never_goes_where_it_would_harm(
    client: Client, data_dir: Path, tmp_path: Path, target: str, refused: type[Exception]
) -> None:
    await client.close()  # a library, empty
    folders = {
        "inside": data_dir / "backup",
        "someone else's folder": tmp_path / "photos",
        "a file": tmp_path / "notes.txt",
    }
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "cat.jpg").write_bytes(b"a photograph")
    (tmp_path / "notes.txt").write_text("notes")
    with pytest.raises(refused):
        await asyncio.to_thread(back_up, data_dir, folders[target], bar=False)
    assert (tmp_path / "photos" / "cat.jpg").read_bytes() == b"a photograph"
    assert (tmp_path / "notes.txt").read_text() == "notes"
    assert not (data_dir / "backup").exists()


async def test_a_backup_of_no_library_is_not_found(tmp_path: Path) -> None:
    (tmp_path / "typo").mkdir()
    with pytest.raises(NotFound, match="holds no modelshelf library"):
        await asyncio.to_thread(back_up, tmp_path / "typo", tmp_path / "backup", bar=False)
    assert not (tmp_path / "backup").exists()


@pytest.mark.timeout(SLOW_TIMEOUT)
async def test_the_backup_command_prints_its_report_and_the_copy_checks_clean(
    client: Client, legacy: LegacyLibrary, data_dir: Path, tmp_path: Path
) -> None:
    await seed(client, legacy)
    await client.close()
    backup = tmp_path / "backup"

    def modelshelf(*args: str) -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "modelshelf", *args]
        env = environ_without_modelshelf()
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    made = await asyncio.to_thread(
        modelshelf, "backup", "--data-dir", str(data_dir), str(backup), "--no-progress"
    )
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout) == {
        "target": str(backup),
        "attempts": 1,
        "files_copied": FILES,
        "files_kept": 0,
        "files_removed": 0,
        "bytes_copied": sum(
            p.stat().st_size for p in (data_dir / "images").rglob("*") if p.is_file()
        ),
        "problems": [],
    }
    checked = await asyncio.to_thread(modelshelf, "check", "--data-dir", str(backup))
    assert checked.returncode == 0, checked.stdout + checked.stderr


# The command line with SIGTERM sent to itself once the first attempt's files are copied: the
# moment a `docker stop` or `kill` meets most backups.
TERMINATED = """
import signal, sys
import modelshelf.cli as cli
real = cli.back_up
def terminated(*args, **kwargs):
    return real(*args, copied=lambda attempt: signal.raise_signal(signal.SIGTERM), **kwargs)
cli.back_up = terminated
sys.exit(cli.main(sys.argv[1:]))
"""


@pytest.mark.timeout(SLOW_TIMEOUT)
async def test_sigterm_stops_a_backup_as_ctrl_c_does_and_running_it_again_finishes_it(
    seeded: Path, tmp_path: Path
) -> None:
    backup = tmp_path / "backup"
    args = ["backup", "--data-dir", str(seeded), str(backup), "--no-progress"]

    def run(*prefix: str) -> subprocess.CompletedProcess[str]:
        env = environ_without_modelshelf()
        command = [sys.executable, *prefix, *args]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)

    stopped = await asyncio.to_thread(run, "-c", TERMINATED)
    assert stopped.returncode == 130, stopped.stderr
    assert "interrupted; run it again" in stopped.stderr
    assert "Traceback" not in stopped.stderr
    assert not (backup / "modelshelf.db").exists()  # never taken for a library

    again = await asyncio.to_thread(run, "-m", "modelshelf")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["files_kept"] == FILES
    assert check_library(backup) == []


async def test_a_backup_into_a_folder_another_backup_or_a_service_holds_is_refused(
    seeded: Path, tmp_path: Path
) -> None:
    backup = tmp_path / "backup"
    backup.mkdir()
    holder = DirectoryLock(backup)  # as the other backup, or `serve --data-dir backup`, holds it
    holder.acquire()
    (backup / BACKUP_MARK).touch()  # the other backup's mark
    try:
        with pytest.raises(Conflict, match="in use: another backup into it is running"):
            await asyncio.to_thread(back_up, seeded, backup, bar=False)
    finally:
        holder.release()
    assert sorted(p.name for p in backup.iterdir()) == [BACKUP_MARK, LOCK_NAME]

    await asyncio.to_thread(back_up, seeded, backup, bar=False)
    assert check_library(backup) == []


async def test_a_folder_holding_only_a_lock_file_is_taken_as_empty(
    seeded: Path, tmp_path: Path
) -> None:
    """What a backup stopped between taking the folder's lock and marking it leaves."""
    backup = tmp_path / "backup"
    backup.mkdir()
    (backup / LOCK_NAME).touch()
    report = await asyncio.to_thread(back_up, seeded, backup, bar=False)
    assert (report.files_copied, report.problems) == (FILES, [])


@pytest.mark.timeout(SLOW_TIMEOUT)
async def test_a_full_disk_for_the_database_copy_is_said_and_keeps_the_last_backup(
    seeded: Path, tmp_path: Path
) -> None:
    """A write past RLIMIT_FSIZE fails with EFBIG, as on a full disk; SQLite's backup met it
    with an OperationalError nothing caught (a traceback; found by a review)."""
    backup = tmp_path / "backup"
    await asyncio.to_thread(back_up, seeded, backup, bar=False)
    last_night = snapshot(backup)
    limit = (seeded / "modelshelf.db").stat().st_size // 2

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    command = [sys.executable, "-m", "modelshelf", "backup", "--data-dir", str(seeded)]
    made = await asyncio.to_thread(
        subprocess.run,
        [*command, str(backup), "--no-progress"],
        env=environ_without_modelshelf(),
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=limited,
    )
    assert made.returncode == 1, made.stderr
    assert "no backup was made" in made.stderr and "could not be copied" in made.stderr
    assert "Traceback" not in made.stderr
    assert snapshot(backup) == last_night
    assert check_library(backup) == []


async def test_every_pending_original_on_disk_is_copied(seeded: Path, tmp_path: Path) -> None:
    """An original beside another file of its id (4.png and a 4.jpg put there by hand): the
    copy held only one of the two, maybe not the one the database records (a review)."""
    pending = seeded / "images" / "pending"
    (recorded,) = [p for p in pending.iterdir() if p.is_file()]
    stray = recorded.with_suffix(".jpg" if recorded.suffix != ".jpg" else ".png")
    stray.write_bytes(recorded.read_bytes())
    await asyncio.to_thread(back_up, seeded, tmp_path / "backup", bar=False)
    copied = tmp_path / "backup" / "images" / "pending"
    assert sorted(p.name for p in copied.iterdir()) == sorted([recorded.name, stray.name])


@pytest.mark.parametrize("version", [2, len(MIGRATIONS) + 1], ids=["older", "newer"])
async def test_a_library_at_another_schema_is_refused_before_anything_is_written(
    tmp_path: Path, version: int
) -> None:
    """A library this version has not opened yet (or one a newer version migrated): its
    journal lacks what the marks read, and its copy could not be checked (a traceback before;
    found by a review)."""
    data_dir = tmp_path / "old"
    data_dir.mkdir()
    with contextlib.closing(sqlite3.connect(data_dir / "modelshelf.db")) as conn:
        conn.execute(
            "CREATE TABLE schema_migrations("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
        )
        for number, (name, script) in enumerate(MIGRATIONS[:2], start=1):
            conn.executescript(script)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?, 0)", (number, name))
        conn.execute("UPDATE schema_migrations SET version = ? WHERE version = 2", (version,))
        conn.commit()
    with pytest.raises(Unprocessable, match=f"its schema is version {version}"):
        await asyncio.to_thread(back_up, data_dir, tmp_path / "b", bar=False)
    assert not (tmp_path / "b").exists()


async def test_a_library_whose_lock_file_this_process_may_not_open_is_backed_up(
    seeded: Path, tmp_path: Path
) -> None:
    """A read-only snapshot of the data directory, or another user's: the backup only reads
    (it failed on opening the lock file; found by a review)."""
    lock_file = seeded / LOCK_NAME
    lock_file.touch()
    with read_only_file(lock_file):
        report = await asyncio.to_thread(back_up, seeded, tmp_path / "backup", bar=False)
    assert (report.files_copied, report.problems) == (FILES, [])
