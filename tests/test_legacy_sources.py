"""Stage 1 and the legacy file around it: another program writing it, a read-only folder,
a full disk, a second library whose ids overlap the first, a log written before libraries were
told apart. Every way out leaves staging as it was; every row's fate is in the report."""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pyvips

from modelshelf.executors import Executors
from modelshelf.integrity import check_library
from modelshelf.storage import models, schema
from tests.conftest import Client, MakeClient, migrate, shelf_of
from tests.factories import LegacyLibrary, fake_sha, make_model_file
from tests.servable import assert_everything_served, assert_rows_accounted_for, staging_entries
from tests.server import HeldLock
from tests.test_faults import mounted
from tests.test_legacy_hostile import post_migrate, snapshot

H1, H2 = fake_sha(1), fake_sha(2)


def seed_small(legacy: LegacyLibrary, count: int = 3) -> None:
    for i in range(1, count + 1):
        legacy.add_model(i, hash_hex=fake_sha(50 + i) if i % 2 else "")


# --- another program writing the legacy file --------------------------------------------------


async def test_a_legacy_file_locked_by_a_writer_is_423_and_nothing_is_read_half(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    seed_small(legacy)
    before = snapshot(data_dir)
    with HeldLock(legacy.db_path):  # rollback-journal mode: the writer's lock keeps readers out
        started = time.monotonic()
        status, body = await post_migrate(client, legacy.db_path, legacy.images_dir)
        elapsed = time.monotonic() - started
    assert status == 423, body
    assert body["error"] == "Locked"
    assert "the legacy database hikaze.db is busy" in body["detail"]
    assert elapsed < 8
    assert snapshot(data_dir) == before
    assert staging_entries(data_dir) == []
    report = await migrate(client, legacy)  # the writer is gone: it goes through
    assert report["db_migration"]["legacy_models"] == 3


async def test_a_wal_legacy_file_is_read_from_its_last_commit_while_a_writer_works(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    with legacy.connect() as conn:
        conn.execute("PRAGMA journal_mode=WAL")
    seed_small(legacy)
    statement = "BEGIN IMMEDIATE"
    with HeldLock(legacy.db_path, statement):
        report = await migrate(client, legacy)
    assert report["db_migration"]["legacy_models"] == 3
    assert_rows_accounted_for(report)


# --- staging is left as it was found -----------------------------------------------------------


def wal_library(root: Path) -> LegacyLibrary:
    """A WAL-mode library whose last rows are only in its -wal file."""
    legacy = LegacyLibrary(root)
    writer = legacy.connect()
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.commit()
    legacy.add_model(1, hash_hex=H1)
    legacy.add_model(2, hash_hex="")
    copy = root.parent / (root.name + "-copy")
    copy.mkdir()
    for suffix in ("", "-wal"):  # copied while the writer is open: rows only in the -wal
        shutil.copyfile(f"{legacy.db_path}{suffix}", copy / f"hikaze.db{suffix}")
    writer.close()
    shutil.rmtree(root)
    copy.rename(root)
    (root / "images").mkdir(exist_ok=True)
    return legacy


@contextlib.contextmanager
def read_only_folder(folder: Path) -> Iterator[None]:
    """A folder no one may write, root included (a read-only bind mount)."""
    with mounted("--bind", str(folder), str(folder)):
        subprocess.run(["mount", "-o", "remount,bind,ro", str(folder)], check=True)
        yield


async def test_a_wal_library_in_a_read_only_folder_is_read_through_a_copy_that_goes_away(
    client: Client, data_dir: Path
) -> None:
    legacy = wal_library(data_dir / "legacy" / "ro")
    with read_only_folder(legacy.root):
        report = await migrate(client, legacy)
    assert report["db_migration"]["models_imported"] == 1
    assert report["db_migration"]["pending_created"] == 1
    assert staging_entries(data_dir) == []


async def test_a_wal_file_that_is_no_library_leaves_no_copy_behind(
    client: Client, data_dir: Path
) -> None:
    root = data_dir / "legacy" / "ro"
    root.mkdir(parents=True)
    (root / "images").mkdir()
    with sqlite3.connect(root / "other.db") as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE unrelated(x)")
    with read_only_folder(root):
        status, body = await post_migrate(client, root / "other.db", root / "images")
    assert status == 400, body
    assert "no table models" in body["detail"]
    assert staging_entries(data_dir) == []


@contextlib.contextmanager
def full_images_disk(images: Path, room: int) -> Iterator[None]:
    """The images folder on a small tmpfs with only `room` bytes left."""
    images.mkdir(parents=True)
    with mounted("-t", "tmpfs", "-o", "size=8m", "tmpfs", str(images)):
        for folder in ("pending", ".staging"):
            (images / folder).mkdir()
        ballast = images / "ballast"
        with contextlib.suppress(OSError), ballast.open("wb") as handle:
            while True:
                handle.write(b"\0" * 4096)
        ballast.write_bytes(b"\0" * (ballast.stat().st_size - room))
        yield


async def test_a_full_disk_stops_stage_one_and_no_render_goes_on_writing_after(
    make_client: MakeClient, legacy: LegacyLibrary, data_dir: Path
) -> None:
    for i in range(1, 7):  # noise: renditions that do not compress to nothing
        image = pyvips.Image.gaussnoise(800, 600, sigma=60).cast("uchar")
        image.bandjoin([image, image]).write_to_file(str(legacy.images_dir / f"n{i}.png"))
        legacy.add_model(i, hash_hex=fake_sha(300 + i), images=[f"n{i}.png"])
    with full_images_disk(data_dir / "images", room=150_000):
        client = await make_client(workers=4)
        status, body = await post_migrate(client, legacy.db_path, legacy.images_dir)
        assert status == 507, body
        assert staging_entries(data_dir) == []
        await client.close()  # waits for every thread of the pools
        assert staging_entries(data_dir) == []


# --- a second library whose ids overlap the first ---------------------------------------------


def library(root: Path, created_at: int) -> LegacyLibrary:
    legacy = LegacyLibrary(root)
    for i in range(1, 4):
        legacy.add_model(i, created_at=created_at + i, path=f"{root.name}/m{i}")
    return legacy


async def test_a_second_library_with_overlapping_ids_is_brought_in_and_told_apart(
    client: Client, data_dir: Path
) -> None:
    first = library(data_dir / "legacy" / "a", 1_600_000_000_000)
    first.add_model(4, hash_hex=H1, path="/shared/x.safetensors")
    second = library(data_dir / "legacy" / "b", 1_700_000_000_000)
    second.add_model(4, hash_hex=H1, path="/shared/x.safetensors")  # the same model
    second.add_model(5, hash_hex=H2)
    second.add_model(9, hash_hex="")

    report_a = await migrate(client, first)
    report_b = await migrate(client, second)

    assert report_a["library"]["seen_before"] is False
    assert report_b["library"]["seen_before"] is False
    assert report_a["library"]["fingerprint"] != report_b["library"]["fingerprint"]
    counts = report_b["db_migration"]
    assert counts["already_migrated"] == 1  # row 4: the same file, already a model
    assert counts["models_imported"] == 1
    assert counts["pending_created"] == 4
    assert counts["pending_renumbered"] == 3
    problems = report_b["problems"]
    renumbered = {p["legacy_id"]: p["pending_id"] for p in problems if "pending_id" in p}
    assert renumbered == {1: 10, 2: 11, 3: 12}  # above every id either library uses
    pending = (await (await client.get("/api/migration/pending_models")).json())["models"]
    assert {m["id"]: m["path"] for m in pending} == {
        1: "a/m1",
        2: "a/m2",
        3: "a/m3",
        9: "/models/checkpoint/model_9.safetensors",
        10: "b/m1",
        11: "b/m2",
        12: "b/m3",
    }
    assert_rows_accounted_for(report_b)
    for legacy in (first, second):  # each run again: everything is already there
        again = await migrate(client, legacy)
        assert again["library"]["seen_before"] is True
        assert again["db_migration"]["already_migrated"] == again["db_migration"]["legacy_models"]
    await assert_everything_served(client)


async def test_an_id_once_pending_and_promoted_is_not_handed_out_again(
    client: Client, data_dir: Path, models_dir: Path
) -> None:
    first = LegacyLibrary(data_dir / "legacy" / "a")
    make_model_file(models_dir / "one.bin", size=4096)
    first.add_model(1, path=str(models_dir / "one.bin"), created_at=1)
    await migrate(client, first)
    promoted = await client.post("/api/migration/import_a_model", json={"id": 1})
    assert promoted.status == 200
    second = LegacyLibrary(data_dir / "legacy" / "b")
    second.add_model(1, created_at=2)
    report = await migrate(client, second)
    assert [p.get("pending_id") for p in report["problems"]] == [2]


async def test_rows_logged_before_libraries_were_told_apart_belong_to_the_next_library_read(
    make_client: MakeClient, legacy: LegacyLibrary, data_dir: Path
) -> None:
    """A data directory from before this version: its log has no library. The first library
    stage 1 reads adopts those rows, so running it again adds nothing twice."""
    legacy.add_model(1, hash_hex="")
    legacy.add_model(2, hash_hex=H1)  # the legacy fixture made data_dir
    with sqlite3.connect(data_dir / "modelshelf.db") as conn:
        conn.executescript(old_schema())
        conn.execute(
            "INSERT INTO pending_import(id, path, type, meta_json) VALUES (1, 'x', 't', '{}')"
        )
        conn.execute("INSERT INTO models(sha256, path, meta_json) VALUES (?, 'y', '{}')", (H1,))
        conn.executemany(
            "INSERT INTO legacy_import_log VALUES (?, ?, ?, 5)",
            [(1, "pending", None), (2, "model", H1)],
        )
    client = await make_client()
    report = await migrate(client, legacy)
    assert report["library"]["seen_before"] is True
    assert report["db_migration"]["already_migrated"] == 2
    await client.close()
    assert check_library(data_dir) == []


def old_schema() -> str:
    """The schema of the first three migrations, with their bookkeeping."""
    script = "".join(sql + ";" for _, sql in schema.MIGRATIONS[:3])
    script += (
        "CREATE TABLE schema_migrations(version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at INTEGER NOT NULL);"
    )
    script += "".join(f"INSERT INTO schema_migrations VALUES ({v}, 'old', 0);" for v in range(1, 4))
    return script


# --- a row the database refuses at the last moment -----------------------------------------------


class GatedPool(ThreadPoolExecutor):
    """A real pool in which rendering waits for `gate`; `reached` is set when it does."""

    def __init__(self) -> None:
        super().__init__(max_workers=2, thread_name_prefix="test-render")
        self.gate = threading.Event()
        self.reached = threading.Event()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if getattr(fn, "__name__", "") != "render_into":
            return super().submit(fn, *args, **kwargs)

        def gated() -> Any:
            self.reached.set()
            if not self.gate.wait(timeout=30):
                raise TimeoutError("the test never opened the gate")
            return fn(*args, **kwargs)

        return super().submit(gated)


async def test_a_row_the_database_refuses_at_the_last_moment_is_refused_alone(
    make_client: MakeClient, legacy: LegacyLibrary, data_dir: Path
) -> None:
    """Another import brings in the same content while stage 1 renders (after it looked
    for duplicates): that row is refused and reported, the rest of its batch is written."""
    client = await make_client()
    shelf = shelf_of(client)
    pool = GatedPool()
    shelf.executors = Executors(cpu=pool, files=shelf.executors.files, reads=shelf.executors.reads)
    legacy.add_model(1, hash_hex=H1, images=[legacy.image("a.png")])
    legacy.add_model(2, hash_hex=H2)
    legacy.add_model(3, hash_hex="")
    try:
        stage_one = asyncio.create_task(migrate(client, legacy))
        assert await asyncio.to_thread(pool.reached.wait, 30)
        async with shelf.changes.change() as change:  # the other import, committed first
            await models.insert_model(change.tx, H1, {"path": "/elsewhere", "meta_json": {}})
        pool.gate.set()
        report = await stage_one
    finally:
        pool.gate.set()
        pool.shutdown(wait=True)
    counts = report["db_migration"]
    outcomes = ("rows_refused", "models_imported", "pending_created")
    assert [counts[k] for k in outcomes] == [1, 1, 1]
    (refusal,) = [p for p in report["problems"] if p["legacy_id"] == 1]
    assert "UNIQUE" in refusal["problem"]
    assert_rows_accounted_for(report)
    assert staging_entries(data_dir) == []
    await client.close()
    assert check_library(data_dir) == []


HALF_WRITE = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA cache_size=10")  # pages spill to the file: the journal becomes hot
conn.execute("BEGIN")
conn.execute("UPDATE models SET extra_json = extra_json || ' '")
print("written", flush=True)
time.sleep(60)
"""


def leave_half_written(database: Path) -> None:
    """A writer that dies in the middle of a transaction, leaving a hot journal."""
    writer = subprocess.Popen(
        [sys.executable, "-c", HALF_WRITE, str(database)], stdout=subprocess.PIPE, text=True
    )
    assert writer.stdout is not None and writer.stdout.readline().strip() == "written"
    writer.kill()
    writer.wait()
    writer.stdout.close()
    assert Path(f"{database}-journal").stat().st_size > 0


async def test_a_legacy_file_left_half_written_is_422_with_what_to_do(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    for i in range(1, 400):
        legacy.add_model(i, hash_hex=fake_sha(i), extra={"description": "x" * 2000})
    leave_half_written(legacy.db_path)
    before = snapshot(data_dir)
    status, body = await post_migrate(client, legacy.db_path, legacy.images_dir)
    assert status == 422, body
    assert "hot journal" in body["detail"]
    assert snapshot(data_dir) == before
    assert staging_entries(data_dir) == []
