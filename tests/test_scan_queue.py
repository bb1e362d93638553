"""The files a scan has still to register wait on disk (storage/scan_queue.py): handed out in
the order the scan promises, with the right totals, and let go of however the scan ends."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest

from modelshelf.domain.scan import scan_library
from modelshelf.storage.scan_queue import Queued, ScanQueue
from tests.conftest import MakeClient, shelf_of
from tests.factories import make_model_file
from tests.scanning import Recorder, scan, start


def queued(name: str, size: int, sha256: str | None = None) -> Queued:
    companions = {f"{name}.civitai.info": (12, 34), f"{name}.preview.png": (56, 78)}
    return Queued(f"/m/{name}", "loras", size, 1, 2, 3, companions, sha256, sha256 is not None)


# (name, size, known) in walk order -> names in the order they are handed out.
ORDERS = {
    "largest first": ([("a", 10, False), ("b", 30, False), ("c", 20, False)], "bca"),
    "known first": ([("a", 10, False), ("b", 30, False), ("k", 5, True)], "kba"),
    "one size in walk order": ([("a", 10, False), ("b", 10, False), ("c", 10, False)], "abc"),
    # k comes after a of its size: it waits its turn in walk order, not with the known ones.
    "a known copy waits for the file of its size walked before it": (
        [("a", 10, False), ("k", 10, True), ("j", 7, True), ("b", 20, False)],
        "jbak",
    ),
    "a known copy walked first still goes first": (
        [("k", 10, True), ("a", 10, False), ("b", 20, False)],
        "kba",
    ),
}


@pytest.mark.parametrize(("walked", "expected"), ORDERS.values(), ids=ORDERS.keys())
async def test_files_are_handed_out_known_first_then_largest_first_one_size_in_walk_order(
    walked: list[tuple[str, int, bool]], expected: str
) -> None:
    queue = ScanQueue()
    await queue.open()
    try:
        for name, size, known in walked:  # one at a time, as walk batches come
            await queue.add([queued(name, size, "f" * 64 if known else None)])
        totals = await queue.plan()
        pages = [await queue.page(2) for _ in range(3)]
    finally:
        await queue.close()

    handed_out = [item for page in pages for item in page]
    assert "".join(item.path.removeprefix("/m/") for item in handed_out) == expected
    unknown_bytes = sum(size for _, size, known in walked if not known)
    assert totals == (len(walked), unknown_bytes)


async def test_each_file_handed_out_says_whether_a_file_of_its_size_comes_after_it() -> None:
    walked = [queued("a", 10), queued("k", 10, "f" * 64), queued("b", 20), queued("c", 10)]
    queue = ScanQueue()
    await queue.open()
    try:
        await queue.add(walked)
        await queue.plan()
        handed_out = await queue.page(10)
    finally:
        await queue.close()

    followed = {item.path.removeprefix("/m/"): item.more_of_size for item in handed_out}
    assert followed == {"a": True, "k": True, "b": False, "c": False}


async def test_a_queued_file_comes_back_as_it_was_queued() -> None:
    file = queued("ünïcode name", 2**40, "a" * 64)
    queue = ScanQueue()
    await queue.open()
    try:
        await queue.add([file])
        await queue.plan()
        (back,) = await queue.page(10)
        assert await queue.page(10) == []
    finally:
        await queue.close()

    assert back == file
    assert list(back.companions) == list(file.companions)  # their order, as walked


async def test_a_first_scan_registers_the_largest_files_first_with_right_totals(
    make_client: MakeClient, tmp_path: Path
) -> None:
    loras = tmp_path / "loras"
    sizes = {"small": 3000, "big": 9000, "middle": 6000, "tiny": 1000}
    for index, (name, size) in enumerate(sizes.items()):
        make_model_file(loras / f"{name}.safetensors", size, seed=index)
    client = await make_client(model_roots={"loras": [loras]}, workers=1)
    progress = Recorder()

    await scan(client, progress=progress)

    assert [Path(path).stem for path in progress.done] == ["big", "middle", "small", "tiny"]
    assert progress.plans == [(4, sum(sizes.values()))]
    assert progress.bytes_hashed == sum(sizes.values())


async def test_a_cancelled_scan_lets_go_of_its_queue(
    make_client: MakeClient, tmp_path: Path
) -> None:
    loras = tmp_path / "loras"
    for index in range(6):
        make_model_file(loras / f"m{index}.safetensors", 4096, seed=index)
    client = await start(make_client, loras=loras)
    threads = set(threading.enumerate())

    class CancelAtFirstFile(Recorder):
        task: asyncio.Task[object]

        def file_done(self, path: str) -> None:
            super().file_done(path)
            self.task.cancel()

    progress = CancelAtFirstFile()
    progress.task = asyncio.ensure_future(scan_library(shelf_of(client), None, progress))
    with pytest.raises(asyncio.CancelledError):
        await progress.task

    assert progress.done  # it was cut short while registering
    # The queue's connection (a thread of its own) is closed: its thread ends (it may still
    # be on its way out when the close is told to the loop); the pools' threads stay.
    started = {t for t in set(threading.enumerate()) - threads if t.is_alive()}
    for thread in started:
        if not thread.name.startswith("modelshelf-"):
            thread.join(timeout=10)
    assert {t for t in started if t.is_alive() and not t.name.startswith("modelshelf-")} == set()
