"""Reading a library of 10,000 models that carry their Civitai records: by base model, and
pages with only the meta_json keys a grid needs.

Run from the repository root:

    .venv/bin/python bench/civitai_records.py --reference REV [--models 10000] [--calls 300]

It writes, in a temporary directory, a library of `models` models straight into a migrated
database, each with the `meta_json` a model downloaded through ComfyUI LoRA Manager or the
A1111 Civitai Helper has: a base model, trigger words, a description, and its Civitai record
(an HTML description, eight example images with their prompts, files with hashes, stats),
about 8 KB of JSON a model. Opening the database builds its index (timed).

Then, over HTTP (keep-alive, one request at a time), a `modelshelf serve` process of this
tree's `src` and one of `REV`'s (`git archive REV src`, the reference, on the same database)
are started in turns, `--rounds` times each, with `kept_totals = 0` so that every answer counts
its matches as one met for the first time since the last write does. Each is asked `calls`
times:

  - `GET /api/models?base_model=<one of the six>&limit=50`: a page filtered by base model;
  - `GET /api/models?base_model=<one>&type=<one>&limit=50`: with a type as well;
  - `GET /api/models/base_models`: the list the web UI offers in its filter;
  - `GET /api/models?limit=100&offset=...`: the web UI's page of the library, whole;
  - the same with `meta_keys=base_model`, as the web UI asks it (a server without the
    parameter ignores it and answers whole records).

Prints p50 and p99 of each, the ratio of the reference's p50 to this tree's, and the size of
each kind's last answer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "bench")]

import aiohttp  # noqa: E402

from figures import machine, percentile  # noqa: E402
from modelshelf.storage import Storage  # noqa: E402
from search import BASES, COMMON, TYPES, sha_of  # noqa: E402
from serving import start_modelshelf, stop  # noqa: E402


def civitai_record(rng: random.Random, base: str, words: list[str]) -> dict[str, Any]:
    """A Civitai model-version record of the size LoRA Manager keeps beside a model."""

    def text(n: int) -> str:
        return " ".join(rng.choices(words, k=n))

    image = {
        "width": 832,
        "height": 1216,
        "nsfwLevel": 1,
        "hash": "U7F~" + "".join(rng.choices("abcdefghij0123456789", k=24)),
    }
    return {
        "id": rng.randint(1, 10**6),
        "modelId": rng.randint(1, 10**6),
        "name": text(2),
        "baseModel": base,
        "trainedWords": rng.sample(words, 3),
        "description": "<p>" + text(120) + "</p><ul><li>" + text(30) + "</li></ul>",
        "images": [
            image
            | {
                "url": f"https://image.civitai.com/x/{rng.randint(1, 10**9)}.jpeg",
                "meta": {
                    "prompt": text(60),
                    "negativePrompt": text(25),
                    "seed": rng.randint(1, 10**9),
                    "steps": 30,
                    "sampler": "DPM++ 2M Karras",
                    "cfgScale": 7,
                },
            }
            for _ in range(8)
        ],
        "files": [{"name": "x.safetensors", "sizeKB": 147_000, "hashes": {"SHA256": "AB" * 32}}],
        "stats": {"downloadCount": rng.randint(0, 10**5), "rating": 4.8},
    }


def fill(db_path: Path, count: int, rng: random.Random) -> float:
    """Write `count` models; returns the mean size of their meta_json in bytes."""
    rows, sizes = [], []
    for i in range(count):
        base, kind = rng.choice(BASES), rng.choice(TYPES)
        meta = {
            "description": " ".join(rng.choices(COMMON, k=40)),
            "trigger_words": rng.sample(COMMON, 2),
            "base_model": base,
            "civitai": civitai_record(rng, base, COMMON),
        }
        text = json.dumps(meta)
        sizes.append(len(text))
        rows.append((sha_of(i), f"/m/{kind}/model_{i}.safetensors", f"Model {i}", kind, 1, i, text))
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        conn.executemany("INSERT INTO models VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        conn.commit()
    return sum(sizes) / len(sizes)


async def build(data_dir: Path, count: int, rng: random.Random) -> None:
    storage = Storage(data_dir / "modelshelf.db")
    await storage.open()
    await storage.close()
    mean = fill(data_dir / "modelshelf.db", count, rng)
    started = time.perf_counter()
    storage = Storage(data_dir / "modelshelf.db")
    await storage.open()  # builds every stale index row
    await storage.close()
    took = time.perf_counter() - started
    print(f"{count} models, meta_json {mean / 1024:.1f} KB on average; index built in {took:.2f} s")


def requests(calls: int, models: int) -> dict[str, list[tuple[str, dict[str, str]]]]:
    """What each kind asks, `calls` of them, the filters cycling through every value and the
    pages through the library."""
    pages = max(1, models // 100)
    return {
        "filtered page": [
            ("/api/models", {"base_model": BASES[n % len(BASES)], "limit": "50"})
            for n in range(calls)
        ],
        "with a type": [
            (
                "/api/models",
                {"base_model": BASES[n % len(BASES)], "type": TYPES[n % 5], "limit": "50"},
            )
            for n in range(calls)
        ],
        "base model list": [("/api/models/base_models", {})] * calls,
        "page of 100": [
            ("/api/models", {"limit": "100", "offset": str(n % pages * 100)}) for n in range(calls)
        ],
        "same, meta_keys": [
            (
                "/api/models",
                {"limit": "100", "offset": str(n % pages * 100), "meta_keys": "base_model"},
            )
            for n in range(calls)
        ],
    }


Figures = tuple[dict[str, list[float]], dict[str, int]]  # ms of each call, bytes of the last


async def measure(url: str, calls: int, models: int) -> Figures:
    timings: dict[str, list[float]] = {}
    sizes: dict[str, int] = {}
    async with aiohttp.ClientSession() as session:
        for kind, asked in requests(calls, models).items():
            timings[kind] = []
            for path, params in [*asked[:10], *asked]:  # the first ten warm up
                started = time.perf_counter()
                async with session.get(url + path, params=params) as response:
                    sizes[kind] = len(await response.read())
                    assert response.status == 200, (response.status, path, params)
                timings[kind].append((time.perf_counter() - started) * 1000)
            del timings[kind][:10]
    return timings, sizes


async def served(data_dir: Path, src: Path | None, calls: int, models: int) -> Figures:
    log = data_dir.parent / "server.log"
    settings = {"MODELSHELF_WORKERS": "2", "MODELSHELF_KEPT_TOTALS": "0"}
    process, url = start_modelshelf(data_dir, src, log, settings=settings)
    try:
        return await measure(url, calls, models)
    finally:
        stop(process)


def report(this: list[Figures], reference: list[Figures]) -> None:
    print(f"\n{'request':18} {'round':>5} {'p50 ms':>8} {'p99 ms':>8} {'ref p50':>8}", end="")
    print(f" {'ref p99':>8} {'ref/this p50':>13} {'KB':>7} {'ref KB':>7}")
    for kind in this[0][0]:
        for n, ((mine, size), (theirs, ref_size)) in enumerate(
            zip(this, reference, strict=True), start=1
        ):
            p50, p99 = percentile(mine[kind], 50), percentile(mine[kind], 99)
            r50, r99 = percentile(theirs[kind], 50), percentile(theirs[kind], 99)
            print(f"{kind:18} {n:5} {p50:8.2f} {p99:8.2f} {r50:8.2f} {r99:8.2f}", end="")
            print(f" {r50 / p50:12.1f}x {size[kind] / 1024:7.1f} {ref_size[kind] / 1024:7.1f}")


def export_src(revision: str, into: Path) -> Path:
    """`src` of `revision`, written under `into`; returns its path."""
    into.mkdir()
    archive = subprocess.run(
        ["git", "archive", revision, "src"], cwd=ROOT, check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"


async def main(args: argparse.Namespace) -> int:
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        reference_src = export_src(args.reference, Path(tmp) / "reference")
        data_dir = Path(tmp) / "data"
        await build(data_dir, args.models, random.Random(args.seed))
        this, reference = [], []
        for _ in range(args.rounds):  # in turns, so that both meet the machine as it is
            this.append(await served(data_dir, None, args.calls, args.models))
            reference.append(await served(data_dir, reference_src, args.calls, args.models))
        report(this, reference)
        print(machine())
    return 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True, help="a commit to compare with")
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    sys.exit(asyncio.run(main(parser.parse_args())))
