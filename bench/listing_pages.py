"""What the first page of a library listing costs, per kind of listing, in the reader's thread.

Run from the repository root:

    .venv/bin/python bench/listing_pages.py [--models 10000] [--rounds 21] [--seed 1]

It builds the search bench's library (bench/search.py's `build`: 10,000 models with names such
as "Portrait Drari v10") in a temporary directory and times the one statement that reads a
first page of 50 full records (storage.listing.read_page_at_once, its total counted) for the
library's usual listings: by name either way, by date, by type, a search sorted by name, and a
first-time search. It prints the CPU time of the calling thread, min of `rounds`, per
listing. To compare two versions of the code, run it with `PYTHONPATH=<other tree>/src` and
without, in turns: the library is built by the code being measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sqlite3
import tempfile
import time
from pathlib import Path

from modelshelf.storage import listing
from modelshelf.storage.model_filter import ModelFilter
from search import build

LISTINGS = {
    "by name": ModelFilter(),
    "by name, descending": ModelFilter(order="desc"),
    "by date": ModelFilter(sort="created_at"),
    "by size, descending": ModelFilter(sort="size_bytes", order="desc"),
    "one type, by name": ModelFilter(type="loras"),
    "words, sorted by name": ModelFilter(q="portrait", sort="name"),
    "words, best first": ModelFilter(q="fantasy"),
}


def cpu_ms(db: sqlite3.Connection, where: ModelFilter, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        started = time.thread_time()
        listing.read_page_at_once(db, where, 50, 0, count=True)
        best = min(best, time.thread_time() - started)
    return best * 1000


async def main(models: int, rounds: int, seed: int) -> None:
    with tempfile.TemporaryDirectory(prefix="modelshelf-bench-pages-") as tmp:
        await build(Path(tmp), models, random.Random(seed))
        with contextlib.closing(sqlite3.connect(Path(tmp) / "modelshelf.db")) as db:
            for label, where in LISTINGS.items():
                print(f"{label:24} {cpu_ms(db, where, rounds):8.2f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(main(args.models, args.rounds, args.seed))
