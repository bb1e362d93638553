"""How long a bulk edit holds the event loop: its longest callback, and the loop's CPU in all.

Run from the repository root:

    .venv/bin/python bench/loop_holds.py [--models 10000] [--picked 1000] [--runs 7]

It builds the library of bench/bulk_edits.py (stage 1 through the CLI: `models` LoRAs, each
with a description of about 1.2 KB and a 50-key `civitai` object), serves it in this process
(the real app, on asyncio's own event loop, its start-up heap frozen as `modelshelf serve`
freezes it), and sends from a thread of its own, one request at
a time, `POST /api/models/edit` and `POST /api/models/tags` changing every tenth model
(`picked` of them), as bench/bulk_edits.py does. Every callback the server's loop runs is timed
in CPU time of the loop's thread (as tests/conftest.py does in debug mode), so the figures do not
move with what else the machine runs: while one request is answered, nothing else is asked of
the loop, and the longest callback is the longest a person's request would have waited for it.

Prints, per request kind, the median over `runs` of the longest callback and of the loop's CPU
time for the request.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# The service as installed (make), or as PYTHONPATH names it (another revision's src, to
# compare): imported before bulk_edits, which puts this tree's src first on the path.
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402
from tests.factories import fake_sha  # noqa: E402

import modelshelf  # noqa: E402
from bulk_edits import build, edit_body  # noqa: E402
from figures import machine  # noqa: E402
from modelshelf.app import create_app, freeze_start_up_heap  # noqa: E402
from modelshelf.config import Settings  # noqa: E402


class LoopTimer:
    """Times, in CPU time, every callback the main thread's asyncio loop runs while `on`."""

    def __init__(self) -> None:
        self.on = False
        self.times: list[float] = []
        self._run = asyncio.Handle._run

    def install(self) -> None:
        timer, run = self, self._run

        def timed_run(handle: asyncio.Handle) -> None:
            if not timer.on or threading.current_thread() is not threading.main_thread():
                run(handle)
                return
            started = time.thread_time()
            try:
                run(handle)
            finally:
                timer.times.append(time.thread_time() - started)

        asyncio.Handle._run = timed_run  # type: ignore[method-assign]


def client_requests(url: str, hashes: list[str], runs: int, asked: Any) -> None:
    """In a thread of its own: each request, told to the loop's thread through `asked`."""

    async def send() -> None:
        async with aiohttp.ClientSession() as session:
            for kind, path, body in requests(hashes, runs):
                asked(kind, True)
                async with session.post(f"{url}{path}", json=body) as response:
                    answer = await response.json()
                asked(kind, False)
                if response.status != 200 or not answer["changed"]:
                    raise SystemExit(f"{path}: {response.status} {answer}")

    asyncio.run(send())


def requests(hashes: list[str], runs: int) -> list[tuple[str, str, dict[str, Any]]]:
    edits = [("edit", "/api/models/edit", edit_body(hashes, run)) for run in range(runs)]
    tags = [
        (
            "tags",
            "/api/models/tags",
            {"hashes": hashes, "add": [f"t{r % 2}"], "remove": [f"t{(r + 1) % 2}"]},
        )
        for r in range(runs)
    ]
    return [("warm-up", "/api/models/edit", edit_body(hashes, 1)), *edits, *tags]


async def serve_and_measure(data: Path, hashes: list[str], runs: int) -> dict[str, list[Any]]:
    timer = LoopTimer()
    timer.install()
    results: dict[str, list[tuple[float, float]]] = {"edit": [], "tags": []}
    loop = asyncio.get_running_loop()
    done = asyncio.Event()

    def asked(kind: str, starting: bool) -> None:
        def on_loop() -> None:
            if starting:
                timer.times, timer.on = [], True
            else:
                timer.on = False
                if kind in results:
                    results[kind].append((max(timer.times), sum(timer.times)))

        # Run before the request's first callback and after its last one.
        loop.call_soon_threadsafe(on_loop)

    runner = web.AppRunner(create_app(Settings(data_dir=data).resolve_paths()))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    freeze_start_up_heap()  # as `modelshelf serve` does once it listens
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    thread = threading.Thread(
        target=lambda: (
            client_requests(f"http://127.0.0.1:{port}", hashes, runs, asked),
            loop.call_soon_threadsafe(done.set),
        )
    )
    thread.start()
    try:
        await done.wait()
    finally:
        thread.join()
        await runner.cleanup()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--picked", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    step = max(1, args.models // args.picked)
    hashes = [fake_sha(100_000 + i) for i in range(0, args.models, step)][: args.picked]
    work = Path(tempfile.mkdtemp(prefix="modelshelf-loop-holds-"))
    try:
        data = build(work, args.models)
        results = asyncio.run(serve_and_measure(data, hashes, args.runs))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n{len(hashes)} of {args.models} models, one request at a time ({machine()})")
    print(f"service: {Path(modelshelf.__file__).parent}")
    for kind, samples in results.items():
        longest = statistics.median(s[0] for s in samples) * 1000
        total = statistics.median(s[1] for s in samples) * 1000
        each = ", ".join(f"{s[0] * 1000:.1f}" for s in samples)
        print(
            f"POST /api/models/{kind:5} longest callback median {longest:6.1f} ms ({each});"
            f" loop CPU a request median {total:6.1f} ms"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
