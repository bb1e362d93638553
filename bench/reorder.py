"""How long reversing a model's images holds the single writer: the index's renumbering as it
is now (image_index.renumber_images: a fixed number of statements) against the reference, in
the same run, of one UPDATE per moved image (as it was before).

Run from the repository root:

    .venv/bin/python bench/reorder.py [--images 300] [--others 2000] [--runs 21]

It opens the real Storage on a database file in a temporary folder holding one model with
`images` images and `others` more images of other models, then, `runs` times each, taking
turns: a write transaction (BEGIN IMMEDIATE to COMMIT, through Storage.write) that reverses
the model's images, timed from asking for the writer to giving it back. Only the index: the
files a reorder moves are carried out after the commit, and the rest of the transaction
(the history entry, reading the record) is the same either way.

Prints each one's median and fastest hold, and the ratio of the reference to the current one.
Exits 1 if the images are not in the reversed order afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import aiosqlite  # noqa: E402
from tests.factories import fake_sha  # noqa: E402

from figures import machine  # noqa: E402
from modelshelf.storage import Storage  # noqa: E402
from modelshelf.storage.image_index import image_content_keys, renumber_images  # noqa: E402

SHA = fake_sha(1)
Renumber = Callable[[aiosqlite.Connection, str, Mapping[int, int], list[int]], Awaitable[None]]


async def one_update_each(
    tx: aiosqlite.Connection, sha256: str, moves: Mapping[int, int], drop: list[int]
) -> None:
    """The reference: the renumbering as it was, one statement (one trip) per moved image."""
    for old, new in moves.items():
        await tx.execute(
            "UPDATE images SET seq = ? WHERE model_hash = ? AND seq = ?", (-1 - new, sha256, old)
        )
    await tx.execute("UPDATE images SET seq = -1 - seq WHERE model_hash = ? AND seq < 0", (sha256,))


def seed(path: Path, images: int, others: int) -> None:
    with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as db:
        rows = [(SHA, s) for s in range(images)]
        rows += [(fake_sha(1000 + i // 3), i % 3) for i in range(others)]
        db.executemany(
            "INSERT INTO images(model_hash, seq, content_key) VALUES (?, ?, random())", rows
        )


async def hold(storage: Storage, renumber: Renumber, images: int) -> float:
    """Seconds one reversal held the writer; checks the order it left."""
    async with storage.read() as conn:
        before = await image_content_keys(conn, SHA)
    started = time.perf_counter()
    async with storage.write() as tx:
        await renumber(tx, SHA, {old: images - 1 - old for old in range(images)}, [])
    held = time.perf_counter() - started
    async with storage.read() as conn:
        after = await image_content_keys(conn, SHA)
    if after != before[::-1]:
        raise SystemExit("the images are not reversed")
    return held


async def measure(path: Path, images: int, others: int, runs: int) -> dict[str, list[float]]:
    storage = Storage(path, read_connections=1)
    await storage.open()
    try:
        seed(path, images, others)
        ways: dict[str, Renumber] = {"now": renumber_images, "reference": one_update_each}
        times: dict[str, list[float]] = {name: [] for name in ways}
        for _ in range(runs):
            for name, renumber in ways.items():
                times[name].append(await hold(storage, renumber, images))
        return times
    finally:
        await storage.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--others", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=21)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="reorder-bench-"))
    try:
        print(machine())
        path = work / "modelshelf.db"
        print(f"one model of {args.images} images, {args.others} other images; {args.runs} runs")
        times = asyncio.run(measure(path, args.images, args.others, args.runs))
        for name, samples in times.items():
            print(
                f"  {name:<9} writer held: median {statistics.median(samples) * 1000:7.2f} ms,"
                f" fastest {min(samples) * 1000:7.2f} ms"
            )
        ratio = statistics.median(times["reference"]) / statistics.median(times["now"])
        print(f"one UPDATE an image against the current renumbering: {ratio:.1f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
