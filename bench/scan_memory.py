"""Peak RSS of a first scan against the number of files it finds.

    .venv/bin/python bench/scan_memory.py [--counts 32,1000,10000,30000] [--workers 2]

For each count, a tree of that many 2 KiB safetensors files (100 a folder, a third with a
`.civitai.info`, as bench/scan.py builds them; all of one size, so every file waits for its
turn behind the one walked before it) is scanned for the first time by `scan_library`, in a
fresh process on a fresh data directory. The process's peak RSS (`ru_maxrss`) is printed with
its high-water mark (VmHWM) when each phase began, so a growth can be placed.

Target: the first scan's memory does not grow with the number of files. Two verdicts:
- the peak RSS of the largest count within BOUND_MIB of the peak at 1,000 files (the bound
  stated before the first run);
- between the two largest counts, growth of at most PLATEAU_MIB per 10,000 files: once the
  process has reached its working size (SQLite's page caches fill as the library grows, up
  to their fixed size; pymalloc arenas of two 1,000-file walk batches), a scan of more files
  costs no more memory. The 32-file figure is printed for comparison only.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from figures import run_json_child
from modelshelf.domain.scan_report import NoProgress

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from scan import build_small  # bench/scan.py, this script's neighbour

BOUND_MIB = 4.0
BASE_COUNT = 1000
PLATEAU_MIB = 1.0


def high_water_mib() -> float:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Phases(NoProgress):
    """A ScanProgress that notes the high-water mark of RSS when each phase begins."""

    def __init__(self) -> None:
        self.marks: dict[str, float] = {}

    def phase(self, name: str) -> None:
        self.marks[name] = high_water_mib()


def child(data_dir: Path, root: Path, workers: int) -> None:
    from aiohttp import web

    from modelshelf.app import create_app
    from modelshelf.config import Settings
    from modelshelf.domain.scan import scan_library
    from modelshelf.web.keys import SHELF

    # The tree was written just before: no file is still being written, and waiting for the
    # last ones to hold still would add idle time to the first scan.
    settings = Settings(
        data_dir=data_dir,
        model_roots={"loras": [root]},
        workers=workers,
        log_level="WARNING",
        scan_settle_seconds=0,
    ).resolve_paths()
    phases = Phases()

    async def scan() -> dict[str, Any]:
        runner = web.AppRunner(create_app(settings))
        await runner.setup()
        try:
            phases.marks["started"] = high_water_mib()
            started = time.perf_counter()
            result = await scan_library(runner.app[SHELF], None, phases)
            seconds = time.perf_counter() - started
            phases.marks["ended"] = high_water_mib()
            return {"seconds": seconds, "counts": result.as_json()["counts"]}
        finally:
            await runner.cleanup()

    outcome = asyncio.run(scan())
    outcome["phases"] = phases.marks
    outcome["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(outcome))


def run_child(data_dir: Path, root: Path, workers: int) -> dict[str, Any]:
    return run_json_child(__file__, data_dir, root, workers)


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--counts", default="32,1000,10000,30000")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    print(f"load average at start: {load()}; cpus {os.cpu_count()}; workers {args.workers}")
    print("   files  scan s  peak RSS MiB  high-water at: walking  hashing  checking  reading")
    peaks: dict[int, float] = {}
    for count in counts:
        with tempfile.TemporaryDirectory(prefix="modelshelf-scanmem-") as name:
            tmp = Path(name)
            build_small(tmp / "tree", count)
            run = run_child(tmp / "data", tmp / "tree", args.workers)
        made = run["counts"]["models_created"]
        if made != count:
            raise RuntimeError(f"{count} files made {made} models: {run['counts']}")
        peaks[count] = run["peak_rss_mib"]
        marks = run["phases"]
        at = "  ".join(
            f"{marks.get(p, float('nan')):7.1f}"
            for p in ("walking", "hashing", "checking", "reading metadata")
        )
        print(f"{count:8d}  {run['seconds']:6.1f}  {peaks[count]:12.1f}  {' ' * 14}{at}")
    print(f"load average at end: {load()}")
    largest = max(counts)
    if BASE_COUNT not in peaks or largest <= BASE_COUNT:
        print(f"no verdict: the counts must include {BASE_COUNT} and a larger one")
        return
    growth = peaks[largest] - peaks[BASE_COUNT]
    per_10k = growth / (largest - BASE_COUNT) * 10_000
    print(
        f"growth from {BASE_COUNT} to {largest} files: {growth:+.1f} MiB"
        f" ({per_10k:+.2f} MiB per 10,000 files)"
    )
    verdict = "MET" if growth <= BOUND_MIB else "MISSED"
    print(
        f"peak RSS at {largest} files within {BOUND_MIB:.0f} MiB of that at {BASE_COUNT}: {verdict}"
    )
    below = max(c for c in counts if c < largest)
    plateau = (peaks[largest] - peaks[below]) / (largest - below) * 10_000
    verdict = "MET" if plateau <= PLATEAU_MIB else "MISSED"
    print(
        f"growth from {below} to {largest} files: {plateau:+.2f} MiB per 10,000 files;"
        f" <= {PLATEAU_MIB:.0f} MiB per 10,000: {verdict}"
    )


if __name__ == "__main__":
    main()
