"""The thread pools: bulk work (hashing, rendering) runs below the priority of the threads
that serve requests, and reads have a pool bulk work never fills."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from modelshelf.executors import NICEST, Executors, lower_priority

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="per-thread priority is Linux's")


def own_priority() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def priority_of_a_thread_it_starts() -> int:
    """The priority of a thread started by the calling one (as libvips starts its workers)."""
    seen: list[int] = []
    child = threading.Thread(target=lambda: seen.append(own_priority()))
    child.start()
    child.join()
    return seen[0]


@pytest.fixture
def started() -> Iterator[Callable[[int], Executors]]:
    """Start pools with a given bulk_nice; shut down at the end."""
    made: list[Executors] = []

    def start(bulk_nice: int) -> Executors:
        made.append(Executors.start(2, bulk_nice=bulk_nice))
        return made[-1]

    yield start
    for pools in made:
        pools.shutdown()


@linux_only
@pytest.mark.parametrize("steps", [1, 5, 10])
def test_cpu_threads_run_bulk_nice_steps_below_the_process(
    started: Callable[[int], Executors], steps: int
) -> None:
    expected = min(NICEST, own_priority() + steps)
    assert started(steps).cpu.submit(own_priority).result() == expected


@linux_only
def test_threads_a_cpu_thread_starts_inherit_its_priority(
    started: Callable[[int], Executors],
) -> None:
    expected = min(NICEST, own_priority() + 10)
    assert started(10).cpu.submit(priority_of_a_thread_it_starts).result() == expected


@pytest.mark.parametrize("steps", [0, 10])
def test_file_and_read_threads_keep_the_priority_of_the_process(
    started: Callable[[int], Executors], steps: int
) -> None:
    pools = started(steps)
    for pool in (pools.files, pools.reads):
        assert pool.submit(own_priority).result() == own_priority()


def test_bulk_nice_0_leaves_cpu_threads_at_the_priority_of_the_process(
    started: Callable[[int], Executors],
) -> None:
    assert started(0).cpu.submit(own_priority).result() == own_priority()


@linux_only
def test_lowering_never_goes_past_the_lowest_priority() -> None:
    with ThreadPoolExecutor(1, initializer=lower_priority, initargs=(NICEST,)) as pool:
        pool.submit(lower_priority, NICEST).result()
        assert pool.submit(own_priority).result() == NICEST


def test_a_read_runs_while_bulk_work_fills_every_other_thread(
    started: Callable[[int], Executors],
) -> None:
    pools = started(10)
    release = threading.Event()
    # More blocked tasks than either bulk pool could have threads: both are full.
    blocked = [pool.submit(release.wait) for pool in (pools.cpu, pools.files) for _ in range(64)]
    try:
        assert pools.reads.submit(lambda: "read").result(timeout=10) == "read"
    finally:
        release.set()
        for task in blocked:
            task.result()
