"""Serving one rendition over HTTP (issue 13, item 4), against a bare aiohttp handler.

Run from the repository root:

    .venv/bin/python bench/serving.py [--requests 1000] [--rounds 50] [--src DIR]

It renders one example image with pyvips (a 768x1024 picture: a gradient with grain), puts its
renditions in a fresh data directory beside a model row, and starts two servers, each a process
of its own running this same Python:

  modelshelf  `python -m modelshelf serve` on that data directory, serving
              `GET /api/images/<hash>_0.webp` (the high rendition);
  bare        an aiohttp app whose one handler answers the same file's bytes, read into memory
              at start, with Content-Type image/webp and nothing else (no validators): it
              stands in for the peer's way of serving.

One client (aiohttp, one keep-alive connection per server, requests one after another) warms
both up, then measures `--requests` GETs of each, in `--rounds` rounds that alternate which
server goes first, so both see the same load. Every answer is checked (status, the file's
bytes). It prints p50/p99/mean/max per server, the ratios, and PASS or MISS against the target
of the issue: modelshelf's p50 and p99 at most the bare handler's. A second table measures the
revalidation a browser makes of a `no-cache` image (If-None-Match, answered 304), for which the
bare handler has no counterpart.

`--event-loop asyncio|uvloop` sets the modelshelf server's `event_loop` setting; the bare
handler runs on the same kind of loop (modelshelf's default when it is not given), so that the
comparison measures the servers, not their loops.
`--src DIR` runs modelshelf from another source tree (PYTHONPATH=DIR), e.g. an older commit
exported with `git archive <commit> src | tar -x -C /tmp/old`, to measure it in the same way.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pyvips
from aiohttp import web

from figures import machine, percentile
from modelshelf.config import Settings
from modelshelf.images import render_renditions
from modelshelf.renditions import qualities
from modelshelf.serving import event_loop_factory

SHA = hashlib.sha256(b"serving-bench-model").hexdigest()
WIDTH, HEIGHT = 768, 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def render_example(folder: Path) -> dict[str, Path]:
    """The renditions of one 768x1024 picture (a gradient with grain, so WebP has work)."""
    folder.mkdir(parents=True)
    original = folder / "original.png"
    ramp = pyvips.Image.xyz(WIDTH, HEIGHT)
    red = ramp[0] * (255 / WIDTH)
    green = ramp[1] * (255 / HEIGHT)
    grain = pyvips.Image.gaussnoise(WIDTH, HEIGHT, sigma=4, mean=0, seed=13)
    picture = red.bandjoin([green, (red + green) / 2]) + grain
    picture.cast("uchar").copy(interpretation="srgb").write_to_file(str(original))
    targets = {q: folder / f"{q}.webp" for q in qualities()}
    render_renditions(original, targets)
    return targets


def wait_healthy(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer: {log.read_text()}")


def start_modelshelf(
    data_dir: Path,
    src: Path | None,
    log: Path,
    event_loop: str | None = None,
    settings: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m modelshelf serve` on a free port with built-in defaults, but for `settings`
    (MODELSHELF_* variables); returns once it answers /api/health."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELSHELF_")}
    env.update(settings or {})
    if src is not None:
        env["PYTHONPATH"] = str(src)
    if event_loop is not None:
        env["MODELSHELF_EVENT_LOOP"] = event_loop
    command = [sys.executable, "-m", "modelshelf", "serve", "--data-dir", str(data_dir)]
    command += ["--port", str(port), "--config-dir", str(data_dir / "no-config")]
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(f"{url}/api/health", process, log)
    return process, url


def start_bare(file: Path, log: Path, event_loop: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, __file__, "--bare", str(file), "--port", str(port)]
    command += ["--event-loop", event_loop]
    with log.open("ab") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    wait_healthy(f"{url}/health", process, log)
    return process, url


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def serve_bare(file: Path, port: int, event_loop: str) -> None:
    """The reference: the file's bytes from memory, with the right Content-Type, served on
    the same kind of event loop as the modelshelf server it is compared with."""
    data = file.read_bytes()

    async def image(request: web.Request) -> web.Response:
        return web.Response(body=data, content_type="image/webp")

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/api/images/{filename}", image)
    app.router.add_get("/health", health)
    loop = (event_loop_factory(event_loop) or asyncio.new_event_loop)()
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None, loop=loop)


def build_library(root: Path, src: Path | None) -> tuple[Path, dict[str, Path]]:
    """A data directory (schema made by the server itself) with one model and one image."""
    data_dir = root / "data"
    data_dir.mkdir()
    process, _url = start_modelshelf(data_dir, src, root / "modelshelf-setup.log")
    stop(process)
    with sqlite3.connect(data_dir / "modelshelf.db") as conn:
        conn.execute(
            "INSERT INTO models(sha256, path, name, type, size_bytes, created_at, meta_json)"
            " VALUES (?, '/models/bench.safetensors', 'bench', 'lora', 1, 1700000000000, '{}')",
            (SHA,),
        )
    renditions = render_example(root / "sources")
    for quality, path in renditions.items():
        (data_dir / "images" / f"{SHA}_0_{quality}.webp").write_bytes(path.read_bytes())
    return data_dir, renditions


async def timed(count: int, one: Callable[[], Awaitable[None]]) -> list[float]:
    """Milliseconds per call of `one()`."""
    samples: list[float] = []
    for _ in range(count):
        began = time.perf_counter_ns()
        await one()
        samples.append((time.perf_counter_ns() - began) / 1e6)
    return samples


def cpu_ns(pid: int) -> int:
    """CPU time a process's threads have run so far (nanoseconds, from the scheduler)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            total += int((task / "schedstat").read_text().split()[0])
    return total


class Target:
    """One server, one client session with one keep-alive connection."""

    def __init__(self, name: str, url: str, pid: int, *, expected: bytes) -> None:
        self.name = name
        self.url = url
        self.expected = expected
        self.pid = pid
        self.cpu_ns = 0
        self.connections = 0
        trace = aiohttp.TraceConfig()
        trace.on_connection_create_end.append(self._counted)
        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=1), trace_configs=[trace]
        )
        self.etag = ""

    async def _counted(self, *_args: object) -> None:
        self.connections += 1

    async def get(self) -> None:
        async with self.session.get(self.url) as response:
            body = await response.read()
            if response.status != 200 or body != self.expected:
                raise RuntimeError(f"{self.name}: {response.status}, {len(body)} bytes")
            self.etag = response.headers.get("ETag", "")

    async def revalidate(self) -> None:
        async with self.session.get(self.url, headers={"If-None-Match": self.etag}) as response:
            await response.read()
            if response.status != 304:
                raise RuntimeError(f"{self.name}: revalidation answered {response.status}")


def row(label: str, samples: list[float]) -> str:
    return (
        f"{label:<34} {len(samples):>6} {percentile(samples, 50):>9.3f} "
        f"{percentile(samples, 99):>9.3f} {statistics.fmean(samples):>9.3f} "
        f"{max(samples):>9.3f}"
    )


async def measure(args: argparse.Namespace, ours: Target, bare: Target) -> dict[str, list[float]]:
    per_round = args.requests // args.rounds
    for target in (ours, bare):
        for _ in range(args.warmup):
            await target.get()
    samples: dict[str, list[float]] = {ours.name: [], bare.name: []}
    for number in range(args.rounds):
        for target in (ours, bare) if number % 2 == 0 else (bare, ours):
            began = cpu_ns(target.pid)
            samples[target.name] += await timed(per_round, target.get)
            target.cpu_ns += cpu_ns(target.pid) - began
    for _ in range(args.warmup):
        await ours.revalidate()
    samples["revalidate"] = []
    for _ in range(args.rounds):
        samples["revalidate"] += await timed(per_round, ours.revalidate)
    return samples


def report(samples: dict[str, list[float]], ours: Target, bare: Target, size: int) -> bool:
    mine, theirs = samples[ours.name], samples[bare.name]
    header = f"{'GET, keep-alive, sequential':<34} {'calls':>6} {'p50 ms':>9} {'p99 ms':>9}"
    print()
    print(f"{header} {'mean ms':>9} {'max ms':>9}")
    print("-" * (len(header) + 20))
    print(row(f"modelshelf ({size:,} bytes)", mine))
    print(row("bare handler, bytes from memory", theirs))
    print(row("modelshelf, If-None-Match -> 304", samples["revalidate"]))
    print()
    p50 = percentile(mine, 50) / percentile(theirs, 50)
    p99 = percentile(mine, 99) / percentile(theirs, 99)
    print(f"ratio modelshelf / bare: p50 {p50:.2f}x, p99 {p99:.2f}x (<= 1.00 is as fast or faster)")
    print(f"connections opened: modelshelf {ours.connections}, bare {bare.connections}")
    print(
        f"server CPU per request: modelshelf {ours.cpu_ns / len(mine) / 1e3:.1f} us, "
        f"bare {bare.cpu_ns / len(theirs) / 1e3:.1f} us"
    )
    passed = p50 <= 1.0 and p99 <= 1.0
    print(f"target (p50 and p99 <= the bare handler's): {'PASS' if passed else 'MISS'}")
    return passed


async def run(
    args: argparse.Namespace, servers: dict[str, tuple[str, int]], expected: bytes
) -> tuple[dict[str, list[float]], Target, Target]:
    ours = Target("modelshelf", *servers["modelshelf"], expected=expected)
    bare = Target("bare", *servers["bare"], expected=expected)
    try:
        return await measure(args, ours, bare), ours, bare
    finally:
        await ours.session.close()
        await bare.session.close()


def bench(args: argparse.Namespace, root: Path) -> int:
    src = Path(args.src).resolve() if args.src else None
    print(f"modelshelf serving benchmark: {args.requests:,} requests each, {args.rounds} rounds")
    print(f"python {sys.version.split()[0]}, aiohttp {aiohttp.__version__}")
    print(f"modelshelf from: {src or 'the installed package'}")
    # Both servers on the same kind of event loop, or the loops' own speeds are measured.
    loop_kind = args.event_loop or Settings.model_fields["event_loop"].default
    print(f"event loop of both servers: {loop_kind}")
    print(f"machine at start: {machine()}")
    data_dir, renditions = build_library(root, src)
    served = renditions[qualities()[0]]
    ours_process, ours_url = start_modelshelf(
        data_dir, src, root / "modelshelf.log", args.event_loop
    )
    bare_process, bare_url = start_bare(served, root / "bare.log", loop_kind)
    path = f"/api/images/{SHA}_0.webp"
    try:
        samples, ours, bare = asyncio.run(
            run(
                args,
                {
                    "modelshelf": (ours_url + path, ours_process.pid),
                    "bare": (bare_url + path, bare_process.pid),
                },
                served.read_bytes(),
            )
        )
    finally:
        stop(ours_process)
        stop(bare_process)
    passed = report(samples, ours, bare, served.stat().st_size)
    print(f"machine at end: {machine()}")
    return 0 if passed else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--requests", type=int, default=1_000, help="timed GETs per server")
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--src", help="run modelshelf from this source tree (PYTHONPATH)")
    parser.add_argument(
        "--event-loop",
        choices=["uvloop", "asyncio"],
        help="the event loop of both servers (default: modelshelf's default, uvloop)",
    )
    parser.add_argument("--bare", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare:
        serve_bare(Path(args.bare), args.port, args.event_loop)
        return 0
    with tempfile.TemporaryDirectory(prefix="modelshelf-serving-") as tmp:
        return bench(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
