"""KeyedLocks: the in-memory per-id locks behind the fast 423."""

from __future__ import annotations

import asyncio

import pytest

from modelshelf.errors import Locked
from modelshelf.locks import KeyedLocks


async def test_hold_now_refuses_a_held_key_at_once_and_names_it() -> None:
    locks = KeyedLocks("pending model")
    async with locks.hold_now(42):
        assert locks.is_locked(42)
        with pytest.raises(Locked) as caught:
            async with locks.hold_now(42):
                pytest.fail("a held key was acquired a second time")
    assert "pending model 42" in caught.value.detail
    assert caught.value.extra == {"key": 42}


async def test_hold_now_on_other_keys_is_independent() -> None:
    locks = KeyedLocks("pending model")
    async with locks.hold_now(1), locks.hold_now(2):
        assert locks.is_locked(1)
        assert locks.is_locked(2)
        assert not locks.is_locked(3)
        assert len(locks) == 2


async def test_the_key_is_released_after_success() -> None:
    locks = KeyedLocks("pending model")
    async with locks.hold_now(7):
        pass
    assert not locks.is_locked(7)
    assert len(locks) == 0
    async with locks.hold_now(7):  # acquirable again
        assert locks.is_locked(7)


async def test_the_key_is_released_after_an_exception() -> None:
    locks = KeyedLocks("pending model")
    with pytest.raises(ValueError, match="boom"):
        async with locks.hold_now(7):
            raise ValueError("boom")
    assert not locks.is_locked(7)
    assert len(locks) == 0
    async with locks.hold_now(7):
        pass


async def test_the_key_is_released_when_the_holder_is_cancelled() -> None:
    locks = KeyedLocks("pending model")
    holding = asyncio.Event()

    async def holder() -> None:
        async with locks.hold_now(7):
            holding.set()
            await asyncio.Event().wait()  # until cancelled

    task = asyncio.create_task(holder())
    await holding.wait()
    assert locks.is_locked(7)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not locks.is_locked(7)
    assert len(locks) == 0
    async with locks.hold_now(7):
        pass


async def test_entries_do_not_accumulate_over_many_keys() -> None:
    locks = KeyedLocks("pending model")
    for key in range(1000):
        async with locks.hold_now(key):
            assert len(locks) == 1
    for key in range(1000):
        async with locks.hold(("model", key)):
            pass
    for key in range(100):
        with pytest.raises(RuntimeError):
            async with locks.hold_now(key):
                raise RuntimeError
    assert len(locks) == 0


async def test_hold_waits_for_the_holder_and_then_gets_the_key() -> None:
    locks = KeyedLocks("model")
    order: list[str] = []
    release = asyncio.Event()

    holding = asyncio.Event()

    async def first() -> None:
        async with locks.hold("h"):
            order.append("first in")
            holding.set()
            await release.wait()
            order.append("first out")

    async def second() -> None:
        async with locks.hold("h"):
            order.append("second in")

    one = asyncio.create_task(first())
    await holding.wait()
    two = asyncio.create_task(second())
    for _ in range(10):
        await asyncio.sleep(0)
    assert order == ["first in"], "the second holder did not wait"
    assert len(locks) == 1
    release.set()
    await asyncio.gather(one, two)
    assert order == ["first in", "first out", "second in"]
    assert len(locks) == 0


async def test_hold_now_refuses_while_another_request_waits_for_the_key() -> None:
    locks = KeyedLocks("model")
    release = asyncio.Event()
    holding = asyncio.Event()
    got_it = asyncio.Event()

    async def holder() -> None:
        async with locks.hold("h"):
            holding.set()
            await release.wait()

    async def waiter() -> None:
        async with locks.hold("h"):
            got_it.set()

    one = asyncio.create_task(holder())
    await holding.wait()
    two = asyncio.create_task(waiter())
    await asyncio.sleep(0)  # one turn: the waiter runs up to the lock and queues on it
    with pytest.raises(Locked):
        async with locks.hold_now("h"):
            pass
    release.set()
    await asyncio.gather(one, two)
    assert got_it.is_set()
    assert len(locks) == 0


async def test_hold_now_refuses_between_a_release_and_the_queued_waiter_running() -> None:
    """The holder has let go, the waiter it woke has not run yet: the lock itself reads as
    free, but the key is promised to the waiter, so a request arriving now gets Locked."""
    locks = KeyedLocks("pending model")
    waiter_in = asyncio.Event()

    async def waiter() -> None:
        async with locks.hold("h"):
            waiter_in.set()

    async with locks.hold("h"):
        queued = asyncio.create_task(waiter())
        await asyncio.sleep(0)  # one turn: the waiter queues on the lock
    # Released just now, in this task, without yielding: the waiter is woken but not running.
    assert not waiter_in.is_set()
    with pytest.raises(Locked) as caught:
        async with locks.hold_now("h"):
            pytest.fail("the key was taken from under the queued waiter")
    assert caught.value.detail == "pending model h is being processed by another request"
    await queued
    assert waiter_in.is_set()
    assert len(locks) == 0


async def test_a_cancelled_waiter_leaves_no_entry_behind() -> None:
    locks = KeyedLocks("model")
    release = asyncio.Event()
    holding = asyncio.Event()

    async def holder() -> None:
        async with locks.hold("h"):
            holding.set()
            await release.wait()

    async def waiter() -> None:
        async with locks.hold("h"):
            pytest.fail("the cancelled waiter got the key")

    one = asyncio.create_task(holder())
    await holding.wait()
    two = asyncio.create_task(waiter())
    await asyncio.sleep(0)  # one turn: the waiter queues on the lock
    two.cancel()
    with pytest.raises(asyncio.CancelledError):
        await two
    release.set()
    await one
    assert len(locks) == 0
    async with locks.hold_now("h"):
        pass


async def test_wait_idle_returns_at_once_for_a_free_key() -> None:
    locks = KeyedLocks("model")
    await asyncio.wait_for(locks.wait_idle("free"), timeout=1)
    assert len(locks) == 0


async def test_wait_idle_waits_until_the_holder_releases() -> None:
    locks = KeyedLocks("model")
    release = asyncio.Event()
    released = False

    holding = asyncio.Event()

    async def holder() -> None:
        nonlocal released
        async with locks.hold_now("h"):
            holding.set()
            await release.wait()
            released = True

    one = asyncio.create_task(holder())
    await holding.wait()
    idle = asyncio.create_task(locks.wait_idle("h"))
    for _ in range(10):
        await asyncio.sleep(0)
    assert not idle.done(), "wait_idle returned while the key was held"
    release.set()
    await idle
    assert released
    await one
    assert not locks.is_locked("h")
    assert len(locks) == 0
