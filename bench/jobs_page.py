"""What the Jobs page and GET /api/jobs cost a collector whose last jobs include batch imports
of 5,000 models (their result tells each model: ~1 MB).

Run from the repository root:

    .venv/bin/python bench/jobs_page.py [--before SRC] [--calls 20] [--seconds 13]

It seeds one data directory through the storage layer: 500 ended jobs, of which the 50 the
list shows are 5 batch imports of 5,000 models and 45 scans listing 20 problems each. It
serves it with `modelshelf serve` from this tree's src (and, with --before, from another
tree's src, e.g. an export of the commit before), and for each:

- the server: p50/p99 ms and bytes of GET /api/jobs and GET /api/jobs?result=false;
- Debian's Chromium: the Jobs page opened and left open `--seconds` (it reads the list every
  4 s): the requests to /api/jobs* and their decoded bytes, on opening (until the jobs are
  drawn; and once the network is idle, 500 ms without a request) and in all, and ms until
  the first ended job's result is drawn; then scrolled down to its last job, one job after
  another (a person who looks at every job), and come back to.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS, missing_browser

from modelshelf.app import create_app
from modelshelf.config import Settings
from modelshelf.records import Job, JobProgress
from modelshelf.storage import jobs
from modelshelf.web.keys import SHELF
from serving import start_modelshelf, stop

STORED = 500
BATCHES = 5  # among the 50 listed
BATCH_MODELS = 5000


def batch_result(n: int) -> dict[str, Any]:
    results = [
        {
            "id": n * BATCH_MODELS + k,
            "result": "success",
            "sha256": hashlib.sha256(f"{n} {k}".encode()).hexdigest(),
            "action_taken": "created",
            "detail": None,
        }
        for k in range(BATCH_MODELS)
    ]
    return {"results": results, "counts": {"success": BATCH_MODELS, "conflict": 0}}


def scan_result(n: int) -> dict[str, Any]:
    problems = [{"path": f"/models/broken/{k}.safetensors", "reason": "header"} for k in range(20)]
    counts = {"files_found": 9000 + n, "unchanged": 9000, "failed": 20}
    return {"counts": counts, "problems": problems, "problems_not_listed": 0}


async def seed(data_dir: Path) -> None:
    settings = Settings(data_dir=data_dir, port=0).resolve_paths()
    runner = web.AppRunner(create_app(settings), handle_signals=False)
    await runner.setup()
    try:
        async with runner.app[SHELF].changes.change() as change:
            for n in range(STORED):
                at = 1_700_000_000_000 + n * 3_600_000
                batch = n >= STORED - 50 and n % 10 == 0
                job = Job(
                    id=hashlib.md5(f"job {n}".encode()).hexdigest(),
                    kind="import_models" if batch else "scan",
                    state="done",
                    created_at=at,
                    started_at=at,
                    finished_at=at + 60_000,
                    progress=JobProgress(done=BATCH_MODELS, total=BATCH_MODELS),
                    result=batch_result(n) if batch else scan_result(n),
                )
                await jobs.insert_job(change.tx, job)
    finally:
        await runner.cleanup()


def timed(url: str) -> tuple[float, int]:
    began = time.perf_counter()
    with urllib.request.urlopen(url) as response:
        size = len(response.read())
    return (time.perf_counter() - began) * 1000, size


def server_figures(url: str, calls: int) -> dict[str, tuple[float, float, int]]:
    figures = {}
    for path in ("/api/jobs", "/api/jobs?result=false"):
        samples = [timed(url + path) for _ in range(calls)]
        times = sorted(t for t, _ in samples)
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        figures[path] = (round(statistics.median(times), 2), round(p99, 2), samples[0][1])
    return figures


RESOURCES = """() => performance.getEntriesByType('resource')
  .filter(e => /\\/api\\/jobs/.test(e.name))
  .map(e => [e.name.replace(/^.*\\/api\\//, 'api/'), e.transferSize, e.decodedBodySize])"""


def page_figures(url: str, seconds: float) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page()
        began = time.perf_counter()
        page.goto(url + "/jobs")
        page.locator(".job .found .stats").first.wait_for(timeout=120_000)
        drawn_ms = (time.perf_counter() - began) * 1000
        opened = page.evaluate(RESOURCES)
        page.wait_for_load_state("networkidle")
        settled = page.evaluate(RESOURCES)
        page.wait_for_timeout(seconds * 1000)
        every = page.evaluate(RESOURCES)
        jobs = page.locator(".job")
        for n in range(jobs.count()):  # one job after another, as a person reads them
            jobs.nth(n).scroll_into_view_if_needed()
        page.locator(".job").last.locator(".found .stats").wait_for(timeout=120_000)
        page.wait_for_load_state("networkidle")
        scrolled = [r for r in page.evaluate(RESOURCES) if "/jobs/" in r[0]]
        page.goto(url + "/tags")  # away, and back as a person comes back (its HTTP cache)
        began = time.perf_counter()
        page.goto(url + "/jobs")
        page.locator(".job .found .stats").first.wait_for(timeout=120_000)
        again_ms = (time.perf_counter() - began) * 1000
        page.wait_for_load_state("networkidle")
        again = page.evaluate(RESOURCES)
        browser.close()
    return {
        "first result drawn ms": round(drawn_ms),
        "requests on opening": len(opened),
        "bytes on opening": sum(b for *_, b in opened),
        "requests once idle": len(settled),
        "bytes once idle": sum(b for *_, b in settled),
        f"requests in {seconds:g} s more": len(every) - len(opened),
        f"bytes in {seconds:g} s more": sum(b for *_, b in every) - sum(b for *_, b in opened),
        "list requests": sorted({name for name, *_ in every if "/jobs/" not in name}),
        "results read, scrolled to the end": len(scrolled),
        "their bytes": sum(b for *_, b in scrolled),
        "back again: first result ms": round(again_ms),
        "back again: bytes transferred": sum(t for _, t, _ in again),
    }


def measure(data_dir: Path, src: Path | None, calls: int, seconds: float) -> dict[str, Any]:
    process, url = start_modelshelf(data_dir, src, data_dir.parent / "server.log")
    try:
        return {"server": server_figures(url, calls), "page": page_figures(url, seconds)}
    finally:
        stop(process)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="another tree's src to compare with")
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=13.0)
    args = parser.parse_args()
    if (reason := missing_browser()) is not None:
        print(reason)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        began = time.perf_counter()
        asyncio.run(seed(data_dir))
        print(f"seeded {STORED} ended jobs in {time.perf_counter() - began:.1f} s")
        here = Path(__file__).resolve().parents[1] / "src"
        trees = [("before", args.before)] if args.before else []
        for label, src in [*trees, ("this tree", here)]:
            figures = measure(data_dir, src, args.calls, args.seconds)
            print(f"\n{label} ({src})")
            for path, (p50, p99, size) in figures["server"].items():
                print(f"  GET {path:<28} p50 {p50:8.2f} ms  p99 {p99:8.2f} ms  {size:>12,} bytes")
            for key, value in figures["page"].items():
                shown = f"{value:,}" if isinstance(value, int) else value
                print(f"  Jobs page: {key:<28} {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
