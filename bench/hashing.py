"""Hashing benchmark: modelshelf's SHA256 against `openssl dgst -sha256`, in one run.

    .venv/bin/python bench/hashing.py [--size-gib 2] [--file PATH] [--repeat 3]

Creates a file of random bytes in a temporary folder (or uses --file), reads it once so every
contender reads from the page cache, then times, best of --repeat each:

- `openssl dgst -sha256 FILE` (a subprocess, wall time): the reference;
- `modelshelf.hashing.hash_file` (what the executor runs);
- `Hasher.digest` cold: the whole async path through a real Storage in a temporary data dir
  (stat in the executor, hash in the executor, re-stat, hash_cache row written), with the cache
  row deleted before each call;
- a naive 64 KiB `read()` loop, a second reference;
- `Hasher.digest` warm: a cache hit, which must not read the file at all.

The ratio is openssl_time / our_time: 1.0 or more means at least as fast as openssl.
Peak RSS (getrusage) before and after the hashing shows memory stays flat: nothing reads the
file into memory.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from modelshelf.executors import Executors
from modelshelf.hashing import READ_SIZE, Hasher, hash_file
from modelshelf.locks import KeyedLocks
from modelshelf.storage import Storage
from modelshelf.storage.change import Changes

GIB = 1024**3
MIB = 1024**2
WRITE_CHUNK = 4 * MIB


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def make_random_file(path: Path, size: int) -> None:
    with path.open("wb") as handle:
        remaining = size
        while remaining:
            count = min(WRITE_CHUNK, remaining)
            handle.write(os.urandom(count))
            remaining -= count


def warm_page_cache(path: Path) -> float:
    started = time.perf_counter()
    buffer = bytearray(READ_SIZE)
    with open(path, "rb", buffering=0) as handle:
        while handle.readinto(buffer):
            pass
    return time.perf_counter() - started


def openssl_sha256(path: Path) -> str:
    done = subprocess.run(
        ["openssl", "dgst", "-sha256", "-r", str(path)],
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout.split()[0].lower()


def naive_64k(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(64 * 1024):
            digest.update(chunk)
    return digest.hexdigest()


def best_of(repeat: int, run: Callable[[], str]) -> tuple[float, str]:
    best = float("inf")
    digest = ""
    for _ in range(repeat):
        started = time.perf_counter()
        digest = run()
        best = min(best, time.perf_counter() - started)
    return best, digest


async def hasher_timings(path: Path, repeat: int, scratch: Path) -> dict[str, tuple[float, str]]:
    """Cold (cache row deleted before each call) and warm (cache hit) Hasher.digest."""
    storage = Storage(scratch / "data" / "modelshelf.db", read_connections=2)
    await storage.open()
    executors = Executors.start(max(2, os.cpu_count() or 2))
    try:
        changes = Changes(storage, KeyedLocks("model"), scratch / "data", executors.files)
        hasher = Hasher(storage, changes, executors)
        cold = float("inf")
        digest = ""
        for _ in range(repeat):
            async with changes.change() as change:
                await change.tx.execute("DELETE FROM hash_cache")
            started = time.perf_counter()
            digest, _ = await hasher.digest(path)
            cold = min(cold, time.perf_counter() - started)
        warm = float("inf")
        warm_digest = ""
        for _ in range(max(repeat, 5)):
            started = time.perf_counter()
            warm_digest, _ = await hasher.digest(path)
            warm = min(warm, time.perf_counter() - started)
        async with storage.read() as conn, conn.execute("SELECT count(*) FROM hash_cache") as cur:
            row = await cur.fetchone()
        if row is None or row[0] != 1:
            raise RuntimeError("the cache should hold exactly one row")
    finally:
        executors.shutdown()
        await storage.close()
    return {"cold": (cold, digest), "warm": (warm, warm_digest)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gib", type=float, default=2.0, help="size of the test file")
    parser.add_argument("--file", type=Path, help="hash this file instead of creating one")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="modelshelf-bench-hash-") as tmp:
        scratch = Path(tmp)
        if args.file is not None:
            path = args.file.resolve()
        else:
            path = scratch / "model.bin"
            started = time.perf_counter()
            make_random_file(path, int(args.size_gib * GIB))
            print(f"created {path} in {time.perf_counter() - started:.1f} s")
        size = path.stat().st_size
        warm_s = warm_page_cache(path)
        print(
            f"file: {size / GIB:.2f} GiB ({size} bytes); page cache warmed in {warm_s:.2f} s;"
            f" hash_file READ_SIZE = {READ_SIZE // MIB} MiB; cpus = {os.cpu_count()}"
        )
        rss_before = peak_rss_mib()

        results: dict[str, tuple[float, str]] = {}
        results["openssl dgst -sha256"] = best_of(args.repeat, lambda: openssl_sha256(path))
        results["hash_file"] = best_of(args.repeat, lambda: hash_file(path))
        timings = asyncio.run(hasher_timings(path, args.repeat, scratch))
        results["Hasher.digest (cold)"] = timings["cold"]
        results["naive 64 KiB read loop"] = best_of(args.repeat, lambda: naive_64k(path))
        results["Hasher.digest (cache hit)"] = timings["warm"]
        rss_after = peak_rss_mib()

    reference_s, reference_digest = results["openssl dgst -sha256"]
    print()
    print(f"best of {args.repeat}             seconds     GiB/s   openssl_time/ours")
    for name, (seconds, _) in results.items():
        speed = size / GIB / seconds if seconds > 0 else float("inf")
        ratio = reference_s / seconds if seconds > 0 else float("inf")
        # A cache hit reads no file: a speed in GiB/s would mean nothing.
        speed_text = "        -" if "cache hit" in name else f"{speed:9.2f}"
        print(f"{name:<26} {seconds:10.4f} {speed_text}   {ratio:10.2f}")
    print()
    digests = {digest for _, digest in results.values()}
    print(f"sha256 {reference_digest}")
    print(f"digests equal: {len(digests) == 1}")
    ours = results["hash_file"][0]
    cold = results["Hasher.digest (cold)"][0]
    print(f"ratio openssl/hash_file          = {reference_s / ours:.3f}")
    print(f"ratio openssl/Hasher.digest cold = {reference_s / cold:.3f}")
    print(
        f"peak RSS: {rss_before:.1f} MiB before hashing, {rss_after:.1f} MiB after"
        f" (+{rss_after - rss_before:.1f} MiB for a {size / GIB:.2f} GiB file)"
    )
    ok = len(digests) == 1 and reference_s / ours >= 1.0 and reference_s / cold >= 1.0
    if not ok:
        print("FAIL: digests differ or modelshelf is slower than openssl", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
