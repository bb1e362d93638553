"""CPU and latency measurement for the load tests: CPU time of the server, of this script and
of the rest of the machine; run-queue waits; percentiles; the health probe process."""

from __future__ import annotations

import contextlib
import http.client
import math
import multiprocessing
import multiprocessing.process
import os
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as EventType
from pathlib import Path


def process_cpu_seconds(pid: int) -> float:
    """utime + stime of a process (all its threads, dead ones included)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def thread_schedstats(pid: int) -> dict[str, tuple[int, int]]:
    """Per thread of `pid`: (ns running on a CPU, ns runnable but waiting for one)."""
    stats = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError, ValueError):
            run, wait, _ = (int(v) for v in (task / "schedstat").read_text().split())
            stats[task.name] = (run, wait)
    return stats


def runqueue_wait(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> float:
    """Seconds the threads alive at the end spent runnable but not running, between snapshots:
    CPU the process wanted and the machine did not give it (others used it)."""
    return sum(w - before.get(tid, (0, 0))[1] for tid, (_, w) in after.items()) / 1e9


def machine_busy_seconds() -> float:
    """CPU seconds all cores spent not idle since boot (/proc/stat)."""
    with open("/proc/stat") as handle:
        values = [int(v) for v in handle.readline().split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass
class CpuShares:
    """Where the machine's CPU went during a window, in cores."""

    server: float
    generator: float  # this script and its health probe
    others: float  # every other process on the machine
    server_waiting: float = 0.0  # server threads runnable but without a CPU
    loop_busy: float = 0.0  # the server's event-loop thread running
    loop_waiting: float = 0.0  # the event-loop thread runnable but without a CPU

    def add_sched(
        self,
        pid: int,
        before: dict[str, tuple[int, int]],
        after: dict[str, tuple[int, int]],
        wall: float,
    ) -> None:
        """Fill the run-queue figures from two `thread_schedstats` snapshots."""
        self.server_waiting = runqueue_wait(before, after) / wall
        run0, wait0 = before.get(str(pid), (0, 0))
        run1, wait1 = after.get(str(pid), (0, 0))
        self.loop_busy = (run1 - run0) / 1e9 / wall
        self.loop_waiting = (wait1 - wait0) / 1e9 / wall

    def describe(self) -> str:
        return (
            f"server {self.server:.2f} cores (and {self.server_waiting:.2f} more runnable"
            f" but waiting for a CPU; its event loop ran {self.loop_busy:.2f} and waited"
            f" {self.loop_waiting:.2f}), load generator {self.generator:.2f},"
            f" other processes {self.others:.2f}"
        )


class CpuMeter:
    """Snapshots of machine, server and load-generator CPU time."""

    def __init__(self, server_pid: int | None = None) -> None:
        self.server_pid = server_pid
        self.probe_pid: int | None = None

    def sched(self) -> dict[str, tuple[int, int]]:
        return thread_schedstats(self.server_pid) if self.server_pid else {}

    def snapshot(self) -> tuple[float, float, float, float]:
        server = process_cpu_seconds(self.server_pid) if self.server_pid else 0.0
        generator = process_cpu_seconds(os.getpid())
        if self.probe_pid is not None:
            with contextlib.suppress(OSError):
                generator += process_cpu_seconds(self.probe_pid)
        return time.monotonic(), machine_busy_seconds(), server, generator

    @staticmethod
    def shares(
        before: tuple[float, float, float, float], after: tuple[float, float, float, float]
    ) -> CpuShares:
        wall = max(1e-9, after[0] - before[0])
        busy, server, generator = (after[i] - before[i] for i in (1, 2, 3))
        return CpuShares(
            server / wall, generator / wall, max(0.0, busy - server - generator) / wall
        )


def wait_until_quiet(meter: CpuMeter, limit: float, threshold: float) -> CpuShares:
    """Wait (at most `limit` seconds) for a 1 s window in which other processes use less than
    `threshold` cores, so that they do not take the CPU the measurement needs."""
    deadline = time.monotonic() + limit
    while True:
        before = meter.snapshot()
        time.sleep(1.0)
        shares = CpuMeter.shares(before, meter.snapshot())
        if shares.others < threshold or time.monotonic() >= deadline:
            return shares


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def health_probe(port: int, interval: float, stop: EventType, out: Connection) -> None:
    """Poll /api/health on one keep-alive connection until `stop`; send back
    [(monotonic start, latency seconds, status)]. Runs in its own process, so neither this
    script's event loop nor its GIL can delay it."""
    samples: list[tuple[float, float, int]] = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    next_at = time.monotonic()
    while not stop.is_set():
        started = time.monotonic()
        try:
            conn.request("GET", "/api/health")
            response = conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            status = -1
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        samples.append((started, time.monotonic() - started, status))
        next_at += interval
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_at = time.monotonic()
    conn.close()
    out.send(samples)
    out.close()


def start_health_probe(
    port: int, interval: float
) -> tuple[multiprocessing.process.BaseProcess, EventType, Connection]:
    """`health_probe` in a new process; set the event to stop it, then receive its samples."""
    context = multiprocessing.get_context("spawn")
    stop = context.Event()
    receiver, sender = context.Pipe(duplex=False)
    probe = context.Process(target=health_probe, args=(port, interval, stop, sender), daemon=True)
    probe.start()
    sender.close()
    return probe, stop, receiver
