"""The thread pools: bulk work (hashing, rendering) runs below the priority of the threads
that serve requests (SCHED_IDLE where allowed, nice otherwise), and reads have a pool bulk work
never fills."""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest

from modelshelf.executors import NICEST, CpuPool, Executors, lower_priority

T = TypeVar("T")

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="per-thread priority is Linux's")


def own_priority() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def own_policy() -> int:
    """The calling thread's scheduling policy, as the kernel reports it."""
    return os.sched_getscheduler(0)


def in_a_thread_it_starts(func: Callable[[], T]) -> T:
    """`func()` in a thread started by the calling one (as libvips starts its workers)."""
    seen: list[T] = []
    child = threading.Thread(target=lambda: seen.append(func()))
    child.start()
    child.join()
    return seen[0]


def priority_of_a_thread_it_starts() -> int:
    return in_a_thread_it_starts(own_priority)


def policy_of_a_thread_it_starts() -> int:
    return in_a_thread_it_starts(own_policy)


def policy_in_proc(tid: int) -> int:
    """The policy of thread `tid` of this process as /proc shows it (field 41 of its stat)."""
    stat = Path(f"/proc/self/task/{tid}/stat").read_text()
    return int(stat.rsplit(")", 1)[1].split()[38])


def idle_allowed() -> bool:
    """Whether this system lets an unprivileged thread take SCHED_IDLE (tried in a throwaway
    thread, so the test process keeps its policy)."""

    def attempt() -> bool:
        try:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
        except OSError:
            return False
        return True

    return in_a_thread_it_starts(attempt)


@pytest.fixture
def started() -> Iterator[Callable[..., Executors]]:
    """Start pools with a given bulk_nice (and bulk_idle, off unless given); shut down at the
    end."""
    made: list[Executors] = []

    def start(bulk_nice: int, bulk_idle: bool = False) -> Executors:
        made.append(Executors.start(2, bulk_nice=bulk_nice, bulk_idle=bulk_idle))
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


@linux_only
def test_cpu_threads_run_under_sched_idle_when_the_system_allows(
    started: Callable[..., Executors],
) -> None:
    if not idle_allowed():
        pytest.skip("this system refuses SCHED_IDLE")
    pools = started(10, bulk_idle=True)
    tid = pools.cpu.submit(threading.get_native_id).result()
    assert pools.cpu.submit(own_policy).result() == os.SCHED_IDLE
    assert policy_in_proc(tid) == os.SCHED_IDLE


@linux_only
def test_threads_a_cpu_thread_starts_inherit_sched_idle(
    started: Callable[..., Executors],
) -> None:
    if not idle_allowed():
        pytest.skip("this system refuses SCHED_IDLE")
    pools = started(10, bulk_idle=True)
    assert pools.cpu.submit(policy_of_a_thread_it_starts).result() == os.SCHED_IDLE


@linux_only
@pytest.mark.parametrize("bulk_idle", [False, True])
def test_file_and_read_threads_keep_the_policy_of_the_process(
    started: Callable[..., Executors], bulk_idle: bool
) -> None:
    pools = started(10, bulk_idle=bulk_idle)
    for pool in (pools.files, pools.reads):
        assert pool.submit(own_policy).result() == own_policy()


@linux_only
def test_bulk_idle_off_leaves_cpu_threads_under_the_policy_of_the_process(
    started: Callable[..., Executors],
) -> None:
    assert started(10, bulk_idle=False).cpu.submit(own_policy).result() == own_policy()


@linux_only
def test_a_refused_sched_idle_falls_back_to_nice(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    expected = min(NICEST, own_priority() + 10)
    with ThreadPoolExecutor(1) as pool:
        monkeypatch.setattr(os, "sched_setscheduler", refuse)
        pool.submit(lower_priority, 10, True).result()
        monkeypatch.undo()
        assert pool.submit(own_policy).result() == own_policy()
        assert pool.submit(own_priority).result() == expected


@pytest.mark.parametrize("bulk_idle", [False, True])
def test_a_read_runs_while_bulk_work_fills_every_other_thread(
    started: Callable[..., Executors], bulk_idle: bool
) -> None:
    pools = started(10, bulk_idle=bulk_idle)
    release = threading.Event()
    # More blocked tasks than either bulk pool could have threads: both are full.
    blocked = [pool.submit(release.wait) for pool in (pools.cpu, pools.files) for _ in range(64)]
    try:
        assert pools.reads.submit(lambda: "read").result(timeout=10) == "read"
    finally:
        release.set()
        for task in blocked:
            task.result()


@pytest.mark.parametrize(("busy", "idle"), [(0, True), (1, True), (2, False), (3, False)])
def test_cpu_pool_has_an_idle_worker_while_fewer_tasks_than_workers_are_in_flight(
    busy: int, idle: bool
) -> None:
    release = threading.Event()
    with CpuPool(2) as pool:
        blocked = [pool.submit(release.wait) for _ in range(busy)]
        try:
            assert pool.has_idle_worker() is idle
        finally:
            release.set()
        for future in blocked:
            future.result()
