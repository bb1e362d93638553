"""What reading a long pending queue costs everyone else: `GET /api/health` while a client
reads the queue of 5,000 pending models with `?checks=true` (what the Pending page asks).

Run from the repository root (under the shared lock, as every timed run):

    flock -x /work/helpers/quiet.lock .venv/bin/python bench/pending_health.py \
        [--pending 5000] [--reads 40] [--src DIR]

It seeds the queue bench/ui_pending.py seeds (rows, tags, hash cache entries, model files,
originals) and starts `modelshelf serve` on it as a separate process. Health is asked one
request after another, from a thread of its own:

  idle    while nothing else is asked (the reference, same run);
  reading while another thread reads the queue `--reads` times, one read after another.

Health is answered on the event loop, so whatever part of a queue read runs on the loop shows
in its p99 and its longest answer. With `--src DIR` the same is measured against the server of
another source tree (PYTHONPATH=DIR: e.g. `git worktree add --detach /tmp/old <commit>`, then
`--src /tmp/old/src`). Ratios: health while reading against idle, and this tree against DIR.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from figures import machine, percentile
from serving import start_modelshelf, stop
from ui_pending import render_sources, seed

QUEUE = "/api/migration/pending_models?checks=true"


def timed_get(url: str) -> float:
    began = time.perf_counter()
    with urllib.request.urlopen(url) as response:
        response.read()
    return (time.perf_counter() - began) * 1000


def health_while(url: str, busy: threading.Event | None, count: int) -> list[float]:
    """Health answers in ms: `count` of them, or as many as fit while `busy` is unset."""
    samples = []
    while (busy is None and len(samples) < count) or (busy is not None and not busy.is_set()):
        samples.append(timed_get(url + "/api/health"))
    return samples


def measure(data_dir: Path, src: Path | None, reads: int) -> dict[str, Any]:
    process, url = start_modelshelf(data_dir, src, data_dir.parent / "server.log")
    try:
        for _ in range(3):  # warm: the first read fills SQLite's and the OS's caches
            timed_get(url + QUEUE)
        idle = health_while(url, None, 400)
        done = threading.Event()
        queue_times: list[float] = []

        def read_queue() -> None:
            for _ in range(reads):
                queue_times.append(timed_get(url + QUEUE))
            done.set()

        reader = threading.Thread(target=read_queue)
        reader.start()
        during = health_while(url, done, 0)
        reader.join()
    finally:
        stop(process)
    return {"idle": idle, "reading": during, "queue": queue_times}


def summary(samples: list[float]) -> str:
    return (
        f"p50 {percentile(samples, 50):7.2f} ms  p99 {percentile(samples, 99):7.2f} ms"
        f"  max {max(samples):7.2f} ms  ({len(samples)} answers)"
    )


def report(label: str, result: dict[str, Any]) -> None:
    print(f"\n== {label}")
    print(f"  health, idle             {summary(result['idle'])}")
    print(f"  health, queue being read {summary(result['reading'])}")
    print(f"  queue read ({QUEUE})  {summary(result['queue'])}")
    idle, during = (percentile(result[k], 99) for k in ("idle", "reading"))
    print(f"  health p99 while reading / idle: {during:.2f} / {idle:.2f} = {during / idle:.2f}x")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pending", type=int, default=5000)
    parser.add_argument("--reads", type=int, default=40)
    parser.add_argument("--src", type=Path, help="also measure the server of this tree")
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory(prefix="modelshelf-pending-health-") as tmp:
        root = Path(tmp)
        data_dir = root / "run" / "data"
        data_dir.parent.mkdir()
        asyncio.run(seed(data_dir, args.pending, render_sources(root / "sources")))
        runs = {"this tree": measure(data_dir, None, args.reads)}
        if args.src:
            runs[str(args.src)] = measure(data_dir, args.src, args.reads)
        for label, result in runs.items():
            report(f"{label}, {args.pending:,} pending", result)
        if args.src:
            new, old = (percentile(r["reading"], 99) for r in runs.values())
            print(f"\nhealth p99 while reading, this tree / {args.src}: {new / old:.2f}x")
            new, old = (percentile(r["queue"], 50) for r in runs.values())
            print(f"queue read p50, this tree / {args.src}: {new / old:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
