"""Reads while bulk work runs (issue 15): people browsing the library while imports, a scan of
model folders or stage 1 keep every core busy. Owns the browsing clients, the model tree the
scan hashes (kept in a cache folder between runs), the second legacy library stage 1 renders,
the two job phases against a restarted server, and the read-latency targets.

The job phases run after the import phases' invariants were checked, on the same data
directory served again with `MODELSHELF_MODEL_ROOTS` pointing at the tree: a scan and a second
stage 1 add models the import invariants know nothing of.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import random
import shutil
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
from tests.server import ServerProcess

import load_trace
from legacy_import import generate
from load_client import EP_HEALTH, PERSON, READ_ENDPOINTS, Client, Ledger, Phase
from load_measure import CpuMeter, start_health_probe, wait_until_quiet
from scan import write_model

MIB = 1024 * 1024
# What a person browsing does next: the grid, a model's page, its images, the pending queue.
READ_MIX = {"samples": 0.25, "image": 0.30, "models": 0.15, "model": 0.15, "pending": 0.15}
ENDED = ("done", "failed", "cancelled")
# A browser opens at most 6 connections to one host (HTTP/1.1), and says it is one.
BROWSER_CONNECTIONS = 6
BROWSER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


async def browse(
    client: Client, phase: str, people: int, think_s: float, stop: asyncio.Event
) -> None:
    """`people` clients, each making one read of READ_MIX, then pausing about `think_s`,
    until `stop` is set. Paced, not a closed loop: a person reads a page before the next."""
    rng = client.rng
    kinds, weights = list(READ_MIX), list(READ_MIX.values())

    async def person() -> None:
        while not stop.is_set():
            await client.read_something(phase, rng.choices(kinds, weights)[0], PERSON)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), rng.uniform(0.5, 1.5) * think_s)

    await asyncio.gather(*(person() for _ in range(people)))


async def while_browsing(client: Client, phase: str, args: argparse.Namespace, work: Any) -> Any:
    """Await `work` while `args.readers` people browse under the name `phase`.

    The people browse through a session of their own, as one browser beside a script: at
    most 6 connections to the server, never one the import clients used, and a browser's
    User-Agent (the server ranks reads by address and User-Agent). Their figures go to
    `client`'s."""
    stop = asyncio.Event()
    connector = aiohttp.TCPConnector(limit=BROWSER_CONNECTIONS)
    headers = {"User-Agent": BROWSER_AGENT}
    timeout = client.session.timeout
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as own:
        browser = dataclasses.replace(client, session=own)
        think_s = args.think_ms / 1000
        people = asyncio.ensure_future(browse(browser, phase, args.readers, think_s, stop))
        try:
            return await work
        finally:
            stop.set()
            await people


def scan_tree(cache: Path, files: int, mib: int) -> Path:
    """`files` safetensors files of `mib` MiB (real bytes, distinct contents) under
    `cache`, written once and reused by later runs; returns the folder to scan."""
    root = cache / f"scan-{files}x{mib}MiB"
    complete = root / ".complete"
    if not complete.exists():
        shutil.rmtree(root, ignore_errors=True)
        for index in range(files):
            path = root / "checkpoints" / f"bench_{index:02d}.safetensors"
            write_model(path, mib * MIB, 10_000 + index)
        complete.write_text("written by bench/load_reads.py\n")
    return root / "checkpoints"


async def job_phase(
    client: Client,
    meter: CpuMeter,
    name: str,
    path: str,
    body: Any,
    args: argparse.Namespace,
    headers: dict[str, str] | None = None,
) -> tuple[Phase, dict[str, Any]]:
    """Start a job with POST `path`, browse until it ends; the phase's CPU figures and the
    job as it ended. Raises SystemExit if the job does not start."""
    phase = Phase(name)
    first, sched = meter.snapshot(), meter.sched()
    phase.started = time.monotonic()

    async def run_job() -> dict[str, Any]:
        status, data = await client.call(name, f"POST {path}", "POST", path, body, headers)
        if status != 202:
            raise SystemExit(f"{path} did not start a job: {status} {data[:500]!r}")
        job: dict[str, Any] = json.loads(data)["job"]
        while job["state"] not in ENDED:
            await asyncio.sleep(0.25)
            url = f"/api/jobs/{job['id']}"
            status, data = await client.call(name, "GET /api/jobs/{id}", "GET", url)
            if status == 200:
                job = json.loads(data)
        return job

    job = await while_browsing(client, name, args, run_job())
    phase.ended = time.monotonic()
    last = meter.snapshot()
    phase.cpu = last[2] - first[2]
    phase.shares = CpuMeter.shares(first, last)
    phase.shares.add_sched(meter.server_pid or 0, sched, meter.sched(), phase.wall)
    return phase, job


def prepare(args: argparse.Namespace, data_dir: Path) -> tuple[Path, Path]:
    """The scan tree (from the cache) and a second legacy library inside the legacy root;
    returns (scan folder, legacy library folder)."""
    started = time.monotonic()
    tree = scan_tree(args.scan_cache, args.scan_files, args.scan_mib)
    legacy = data_dir / "legacy" / "second"
    lib = generate(legacy, args.legacy_models, args.legacy_images, args.seed)
    print(
        f"job phases: scan tree {tree} ({args.scan_files} x {args.scan_mib} MiB), second legacy"
        f" library {lib.db_path} ({args.legacy_models} models, {args.legacy_images} images),"
        f" ready in {time.monotonic() - started:.1f} s"
    )
    return tree, legacy / "legacy"


async def drive_jobs(
    args: argparse.Namespace, server: ServerProcess, legacy: Path
) -> dict[str, Any]:
    """The scan phase, then the stage 1 phase, with people browsing and the health probe."""
    assert server.process is not None
    meter = CpuMeter(server.process.pid)
    connector = aiohttp.TCPConnector(limit=args.readers + 8)
    timeout = aiohttp.ClientTimeout(total=1800)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        client = Client(server.url, session, Ledger(), random.Random(args.seed + 2))
        for _ in range(3):  # learn some models, their images and the total
            await client.read_something("warm-up", "models")
            await client.read_something("warm-up", "samples")
        probe, stop, receiver = start_health_probe(server.port, args.health_interval_ms / 1000)
        meter.probe_pid = probe.pid
        await asyncio.sleep(1.0)
        await asyncio.to_thread(wait_until_quiet, meter, args.quiet_wait, args.quiet_cores)
        scan, scan_job = await job_phase(client, meter, "scan", "/api/scan", None, args)
        body = {
            "legacy_db_path": str(legacy / "hikaze.db"),
            "legacy_images_dir": str(legacy / "images"),
        }
        stage1, stage1_job = await job_phase(
            client,
            meter,
            "stage1 job",
            "/api/migration/migrate_legacy_db",
            body,
            args,
            {"Prefer": "respond-async"},
        )
        stop.set()
        samples = await asyncio.to_thread(receiver.recv)
        await asyncio.to_thread(probe.join, 10)
    return {
        "client": client,
        "phases": [scan, stage1],
        "health": samples,
        "jobs": {"scan": scan_job, "stage1 job": stage1_job},
    }


def run_job_phases(
    args: argparse.Namespace, data_dir: Path, work: Path, env: dict[str, str]
) -> dict[str, Any]:
    """Serve `data_dir` again with the scan tree as model root and run both job phases;
    problems found (exit code, 5xx, tracebacks, jobs that did not end `done`) are in
    result["problems"]."""
    tree, legacy = prepare(args, data_dir)
    roots = f"checkpoints={tree}"
    trace_file = work / "trace-jobs.json"
    if args.trace:
        env = {**env, **load_trace.server_env(trace_file)}
    server = ServerProcess(
        data_dir, work / "server-jobs.log", MODELSHELF_MODEL_ROOTS=roots, **env
    ).start()
    try:
        result = asyncio.run(drive_jobs(args, server, legacy))
        server.signal(signal.SIGTERM)
        exit_code: int | None = server.wait(120)
    finally:
        server.kill()
    log_text = (work / "server-jobs.log").read_text(errors="replace")
    problems = []
    if exit_code != 0:
        problems.append(f"job-phase server exit code after SIGTERM: {exit_code}")
    if "Traceback" in log_text:
        problems.append("tracebacks in the job-phase server log")
    for name, job in result["jobs"].items():
        if job["state"] != "done":
            problems.append(f"{name} ended {job['state']}: {job.get('error')}")
    client: Client = result["client"]
    for (phase, endpoint), statuses in client.statuses.items():
        if any(s >= 500 for s in statuses):
            problems.append(f"5xx during {phase}: {endpoint} {dict(statuses)}")
    problems += [f"client error: {e}" for e in client.errors[:5]]
    problems += [f"unexpected answer: {u}" for u in client.unexpected[:5]]
    result["problems"] = problems
    result["trace"] = load_trace.summarise(trace_file, result["phases"])
    return result


def read_targets(
    rows: list[dict[str, Any]], phases: list[str], read_ms: float, health_ms: float
) -> list[tuple[str, bool]]:
    """PASS/MISS lines: p99 of each read endpoint of people browsing, of the mixed phase's
    closed-loop reads, and of the health probe, in each phase."""
    p99 = {(r["phase"], r["endpoint"]): r["p99_ms"] for r in rows}
    targets = []
    for phase in phases:
        endpoints = [e + PERSON for e in READ_ENDPOINTS]
        if phase == "mixed":
            endpoints += READ_ENDPOINTS
        for endpoint in (*endpoints, EP_HEALTH):
            limit = health_ms if endpoint == EP_HEALTH else read_ms
            value = p99.get((phase, endpoint), math.nan)
            targets.append(
                (
                    f"{phase:<10} {endpoint:<43} p99 {value:7.1f} ms <= {limit:.0f} ms",
                    value <= limit,
                )
            )
    return targets


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the browsing clients and of the job phases."""
    parser.add_argument(
        "--readers", type=int, default=4, help="people browsing beside bulk work (4)"
    )
    parser.add_argument(
        "--think-ms", type=float, default=50.0, help="a browsing person's pause (50 ms)"
    )
    parser.add_argument(
        "--read-p99-ms", type=float, default=25.0, help="target for the reads' p99 (25 ms)"
    )
    parser.add_argument(
        "--job-phases",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="after the import phases, browse during a scan and during stage 1 (on)",
    )
    parser.add_argument(
        "--scan-cache",
        type=Path,
        default=Path.home() / ".cache" / "modelshelf-bench",
        help="where the scan tree is kept between runs (~/.cache/modelshelf-bench)",
    )
    parser.add_argument("--scan-files", type=int, default=8, help="files in the scan tree (8)")
    parser.add_argument("--scan-mib", type=int, default=768, help="size of each (768 MiB)")
    parser.add_argument(
        "--legacy-models", type=int, default=500, help="models of the second legacy library (500)"
    )
    parser.add_argument(
        "--legacy-images", type=int, default=300, help="images stage 1 renders (300)"
    )
