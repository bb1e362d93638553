"""A page of records read beside a thread running Python: why reads answer one row.

Run from the repository root:

    .venv/bin/python bench/gil_rows.py [--models 10000] [--rounds 40]

The sqlite3 module lets go of the GIL around every step of a query (a row each) and takes it
back after; beside a thread running Python, taking it back can wait a switch interval. This
builds the search bench's library (`bench/search.py`, seed 1) in a temporary directory and
times the first page of 50 models alone and beside one thread running a Python loop, read
one row a query (`listing.page_of_hashes` + `models.read_models`; the endpoint has since put
both in one statement, `listing.read_page_at_once`) and row by row (one query a table, a row
a step: `models.read_models_by_rows` and the page's hashes fetched row by row), in the same
process.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sqlite3
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from modelshelf.storage import listing, models
from modelshelf.storage.model_filter import ModelFilter
from search import build


def page_now(db: sqlite3.Connection) -> None:
    models.read_models(db, listing.page_of_hashes(db, ModelFilter(), 50, 0))


def page_by_rows(db: sqlite3.Connection) -> None:
    where = ModelFilter()
    sql, params = where.select("m.sha256", ordered=where.sorted_by_name())
    order, order_params = where.order_by()
    page = f"{sql} ORDER BY {order} LIMIT 50"  # page_of_hashes's query
    hashes = [r[0] for r in db.execute(page, [*params, *order_params])]
    models.read_models_by_rows(db, hashes)


@contextlib.contextmanager
def busy_thread() -> Iterator[None]:
    stop = threading.Event()

    def spin() -> None:
        count = 0
        while not stop.is_set():
            for i in range(1000):
                count += i

    thread = threading.Thread(target=spin)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def timed(read: Callable[[sqlite3.Connection], None], db: sqlite3.Connection, n: int) -> str:
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        read(db)
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return f"p50 {samples[n // 2]:9.2f} ms  p90 {samples[int(n * 0.9)]:9.2f} ms"


def main(count: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        asyncio.run(build(data_dir, count, random.Random(1)))
        with contextlib.closing(sqlite3.connect(data_dir / "modelshelf.db")) as db:
            db.row_factory = sqlite3.Row  # as the server's connections are made
            for label, read in (
                ("one row a query (now)", page_now),
                ("a row a step", page_by_rows),
            ):
                print(f"{label:22} idle:                  {timed(read, db, 200)}")
                with busy_thread():
                    # Row by row is slow beside the thread: a few rounds say enough.
                    n = rounds if read is page_now else max(5, rounds // 4)
                    print(f"{label:22} beside a busy thread:  {timed(read, db, n)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    main(args.models, args.rounds)
