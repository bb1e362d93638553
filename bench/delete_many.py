"""Deleting many models at once, against the same deletes one model at a time, and the library
page's Undo of it, against the same undo one model at a time.

Run from the repository root:

    .venv/bin/python bench/delete_many.py [--models 1000]

It builds a data directory of `models` LoRAs with two example images each (rows written with
plain SQL into a database the storage layer made; each image's three renditions real WebP
files, bench/backup.py's `build_library`), checks it clean, and copies it once per step, so
that every step starts from the same library. On each copy the real server runs as a process of
its own, and, over HTTP, one request at a time:

  bulk     `POST /api/models/delete` naming every model (1,000 a request): what the library
           page's Delete sends
  single   the reference: one `DELETE /api/models/{sha256}` per model, one after another, as a
           client without the bulk request deletes them
  undo     after a bulk delete, what the page's Undo sends: `POST /api/models/restore` naming
           every model (1,000 a request)
  undo-each  the reference: after a bulk delete, for each model the newest page of its history,
           then `POST .../history/{id}/restore` (what the page's Undo did before the bulk
           restore)

Each copy must check clean after its step, with no model left (bulk, single) or every model
back without its images (undo, undo-each). Prints each step's time, the time a model, and the
ratio of each reference to its bulk request.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import aiohttp  # noqa: E402
from tests.server import ServerProcess  # noqa: E402

from backup import build_library, sha_of  # noqa: E402
from figures import machine  # noqa: E402
from modelshelf.domain.bulk_tagging import MAX_MODELS  # noqa: E402
from modelshelf.integrity import check_library  # noqa: E402


async def bulk(
    session: aiohttp.ClientSession, url: str, hashes: list[str], path: str = "/api/models/delete"
) -> None:
    for start in range(0, len(hashes), MAX_MODELS):
        part = {"hashes": hashes[start : start + MAX_MODELS]}
        async with session.post(f"{url}{path}", json=part) as response:
            answer = await response.json()
            assert response.status == 200, answer
            assert answer["changed"] == part["hashes"], answer


async def undo(session: aiohttp.ClientSession, url: str, hashes: list[str]) -> None:
    await bulk(session, url, hashes, "/api/models/restore")


async def single(session: aiohttp.ClientSession, url: str, hashes: list[str]) -> None:
    for sha256 in hashes:
        async with session.delete(f"{url}/api/models/{sha256}") as response:
            assert response.status == 200, await response.text()


async def undo_each(session: aiohttp.ClientSession, url: str, hashes: list[str]) -> None:
    for sha256 in hashes:
        async with session.get(f"{url}/api/models/{sha256}/history?limit=50") as response:
            entries = (await response.json())["entries"]
        entry = next(e for e in entries if e["action"] == "delete")
        restore = f"{url}/api/models/{sha256}/history/{entry['id']}/restore"
        async with session.post(restore) as response:
            assert response.status == 200, await response.text()


async def run_step(url: str, hashes: list[str], step: str) -> float:
    """Seconds the step took (the bulk delete before an undo is not counted)."""
    async with aiohttp.ClientSession() as session:
        if step.startswith("undo"):
            await bulk(session, url, hashes)
        started = time.perf_counter()
        steps = {"bulk": bulk, "single": single, "undo": undo, "undo-each": undo_each}
        await steps[step](session, url, hashes)
        return time.perf_counter() - started


def models_left(data_dir: Path) -> int:
    with sqlite3.connect(data_dir / "modelshelf.db") as conn:
        return int(conn.execute("SELECT count(*) FROM models").fetchone()[0])


def measure(template: Path, work: Path, hashes: list[str], step: str) -> float:
    data_dir = work / step / "data"
    data_dir.parent.mkdir()
    subprocess.run(["cp", "-a", str(template), str(data_dir)], check=True)
    server = ServerProcess(data_dir, work / step / "server.log").start()
    try:
        elapsed = asyncio.run(run_step(server.url, hashes, step))
    finally:
        server.kill()
    assert check_library(data_dir) == [], check_library(data_dir)
    assert models_left(data_dir) == (len(hashes) if step.startswith("undo") else 0)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="delete-bench-"))
    try:
        print(machine())
        template = build_library(work / "template", 2 * args.models)
        assert check_library(template) == []
        hashes = [sha_of(m) for m in range(args.models)]
        print(f"library: {args.models:,} models, {2 * args.models:,} images, checked clean")
        steps = ("bulk", "single", "undo", "undo-each")
        times = {step: measure(template, work, hashes, step) for step in steps}
        for step, seconds in times.items():
            print(f"  {step:<9} {seconds:8.2f} s   {seconds / args.models * 1000:7.2f} ms a model")
        print(f"one DELETE a model against the bulk delete: {times['single'] / times['bulk']:.1f}x")
        ratio = times["undo-each"] / times["undo"]
        print(f"one restore a model against the bulk restore: {ratio:.1f}x")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
