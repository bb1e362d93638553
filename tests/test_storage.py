"""Storage: a real SQLite database in tmp_path (schema, migrations, transactions, locking)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import sys
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from modelshelf.errors import PartRefused, StorageUnavailable
from modelshelf.locks import KeyedLocks
from modelshelf.storage import DataDirInUse, Storage
from modelshelf.storage.change import Change, Changes
from modelshelf.storage.database import BULK_READ_CONNECTIONS
from modelshelf.storage.schema import MIGRATIONS
from tests.conftest import read_only_file

# (name, declared type, not null, position in the primary key) as PRAGMA table_info reports them.
CONTRACT_COLUMNS = {
    "models": [
        ("sha256", "TEXT", 0, 1),
        ("path", "TEXT", 0, 0),
        ("name", "TEXT", 0, 0),
        ("type", "TEXT", 0, 0),
        ("size_bytes", "INTEGER", 0, 0),
        ("created_at", "INTEGER", 0, 0),
        ("meta_json", "TEXT", 0, 0),
    ],
    "tags": [("id", "INTEGER", 0, 1), ("name", "TEXT", 1, 0)],
    "model_tags": [("model_hash", "TEXT", 0, 1), ("tag_id", "INTEGER", 0, 2)],
    "pending_import": [
        ("id", "INTEGER", 0, 1),
        ("path", "TEXT", 0, 0),
        ("sha256", "TEXT", 0, 0),
        ("name", "TEXT", 0, 0),
        ("type", "TEXT", 0, 0),
        ("size_bytes", "INTEGER", 0, 0),
        ("created_at", "INTEGER", 0, 0),
        ("meta_json", "TEXT", 0, 0),
    ],
    "pending_model_tags": [("model_id", "INTEGER", 0, 1), ("tag_id", "INTEGER", 0, 2)],
    "db_meta": [("key", "TEXT", 0, 1), ("value", "TEXT", 0, 0)],
}
# Part 2 of the contract (model folders).
PART2_COLUMNS = {
    "model_files": [
        ("path", "TEXT", 0, 1),
        ("sha256", "TEXT", 1, 0),
        ("type", "TEXT", 0, 0),
        ("size_bytes", "INTEGER", 0, 0),
        ("mtime_ns", "INTEGER", 0, 0),
        ("inode", "INTEGER", 0, 0),
        ("device", "INTEGER", 0, 0),
        ("present", "INTEGER", 1, 0),
        ("last_seen", "INTEGER", 0, 0),
    ],
}

# A Hikaze Model Manager 2 library as that application creates it.
HMM2_SCHEMA = """
CREATE TABLE models(sha256 TEXT PRIMARY KEY, path TEXT, name TEXT, type TEXT,
    size_bytes INTEGER, created_at INTEGER, meta_json TEXT);
CREATE TABLE tags(id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE model_tags(model_hash TEXT REFERENCES models(sha256) ON DELETE CASCADE,
    tag_id INTEGER REFERENCES tags(id), PRIMARY KEY(model_hash, tag_id));
CREATE TABLE pending_import(id INTEGER PRIMARY KEY, path TEXT, sha256 TEXT, name TEXT,
    type TEXT, size_bytes INTEGER, created_at INTEGER, meta_json TEXT);
CREATE TABLE pending_model_tags(model_id INTEGER REFERENCES pending_import(id) ON DELETE CASCADE,
    tag_id INTEGER REFERENCES tags(id), PRIMARY KEY(model_id, tag_id));
CREATE TABLE db_meta(key TEXT PRIMARY KEY, value TEXT);
"""
SHA = "a" * 64


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "modelshelf.db"


@pytest.fixture
async def storage(db_path: Path) -> AsyncIterator[Storage]:
    storage = Storage(db_path, read_connections=2)
    await storage.open()
    yield storage
    await storage.close()


def raw(db_path: Path) -> sqlite3.Connection:
    """An independent connection, as another process would have."""
    return sqlite3.connect(db_path, timeout=0, isolation_level=None)


async def scalar(storage: Storage, sql: str, params: tuple[object, ...] = ()) -> object:
    async with storage.read() as conn, conn.execute(sql, params) as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return row[0]


async def tag_names(storage: Storage) -> list[str]:
    async with storage.read() as conn, conn.execute("SELECT name FROM tags ORDER BY id") as cur:
        return [r[0] for r in await cur.fetchall()]


def migration_rows(db_path: Path) -> list[tuple[object, ...]]:
    with contextlib.closing(raw(db_path)) as conn:
        return conn.execute("SELECT * FROM schema_migrations ORDER BY version").fetchall()


def table_names(db_path: Path) -> set[str]:
    with contextlib.closing(raw(db_path)) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}


# --- schema -------------------------------------------------------------------------------------


@pytest.mark.parametrize("table", sorted(CONTRACT_COLUMNS | PART2_COLUMNS))
async def test_migrations_create_the_contract_tables_with_their_columns(
    storage: Storage, db_path: Path, table: str
) -> None:
    with contextlib.closing(raw(db_path)) as conn:
        columns = [
            (r[1], r[2].upper(), r[3], r[5])
            for r in conn.execute("SELECT * FROM pragma_table_info(?)", (table,))
        ]
    assert columns == (CONTRACT_COLUMNS | PART2_COLUMNS)[table]


async def test_tag_links_reference_models_and_tags_and_cascade_on_delete(
    db_path: Path, storage: Storage
) -> None:
    with contextlib.closing(raw(db_path)) as conn:
        model_fks = {
            (r[2], r[3], r[4], r[6]) for r in conn.execute("PRAGMA foreign_key_list(model_tags)")
        }
        pending_fks = {
            (r[2], r[3], r[4], r[6])
            for r in conn.execute("PRAGMA foreign_key_list(pending_model_tags)")
        }
    assert ("models", "model_hash", "sha256", "CASCADE") in model_fks
    assert ("tags", "tag_id", "id", "NO ACTION") in model_fks
    assert ("pending_import", "model_id", "id", "CASCADE") in pending_fks
    assert ("tags", "tag_id", "id", "NO ACTION") in pending_fks

    async with storage.write() as tx:
        await tx.execute("INSERT INTO models(sha256, name) VALUES (?, 'm')", (SHA,))
        await tx.execute("INSERT INTO tags(id, name) VALUES (5, 'lora')")
        await tx.execute("INSERT INTO model_tags VALUES (?, 5)", (SHA,))
        await tx.execute("INSERT INTO pending_import(id, name) VALUES (9, 'p')")
        await tx.execute("INSERT INTO pending_model_tags VALUES (9, 5)")
    async with storage.write() as tx:
        await tx.execute("DELETE FROM models WHERE sha256 = ?", (SHA,))
        await tx.execute("DELETE FROM pending_import WHERE id = 9")
    assert await scalar(storage, "SELECT count(*) FROM model_tags") == 0
    assert await scalar(storage, "SELECT count(*) FROM pending_model_tags") == 0


async def test_foreign_keys_are_enforced_on_writes(storage: Storage) -> None:
    with pytest.raises(sqlite3.IntegrityError):
        async with storage.write() as tx:
            await tx.execute("INSERT INTO model_tags VALUES (?, 1)", (SHA,))
    assert await scalar(storage, "SELECT count(*) FROM model_tags") == 0


@pytest.mark.parametrize("yields", [0, 1, 2, 3])
async def test_a_writer_cancelled_at_any_step_leaves_no_transaction_open(
    storage: Storage, yields: int
) -> None:
    async def write() -> None:
        async with storage.write() as tx:
            await tx.execute("INSERT INTO tags(name) VALUES ('cancelled')")

    task = asyncio.create_task(write())
    for _ in range(yields):
        await asyncio.sleep(0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    async with storage.write() as tx:
        await tx.execute("INSERT INTO tags(name) VALUES ('next')")
    assert await scalar(storage, "SELECT group_concat(name) FROM tags") in (
        "next",
        "cancelled,next",
    )


@pytest.mark.parametrize("with_file", [True, False], ids=["rows-and-file", "rows-only"])
@pytest.mark.parametrize("yields", range(60))
async def test_a_change_cancelled_at_any_moment_is_all_or_nothing(
    storage: Storage, yields: int, with_file: bool
) -> None:
    data_dir = storage.path.parent
    target = data_dir / "images" / "placed.txt"
    with ThreadPoolExecutor(2) as files:
        changes = Changes(storage, KeyedLocks("model"), data_dir, files)

        async def change() -> None:
            if not with_file:
                async with changes.change() as unit:
                    await unit.tx.execute("INSERT INTO tags(name) VALUES ('placed')")
                return
            async with changes.staging() as staging:
                folder = await staging.new_folder()
                await asyncio.to_thread((folder / "f.txt").write_text, "staged")
                async with changes.change(staging=staging) as unit:
                    await unit.tx.execute("INSERT INTO tags(name) VALUES ('placed')")
                    unit.move(folder / "f.txt", target)

        task = asyncio.create_task(change())
        for _ in range(yields):
            await asyncio.sleep(0)
        finished_first = task.done()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        assert task.cancelled() or finished_first  # a cancellation is never swallowed
        committed = await scalar(storage, "SELECT count(*) FROM tags") == 1
        assert target.is_file() == (committed and with_file)
        assert list(changes.staging_dir.glob("*")) == []


async def test_tag_names_are_unique(storage: Storage) -> None:
    async with storage.write() as tx:
        await tx.execute("INSERT INTO tags(name) VALUES ('lora')")
    with pytest.raises(sqlite3.IntegrityError):
        async with storage.write() as tx:
            await tx.execute("INSERT INTO tags(name) VALUES ('lora')")
    assert await tag_names(storage) == ["lora"]


async def test_every_migration_is_recorded_with_its_version(
    storage: Storage, db_path: Path
) -> None:
    rows = migration_rows(db_path)
    assert [(r[0], r[1]) for r in rows] == [
        (version, name) for version, (name, _) in enumerate(MIGRATIONS, start=1)
    ]
    assert {"hash_cache", "images", "file_journal", "legacy_import_log"} <= table_names(db_path)


async def test_migrations_are_idempotent(db_path: Path) -> None:
    first = Storage(db_path)
    await first.open()
    async with first.write() as tx:
        await tx.execute("INSERT INTO tags(id, name) VALUES (3, 'kept')")
    await first.close()
    versions = migration_rows(db_path)
    schema = _schema_sql(db_path)

    for _ in range(2):
        again = Storage(db_path)
        await again.open()
        assert await tag_names(again) == ["kept"]
        await again.close()
    assert migration_rows(db_path) == versions
    assert _schema_sql(db_path) == schema


def _schema_sql(db_path: Path) -> list[tuple[str, str]]:
    with contextlib.closing(raw(db_path)) as conn:
        return conn.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()


async def test_an_existing_hikaze_model_manager_2_library_is_adopted_with_its_data(
    db_path: Path,
) -> None:
    db_path.parent.mkdir(parents=True)
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        conn.executescript(HMM2_SCHEMA)
        conn.execute(
            "INSERT INTO models VALUES (?, '/m/a.safetensors', 'a', 'lora', 10, 1700000000000,"
            ' \'{"description": "kept"}\')',
            (SHA,),
        )
        conn.execute("INSERT INTO tags VALUES (7, 'lora')")
        conn.execute("INSERT INTO model_tags VALUES (?, 7)", (SHA,))
        conn.execute(
            "INSERT INTO pending_import VALUES (12, '/m/b.ckpt', NULL, 'b', 'checkpoint', 20,"
            " 1700000000001, '{}')"
        )
        conn.execute("INSERT INTO pending_model_tags VALUES (12, 7)")
        conn.execute("INSERT INTO db_meta VALUES ('schema_version', '2')")
        conn.commit()
        before = {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in CONTRACT_COLUMNS
        }

    storage = Storage(db_path)
    await storage.open()
    await storage.close()

    with contextlib.closing(raw(db_path)) as conn:
        after = {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in CONTRACT_COLUMNS
        }
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert after == before
    assert {"hash_cache", "images", "file_journal", "model_history"} <= table_names(db_path)
    assert [r[0] for r in migration_rows(db_path)] == list(range(1, len(MIGRATIONS) + 1))


async def test_a_database_at_an_older_version_is_migrated_forward(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        conn.executescript(HMM2_SCHEMA)
        conn.execute(
            "CREATE TABLE schema_migrations("
            "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)"
        )
        conn.execute("INSERT INTO schema_migrations VALUES (1, ?, 1)", (MIGRATIONS[0][0],))
        conn.execute("INSERT INTO tags VALUES (1, 'old')")
        conn.commit()
    assert "hash_cache" not in table_names(db_path)

    storage = Storage(db_path)
    await storage.open()
    try:
        assert await tag_names(storage) == ["old"]
        assert await scalar(storage, "SELECT count(*) FROM hash_cache") == 0
    finally:
        await storage.close()
    rows = migration_rows(db_path)
    assert rows[0] == (1, MIGRATIONS[0][0], 1), "an applied migration was run again"
    assert [r[0] for r in rows] == list(range(1, len(MIGRATIONS) + 1))


async def test_the_database_is_in_wal_mode(storage: Storage, db_path: Path) -> None:
    assert await scalar(storage, "PRAGMA journal_mode") == "wal"
    with contextlib.closing(raw(db_path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_a_missing_data_dir_is_created(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "modelshelf.db"
    storage = Storage(path)
    await storage.open()
    await storage.close()
    assert path.is_file()


# --- transactions -------------------------------------------------------------------------------


async def test_write_commits_on_success(storage: Storage, db_path: Path) -> None:
    async with storage.write() as tx:
        await tx.execute("INSERT INTO tags(name) VALUES ('anime')")
    assert await tag_names(storage) == ["anime"]
    with contextlib.closing(raw(db_path)) as conn:  # durable for another connection too
        assert conn.execute("SELECT name FROM tags").fetchall() == [("anime",)]


async def test_write_rolls_back_on_an_exception(storage: Storage) -> None:
    async def two_inserts_then_a_failure() -> None:
        async with storage.write() as tx:
            await tx.execute("INSERT INTO tags(name) VALUES ('one')")
            await tx.execute("INSERT INTO tags(name) VALUES ('two')")
            raise ValueError("halfway")

    with pytest.raises(ValueError, match="halfway"):
        await two_inserts_then_a_failure()
    assert await tag_names(storage) == []
    async with storage.write() as tx:
        await tx.execute("INSERT INTO tags(name) VALUES ('after')")
    assert await tag_names(storage) == ["after"]


async def test_write_rolls_back_when_a_statement_fails(storage: Storage) -> None:
    async with storage.write() as tx:
        await tx.execute("INSERT INTO tags(name) VALUES ('taken')")

    async def insert_new_then_a_duplicate() -> None:
        async with storage.write() as tx:
            await tx.execute("INSERT INTO tags(name) VALUES ('new')")
            await tx.execute("INSERT INTO tags(name) VALUES ('taken')")

    with pytest.raises(sqlite3.IntegrityError):
        await insert_new_then_a_duplicate()
    assert await tag_names(storage) == ["taken"]


@pytest.mark.parametrize("cancellations", [1, 2])
async def test_a_task_cancelled_inside_a_transaction_leaves_nothing(
    storage: Storage, db_path: Path, cancellations: int
) -> None:
    inside = asyncio.Event()

    async def writer() -> None:
        async with storage.write() as tx:
            await tx.execute("INSERT INTO tags(name) VALUES ('cancelled')")
            inside.set()
            await asyncio.Event().wait()  # until cancelled

    task = asyncio.create_task(writer())
    await inside.wait()
    for _ in range(cancellations):  # a second cancel lands while the rollback runs
        task.cancel()
        await asyncio.sleep(0)
    with pytest.raises(asyncio.CancelledError):
        await task

    async with storage.write() as tx:
        await tx.execute("INSERT INTO tags(name) VALUES ('next')")
    assert await tag_names(storage) == ["next"]
    # The writer holds no transaction any more: another connection can take the write lock.
    with contextlib.closing(raw(db_path)) as conn:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")


async def test_a_transaction_cancelled_while_it_commits_is_answered_as_committed(
    storage: Storage,
) -> None:
    """aiosqlite runs the COMMIT it was handed whatever happens to the caller: the caller must
    learn that it committed (the unit of work then carries out its files), and be cancelled
    at its next await."""
    told: list[str] = []

    async def writer() -> None:
        async with storage.write() as tx:
            await tx.execute("INSERT INTO tags(name) VALUES ('committed')")
            current = asyncio.current_task()
            assert current is not None
            current.cancel()  # lands at the next await: the COMMIT
        told.append("committed")
        await asyncio.sleep(0)
        told.append("not reached")

    task = asyncio.create_task(writer())
    with pytest.raises(asyncio.CancelledError):
        await task
    assert told == ["committed"]
    assert await tag_names(storage) == ["committed"]


async def test_a_task_cancelled_while_it_begins_leaves_no_transaction_open(
    storage: Storage, db_path: Path
) -> None:
    async def writer() -> None:
        current = asyncio.current_task()
        assert current is not None
        current.cancel()  # lands at BEGIN IMMEDIATE, which aiosqlite runs all the same
        async with storage.write() as tx:
            await tx.execute("INSERT INTO tags(name) VALUES ('never')")

    with pytest.raises(asyncio.CancelledError):
        await asyncio.create_task(writer())
    async with storage.write() as tx:
        await tx.execute("INSERT INTO tags(name) VALUES ('next')")
    assert await tag_names(storage) == ["next"]


async def test_two_writers_never_interleave_inside_one_transaction(storage: Storage) -> None:
    async with storage.write() as tx:
        await tx.execute("INSERT INTO db_meta(key, value) VALUES ('counter', '0')")

    async def increment(times: int) -> None:
        for _ in range(times):
            async with storage.write() as tx:
                async with tx.execute("SELECT value FROM db_meta WHERE key = 'counter'") as cur:
                    row = await cur.fetchone()
                assert row is not None
                await asyncio.sleep(0)  # invite another coroutine in between read and write
                await tx.execute(
                    "UPDATE db_meta SET value = ? WHERE key = 'counter'", (str(int(row[0]) + 1),)
                )

    await asyncio.gather(*(increment(25) for _ in range(6)))
    assert await scalar(storage, "SELECT value FROM db_meta WHERE key = 'counter'") == "150"


async def test_reads_go_on_while_a_write_transaction_is_open(storage: Storage) -> None:
    async with storage.write() as tx:
        await tx.execute("INSERT INTO tags(name) VALUES ('committed')")

    async with storage.write() as tx:
        await tx.execute("INSERT INTO tags(name) VALUES ('uncommitted')")
        # Not blocked by the open write, and sees only committed data.
        names = await asyncio.wait_for(tag_names(storage), timeout=2)
        assert names == ["committed"]
    assert await tag_names(storage) == ["committed", "uncommitted"]


async def test_read_connections_cannot_write(storage: Storage) -> None:
    with pytest.raises(sqlite3.OperationalError):
        async with storage.read() as conn:
            await conn.execute("INSERT INTO tags(name) VALUES ('sneaky')")
    assert await tag_names(storage) == []


async def test_a_reader_left_in_a_transaction_is_returned_clean(storage: Storage) -> None:
    async with storage.read() as conn:
        await conn.execute("BEGIN")
        await conn.execute("SELECT count(*) FROM tags")
    async with storage.write() as tx:
        await tx.execute("INSERT INTO tags(name) VALUES ('fresh')")
    for _ in range(4):  # every reader of the pool sees the new row
        assert await tag_names(storage) == ["fresh"]


# --- the data directory -------------------------------------------------------------------------


async def test_a_second_storage_on_the_same_data_dir_is_refused(
    storage: Storage, db_path: Path
) -> None:
    second = Storage(db_path)
    with pytest.raises(DataDirInUse) as caught:
        await second.open()
    assert str(db_path.parent) in caught.value.detail
    # The first one is unaffected.
    async with storage.write() as tx:
        await tx.execute("INSERT INTO tags(name) VALUES ('still mine')")
    assert await tag_names(storage) == ["still mine"]


async def test_a_data_dir_is_free_again_once_its_storage_closes(db_path: Path) -> None:
    first = Storage(db_path)
    await first.open()
    await first.close()
    second = Storage(db_path)
    await second.open()
    await second.close()


async def test_another_process_cannot_open_a_data_dir_in_use(
    storage: Storage, db_path: Path
) -> None:
    script = (
        "import asyncio, sys\n"
        "from pathlib import Path\n"
        "from modelshelf.storage import DataDirInUse, Storage\n"
        "async def main():\n"
        "    try:\n"
        "        await Storage(Path(sys.argv[1])).open()\n"
        "    except DataDirInUse:\n"
        "        sys.exit(3)\n"
        "asyncio.run(main())\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", script, str(db_path), stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode == 3, stderr.decode()


async def test_a_read_only_database_answers_storage_unavailable_on_write(db_path: Path) -> None:
    setup = Storage(db_path)
    await setup.open()
    async with setup.write() as tx:
        await tx.execute("INSERT INTO tags(name) VALUES ('before')")
    await setup.close()

    with read_only_file(db_path):
        # Proves the file really is read-only, even for root.
        with pytest.raises(
            OSError, match=r"Operation not permitted|Read-only file system|Permission denied"
        ):
            db_path.open("r+b").close()
        storage = Storage(db_path)
        await storage.open()
        try:
            assert await tag_names(storage) == ["before"]  # reading still works
            with pytest.raises(StorageUnavailable, match="read-only"):
                async with storage.write() as tx:
                    await tx.execute("INSERT INTO tags(name) VALUES ('after')")
            assert await tag_names(storage) == ["before"]
        finally:
            await storage.close()

    reopened = Storage(db_path)
    await reopened.open()
    try:
        assert await tag_names(reopened) == ["before"]
    finally:
        await reopened.close()


@pytest.mark.parametrize("held_bulk", [True, False])
async def test_bulk_reads_and_other_reads_never_wait_for_each_others_connections(
    storage: Storage, held_bulk: bool
) -> None:
    """Every connection of one kind is held (a burst of imports, or of people browsing): a
    read of that kind waits for one, a read of the other kind gets one at once."""
    async with contextlib.AsyncExitStack() as held:
        count = BULK_READ_CONNECTIONS if held_bulk else 2  # the fixture's read_connections
        for _ in range(count):
            await held.enter_async_context(storage.read(bulk=held_bulk))
        same = asyncio.ensure_future(scalar_of_kind(storage, bulk=held_bulk))
        other = asyncio.ensure_future(scalar_of_kind(storage, bulk=not held_bulk))
        done, _ = await asyncio.wait([other], timeout=10)
        assert done == {other}
        assert other.result() == 1
        assert not same.done()
    assert await same == 1


async def scalar_of_kind(storage: Storage, *, bulk: bool) -> object:
    async with storage.read(bulk=bulk) as conn, conn.execute("SELECT 1") as cursor:
        row = await cursor.fetchone()
        assert row is not None
        return row[0]


async def test_storage_can_be_reopened_after_close(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "modelshelf.db", read_connections=2)
    await storage.open()
    await storage.close()
    await storage.open()
    try:
        async with storage.read() as conn, conn.execute("SELECT 1") as cursor:
            row = await cursor.fetchone()
            assert row is not None
            assert tuple(row) == (1,)
    finally:
        await storage.close()


def size_of(path: str) -> int:
    return os.path.getsize(path)


async def test_the_wal_is_cut_back_once_a_long_reader_lets_go(db_path: Path) -> None:
    """A reader holding an old snapshot lets the WAL grow past its limit; once it lets go,
    the next writes checkpoint it and cut it back to the limit."""
    limit = 256 * 1024
    storage = Storage(db_path, read_connections=1, journal_size_limit=limit)
    await storage.open()
    wal = f"{db_path}-wal"
    try:
        reader = raw(db_path)
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM models").fetchone()  # holds its snapshot
        for i in range(40):  # about 6 MiB through the WAL
            async with storage.write() as tx:
                await tx.execute(
                    "INSERT INTO db_meta(key, value) VALUES (?, ?)", (f"k{i}", "x" * 150_000)
                )
        grown = size_of(wal)
        assert grown > 4 * 2**20
        reader.execute("COMMIT")
        reader.close()
        for i in range(3):
            async with storage.write() as tx:
                await tx.execute("DELETE FROM db_meta WHERE key = ?", (f"k{i}",))
        # Cut back at the reset, then a few pages appended by the writes after it.
        assert size_of(wal) < 2 * limit < grown / 10
    finally:
        await storage.close()


async def refused_part(change: Change, folder: Path) -> None:
    async with change.part():
        await change.tx.execute("INSERT INTO tags(id, name) VALUES (2, 'undone')")
        change.unlink(folder / "x.webp")
        await change.tx.execute("INSERT INTO tags(id, name) VALUES (3, 'kept')")  # taken


async def test_a_part_the_database_refuses_is_undone_alone(
    storage: Storage, tmp_path: Path
) -> None:
    with ThreadPoolExecutor(1) as files:
        changes = Changes(storage, KeyedLocks("model"), tmp_path / "data", files)
        async with changes.change() as change:
            async with change.part():
                await change.tx.execute("INSERT INTO tags(id, name) VALUES (1, 'kept')")
            with pytest.raises(PartRefused):
                await refused_part(change, tmp_path / "data" / "images")
            assert change.ops == []
            await change.tx.execute("INSERT INTO tags(id, name) VALUES (4, 'last')")
    async with storage.read() as conn:
        rows = await (await conn.execute("SELECT id, name FROM tags ORDER BY id")).fetchall()
    assert [tuple(r) for r in rows] == [(1, "kept"), (4, "last")]


async def test_a_new_library_is_said_once_where_it_is(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A data dir misspelt (MODELSHELF_DATA_DIR, --data-dir) served a new, empty library
    without a word: its making is said, with the path, and only then."""
    caplog.set_level("INFO", logger="modelshelf")
    for _ in range(2):
        storage = Storage(tmp_path / "typo" / "modelshelf.db")
        await storage.open()
        await storage.close()
    said = [r.getMessage() for r in caplog.records if "new, empty library" in r.getMessage()]
    assert said == [f"a new, empty library in {tmp_path / 'typo'} (it had no modelshelf.db)"]
