"""Editing and tagging many models at once, against the same edits one model at a time.

Run from the repository root:

    .venv/bin/python bench/bulk_edits.py [--models 10000] [--picked 1000] [--runs 7]

It builds a legacy library of `models` LoRAs in a temporary folder (each with a description of
about 1.2 KB, a 50-key `civitai` object and two trigger words, no images), brings it in with
stage 1 (the CLI) and starts the real server as a separate process. Then, over HTTP, one
request at a time, on every tenth model (`picked` of them):

  - `POST /api/models/edit` setting type and base model on all of them, the values flipped
    every run so that every model changes (`runs` times);
  - the same request again, which changes nothing (`runs` times);
  - `POST /api/models/tags` adding one tag and removing another, flipped every run;
  - the reference, in the same run: the same edit as one `PATCH /api/models/{sha256}` per
    model, one after another, as a client without the bulk request does it (once).

Beside every bulk request, a second client asks `GET /api/health` again and again (one at a
time, 5 ms apart), as a person's page would ask while a bulk edit runs: an answer that trivial
waits only for the event loop, so its times say how long the bulk edit holds the loop.

Prints each one's median and the ratio of the reference to the bulk edit. Exits 1 if an answer
is not what it should be (a model not changed, a status not 200).
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import aiohttp  # noqa: E402
from tests.factories import LegacyLibrary, fake_sha  # noqa: E402
from tests.server import ServerProcess  # noqa: E402

from figures import machine  # noqa: E402

META = {
    "description": "words " * 200,
    "civitai": {f"k{i}": "v" * 40 for i in range(50)},
    "trigger_words": ["a", "b"],
}
EDITS = [("lycoris", "SDXL 1.0"), ("lora", "Pony")]


def build(work: Path, count: int) -> Path:
    legacy = LegacyLibrary(work / "legacy")
    for i in range(count):
        legacy.add_model(i + 1, hash_hex=fake_sha(100_000 + i), type="lora", extra=META)
    data = work / "data"
    started = time.monotonic()
    legacy.migrate_with_cli(data, work / "no-config")
    print(f"library of {count} models built in {time.monotonic() - started:.1f} s", flush=True)
    return data


async def timed_post(
    session: aiohttp.ClientSession, url: str, body: dict[str, Any]
) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    async with session.post(url, json=body) as response:
        answer = await response.json()
        if response.status != 200:
            raise SystemExit(f"{url}: {response.status} {answer}")
    return (time.perf_counter() - started) * 1000, answer


def edit_body(hashes: list[str], run: int) -> dict[str, Any]:
    kind, base_model = EDITS[run % 2]
    return {"hashes": hashes, "type": kind, "meta_json": {"base_model": base_model}}


class Probe:
    """`GET /api/health` asked again and again while a bulk request runs (`with probe:`)."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url = session, f"{url}/api/health"
        self.times: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> None:
        self._task = asyncio.create_task(self._ask())

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)

    async def _ask(self) -> None:
        while True:
            started = time.perf_counter()
            async with self.session.get(self.url) as response:
                await response.read()
                if response.status != 200:
                    raise SystemExit(f"health: {response.status}")
            self.times.append((time.perf_counter() - started) * 1000)
            await asyncio.sleep(0.005)


async def one_at_a_time(session: aiohttp.ClientSession, url: str, hashes: list[str]) -> float:
    """The reference: the edit of run 0 (whatever the last bulk run left) as one PATCH a model."""
    kind, base_model = EDITS[0]
    started = time.perf_counter()
    for sha256 in hashes:
        body = {"type": kind, "meta_json": {"base_model": base_model}}
        async with session.patch(f"{url}/api/models/{sha256}", json=body) as response:
            if response.status != 200:
                raise SystemExit(f"PATCH {sha256}: {response.status} {await response.text()}")
    return (time.perf_counter() - started) * 1000


async def measure(url: str, hashes: list[str], runs: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {"edit": [], "unchanged": [], "tags": []}
    async with aiohttp.ClientSession() as session, aiohttp.ClientSession() as person:
        await timed_post(session, f"{url}/api/models/edit", edit_body(hashes, 1))  # warm up
        probe = Probe(person, url)
        for run in range(runs):
            async with probe:
                ms, answer = await timed_post(
                    session, f"{url}/api/models/edit", edit_body(hashes, run)
                )
            assert len(answer["changed"]) == len(hashes), "every model changes"
            times["edit"].append(ms)
            ms, answer = await timed_post(session, f"{url}/api/models/edit", edit_body(hashes, run))
            assert len(answer["unchanged"]) == len(hashes), "no model changes"
            times["unchanged"].append(ms)
        for run in range(runs):
            body = {"hashes": hashes, "add": [f"t{run % 2}"], "remove": [f"t{(run + 1) % 2}"]}
            async with probe:
                ms, answer = await timed_post(session, f"{url}/api/models/tags", body)
            assert len(answer["changed"]) == len(hashes), "every model is tagged"
            times["tags"].append(ms)
        times["health"] = probe.times
        await timed_post(session, f"{url}/api/models/edit", edit_body(hashes, 1))
        times["patches"] = [await one_at_a_time(session, url, hashes)]
    return times


def report(times: dict[str, list[float]], picked: int, count: int) -> None:
    labels = {
        "edit": f"POST /api/models/edit, {picked} models changed",
        "unchanged": "the same request again, nothing changed",
        "tags": f"POST /api/models/tags, {picked} models tagged",
        "patches": f"reference: {picked} PATCHes one after another",
    }
    print(f"\n{picked} of {count} models, one request at a time ({machine()})")
    for key, label in labels.items():
        samples = ", ".join(f"{t:.0f}" for t in times[key])
        print(f"{label:48} median {statistics.median(times[key]):8.1f} ms   ({samples})")
    ratio = statistics.median(times["patches"]) / statistics.median(times["edit"])
    print(f"the bulk edit against one PATCH a model: {ratio:.1f}x less time")
    health = sorted(times["health"])
    p99 = health[min(len(health) - 1, int(len(health) * 0.99))]
    print(
        f"GET /api/health beside the bulk edits and taggings: {len(health)} answers,"
        f" p50 {statistics.median(health):.1f} ms, p99 {p99:.1f} ms, max {health[-1]:.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", type=int, default=10_000)
    parser.add_argument("--picked", type=int, default=1_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    step = max(1, args.models // args.picked)
    hashes = [fake_sha(100_000 + i) for i in range(0, args.models, step)][: args.picked]
    work = Path(tempfile.mkdtemp(prefix="modelshelf-bulk-"))
    try:
        data = build(work, args.models)
        server = ServerProcess(data, work / "server.log").start()
        try:
            times = asyncio.run(measure(server.url, hashes, args.runs))
        finally:
            server.kill()
        report(times, len(hashes), args.models)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
