"""Load test of the promotion endpoint against a real server process, with invariant checks.

    .venv/bin/python bench/load_imports.py [--pending 300 --concurrency 32 --model-mib 32 --seed 1]

What it does, in order:

1. Seed (in a fresh work folder, removed afterwards unless --keep): a legacy library (the first
   Hikaze manager's SQLite schema) under <work>/data/legacy with --pending unhashed models, each
   with a real model file under <work>/models and a real 1024x1536 photo-like example image
   (JPEG or PNG), plus --library hashed models with 1-2 images each. The pending ids fall in
   three pools:
   - "alone" (1 warm-up + --alone ids) and "throughput": distinct contents, all exactly
     --model-mib MiB, all JPEG, so every one of them costs the same work (hash + three renditions);
   - "mixed": sizes uniform in [model-mib/4, 2*model-mib] MiB (8-64 MiB by default), JPEG or PNG;
     --dup-fraction of *all* pending ids (25%) are byte copies of another mixed model's file or of
     a library model's file, so imports conflict.
   The page cache is flushed (sync) so writeback does not run during the measurement.
2. Cross-check, in this process before the server starts: CPU time (time.process_time) of
   `hash_file` + `render_renditions` on the alone ids' files and images.
3. Start the real server (`python -m modelshelf serve`, tests/server.py) and run stage 1 over HTTP.
4. "Alone": import the alone ids one at a time (null strategy, no conflict) and read the server's
   CPU time (utime + stime from /proc/<pid>/stat) before and after: CPU seconds per import with
   nothing else running. The CPU bound is cores / that figure (imports/s if every core did nothing
   but imports). The in-process hash + render figure gives a second bound to compare.
5. "Throughput" phase: --concurrency clients import the throughput ids (null strategy, distinct
   contents, no conflict): only imports that do the same work as the alone ones, so the achieved
   rate is compared with the bound fairly. Deletes and 409s, which do less work, are kept out of
   this figure on purpose.
6. "Mixed" phase: --concurrency clients in a closed loop over a realistic mix: imports of the
   mixed ids with every strategy (null, override, merge, delete); after a 409 an id is retried
   with a strategy 60% of the time, else it stays pending; 15% of single imports repeat an id
   already in flight (to provoke 423; a locked id is tried again 0.2-0.6 s later); batch
   imports (import_models) of 2-5 ids now and then; GET pending_models, POST get_sample_imgs,
   GET images/<name>?quality=low|medium|high and GET models?limit=50. Its promotions/s (any
   action) is reported too.
   During both load phases a separate process polls GET /api/health every --health-interval-ms
   over its own keep-alive connection and records the latency of each answer.
7. Stop the server with SIGTERM, then check the invariants (any failure: exit 1):
   exit code 0; no 5xx anywhere (client side and the server's access log), no client errors,
   no failed batch item, every /api/health answer 200; no "database is locked" and no traceback in
   the server log; no id got two successful answers, every answer's sha256 is its file's;
   every pending id ended exactly once: resolved (imported/merged/overridden/deleted, and gone
   from pending) or still pending with a 409 seen; every 404 was for an id another request
   resolved; at most one "imported" per content and none for library contents; the models
   table is exactly library + imported contents (no duplicates, nothing lost); per model, the
   image count is library images + imports + merges, and the pending tags were added;
   model_history has one row per override/merge; `check_library` finds nothing (dense seqs,
   three renditions per seq, no orphans, partials, temporary files, staging or journal left).
8. People browsing (bench/load_reads.py): during both load phases --readers paced clients read
   what a person browsing reads; then (--job-phases) the server is started again on the same
   data directory and the same people browse while a scan hashes a cached tree of model files
   and while stage 1 brings in a second, generated legacy library (see bench/LOAD.md).
9. Targets (invariants fine but a target missed: exit 2): throughput-phase imports/s >= 75% of
   the CPU bound (server-measured); in every load phase p99 of each read endpoint <= 25 ms and
   p99 of /api/health <= 10 ms.

Exit status: 0 all good, 1 an invariant failed, 2 a target was missed.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import hashlib
import json
import os
import platform
import random
import re
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from collections import Counter, defaultdict, deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

import aiohttp  # noqa: E402
import pyvips  # noqa: E402
from tests.factories import LegacyLibrary  # noqa: E402
from tests.server import ServerProcess  # noqa: E402

import load_reads  # noqa: E402
import load_trace  # noqa: E402
from load_client import (  # noqa: E402
    EP_HEALTH,
    Client,
    Ledger,
    Phase,
)
from load_measure import (  # noqa: E402
    CpuMeter,
    CpuShares,
    percentile,
    process_cpu_seconds,
    start_health_probe,
    wait_until_quiet,
)
from modelshelf.hashing import hash_file  # noqa: E402
from modelshelf.images import render_renditions  # noqa: E402
from modelshelf.integrity import check_library  # noqa: E402
from modelshelf.renditions import qualities  # noqa: E402

QUALITIES = qualities()

MIB = 1024 * 1024
STRATEGIES: list[str | None] = [None, "override", "merge", "delete"]
FIRST_WEIGHTS = [0.40, 0.20, 0.25, 0.15]  # strategy of a mixed id's first attempt
RETRY_STRATEGIES = ["override", "merge", "delete"]
RETRY_WEIGHTS = [0.35, 0.45, 0.20]  # after a 409
RETRY_AFTER_CONFLICT = 0.6
REPEAT_IN_FLIGHT = 0.15
BACKOFF_AFTER_423 = (0.2, 0.6)  # seconds before a locked id is tried again
MIX = {  # what a mixed-phase client does next
    "import": 0.40,
    "batch": 0.05,
    "pending": 0.08,
    "samples": 0.17,
    "image": 0.20,
    "models": 0.10,
    "model": 0.05,
}
TYPES = ["checkpoint", "lora", "embedding", "vae"]
EXTRA_TAGS = ["anime", "realistic", "style", "character", "concept", "landscape", "portrait"]
ACTIONS = ("imported", "overridden", "merged", "deleted")


# --- seeding ---------------------------------------------------------------------------------


@dataclass
class PendingSpec:
    id: int
    pool: str  # "warmup", "alone", "throughput" or "mixed"
    content: int
    size: int
    path: Path
    image: str
    tags: list[int]
    sha256: str = ""
    copy_of: str = ""  # "library" or "pending" when the file copies another model's


@dataclass
class LibrarySpec:
    id: int
    content: int
    size: int
    path: Path
    images: list[str]
    tags: list[int]
    sha256: str = ""


@dataclass
class Seed:
    work: Path
    data_dir: Path
    legacy: LegacyLibrary
    pending: dict[int, PendingSpec]
    library: dict[int, LibrarySpec]

    def ids(self, *pools: str) -> list[int]:
        return [p.id for p in self.pending.values() if p.pool in pools]


def write_model_file(path: Path, size: int, content: int, seed: int) -> str:
    """`size` bytes that differ per `content` (a random MiB, each copy stamped with its index);
    returns the SHA256. SHA256 costs the same whatever the bytes are."""
    block = bytearray(random.Random(seed * 1_000_003 + content).randbytes(MIB))
    digest = hashlib.sha256()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        written = 0
        index = 0
        while written < size:
            block[:8] = index.to_bytes(8, "little")
            piece = memoryview(block)[: min(MIB, size - written)]
            handle.write(piece)
            digest.update(piece)
            written += len(piece)
            index += 1
    return digest.hexdigest()


def copy_model_file(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)


def make_photo(path: Path, width: int, height: int, seed: int) -> None:
    """A photo-like picture: blurred coloured noise over gradients, so it costs a realistic
    amount to decode and to encode as WebP (a flat colour would be nearly free)."""
    bands = [
        pyvips.Image.gaussnoise(width, height, sigma=40, mean=m, seed=seed * 3 + i)
        for i, m in enumerate((128, 100, 150))
    ]
    noise = bands[0].bandjoin(bands[1:]).gaussblur(1.2)
    xy = pyvips.Image.xyz(width, height)
    turn = (seed % 7) / 7
    ramp = xy[0] * (255.0 / width) * turn + xy[1] * (255.0 / height) * (1 - turn)
    gradient = ramp.bandjoin([255 - ramp, ramp * 0.5 + 64])
    image = (noise * 0.5 + gradient * 0.5).cast("uchar").copy(interpretation="srgb")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.write_to_file(str(path))


def link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def seed_library(args: argparse.Namespace, work: Path) -> Seed:
    rng = random.Random(args.seed)
    data_dir = work / "data"
    models_dir = work / "models"
    pool_dir = work / "image-pool"
    legacy = LegacyLibrary(data_dir / "legacy")
    width, height = args.image_size

    # Image pool: distinct photo-like images; JPEGs for the alone/throughput pools.
    jpegs = [pool_dir / f"photo{i}.jpg" for i in range(args.image_pool)]
    pngs = [pool_dir / f"photo{i}.png" for i in range(max(1, args.image_pool // 2))]
    with ThreadPoolExecutor(os.cpu_count() or 2) as painters:
        list(
            painters.map(
                lambda item: make_photo(item[1], width, height, item[0] + args.seed * 100),
                enumerate(jpegs + pngs),
            )
        )

    tag_ids: dict[str, int] = {}
    for index, name in enumerate(TYPES + EXTRA_TAGS, start=1):
        tag_ids[name] = legacy.add_tag(index, name)

    def tags_for(kind: str) -> list[int]:
        return [tag_ids[kind], *(tag_ids[t] for t in rng.sample(EXTRA_TAGS, rng.randint(0, 2)))]

    low, high = max(1, args.model_mib // 4), args.model_mib * 2

    def mixed_size() -> int:
        return rng.randint(low * MIB, high * MIB) // 4096 * 4096

    content = 0
    library: dict[int, LibrarySpec] = {}
    for i in range(args.library):
        content += 1
        legacy_id = args.pending + 1 + i
        images = [rng.choice(jpegs + pngs) for _ in range(rng.randint(1, 2))]
        names = []
        for n, picture in enumerate(images):
            name = f"model_{legacy_id}_{1_700_000_000_000 + n}_lib{n}{picture.suffix}"
            link_or_copy(picture, legacy.images_dir / name)
            names.append(name)
        kind = rng.choice(TYPES)
        library[legacy_id] = LibrarySpec(
            legacy_id,
            content,
            mixed_size(),
            models_dir / "library" / f"lib{legacy_id}.safetensors",
            names,
            tags_for(kind),
        )

    ids = list(range(1, args.pending + 1))
    rng.shuffle(ids)
    n_alone = args.alone + 1
    n_throughput = max(n_alone + 1, round(args.pending * args.throughput_share))
    duplicates = round(args.pending * args.dup_fraction)
    n_mixed = args.pending - n_throughput
    if n_mixed - duplicates < 1:
        raise SystemExit("too few mixed ids for that many duplicates; raise --pending")
    pools = ["warmup"] + ["alone"] * args.alone + ["throughput"] * (n_throughput - n_alone)
    pools += ["mixed"] * n_mixed
    pending: dict[int, PendingSpec] = {}
    originals: list[PendingSpec] = []
    for index, (pending_id, pool) in enumerate(zip(ids, pools, strict=True)):
        mixed = pool == "mixed"
        is_duplicate = mixed and index >= len(pools) - duplicates
        if mixed:
            image = rng.choice(jpegs) if rng.random() < 0.7 else rng.choice(pngs)
        else:
            image = jpegs[index % len(jpegs)]
        name = f"model_{pending_id}_1700000000000_p{pending_id}{image.suffix}"
        link_or_copy(image, legacy.images_dir / name)
        kind = rng.choice(TYPES)
        spec = PendingSpec(
            pending_id,
            pool,
            0,
            args.model_mib * MIB if not mixed else mixed_size(),
            models_dir / kind / f"p{pending_id}.safetensors",
            name,
            tags_for(kind),
        )
        if is_duplicate:
            # A third copy a library model, the rest another mixed model.
            source: LibrarySpec | PendingSpec
            if library and rng.random() < 1 / 3:
                source = rng.choice(list(library.values()))
            else:
                source = rng.choice(originals)
            spec.content, spec.size = source.content, source.size
            spec.copy_of = "library" if isinstance(source, LibrarySpec) else "pending"
        else:
            content += 1
            spec.content = content
            if mixed:
                originals.append(spec)
        pending[pending_id] = spec

    # Model files: one writer per distinct content, then copies for the duplicates.
    everything: list[LibrarySpec | PendingSpec] = [*library.values(), *pending.values()]
    by_content: dict[int, LibrarySpec | PendingSpec] = {}
    for item in everything:
        by_content.setdefault(item.content, item)
    hashes: dict[int, str] = {}
    for item in by_content.values():
        hashes[item.content] = write_model_file(item.path, item.size, item.content, args.seed)
    for item in everything:
        item.sha256 = hashes[item.content]
        if by_content[item.content] is not item:
            item.path.parent.mkdir(parents=True, exist_ok=True)
            copy_model_file(by_content[item.content].path, item.path)

    for lib in library.values():
        legacy.add_model(
            lib.id,
            hash_hex=lib.sha256,
            type=_type_of(lib.tags, tag_ids),
            path=str(lib.path),
            size_bytes=lib.size,
            tags=lib.tags,
            images=lib.images,
            extra={"description": f"library model {lib.id}", "prompts": {"positive": "a cat"}},
        )
    for spec in pending.values():
        legacy.add_model(
            spec.id,
            hash_hex="",
            type=_type_of(spec.tags, tag_ids),
            path=str(spec.path),
            size_bytes=spec.size,
            tags=spec.tags,
            images=[spec.image],
            extra={
                "description": f"pending model {spec.id}",
                "community_links": [f"https://example.invalid/{spec.id}"],
                "prompts": {"positive": f"prompt {spec.id}", "negative": "blurry"},
            },
        )
    return Seed(work, data_dir, legacy, pending, library)


def _type_of(tags: list[int], tag_ids: dict[str, int]) -> str:
    by_id = {v: k for k, v in tag_ids.items()}
    return by_id[tags[0]]


def inprocess_cost(seed: Seed, ids: list[int], scratch: Path) -> tuple[float, float]:
    """Mean CPU seconds of hash_file and of render_renditions for `ids`, in this process."""
    scratch.mkdir(parents=True, exist_ok=True)
    hash_cpu = render_cpu = 0.0
    for pending_id in ids:
        spec = seed.pending[pending_id]
        started = time.process_time()
        assert hash_file(spec.path) == spec.sha256
        hashed = time.process_time()
        targets = {q: scratch / f"{pending_id}_{q}.webp" for q in QUALITIES}
        render_renditions(seed.legacy.images_dir / spec.image, targets)
        render_cpu += time.process_time() - hashed
        hash_cpu += hashed - started
    shutil.rmtree(scratch, ignore_errors=True)
    return hash_cpu / len(ids), render_cpu / len(ids)


class MixedWork:
    """The import attempts still to make in the mixed phase."""

    def __init__(self, ids: list[int], rng: random.Random, ledger: Ledger) -> None:
        self.rng = rng
        self.ledger = ledger
        self.queue: deque[tuple[int, str | None]] = deque(
            (i, rng.choices(STRATEGIES, FIRST_WEIGHTS)[0]) for i in ids
        )
        self.in_flight: Counter[int] = Counter()
        self.backing_off = 0

    def take(self) -> tuple[int, str | None] | None:
        while self.queue:
            pending_id, strategy = self.queue.popleft()
            if pending_id not in self.ledger.resolved:
                self.in_flight[pending_id] += 1
                return pending_id, strategy
        return None

    def settle(self, pending_id: int, strategy: str | None, status: int) -> None:
        """After a primary attempt: retry after 423 or a lost connection, maybe after 409."""
        self.in_flight[pending_id] -= 1
        if self.in_flight[pending_id] == 0:
            del self.in_flight[pending_id]
        if pending_id in self.ledger.resolved:
            return
        if status in (423, -1):
            # Locked by another request: try again a little later, as a polite client would.
            self.backing_off += 1
            asyncio.get_running_loop().call_later(
                self.rng.uniform(*BACKOFF_AFTER_423), self._requeue, pending_id, strategy
            )
        elif status == 409 and self.rng.random() < RETRY_AFTER_CONFLICT:
            self.queue.append((pending_id, self.rng.choices(RETRY_STRATEGIES, RETRY_WEIGHTS)[0]))

    def _requeue(self, pending_id: int, strategy: str | None) -> None:
        self.backing_off -= 1
        self.queue.append((pending_id, strategy))

    @property
    def finished(self) -> bool:
        return not self.queue and not self.in_flight and not self.backing_off


async def run_throughput(client: Client, ids: list[int], concurrency: int) -> None:
    queue = deque(ids)

    async def worker() -> None:
        while queue:
            await client.import_one("throughput", queue.popleft(), None, "single")

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def run_mixed(
    client: Client, ids: list[int], concurrency: int, read_pause: tuple[float, float] = (0, 0)
) -> None:
    """`concurrency` clients import and read in a closed loop until every id is settled; with
    `read_pause`, each pauses a random `read_pause[0]`-`read_pause[1]` s after a read (a
    person reading what they asked for), imports stay unpaced, and each starts at a random
    moment of the first `read_pause[1]` s (people do not all click at the same instant; started
    together, the first reads of 32 clients queued for the four read connections)."""
    rng = client.rng
    work = MixedWork(ids, rng, client.ledger)
    kinds, weights = list(MIX), list(MIX.values())

    async def worker() -> None:
        if read_pause[1] > 0:
            await asyncio.sleep(rng.uniform(0, read_pause[1]))
        while not work.finished:
            kind = rng.choices(kinds, weights)[0]
            if kind == "import" and work.in_flight and rng.random() < REPEAT_IN_FLIGHT:
                # The same id again while another request holds it: 423 expected.
                pending_id = rng.choice(list(work.in_flight))
                strategy = rng.choices(STRATEGIES, FIRST_WEIGHTS)[0]
                await client.import_one("mixed", pending_id, strategy, "repeat")
            elif kind == "import" and (task := work.take()) is not None:
                status = await client.import_one("mixed", *task, "single")
                work.settle(*task, status)
            elif kind == "batch" and (first := work.take()) is not None:
                tasks = [first]
                size = rng.randint(2, 5)
                while len(tasks) < size and (task := work.take()) is not None:
                    tasks.append(task)
                strategy = rng.choices(STRATEGIES, FIRST_WEIGHTS)[0]
                answers = await client.import_batch("mixed", [t[0] for t in tasks], strategy)
                status_of = {a.pending_id: a.status for a in answers}
                for pending_id, _ in tasks:
                    work.settle(pending_id, strategy, status_of.get(pending_id, -1))
            else:
                if kind in ("import", "batch"):
                    kind = rng.choice(["pending", "samples", "image", "models"])
                await client.read_something("mixed", kind)
                if read_pause[1] > 0:
                    await asyncio.sleep(rng.uniform(*read_pause))

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def mixed_pause(args: argparse.Namespace) -> tuple[float, float]:
    """The mixed phase's pause after a read, in seconds ((0, 0): none, the closed loop)."""
    low, _, high = args.mixed_read_pause_ms.partition(",")
    return float(low) / 1000, float(high or low) / 1000


async def drive(args: argparse.Namespace, seed: Seed, server: ServerProcess) -> dict[str, Any]:
    """Stage 1, the alone imports, then both load phases with the health probe running."""
    assert server.process is not None
    pid = server.process.pid
    rng = random.Random(args.seed + 1)
    ledger = Ledger()
    connector = aiohttp.TCPConnector(limit=args.concurrency + 8)
    timeout = aiohttp.ClientTimeout(total=1800)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        client = Client(server.url, session, ledger, rng)
        started = time.monotonic()
        status, data = await client.call(
            "stage1",
            "POST /api/migration/migrate_legacy_db",
            "POST",
            "/api/migration/migrate_legacy_db",
            {
                "legacy_db_path": str(seed.legacy.db_path),
                "legacy_images_dir": str(seed.legacy.images_dir),
            },
        )
        stage1_wall = time.monotonic() - started
        if status != 200:
            raise SystemExit(f"stage 1 failed: {status} {data[:500]!r}")
        stage1 = json.loads(data)
        for lib in seed.library.values():
            client.images[lib.sha256] = []

        # Alone: one import at a time, server CPU before and after.
        meter = CpuMeter(pid)
        quiet: dict[str, CpuShares] = {}
        warmup = seed.ids("warmup")
        for pending_id in warmup:
            await client.import_one("alone", pending_id, None, "single")
        quiet["alone"] = await asyncio.to_thread(
            wait_until_quiet, meter, args.quiet_wait, args.quiet_cores
        )
        alone_cpu: list[float] = []
        alone_wall: list[float] = []
        alone = Phase("alone", started=time.monotonic())
        first, sched = meter.snapshot(), meter.sched()
        for pending_id in seed.ids("alone"):
            before, wall = process_cpu_seconds(pid), time.perf_counter()
            await client.import_one("alone", pending_id, None, "single")
            alone_wall.append(time.perf_counter() - wall)
            alone_cpu.append(process_cpu_seconds(pid) - before)
        last = meter.snapshot()
        alone.ended, alone.cpu = time.monotonic(), last[2] - first[2]
        alone.shares = CpuMeter.shares(first, last)
        alone.shares.add_sched(pid, sched, meter.sched(), alone.wall)
        alone.promotions = len(alone_cpu)

        probe, stop, receiver = start_health_probe(server.port, args.health_interval_ms / 1000)
        meter.probe_pid = probe.pid
        await asyncio.sleep(1.0)  # the probe starts
        quiet["load"] = await asyncio.to_thread(
            wait_until_quiet, meter, args.quiet_wait, args.quiet_cores
        )
        idle = Phase("idle", started=time.monotonic())
        await asyncio.sleep(1.0)
        idle.ended = time.monotonic()

        phases = [alone, idle]
        for name, runner, ids in (
            ("throughput", run_throughput, seed.ids("throughput")),
            (
                "mixed",
                functools.partial(run_mixed, read_pause=mixed_pause(args)),
                seed.ids("mixed"),
            ),
        ):
            phase = Phase(name)
            before_answers = len(ledger.answers)
            first, sched = meter.snapshot(), meter.sched()
            phase.started = time.monotonic()
            # People browse while the imports run (issue 15); the mixed phase's closed-loop
            # clients read too, as fast as they are answered.
            work = runner(client, ids, args.concurrency)
            await load_reads.while_browsing(client, name, args, work)
            phase.ended = time.monotonic()
            last = meter.snapshot()
            phase.cpu = last[2] - first[2]
            phase.shares = CpuMeter.shares(first, last)
            phase.shares.add_sched(meter.server_pid or 0, sched, meter.sched(), phase.wall)
            phase.promotions = sum(1 for a in ledger.answers[before_answers:] if a.status == 200)
            phases.append(phase)
        stop.set()
        samples = await asyncio.to_thread(receiver.recv)
        await asyncio.to_thread(probe.join, 10)
    return {
        "client": client,
        "stage1": stage1,
        "stage1_wall": stage1_wall,
        "alone_cpu": alone_cpu,
        "alone_wall": alone_wall,
        "phases": phases,
        "health": samples,
        "quiet": quiet,
    }


# --- checking --------------------------------------------------------------------------------


def check_invariants(
    seed: Seed, ledger: Ledger, exit_code: int | None, log_text: str
) -> tuple[list[str], dict[str, Any]]:
    problems: list[str] = []
    facts: dict[str, Any] = {}
    if exit_code != 0:
        problems.append(f"server exit code after SIGTERM: {exit_code}")
    locked = len(re.findall("database is locked", log_text, re.IGNORECASE))
    tracebacks = log_text.count("Traceback")
    server_5xx = len(re.findall(r'" 5\d\d ', log_text))
    facts.update(
        server_exit_code=exit_code,
        db_locked_lines=locked,
        tracebacks=tracebacks,
        access_log_5xx=server_5xx,
    )
    if locked:
        problems.append(f'"database is locked" appears {locked} times in the server log')
    if tracebacks:
        problems.append(f"{tracebacks} tracebacks in the server log")
    if server_5xx:
        problems.append(f"{server_5xx} 5xx answers in the server's access log")

    for first, second in ledger.double:
        problems.append(f"id {first.pending_id} got two successful answers: {first} and {second}")
    library_shas = {lib.sha256 for lib in seed.library.values()}
    imported_by_sha: dict[str, list[int]] = defaultdict(list)
    for pending_id, answer in ledger.resolved.items():
        spec = seed.pending[pending_id]
        if answer.sha256 != spec.sha256:
            problems.append(f"id {pending_id} answered sha256 {answer.sha256}, not {spec.sha256}")
        if answer.action not in ACTIONS:
            problems.append(f"id {pending_id}: unknown action {answer.action}")
        if answer.action == "imported":
            imported_by_sha[spec.sha256].append(pending_id)
    for sha, ids in imported_by_sha.items():
        if len(ids) > 1 or sha in library_shas:
            problems.append(
                f"content {sha[:12]} was 'imported' by {ids} (library: {sha in library_shas})"
            )
    for pending_id, answer in ledger.resolved.items():
        sha = seed.pending[pending_id].sha256
        if answer.action != "imported" and sha not in library_shas and sha not in imported_by_sha:
            problems.append(f"id {pending_id} was {answer.action} without an existing model")

    by_id = ledger.by_id()
    with sqlite3.connect(f"file:{seed.data_dir / 'modelshelf.db'}?mode=ro", uri=True) as conn:
        models = {r[0] for r in conn.execute("SELECT sha256 FROM models")}
        model_rows = conn.execute("SELECT count(*) FROM models").fetchone()[0]
        still_pending = {r[0] for r in conn.execute("SELECT id FROM pending_import")}
        pending_images = dict(conn.execute("SELECT pending_id, ext FROM pending_images").fetchall())
        pending_tags: dict[int, set[int]] = defaultdict(set)
        for model_id, tag in conn.execute("SELECT model_id, tag_id FROM pending_model_tags"):
            pending_tags[model_id].add(tag)
        image_counts = dict(
            conn.execute("SELECT model_hash, count(*) FROM images GROUP BY model_hash").fetchall()
        )
        model_tags: dict[str, set[int]] = defaultdict(set)
        for sha, tag in conn.execute("SELECT model_hash, tag_id FROM model_tags"):
            model_tags[sha].add(tag)
        history = conn.execute("SELECT count(*) FROM model_history").fetchone()[0]

    outcomes: Counter[str] = Counter()
    for spec in seed.pending.values():
        answers = by_id.get(spec.id, [])
        resolved = ledger.resolved.get(spec.id)
        if resolved is not None:
            outcomes[str(resolved.action)] += 1
            if spec.id in still_pending:
                problems.append(f"id {spec.id} was {resolved.action} but is still pending")
        elif spec.id not in still_pending:
            problems.append(f"id {spec.id} left pending without any successful answer (lost)")
        elif not any(a.status == 409 for a in answers):
            problems.append(f"id {spec.id} is still pending but never got a 409: {answers}")
        else:
            outcomes["pending after 409"] += 1
            kept = seed.data_dir / "images" / "pending" / f"{spec.id}.{pending_images.get(spec.id)}"
            original = seed.legacy.images_dir / spec.image
            if spec.id not in pending_images or read_or_none(kept) != original.read_bytes():
                problems.append(f"id {spec.id} is still pending but its image changed or went")
            if pending_tags[spec.id] != set(spec.tags):
                problems.append(f"id {spec.id} is still pending but its tags changed")
        if any(a.status == 404 for a in answers) and resolved is None:
            problems.append(f"id {spec.id} got a 404 but nobody resolved it")
        if spec.pool != "mixed" and (resolved is None or resolved.action != "imported"):
            problems.append(f"{spec.pool} id {spec.id} was not simply imported: {answers}")
    facts["outcomes"] = dict(outcomes)

    expected_models = library_shas | set(imported_by_sha)
    if models != expected_models or model_rows != len(expected_models):
        problems.append(
            f"models table has {model_rows} rows; expected exactly {len(expected_models)} "
            f"(missing {len(expected_models - models)}, unexpected {len(models - expected_models)})"
        )
    expected_images: Counter[str] = Counter()
    for lib in seed.library.values():
        expected_images[lib.sha256] += len(lib.images)
    for pending_id, answer in ledger.resolved.items():
        if answer.action in ("imported", "merged"):
            expected_images[seed.pending[pending_id].sha256] += 1
        if answer.action != "deleted":
            missing = (
                set(seed.pending[pending_id].tags) - model_tags[seed.pending[pending_id].sha256]
            )
            if missing:
                problems.append(f"id {pending_id} ({answer.action}) lost tags {sorted(missing)}")
    for sha in expected_models:
        if image_counts.get(sha, 0) != expected_images[sha]:
            problems.append(
                f"model {sha[:12]} has {image_counts.get(sha, 0)} images, "
                f"expected {expected_images[sha]}"
            )
    changes = outcomes["overridden"] + outcomes["merged"]
    if history != changes:
        problems.append(f"model_history has {history} rows, expected {changes}")
    try:
        integrity = check_library(seed.data_dir)
    except sqlite3.OperationalError as exc:
        # A server from an older commit (--server-env PYTHONPATH=...) made an older schema,
        # which today's check cannot read; the checks above still ran.
        print(f"  check_library skipped: the data dir has an older schema ({exc})")
        integrity = []
    problems += [f"check_library: {p}" for p in integrity]
    facts.update(
        models=model_rows,
        still_pending=len(still_pending),
        images=sum(image_counts.values()),
        history_rows=history,
        check_library_problems=len(integrity),
    )
    return problems, facts


def read_or_none(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


# --- reporting -------------------------------------------------------------------------------


def endpoint_rows(
    client: Client,
    health: list[tuple[float, float, int]],
    phases: list[Phase],
    stage1: bool = True,
) -> list[dict[str, Any]]:
    rows = []
    windows = {p.name: p for p in phases}
    for name in ("stage1", *windows) if stage1 else windows:
        keys: Iterable[tuple[str, str]] = sorted(k for k in client.latencies if k[0] == name)
        for key in keys:
            values = client.latencies[key]
            rows.append(_row(name, key[1], values, client.statuses[key]))
        phase = windows.get(name)
        in_phase = [s for s in health if phase and phase.started <= s[0] < phase.ended]
        if in_phase:
            statuses = Counter(s[2] for s in in_phase)
            rows.append(_row(name, EP_HEALTH, [s[1] for s in in_phase], statuses))
    return rows


def _row(phase: str, endpoint: str, values: list[float], statuses: Counter[int]) -> dict[str, Any]:
    return {
        "phase": phase,
        "endpoint": endpoint,
        "n": len(values),
        "p50_ms": percentile(values, 50) * 1000,
        "p95_ms": percentile(values, 95) * 1000,
        "p99_ms": percentile(values, 99) * 1000,
        "max_ms": max(values) * 1000,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    print(
        f"  {'phase':<10} {'endpoint':<46} {'n':>6} {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}"
        "  statuses"
    )
    for r in rows:
        statuses = " ".join(f"{k}:{v}" for k, v in r["statuses"].items())
        print(
            f"  {r['phase']:<10} {r['endpoint']:<46} {r['n']:>6} {r['p50_ms']:>8.1f}"
            f" {r['p95_ms']:>8.1f} {r['p99_ms']:>8.1f} {r['max_ms']:>8.1f}  {statuses}"
        )


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": len(os.sched_getaffinity(0)),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "libvips": ".".join(str(pyvips.version(i)) for i in range(3)),
        "kernel": platform.release(),
    }


# --- main ------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pending", type=int, default=300, help="pending models (default 300)")
    parser.add_argument("--concurrency", type=int, default=32, help="clients (default 32)")
    parser.add_argument(
        "--model-mib", type=int, default=32, help="model file size in MiB (default 32)"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--mixed-read-pause-ms",
        default="0",
        help="LOW,HIGH: a mixed-phase client pauses a random LOW-HIGH ms after each read"
        " (default 0: a closed loop, reads as fast as answered)",
    )
    parser.add_argument(
        "--library", type=int, default=30, help="hashed models already in the library (30)"
    )
    parser.add_argument(
        "--alone", type=int, default=8, help="ids imported one at a time for the bound (8)"
    )
    parser.add_argument(
        "--throughput-share",
        type=float,
        default=0.4,
        help="share of pending ids (alone ones included) in the pure-import phase (0.4)",
    )
    parser.add_argument(
        "--dup-fraction",
        type=float,
        default=0.25,
        help="share of pending ids that copy another model's file (0.25)",
    )
    parser.add_argument(
        "--image-size",
        type=lambda s: tuple(int(v) for v in s.lower().split("x")),
        default=(1024, 1536),
        help="example image size WxH (1024x1536)",
    )
    parser.add_argument("--image-pool", type=int, default=8, help="distinct JPEGs (8; PNGs: half)")
    parser.add_argument(
        "--health-interval-ms", type=float, default=20.0, help="probe period (20 ms)"
    )
    parser.add_argument(
        "--health-p99-ms", type=float, default=10.0, help="target for the probe's p99 (10 ms)"
    )
    parser.add_argument(
        "--target-share", type=float, default=0.75, help="target share of the CPU bound (0.75)"
    )
    load_reads.add_arguments(parser)
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the server, e.g. MODELSHELF_WORKERS=3 (repeatable)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60.0,
        help="before measuring, wait up to this many seconds for other processes to use less"
        " than --quiet-cores (60)",
    )
    parser.add_argument(
        "--quiet-cores", type=float, default=0.15, help="see --quiet-wait (0.15 cores)"
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help="record inside the server where requests wait (bench/tracing) and print it",
    )
    parser.add_argument("--work-dir", type=Path, help="where to seed (default: a new temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder afterwards")
    parser.add_argument("--json", type=Path, help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    if args.pending < args.alone + 10:
        parser.error("--pending must exceed --alone by at least 10")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    info = machine()
    cores = info["cores"]
    print(f"modelshelf load test, {datetime.now(UTC).isoformat(timespec='seconds')}")
    print(f"  command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print("  machine: " + ", ".join(f"{k} {v}" for k, v in info.items()))
    work = args.work_dir or Path(tempfile.mkdtemp(prefix="modelshelf-load-"))
    work.mkdir(parents=True, exist_ok=True)
    if any(work.iterdir()):
        raise SystemExit(f"{work} is not empty")
    server: ServerProcess | None = None
    try:
        started = time.monotonic()
        seed = seed_library(args, work)
        os.sync()
        sizes = [s.size for s in seed.pending.values()]
        print(
            f"seeded {len(seed.pending)} pending models ({sum(sizes) / 2**30:.1f} GiB,"
            f" {min(sizes) / MIB:.0f}-{max(sizes) / MIB:.0f} MiB), {len(seed.library)} library"
            f" models, in {time.monotonic() - started:.1f} s, under {work}"
        )
        shares = Counter(s.pool for s in seed.pending.values())
        copies = Counter(s.copy_of for s in seed.pending.values() if s.copy_of)
        print(
            f"  pools: {dict(shares)}; {sum(copies.values())} pending model files are copies"
            f" of another's ({copies['library']} of a library model's)"
        )
        alone_ids = seed.ids("alone")
        wait_until_quiet(CpuMeter(), args.quiet_wait, args.quiet_cores)
        hash_cpu, render_cpu = inprocess_cost(seed, alone_ids, work / "scratch")

        env = dict(item.split("=", 1) for item in args.server_env)
        trace = load_trace.server_env(work / "trace.json") if args.trace else {}
        server = ServerProcess(seed.data_dir, work / "server.log", **env, **trace).start()
        run = asyncio.run(drive(args, seed, server))
        server.signal(signal.SIGTERM)
        exit_code: int | None
        try:
            exit_code = server.wait(120)
        except Exception:
            exit_code = None
        log_text = (work / "server.log").read_text(errors="replace")
        client: Client = run["client"]
        problems, facts = check_invariants(seed, client.ledger, exit_code, log_text)
        run["trace"] = load_trace.summarise(work / "trace.json", run["phases"])
        server = None
        if args.job_phases:
            jobs = load_reads.run_job_phases(args, seed.data_dir, work, env)
            problems += jobs["problems"]
            run["jobs"] = jobs
        return report(args, info, cores, seed, run, hash_cpu, render_cpu, problems, facts)
    finally:
        if server is not None:
            server.kill()
        if not args.keep and args.work_dir is None:
            shutil.rmtree(work, ignore_errors=True)
        elif args.keep or args.work_dir is not None:
            print(f"work folder kept: {work}")


def report(
    args: argparse.Namespace,
    info: dict[str, Any],
    cores: int,
    seed: Seed,
    run: dict[str, Any],
    hash_cpu: float,
    render_cpu: float,
    problems: list[str],
    facts: dict[str, Any],
) -> int:
    client: Client = run["client"]
    phases: list[Phase] = run["phases"]
    health = run["health"]
    stage1 = run["stage1"]
    print(
        f"stage 1 over HTTP: {run['stage1_wall']:.1f} s, db {stage1['db_migration']},"
        f" images {stage1['image_migration']}, problems {len(stage1['problems'])}"
    )
    if stage1["problems"]:
        problems.append(f"stage 1 reported problems: {stage1['problems'][:5]}")

    alone_cpu = sum(run["alone_cpu"]) / len(run["alone_cpu"])
    alone_wall = sum(run["alone_wall"]) / len(run["alone_wall"])
    bound = cores / alone_cpu
    inproc = cores / (hash_cpu + render_cpu)
    throughput = next(p for p in phases if p.name == "throughput")
    mixed = next(p for p in phases if p.name == "mixed")
    rate = throughput.promotions / throughput.wall
    share = rate / bound
    print()
    print(
        f"one import alone ({len(run['alone_cpu'])} ids, {args.model_mib} MiB + JPEG"
        f" {args.image_size[0]}x{args.image_size[1]}):"
    )
    print(
        f"  server CPU per import   {alone_cpu * 1000:7.1f} ms"
        f"  (min {min(run['alone_cpu']) * 1000:.0f}, max {max(run['alone_cpu']) * 1000:.0f};"
        f" wall {alone_wall * 1000:.0f} ms)"
    )
    print(
        f"  in-process hash+render  {(hash_cpu + render_cpu) * 1000:7.1f} ms"
        f"  (hash_file {hash_cpu * 1000:.1f} ms, render_renditions {render_cpu * 1000:.1f} ms)"
    )
    print(
        f"  CPU bound = {cores} cores / {alone_cpu * 1000:.1f} ms = {bound:.2f} imports/s"
        f"  (from in-process hash+render alone: {inproc:.2f} imports/s)"
    )
    print()
    print(
        f"throughput phase: {throughput.promotions} null-strategy imports of distinct contents"
        f" at C={args.concurrency}"
    )
    print(
        f"  {throughput.promotions} in {throughput.wall:.1f} s = {rate:.2f} imports/s"
        f" = {share:.0%} of the CPU bound ({rate / inproc:.0%} of the in-process one)"
    )
    print(
        f"  server CPU {throughput.cpu:.1f} s = {throughput.cpu / throughput.wall:.2f} cores busy,"
        f" {throughput.cpu / max(1, throughput.promotions) * 1000:.0f} ms CPU per import"
    )
    alone_phase = next(p for p in phases if p.name == "alone")
    noisy = []
    for phase in (alone_phase, throughput, mixed):
        assert phase.shares is not None
        print(f"  machine CPU during {phase.name}: {phase.shares.describe()}")
        if phase.shares.others > args.quiet_cores * 2:
            noisy.append(phase.name)
    if noisy:
        print(
            f"  WARNING: other processes used CPU during {', '.join(noisy)}; the figures of"
            " a shared machine understate the service. Run it again on a quiet machine."
        )
    mixed_rate = mixed.promotions / mixed.wall
    low, high = mixed_pause(args)
    pacing = (
        f"paced: a pause of {low * 1000:.0f}-{high * 1000:.0f} ms after each read"
        if high > 0
        else "unpaced: a closed loop, each read as soon as the last answer came"
    )
    print(f"mixed phase clients' reads {pacing}")
    print(
        f"mixed phase: {mixed.promotions} promotions (any action) in {mixed.wall:.1f} s ="
        f" {mixed_rate:.2f} /s; server CPU {mixed.cpu / mixed.wall:.2f} cores busy"
    )
    actions = Counter(a.action for a in client.ledger.answers if a.status == 200)
    print(f"  successful answers by action: {dict(actions)}")
    vias = Counter((a.via, a.status) for a in client.ledger.answers)
    print(f"  import answers by (via, status): {dict(sorted(vias.items()))}")
    print()
    rows = endpoint_rows(client, health, phases)
    if "jobs" in run:
        jobs = run["jobs"]
        rows += endpoint_rows(jobs["client"], jobs["health"], jobs["phases"], stage1=False)
        for phase in jobs["phases"]:
            job = jobs["jobs"][phase.name]
            print(
                f"{phase.name} phase: job {job['state']} in {phase.wall:.1f} s,"
                f" progress {job['progress']}; server CPU {phase.cpu / phase.wall:.2f} cores busy"
            )
            assert phase.shares is not None
            print(f"  machine CPU during {phase.name}: {phase.shares.describe()}")
    print()
    print("latency per endpoint (ms):")
    print_table(rows)
    trace_rows = run.get("trace", []) + run.get("jobs", {}).get("trace", [])
    load_trace.print_summary(trace_rows)

    bad_health = [s for s in health if s[2] != 200]
    if bad_health:
        problems.append(f"{len(bad_health)} health probes did not answer 200")
    fivexx = {
        f"{k[0]} {k[1]}": sum(v for s, v in c.items() if s >= 500)
        for k, c in client.statuses.items()
    }
    if any(fivexx.values()):
        problems.append(f"5xx answers: { {k: v for k, v in fivexx.items() if v} }")
    if client.errors:
        problems.append(f"{len(client.errors)} client errors, e.g. {client.errors[:3]}")
    if client.unexpected:
        problems.append(
            f"{len(client.unexpected)} unexpected answers, e.g. {client.unexpected[:5]}"
        )

    targets: list[tuple[str, bool]] = [
        (
            f"throughput {rate:.2f} imports/s >= {args.target_share:.0%} of the CPU bound"
            f" {bound:.2f} ({share:.0%})",
            share >= args.target_share,
        )
    ]
    read_phases = ["throughput", "mixed", *(p.name for p in run.get("jobs", {}).get("phases", []))]
    targets += load_reads.read_targets(rows, read_phases, args.read_p99_ms, args.health_p99_ms)
    print()
    print("invariants:")
    print(f"  outcomes per pending id: {facts.get('outcomes')}")
    print(
        f"  server exit code after SIGTERM {facts.get('server_exit_code')},"
        f" models {facts.get('models')}, still pending {facts.get('still_pending')}, images"
        f" {facts.get('images')}, history rows {facts.get('history_rows')}, check_library problems"
        f" {facts.get('check_library_problems')}, 'database is locked' lines"
        f" {facts.get('db_locked_lines')}, tracebacks {facts.get('tracebacks')}, access-log 5xx"
        f" {facts.get('access_log_5xx')}"
    )
    for problem in problems[:50]:
        print(f"  FAIL {problem}")
    if len(problems) > 50:
        print(f"  ... and {len(problems) - 50} more")
    print(f"  {'all invariants hold' if not problems else f'{len(problems)} invariant failures'}")
    print("targets:")
    for text, ok in targets:
        print(f"  {'PASS' if ok else 'MISS'} {text}")

    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "date": datetime.now(UTC).isoformat(timespec="seconds"),
                    "command": " ".join(sys.argv),
                    "machine": info,
                    "options": {k: str(v) for k, v in vars(args).items()},
                    "alone_cpu_ms": alone_cpu * 1000,
                    "inprocess_hash_ms": hash_cpu * 1000,
                    "inprocess_render_ms": render_cpu * 1000,
                    "cpu_bound": bound,
                    "cpu_bound_inprocess": inproc,
                    "throughput_imports_per_s": rate,
                    "share_of_bound": share,
                    "mixed_promotions_per_s": mixed_rate,
                    "phases": [asdict(p) for p in phases + run.get("jobs", {}).get("phases", [])],
                    "noisy_phases": noisy,
                    "endpoints": rows,
                    "inside_server": trace_rows,
                    "invariant_failures": problems,
                    "facts": facts,
                    "targets": [{"target": t, "met": ok} for t, ok in targets],
                },
                indent=2,
            )
        )
    if problems:
        return 1
    return 0 if all(ok for _, ok in targets) else 2


if __name__ == "__main__":
    sys.exit(main())
