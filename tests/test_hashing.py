"""Hashing: streamed SHA256 of real files, the digest cache and shared hashing tasks."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import re
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from modelshelf import hashing
from modelshelf.errors import Unprocessable
from modelshelf.executors import Executors
from modelshelf.hashing import READ_SIZE, FileIdentity, Hasher, hash_file
from modelshelf.locks import KeyedLocks
from modelshelf.storage import Storage
from modelshelf.storage.change import Changes
from tests.conftest import point_reached


class GatedExecutor(ThreadPoolExecutor):
    """A real thread pool in which `hash_file` jobs wait for `open_gate()` before they start,
    so a test can hold a digest in the middle of its work. Counts the hash_file jobs and the
    FileIdentity.of (stat) jobs; the
    event `hashing` is set once one is submitted (from the event loop, by run_in_executor)."""

    def __init__(self) -> None:
        super().__init__(max_workers=4, thread_name_prefix="test-hash")
        self.gate = threading.Event()
        self.hash_jobs = 0
        self.stat_jobs = 0
        self.hashing = asyncio.Event()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if fn == FileIdentity.of:  # a classmethod: a new bound object at each access
            self.stat_jobs += 1
        if fn is hashing.hash_file:
            self.hash_jobs += 1
            self.hashing.set()

            def gated() -> Any:
                if not self.gate.wait(timeout=30):
                    raise TimeoutError("the test never opened the gate")
                return fn(*args, **kwargs)

            return super().submit(gated)
        return super().submit(fn, *args, **kwargs)

    def open_gate(self) -> None:
        self.gate.set()


def write_random(path: Path, size: int, seed: int = 0) -> str:
    data = random.Random(seed).randbytes(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    storage = Storage(tmp_path / "data" / "modelshelf.db", read_connections=2)
    await storage.open()
    yield storage
    await storage.close()


@pytest.fixture
def executor() -> Iterator[GatedExecutor]:
    pool = GatedExecutor()
    yield pool
    pool.open_gate()  # never leave a worker blocked, even when a test failed
    pool.shutdown(wait=True)


@pytest.fixture
def hasher(storage: Storage, executor: GatedExecutor, tmp_path: Path) -> Hasher:
    # One gated pool serves as both: stat calls pass, hash_file jobs wait at the gate.
    changes = Changes(storage, KeyedLocks("model"), tmp_path / "data", executor)
    return Hasher(storage, changes, Executors(cpu=executor, files=executor, reads=executor))


async def cache_rows(storage: Storage) -> list[tuple[Any, ...]]:
    async with (
        storage.read() as conn,
        conn.execute(
            "SELECT path, size, mtime_ns, inode, sha256, hashed_at FROM hash_cache ORDER BY path"
        ) as cursor,
    ):
        return [tuple(row) for row in await cursor.fetchall()]


async def _let_others_run(seconds: float = 0.1) -> None:
    """Give every other task (and the executor threads they use) time to make progress: only
    where a test proves that something does NOT happen (no second hashing job), which no event
    can signal."""
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.005)


# --- hash_file ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size",
    [0, 1, READ_SIZE - 1, READ_SIZE, READ_SIZE + 1, 2 * READ_SIZE + 12345],
    ids=["empty", "one-byte", "read-size-minus-1", "read-size", "read-size-plus-1", "few-mib"],
)
def test_hash_file_equals_hashlib_on_real_files(tmp_path: Path, size: int) -> None:
    path = tmp_path / "model.safetensors"
    expected = write_random(path, size, seed=size)
    assert hash_file(path) == expected


def test_hash_file_streams_in_bounded_chunks_and_reports_progress(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    size = 3 * READ_SIZE + 17
    expected = write_random(path, size)
    chunks: list[int] = []
    assert hash_file(path, progress=chunks.append) == expected
    assert sum(chunks) == size
    assert max(chunks) <= READ_SIZE, "the file was read in one piece instead of streamed"
    assert len(chunks) >= 4


def test_hash_file_of_a_missing_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        hash_file(tmp_path / "nope.bin")


def test_file_identity_is_path_size_mtime_and_inode(tmp_path: Path) -> None:
    path = tmp_path / "model.bin"
    write_random(path, 100)
    st = path.stat()
    assert FileIdentity.of(path) == FileIdentity(str(path), 100, st.st_mtime_ns, st.st_ino)


# --- Hasher.digest ------------------------------------------------------------------------------


async def test_digest_hashes_a_file_and_caches_it(
    hasher: Hasher, executor: GatedExecutor, storage: Storage, tmp_path: Path
) -> None:
    executor.open_gate()
    path = tmp_path / "model.bin"
    expected = write_random(path, READ_SIZE + 5)
    sha256, identity = await hasher.digest(path)
    assert sha256 == expected
    assert identity == FileIdentity.of(path)
    [row] = await cache_rows(storage)
    assert row[:5] == (str(path), identity.size, identity.mtime_ns, identity.inode, expected)
    assert executor.hash_jobs == 1


async def test_a_second_digest_of_an_unchanged_file_comes_from_the_cache(
    hasher: Hasher, executor: GatedExecutor, storage: Storage, tmp_path: Path
) -> None:
    executor.open_gate()
    path = tmp_path / "model.bin"
    expected = write_random(path, 1000)
    await hasher.digest(path)
    # Mark the cached row: a re-hash would rewrite both columns.
    async with storage.write() as tx:
        await tx.execute("UPDATE hash_cache SET hashed_at = 1")
    sha256, _ = await hasher.digest(path)
    assert sha256 == expected
    [row] = await cache_rows(storage)
    assert row[5] == 1, "the file was hashed again although it did not change"
    assert executor.hash_jobs == 1


async def test_the_cached_digest_is_what_a_cache_hit_answers(
    hasher: Hasher, executor: GatedExecutor, storage: Storage, tmp_path: Path
) -> None:
    executor.open_gate()
    path = tmp_path / "model.bin"
    write_random(path, 1000)
    await hasher.digest(path)
    planted = "ab" * 32
    async with storage.write() as tx:
        await tx.execute("UPDATE hash_cache SET sha256 = ?", (planted,))
    assert (await hasher.digest(path))[0] == planted


async def test_the_cache_survives_a_restart(executor: GatedExecutor, tmp_path: Path) -> None:
    executor.open_gate()
    path = tmp_path / "model.bin"
    expected = write_random(path, 5000)
    database = tmp_path / "restart" / "modelshelf.db"
    for _ in range(2):
        storage = Storage(database, read_connections=1)
        await storage.open()
        try:
            changes = Changes(storage, KeyedLocks("model"), database.parent, executor)
            hasher = Hasher(storage, changes, Executors(executor, executor, executor))
            assert (await hasher.digest(path))[0] == expected
        finally:
            await storage.close()
    assert executor.hash_jobs == 1


async def test_content_rewritten_in_place_is_hashed_again(
    hasher: Hasher, executor: GatedExecutor, storage: Storage, tmp_path: Path
) -> None:
    executor.open_gate()
    path = tmp_path / "model.bin"
    first = write_random(path, 4096, seed=1)
    assert (await hasher.digest(path))[0] == first
    inode = path.stat().st_ino
    old_mtime = path.stat().st_mtime_ns
    second = write_random(path, 4096, seed=2)  # same size, same inode, new mtime
    os.utime(path, ns=(old_mtime + 1_000_000, old_mtime + 1_000_000))
    assert path.stat().st_ino == inode
    assert (await hasher.digest(path))[0] == second
    [row] = await cache_rows(storage)
    assert row[4] == second
    assert executor.hash_jobs == 2


async def test_a_replaced_file_with_same_size_and_mtime_is_hashed_again(
    hasher: Hasher, executor: GatedExecutor, tmp_path: Path
) -> None:
    executor.open_gate()
    path = tmp_path / "model.bin"
    first = write_random(path, 4096, seed=1)
    assert (await hasher.digest(path))[0] == first
    before = path.stat()
    replacement = tmp_path / "replacement.bin"
    second = write_random(replacement, 4096, seed=2)
    os.replace(replacement, path)  # a new inode under the same path
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    assert after.st_ino != before.st_ino
    assert (await hasher.digest(path))[0] == second


async def test_a_file_whose_size_changes_is_hashed_again(
    hasher: Hasher, executor: GatedExecutor, tmp_path: Path
) -> None:
    executor.open_gate()
    path = tmp_path / "model.bin"
    write_random(path, 4096)
    mtime = path.stat().st_mtime_ns
    await hasher.digest(path)
    with path.open("ab") as handle:
        handle.write(b"more")
    os.utime(path, ns=(mtime, mtime))
    assert (await hasher.digest(path))[0] == hashlib.sha256(path.read_bytes()).hexdigest()


async def test_a_touched_file_is_hashed_again(
    hasher: Hasher, executor: GatedExecutor, storage: Storage, tmp_path: Path
) -> None:
    executor.open_gate()
    path = tmp_path / "model.bin"
    expected = write_random(path, 4096)
    await hasher.digest(path)
    mtime = path.stat().st_mtime_ns
    os.utime(path, ns=(mtime + 5_000_000_000, mtime + 5_000_000_000))
    assert (await hasher.digest(path))[0] == expected
    [row] = await cache_rows(storage)
    assert row[2] == mtime + 5_000_000_000
    assert executor.hash_jobs == 2


async def test_each_path_has_its_own_cache_entry(
    hasher: Hasher, executor: GatedExecutor, storage: Storage, tmp_path: Path
) -> None:
    executor.open_gate()
    a, b = tmp_path / "a.bin", tmp_path / "b.bin"
    digest_a = write_random(a, 300, seed=1)
    digest_b = write_random(b, 300, seed=2)
    assert (await hasher.digest(a))[0] == digest_a
    assert (await hasher.digest(b))[0] == digest_b
    assert (await hasher.digest(a))[0] == digest_a
    assert [r[4] for r in await cache_rows(storage)] == [digest_a, digest_b]


async def test_a_missing_file_is_unprocessable(
    hasher: Hasher, executor: GatedExecutor, storage: Storage, tmp_path: Path
) -> None:
    executor.open_gate()
    missing = tmp_path / "missing.safetensors"
    with pytest.raises(Unprocessable) as caught:
        await hasher.digest(missing)
    assert str(missing) in caught.value.detail
    assert await cache_rows(storage) == []


async def test_a_directory_is_unprocessable(
    hasher: Hasher, executor: GatedExecutor, tmp_path: Path
) -> None:
    executor.open_gate()
    with pytest.raises(Unprocessable, match="not a regular file"):
        await hasher.digest(tmp_path)


async def test_a_file_changed_while_being_hashed_is_unprocessable_and_not_cached(
    hasher: Hasher, executor: GatedExecutor, storage: Storage, tmp_path: Path
) -> None:
    path = tmp_path / "model.bin"
    write_random(path, 4096)
    task = asyncio.create_task(hasher.digest(path))
    await executor.hashing.wait()
    with path.open("ab") as handle:
        handle.write(b"appended while hashing")
    executor.open_gate()
    with pytest.raises(Unprocessable, match="changed while it was being hashed"):
        await task
    assert await cache_rows(storage) == []
    # The next request hashes the file as it is now, in a job of its own.
    assert (await hasher.digest(path))[0] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert executor.hash_jobs == 2


async def test_a_file_deleted_before_it_is_read_is_unprocessable(
    hasher: Hasher, executor: GatedExecutor, storage: Storage, tmp_path: Path
) -> None:
    path = tmp_path / "model.bin"
    write_random(path, 4096)
    task = asyncio.create_task(hasher.digest(path))
    await executor.hashing.wait()
    path.unlink()
    executor.open_gate()
    with pytest.raises(Unprocessable, match="cannot be read"):
        await task
    assert await cache_rows(storage) == []
    # The failed digest is not handed to the next caller: the file, back again, is hashed anew.
    expected = write_random(path, 4096, seed=1)
    assert (await hasher.digest(path))[0] == expected
    assert executor.hash_jobs == 2


async def test_concurrent_digests_of_one_file_share_one_hashing_task(
    hasher: Hasher, executor: GatedExecutor, storage: Storage, tmp_path: Path
) -> None:
    path = tmp_path / "model.bin"
    expected = write_random(path, READ_SIZE + 1)
    first = asyncio.create_task(hasher.digest(path))
    second = asyncio.create_task(hasher.digest(path))
    third = asyncio.create_task(hasher.digest(path))
    await executor.hashing.wait()
    # While the hash is held, no caller can find the digest in the cache: a caller that does not
    # join the running task would submit a second hashing job now.
    await _let_others_run()
    assert executor.hash_jobs == 1
    assert not any(t.done() for t in (first, second, third))
    executor.open_gate()
    results = await asyncio.gather(first, second, third)
    assert {sha for sha, _ in results} == {expected}
    assert executor.hash_jobs == 1
    assert len(await cache_rows(storage)) == 1


async def test_cancelling_one_waiter_does_not_cancel_the_other(
    hasher: Hasher, executor: GatedExecutor, storage: Storage, tmp_path: Path
) -> None:
    path = tmp_path / "model.bin"
    expected = write_random(path, 4096)
    leaving = asyncio.create_task(hasher.digest(path))
    staying = asyncio.create_task(hasher.digest(path))
    await executor.hashing.wait()
    await _let_others_run()
    leaving.cancel()
    with pytest.raises(asyncio.CancelledError):
        await leaving
    assert not staying.done()
    executor.open_gate()
    assert (await staying)[0] == expected
    assert executor.hash_jobs == 1
    assert [r[4] for r in await cache_rows(storage)] == [expected]


async def test_hashing_finishes_and_is_cached_even_if_every_waiter_goes_away(
    hasher: Hasher, executor: GatedExecutor, storage: Storage, tmp_path: Path
) -> None:
    path = tmp_path / "model.bin"
    expected = write_random(path, 4096)
    waiter = asyncio.create_task(hasher.digest(path))
    await executor.hashing.wait()
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    with point_reached("change.after_commit") as cached:  # the digest's own small change
        executor.open_gate()
        await cached.wait()
    assert [r[4] for r in await cache_rows(storage)] == [expected]
    # A retry (as after a client hung up) finds the digest without hashing again.
    assert (await hasher.digest(path))[0] == expected
    assert executor.hash_jobs == 1
    assert len(await cache_rows(storage)) == 1


async def test_a_digest_computed_is_logged_with_its_size_and_time(
    hasher: Hasher, executor: GatedExecutor, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="modelshelf.hashing")
    path = tmp_path / "model.bin"
    write_random(path, 3 * 2**20 // 2)
    executor.open_gate()
    await hasher.digest(path)
    [line] = [r.getMessage() for r in caplog.records if r.name == "modelshelf.hashing"]
    assert re.fullmatch(rf"hashed {re.escape(str(path))} \(1\.5 MiB in \d\.\d\d s\)", line), line


async def test_a_finished_digest_is_not_kept_in_memory(
    hasher: Hasher, executor: GatedExecutor, storage: Storage, tmp_path: Path
) -> None:
    """Only the cache remembers digests: with its row gone, the same unchanged file is read
    again (the in-memory registry holds digests in progress only, so it does not grow)."""
    path = tmp_path / "model.bin"
    expected = write_random(path, 4096)
    executor.open_gate()
    assert (await hasher.digest(path))[0] == expected
    async with storage.write() as tx:
        await tx.execute("DELETE FROM hash_cache")
    assert (await hasher.digest(path))[0] == expected
    assert executor.hash_jobs == 2


async def test_a_path_that_is_no_path_at_all_is_unprocessable(
    hasher: Hasher, executor: GatedExecutor
) -> None:
    executor.open_gate()
    with pytest.raises(Unprocessable) as caught:
        await hasher.digest(Path("models/a\x00b.bin"))
    assert caught.value.detail.startswith("model path 'models/a\\x00b.bin' is not a usable path: ")
    long = "m/" + "a" * 300 + "\x00"
    with pytest.raises(Unprocessable) as caught:
        await hasher.digest(Path(long))
    assert caught.value.detail.startswith(f"model path {long[:200]!r} is not a usable path: ")


async def test_stat_calls_run_in_the_file_pool(
    hasher: Hasher, executor: GatedExecutor, tmp_path: Path
) -> None:
    path = tmp_path / "model.bin"
    write_random(path, 4096)
    executor.open_gate()
    await hasher.digest(path)
    assert executor.stat_jobs == 2  # before hashing, and after it to see the file unchanged
