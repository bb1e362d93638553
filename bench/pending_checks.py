"""GET /api/migration/pending_models?checks=true at 5,000 pending models (what the Pending page
asks on opening), served by this tree and by another, in one run.

Run from the repository root (under the shared lock, as every timed run):

    flock -x /work/helpers/quiet.lock .venv/bin/python bench/pending_checks.py \
        --before DIR [--pending 5000] [--calls 40] [--rounds 3]

It seeds a data directory as bench/ui_pending.py does (its `seed`), starts `modelshelf serve`
on it from DIR (e.g. `git archive <commit> src | tar -x -C /tmp/old`, then `--before
/tmp/old/src`) and from this tree's src, one after the other, `--rounds` times (the trees
take turns, so that a change of the machine's load falls on both), and prints each tree's
p50/p99 over all its calls and the answer's bytes; and whether the two answers are the same.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from serving import start_modelshelf, stop
from ui_pending import render_sources, seed

URL = "/api/migration/pending_models?checks=true"


def calls(url: str, count: int) -> tuple[list[float], bytes]:
    times, body = [], b""
    for _ in range(count + 3):  # the first 3 warm the caches, not counted
        began = time.perf_counter()
        with urllib.request.urlopen(url + URL) as response:
            body = response.read()
        times.append((time.perf_counter() - began) * 1000)
    return times[3:], body


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True)
    parser.add_argument("--pending", type=int, default=5000)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    here = Path(__file__).resolve().parents[1] / "src"
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        asyncio.run(seed(data_dir, args.pending, render_sources(Path(tmp) / "sources")))
        trees = {"before": args.before, "this tree": here}
        times: dict[str, list[float]] = {label: [] for label in trees}
        bodies: dict[str, bytes] = {}
        for _ in range(args.rounds):
            for label, src in trees.items():
                process, url = start_modelshelf(data_dir, src, Path(tmp) / "server.log")
                try:
                    taken, bodies[label] = calls(url, args.calls)
                    times[label] += taken
                finally:
                    stop(process)
        for label, src in trees.items():
            ordered = sorted(times[label])
            p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
            print(
                f"{label:10} ({src}): p50 {statistics.median(ordered):7.1f} ms"
                f"  p99 {p99:7.1f} ms  {len(bodies[label]):,} bytes  ({len(ordered)} calls)"
            )
        print("same answer:", bodies["before"] == bodies["this tree"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
