"""Load test: PATCH one model at concurrency 16 while imports run, and prove no update is lost.

Run from the repository root:

    .venv/bin/python bench/load_edits.py [--clients 16] [--successes 10] [--pending 40]

It builds a legacy library in a temporary folder (model M, whose model file is real; `pending`
pending models with model files of 4 MiB and a JPEG each, every fourth with M's content, so
its import merges into M), runs stage 1 with the CLI and starts the real server as a separate
process. Then, at once:

  - `clients` clients each read M (GET, ETag) and PATCH `meta_json.count` to the value read
    plus one with If-Match, retrying after a 412, until each has `successes` accepted PATCHes;
  - a batch of imports of every pending id (merge), 4 at a time, changes M (meta, tags, a new
    image) under the PATCHes' feet and writes other models.

Checked afterwards: no 5xx anywhere; every PATCH answer was 200 or 412; M's count equals the
number of accepted PATCHes (no lost update); every pending id was imported; after SIGTERM,
`modelshelf check` is clean. Prints PATCH latency p50/p99, the 412 rate and wall time; exits
1 if an invariant fails.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import aiohttp  # noqa: E402
from tests.factories import LegacyLibrary, make_model_file  # noqa: E402
from tests.server import ServerProcess  # noqa: E402

from figures import percentile  # noqa: E402
from modelshelf.integrity import check_library  # noqa: E402

MODEL_SIZE = 4 * 2**20


def seed(work: Path, pending: int) -> tuple[LegacyLibrary, str]:
    legacy = LegacyLibrary(work / "legacy")
    models = work / "models"
    sha = make_model_file(models / "m.safetensors", size=MODEL_SIZE, seed=0)
    legacy.add_tag(1, "lora")
    legacy.add_model(
        1,
        hash_hex=sha,
        path=str(models / "m.safetensors"),
        tags=[1],
        images=[legacy.image("m.jpg", width=640, height=480)],
        extra={"description": "the model every client edits", "count": 0},
    )
    for i in range(2, pending + 2):
        content = 0 if i % 4 == 0 else i
        path = models / f"p{i}.safetensors"
        make_model_file(path, size=MODEL_SIZE, seed=content)
        legacy.add_model(
            i,
            path=str(path),
            images=[legacy.image(f"p{i}.jpg", width=512 + i, height=384)],
            extra={"description": f"pending {i}", f"from_{i}": True},
        )
    return legacy, sha


async def patch_client(
    session: aiohttp.ClientSession,
    url: str,
    wanted: int,
    statuses: Counter[int],
    times: list[float],
) -> int:
    accepted = 0
    while accepted < wanted:
        async with session.get(url) as response:
            assert response.status == 200, response.status
            etag, record = response.headers["ETag"], await response.json()
        body = {"meta_json": {"count": record["meta_json"]["count"] + 1}}
        started = time.perf_counter()
        async with session.patch(url, json=body, headers={"If-Match": etag}) as response:
            await response.read()
            statuses[response.status] += 1
        times.append((time.perf_counter() - started) * 1000)
        accepted += response.status == 200
    return accepted


def stage_1(legacy: LegacyLibrary, data_dir: Path, work: Path) -> None:
    legacy.migrate_with_cli(data_dir, work / "no-config")


async def run(args: argparse.Namespace, work: Path) -> int:
    legacy, sha = seed(work, args.pending)
    data_dir = work / "data"
    # Before any request: nothing else runs on the loop yet.
    stage_1(legacy, data_dir, work)
    server = ServerProcess(data_dir, work / "server.log").start()
    statuses: Counter[int] = Counter()
    times: list[float] = []
    try:
        started = time.perf_counter()
        async with aiohttp.ClientSession() as session:
            url = f"{server.url}/api/models/{sha}"
            ids = list(range(2, args.pending + 2))
            imports = session.post(
                f"{server.url}/api/migration/import_models",
                json={"ids": ids, "conf_strategy": "merge"},
            )
            patches = [
                patch_client(session, url, args.successes, statuses, times)
                for _ in range(args.clients)
            ]
            async with imports as batch:
                results, *accepted = await asyncio.gather(batch.json(), *patches)
                import_status = batch.status
            async with session.get(url) as response:
                final = await response.json()
        wall = time.perf_counter() - started
        server.signal(signal.SIGTERM)
        server.wait(60)
    finally:
        server.kill()

    problems = []
    if import_status != 207 or results["counts"]["success"] != args.pending:
        problems.append(f"imports: {import_status} {results.get('counts')}")
    if set(statuses) - {200, 412}:
        problems.append(f"PATCH answered {dict(statuses)}")
    if final["meta_json"]["count"] != sum(accepted):
        problems.append(f"lost updates: count {final['meta_json']['count']} != {sum(accepted)}")
    log = (work / "server.log").read_text()
    if "unhandled error" in log or '" 5' in log:
        problems.append("a 5xx or an unhandled error in the server log")
    problems += check_library(data_dir)

    print(
        f"{args.clients} PATCH clients x {args.successes} accepted each, while "
        f"{args.pending} imports ran (merge; {args.pending // 4} into the edited model)"
    )
    print(f"wall time                  {wall:.1f} s")
    print(f"PATCH answers              {dict(sorted(statuses.items()))}")
    print(f"412 rate                   {statuses[412] / max(1, sum(statuses.values())):.1%}")
    print(
        f"PATCH latency p50 / p99    {percentile(times, 50):.1f} / {percentile(times, 99):.1f} ms"
    )
    print(f"final count                {final['meta_json']['count']} (accepted {sum(accepted)})")
    print(f"model images after merges  {len(final['images'])}")
    print(f"modelshelf check           {'clean' if not check_library(data_dir) else 'PROBLEMS'}")
    for problem in problems:
        print("FAILED:", problem)
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--successes", type=int, default=10)
    parser.add_argument("--pending", type=int, default=40)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="modelshelf-load-edits-"))
    try:
        return asyncio.run(run(args, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
