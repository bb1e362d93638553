"""Where a search puts the model a person names: typing a model's whole name, or its file's name.

Run from the repository root:

    .venv/bin/python bench/name_search.py [--models 10000] [--sample 300] [--seed 1]

It builds the search bench's library (bench/search.py's `build`: 10,000 models, names such as
"Portrait Drari v10", descriptions drawn by Zipf's law, three tags each) in a temporary
directory, picks `sample` models at random and, for each, searches its name as typed (the
name itself) and its file's name without the extension. For each query it finds the model's
place on the first page of 50 as the service ranks (storage.listing.page_of_hashes: names
that begin with what was typed first, then bm25) and as bm25 alone ranks (the reference, the
order before names were ranked first), in the same database. It prints how many land first
(or after models of the same name only: the bench's names repeat), in places 2-5, 6-50, and
not on the first page, and how long each ranking statement took (CPU, median; the page's
hashes, no records).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sqlite3
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path, PurePosixPath

from modelshelf.storage import listing, search
from modelshelf.storage.model_filter import ModelFilter
from search import build

PLACES = ["first", "after others of its name", "2-5", "6-50", "not in the first 50"]


def place(hashes: list[str], sha256: str, names: dict[str, str]) -> str:
    if sha256 not in hashes:
        return PLACES[4]
    at = hashes.index(sha256)
    if at > 0 and names[hashes[0]] == names[sha256]:
        return PLACES[1]
    return PLACES[0] if at == 0 else PLACES[2] if at < 5 else PLACES[3]


def as_shipped(db: sqlite3.Connection, query: str) -> list[str]:
    return listing.page_of_hashes(db, ModelFilter(q=query), 50, 0)


def by_bm25_alone(db: sqlite3.Connection, query: str) -> list[str]:
    """The first page as it was ranked before names were ranked first."""
    scored = (
        f"(SELECT rowid AS doc_id, {search.rank_expression()} AS score"
        f" FROM model_search WHERE {search.MATCH})"
    )
    words = search.query_words(query)
    return [
        r[0]
        for r in db.execute(search.ranked_hits_sql(scored), [search.match_expression(words), 50, 0])
    ]


def measure(db: sqlite3.Connection, picked: list[tuple[str, str, str]]) -> None:
    names = dict(db.execute("SELECT sha256, name FROM models"))
    for label, column in (("the name as typed", 1), ("the file's name", 2)):
        print(f"\n{label}, {len(picked)} models:")
        for method, rank in (("as shipped", as_shipped), ("bm25 alone", by_bm25_alone)):
            places: Counter[str] = Counter()
            cpu: list[float] = []
            for row in picked:
                started = time.thread_time()
                hashes = rank(db, row[column])
                cpu.append(time.thread_time() - started)
                places[place(hashes, row[0], names)] += 1
            counts = ", ".join(f"{p} {places[p]}" for p in PLACES)
            print(
                f"  {method:11} {counts}; ranking CPU median {statistics.median(cpu) * 1000:.2f} ms"
            )


async def main(models: int, sample: int, seed: int) -> None:
    with tempfile.TemporaryDirectory(prefix="modelshelf-bench-names-") as tmp:
        data_dir = Path(tmp)
        await build(data_dir, models, random.Random(seed))
        with contextlib.closing(sqlite3.connect(data_dir / "modelshelf.db")) as db:
            rows = db.execute("SELECT sha256, name, path FROM models ORDER BY sha256").fetchall()
            picked = [
                (sha256, name, PurePosixPath(path).stem)
                for sha256, name, path in random.Random(seed + 1).sample(rows, sample)
            ]
            measure(db, picked)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    asyncio.run(main(args.models, args.sample, args.seed))
