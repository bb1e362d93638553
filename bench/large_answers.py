"""Large JSON answers, plain and gzipped: their bytes, and how long a client waits for them on
this machine and over a link of a given speed.

Run from the repository root (under the shared lock, as every timed run):

    flock -x /work/helpers/quiet.lock .venv/bin/python bench/large_answers.py \
        [--calls 30] [--link-mbit 1000 100] [--src DIR]

It seeds one data directory through the storage layer, as bench/ui_pending.py and
bench/ui_scale.py do: 5,000 pending models, and the collector's model (300 images, 1,000
history entries), 2,000 finished jobs, 2,000 duplicated models and 10,000 tags. It serves it
with `modelshelf serve` (a separate process) and, for each large answer the web UI asks for,
takes `--calls` requests one after another, keep-alive, with `Accept-Encoding: identity` (the
reference: the answer as it went before it could be gzipped) and with `Accept-Encoding: gzip`
(decompressed by the client, as a browser does), in turns:

  direct  to the server on 127.0.0.1: time to the answer's last byte, p50/p99;
  link    through a proxy in this process that passes the server's bytes on at each speed of
          `--link-mbit`, in megabits a second (no added latency; a wired or wireless home
          network, a reverse proxy's uplink): time to the answer's last byte, p50/p99;

and the answer's bytes on the wire. `--src DIR` serves another source tree (PYTHONPATH=DIR),
e.g. the code before answers were gzipped, to show that the plain answers did not change.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import multiprocessing
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ui_pending
import ui_scale
from figures import machine, percentile
from serving import free_port, start_modelshelf, stop
from ui_library import render_sources

READS = {
    "pending queue, 5,000, ?checks=true": "/api/migration/pending_models?checks=true",
    "history, the page the UI asks (21)": f"/api/models/{ui_scale.THE_MODEL}/history?limit=21",
    "duplicates, 2,000 models": "/api/duplicates",
    "tags, 10,000": "/api/tags",
    "jobs (50 ended listed)": "/api/jobs",
}
CODINGS = ("identity", "gzip")
CHUNK = 16 * 1024
IDLE_S = 0.005


async def pass_on(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rate: float) -> None:
    """Copy `reader` to `writer`, at most `rate` bytes a second (0: as fast as it comes)."""
    free_at = 0.0  # when the link has sent what it was given
    try:
        while data := await reader.read(CHUNK):
            writer.write(data)
            await writer.drain()
            if rate:
                now = time.perf_counter()
                # A sleep overshoots (by up to a millisecond): that time is the link's still,
                # unless the link was idle (nothing to send) for longer.
                free_at = (now if now - free_at > IDLE_S else free_at) + len(data) / rate
                if free_at > now:
                    await asyncio.sleep(free_at - now)
    finally:
        writer.close()


def run_proxy(listen_port: int, target_port: int, rate: float) -> None:
    """Serve, until killed, a proxy on 127.0.0.1:`listen_port` to `target_port` whose answers
    come at most `rate` bytes a second."""

    async def connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target_port)
        await asyncio.gather(pass_on(reader, up_writer, 0), pass_on(up_reader, writer, rate))

    async def serve() -> None:
        server = await asyncio.start_server(connect, "127.0.0.1", listen_port)
        await server.serve_forever()

    asyncio.run(serve())


@contextmanager
def slow_link(target_port: int, mbit: float) -> Iterator[str]:
    """A proxy to 127.0.0.1:`target_port` whose answers come at `mbit` megabits a second, in a
    process of its own (in this one, it would share the GIL with the client it is timed by)."""
    port = free_port()
    proxy = multiprocessing.get_context("spawn").Process(
        target=run_proxy, args=(port, target_port, mbit * 1e6 / 8), daemon=True
    )
    proxy.start()
    try:
        for _ in range(500):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            time.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        proxy.kill()
        proxy.join()


async def timed(session: aiohttp.ClientSession, url: str, coding: str) -> tuple[float, int]:
    """ms to the answer's last byte (decompressed, if gzipped) and its bytes on the wire."""
    began = time.perf_counter()
    async with session.get(url, headers={"Accept-Encoding": coding}) as response:
        assert response.status == 200, response.status
        wire = await response.read()
        if response.headers.get("Content-Encoding") == "gzip":
            gzip.decompress(wire)
    return (time.perf_counter() - began) * 1000, len(wire)


async def measure(base: str, calls: int) -> dict[str, dict[str, tuple[float, float, int]]]:
    """p50, p99 and wire bytes per read and coding, the codings taken in turns."""
    figures: dict[str, dict[str, tuple[float, float, int]]] = {}
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        for label, path in READS.items():
            samples: dict[str, list[float]] = {c: [] for c in CODINGS}
            size = dict.fromkeys(CODINGS, 0)
            for _ in range(calls + 2):
                for coding in CODINGS:
                    ms, size[coding] = await timed(session, base + path, coding)
                    samples[coding].append(ms)
            figures[label] = {
                c: (percentile(samples[c][2:], 50), percentile(samples[c][2:], 99), size[c])
                for c in CODINGS
            }
    return figures


def report(title: str, figures: dict[str, dict[str, tuple[float, float, int]]]) -> None:
    print(f"\n{title}")
    print(f"  {'answer':<38} {'plain p50/p99 ms':>18} {'gzip p50/p99 ms':>18} {'p50 x':>6}")
    for label, by in figures.items():
        (p50, p99, _), (g50, g99, _) = by["identity"], by["gzip"]
        print(f"  {label:<38} {p50:>8.1f} {p99:>8.1f}  {g50:>8.1f} {g99:>8.1f}  {p50 / g50:>6.2f}")


def report_sizes(figures: dict[str, dict[str, tuple[float, float, int]]]) -> None:
    print(f"\n  {'answer':<38} {'plain bytes':>12} {'gzip bytes':>12} {'ratio':>6}")
    for label, by in figures.items():
        plain, packed = by["identity"][2], by["gzip"][2]
        print(f"  {label:<38} {plain:>12,} {packed:>12,} {plain / packed:>6.1f}")


def seed(data_dir: Path, root: Path) -> None:
    asyncio.run(ui_pending.seed(data_dir, 5000, ui_pending.render_sources(root / "originals")))
    asyncio.run(ui_scale.seed(data_dir, ui_scale.COLLECTOR))
    sets = render_sources(root / "renditions")
    ui_scale.link_images(data_dir / "images", sets, ui_scale.COLLECTOR.images)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--link-mbit", type=float, nargs="+", default=[1000.0, 100.0])
    parser.add_argument("--src", type=Path, help="serve this source tree (PYTHONPATH)")
    args = parser.parse_args()
    print(machine())
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        began = time.perf_counter()
        seed(root / "data", root)
        print(f"seeded in {time.perf_counter() - began:.1f} s", flush=True)
        process, url = start_modelshelf(root / "data", args.src, root / "server.log")
        try:
            direct = asyncio.run(measure(url, args.calls))
            links = {}
            for mbit in args.link_mbit:
                with slow_link(int(url.rsplit(":", 1)[1]), mbit) as slow:
                    links[mbit] = asyncio.run(measure(slow, args.calls))
        finally:
            stop(process)
    report_sizes(direct)
    report(f"direct, 127.0.0.1, {args.calls} calls each, in turns", direct)
    for mbit, link in links.items():
        report(f"through a {mbit:g} Mbit/s link, {args.calls} calls each, in turns", link)
    return 0


if __name__ == "__main__":
    sys.exit(main())
