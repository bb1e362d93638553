"""The unit of work (storage.change): the one door every change to rows and files goes through.
Real SQLite, real files, a real file pool; the only gate is an Event the test holds."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from modelshelf.locks import KeyedLocks
from modelshelf.storage import Storage, fileops, tags
from modelshelf.storage.change import Changes
from modelshelf.storage.rows import fetch_all


class GatedFiles(ThreadPoolExecutor):
    """A real file pool whose `apply_file_ops` jobs wait for `gate` (so a test can hold a
    change between its commit and its file work); `started` is set when one is waiting."""

    def __init__(self) -> None:
        super().__init__(max_workers=2, thread_name_prefix="test-files")
        self.gate = threading.Event()
        self.gate.set()
        self.started = threading.Event()

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if fn is fileops.apply_file_ops:

            def gated() -> Any:
                self.started.set()
                if not self.gate.wait(timeout=30):
                    raise TimeoutError("the test never opened the gate")
                return fn(*args, **kwargs)

            return super().submit(gated)
        return super().submit(fn, *args, **kwargs)


@pytest.fixture
def files() -> Iterator[GatedFiles]:
    pool = GatedFiles()
    yield pool
    pool.gate.set()
    pool.shutdown(wait=True)


@pytest.fixture
async def storage(tmp_path: Path) -> AsyncIterator[Storage]:
    storage = Storage(tmp_path / "data" / "modelshelf.db", read_connections=2)
    await storage.open()
    yield storage
    await storage.close()


@pytest.fixture
def changes(storage: Storage, files: GatedFiles, tmp_path: Path) -> Changes:
    data = tmp_path / "data"
    (data / "images" / ".staging").mkdir(parents=True)
    return Changes(storage, KeyedLocks("model"), data, files)


async def tag_names(storage: Storage) -> list[str]:
    async with storage.read() as conn:
        return [r[0] for r in await fetch_all(conn, "SELECT name FROM tags ORDER BY name")]


async def journal_ids(storage: Storage) -> list[int]:
    async with storage.read() as conn:
        return [r[0] for r in await fetch_all(conn, "SELECT id FROM file_journal")]


def staged_folders(changes: Changes) -> list[Path]:
    return sorted(changes.staging_dir.iterdir())


async def test_a_change_commits_its_rows_and_then_moves_its_files(
    changes: Changes, storage: Storage
) -> None:
    target = changes.data_dir / "images" / "placed.webp"
    async with changes.staging() as staging:
        folder = await staging.new_folder()
        (folder / "file").write_bytes(b"content")
        async with changes.change(staging=staging) as change:
            await tags.insert_tag(change.tx, "lora")
            change.move(folder / "file", target)
    assert await tag_names(storage) == ["lora"]
    assert target.read_bytes() == b"content"
    assert staged_folders(changes) == []
    assert await journal_ids(storage) == []


async def test_a_failure_inside_a_change_rolls_back_rows_and_removes_the_staging(
    changes: Changes, storage: Storage
) -> None:
    target = changes.data_dir / "images" / "placed.webp"

    async def failing_change() -> None:
        async with changes.staging() as staging:
            folder = await staging.new_folder()
            (folder / "file").write_bytes(b"content")
            async with changes.change(staging=staging) as change:
                await tags.insert_tag(change.tx, "lora")
                change.move(folder / "file", target)
                raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await failing_change()
    assert await tag_names(storage) == []
    assert not target.exists()
    assert staged_folders(changes) == []
    assert await journal_ids(storage) == []


async def test_a_change_cancelled_before_its_commit_leaves_nothing(
    changes: Changes, storage: Storage
) -> None:
    inside = asyncio.Event()

    async def change_that_waits() -> None:
        async with changes.staging() as staging:
            await staging.new_folder()
            async with changes.change(staging=staging) as change:
                await tags.insert_tag(change.tx, "lora")
                inside.set()
                await asyncio.Event().wait()  # until cancelled

    task = asyncio.create_task(change_that_waits())
    await inside.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await tag_names(storage) == []
    assert staged_folders(changes) == []


async def test_a_change_cancelled_after_its_commit_still_places_its_files_before_unlocking(
    changes: Changes, storage: Storage, files: GatedFiles
) -> None:
    target = changes.data_dir / "images" / "placed.webp"
    files.gate.clear()

    async def change() -> None:
        async with changes.staging() as staging:
            folder = await staging.new_folder()
            (folder / "file").write_bytes(b"content")
            async with changes.change(lock=["m"], staging=staging) as change:
                change.move(folder / "file", target)

    async def next_holder_sees_the_file() -> bool:
        async with changes.model_locks.hold("m"):
            return target.exists()

    task = asyncio.create_task(change())
    await asyncio.to_thread(files.started.wait, 10)
    task.cancel()
    waiter = asyncio.create_task(next_holder_sees_the_file())
    for _ in range(20):  # give a wrongly released lock every chance to be taken now
        await asyncio.sleep(0)
    files.gate.set()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await waiter, "the lock went before the committed change's files were in place"
    assert target.read_bytes() == b"content"
    assert staged_folders(changes) == []


async def test_changes_of_one_model_take_turns_and_changes_of_two_models_overlap(
    changes: Changes,
) -> None:
    first_inside, release = asyncio.Event(), asyncio.Event()
    order: list[str] = []

    async def holding(key: str) -> None:
        async with changes.change(lock=[key]):
            order.append(f"{key} in")
            first_inside.set()
            await release.wait()
        order.append(f"{key} out")

    async def quick(key: str) -> None:
        async with changes.model_locks.hold(key):
            order.append(f"{key} locked")

    holder = asyncio.create_task(holding("a"))
    await first_inside.wait()
    same, other = asyncio.create_task(quick("a")), asyncio.create_task(quick("b"))
    await other
    assert not same.done()
    release.set()
    await asyncio.gather(holder, same)
    assert order == ["a in", "b locked", "a out", "a locked"]


async def test_a_carried_out_entry_rides_on_the_next_transaction_when_one_is_waiting(
    changes: Changes, storage: Storage, files: GatedFiles
) -> None:
    files.gate.clear()
    holding, release = asyncio.Event(), asyncio.Event()

    async def with_a_file() -> None:
        async with changes.staging() as staging:
            folder = await staging.new_folder()
            (folder / "file").write_bytes(b"x")
            async with changes.change(staging=staging) as change:
                change.move(folder / "file", changes.data_dir / "images" / "placed.webp")

    async def holder() -> None:
        async with changes.change() as change:
            await tags.insert_tag(change.tx, "holder")
            holding.set()
            await release.wait()

    async def waiting() -> None:
        async with changes.change() as change:
            await tags.insert_tag(change.tx, "waiting")

    before = storage.transactions
    first = asyncio.create_task(with_a_file())
    await asyncio.to_thread(files.started.wait, 10)  # committed; its files wait at the gate
    held = asyncio.create_task(holder())
    await holding.wait()
    queued = asyncio.create_task(waiting())
    await asyncio.to_thread(files.gate.set)
    await first  # carried out while another change holds the writer and one waits for it
    release.set()
    await asyncio.gather(held, queued)
    assert await journal_ids(storage) == []
    assert storage.transactions - before == 3, "one transaction per change, none to forget"


async def test_an_idle_change_forgets_its_journal_entry_at_once(
    changes: Changes, storage: Storage
) -> None:
    async with changes.staging() as staging:
        folder = await staging.new_folder()
        (folder / "file").write_bytes(b"x")
        async with changes.change(staging=staging) as change:
            change.move(folder / "file", changes.data_dir / "images" / "placed.webp")
    assert await journal_ids(storage) == []


async def test_staging_that_no_change_took_over_is_removed(changes: Changes) -> None:
    async with changes.staging() as staging:
        await staging.new_folder()
        await staging.new_folder()
        assert len(staged_folders(changes)) == 2
    assert staged_folders(changes) == []
