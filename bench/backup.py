"""`modelshelf backup` of a library of many example images, against `cp -a` of its data
directory, in one run.

Run from the repository root:

    .venv/bin/python bench/backup.py [--images 50000] [--changed 500] [--dir DIR]

It builds a library of `--images` example images, two per model: the rows are written with
plain SQL into a database whose schema the storage layer made, and each image's three
renditions are real WebP files, the renditions of one 768x1024 picture rendered once by
pyvips and written under every name (the bytes of a library's renditions; a copy does not look
inside them). 50,000 images are 150,000 files, the size of the library issue 13 serves from.
The library is then `modelshelf check`ed clean, and the page cache is warm for every step
alike (each reads the same files just read by the step before).

Measured, each by wall time:

  cp -a     the data directory copied by `cp -a` into a new folder: the reference, what the
            README's stop-and-copy does (no check)
  cp+sync   the same, then `sync`: the copy's bytes on the disk, as a backup makes sure of
            before its database is put in place
  backup    `back_up` into a new folder: the database (SQLite's online backup), the files,
            the check of the copy
  again     `back_up` into the same folder with nothing changed: the files listed and
            compared, none copied, the check
  changed   the same after `--changed` images' renditions were written anew (new bytes'
            time), as a day of curating does

It prints the times, each ratio to `cp -a`, and the counts `back_up` reported.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from figures import machine
from modelshelf.backup import BackupReport, back_up
from modelshelf.imagefolder import ImageFolder
from modelshelf.integrity import check_library
from modelshelf.renditions import qualities, rendition_file_name
from modelshelf.storage import Storage
from modelshelf.storage.database import DATABASE_NAME
from serving import render_example


def sha_of(n: int) -> str:
    return hashlib.sha256(f"backup-bench-{n}".encode()).hexdigest()


def build_library(root: Path, images: int) -> Path:
    """A data directory of `images` example images, two per model, consistent."""
    data_dir = root / "data"
    storage = Storage(data_dir / DATABASE_NAME)
    asyncio.run(_made(storage))
    models = (images + 1) // 2
    with sqlite3.connect(data_dir / DATABASE_NAME) as conn:
        conn.executemany(
            "INSERT INTO models(sha256, path, name, type, size_bytes, created_at, meta_json)"
            " VALUES (?, ?, ?, 'lora', 1, 1700000000000, '{}')",
            ((sha_of(m), f"/models/m{m}.safetensors", f"model {m}") for m in range(models)),
        )
        conn.executemany(
            "INSERT INTO images(model_hash, seq) VALUES (?, ?)",
            ((sha_of(i // 2), i % 2) for i in range(images)),
        )
    renditions = {q: p.read_bytes() for q, p in render_example(root / "sources").items()}
    ImageFolder(data_dir, 1).create_folders()
    folder = data_dir / "images"
    for i in range(images):
        for quality, body in renditions.items():
            (folder / rendition_file_name(sha_of(i // 2), i % 2, quality)).write_bytes(body)
    return data_dir


async def _made(storage: Storage) -> None:
    await storage.open()
    await storage.close()


def rewrite(data_dir: Path, count: int) -> None:
    """`count` images' renditions written anew: other bytes, a new time."""
    for i in range(count):
        for quality in qualities():
            path = data_dir / "images" / rendition_file_name(sha_of(i // 2), i % 2, quality)
            path.write_bytes(path.read_bytes() + b"\0")


def copy_and_sync(data_dir: Path, copy: Path) -> None:
    """`cp -a`, then the copy's bytes flushed to the disk, as a backup does before its database
    is put in place."""
    subprocess.run(["cp", "-a", str(data_dir), str(copy)], check=True)
    os.sync()


def timed(step: str, work: Callable[[], object]) -> float:
    """Seconds `work` took; a backup's counts are printed, and it must have checked clean."""
    started = time.perf_counter()
    result = work()
    elapsed = time.perf_counter() - started
    print(f"  {step:<8} {elapsed:8.2f} s", flush=True)
    if isinstance(result, BackupReport):
        print(
            f"           copied {result.files_copied:,} files ({result.bytes_copied / 2**20:,.0f}"
            f" MiB), kept {result.files_kept:,}, removed {result.files_removed:,},"
            f" attempts {result.attempts}, problems {len(result.problems)}",
            flush=True,
        )
        assert result.problems == [], result.problems
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=50_000)
    parser.add_argument("--changed", type=int, default=500)
    parser.add_argument("--dir", type=Path, help="where to build (default: a temporary folder)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="backup-bench-", dir=args.dir))
    try:
        print(machine())
        started = time.perf_counter()
        data_dir = build_library(root, args.images)
        assert check_library(data_dir) == []
        files = sum(1 for _ in (data_dir / "images").iterdir())
        print(
            f"library: {args.images:,} images, {files:,} entries in images/, built and checked"
            f" in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        reference = timed(
            "cp -a",
            lambda: subprocess.run(["cp", "-a", str(data_dir), str(root / "copy")], check=True),
        )
        synced = timed("cp+sync", lambda: copy_and_sync(data_dir, root / "copy-synced"))
        first = timed("backup", lambda: back_up(data_dir, root / "backup", bar=False))
        again = timed("again", lambda: back_up(data_dir, root / "backup", bar=False))
        rewrite(data_dir, args.changed)
        changed = timed("changed", lambda: back_up(data_dir, root / "backup", bar=False))
        print(
            f"ratios to cp -a: backup {first / reference:.2f}x, again {again / reference:.2f}x,"
            f" changed ({args.changed:,} images) {changed / reference:.2f}x;"
            f" backup to cp -a then sync {first / synced:.2f}x"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
