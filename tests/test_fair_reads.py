"""The fair queue of reads (issue 15): a real Storage on a SQLite file in tmp_path with one
read connection, clients named through `reading_client`, time from a clock the test moves."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Hashable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from modelshelf.storage import Storage
from modelshelf.storage.read_pool import (
    LONGEST_WAIT_S,
    USAGE_HALF_LIFE_S,
    FairPool,
    reading_client,
)
from modelshelf.web.middleware import client_middleware


class Clock:
    """Time that passes only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def storage(tmp_path: Path, clock: Clock) -> AsyncIterator[Storage]:
    storage = Storage(tmp_path / "modelshelf.db", read_connections=1, clock=clock)
    await storage.open()
    yield storage
    await storage.close()


class Reads:
    """Reads made for named clients; `served` lists their labels in the order they got the
    connection. A read holds it until its gate opens (open from the start unless `hold`)."""

    def __init__(self, storage: Storage, clock: Clock) -> None:
        self.storage, self.clock = storage, clock
        self.served: list[str] = []
        self.gates: dict[str, asyncio.Event] = {}
        self.holding: dict[str, asyncio.Event] = {}

    async def read(self, client: Hashable, label: str, held_s: float = 0.0) -> None:
        reading_client.set(client)  # this task's own context, as in a request
        async with self.storage.read() as conn:
            self.served.append(label)
            await conn.execute_fetchall("SELECT count(*) FROM models")
            self.holding[label].set()  # from here on, giving it back takes no turn of the loop
            await self.gates[label].wait()
            self.clock.now += held_s

    def start(
        self, client: Hashable, label: str, *, held_s: float = 0.0, hold: bool = False
    ) -> asyncio.Task[None]:
        self.gates[label] = asyncio.Event()
        self.holding[label] = asyncio.Event()
        if not hold:
            self.gates[label].set()
        return asyncio.create_task(self.read(client, label, held_s))

    async def queued(self, count: int) -> None:
        """Let the started reads run up to the queue until `count` wait there."""
        for _ in range(100):
            if self.storage.reads_waiting() == count:
                return
            await asyncio.sleep(0)  # one turn of the loop
        raise AssertionError(f"{self.storage.reads_waiting()} reads waiting, not {count}")


@pytest.fixture
def reads(storage: Storage, clock: Clock) -> Reads:
    return Reads(storage, clock)


async def use(reads: Reads, client: str, seconds: float) -> None:
    """`client` holds the connection for `seconds` of the test's clock, now."""
    await reads.start(client, f"{client} before", held_s=seconds)


@pytest.mark.parametrize(
    ("heavy_s", "light_s", "since_s", "first"),
    [
        (0.5, 0.0, 0.0, "light"),  # a client that never read goes first
        (0.5, 0.1, 0.0, "light"),  # the one that held less goes first
        (0.05, 0.1, 0.0, "heavy"),
        # Use is forgotten with time: 0.5 s two half-lives ago counts about 0.12 s, < 0.2 s.
        (0.5, 0.2, 2 * USAGE_HALF_LIFE_S, "heavy"),
    ],
)
async def test_the_waiting_read_of_the_client_that_used_the_connections_least_goes_first(
    reads: Reads, clock: Clock, heavy_s: float, light_s: float, since_s: float, first: str
) -> None:
    await use(reads, "heavy", heavy_s)
    clock.now += since_s
    if light_s:
        await use(reads, "light", light_s)
    holder = reads.start("someone", "holder", hold=True)
    await reads.holding["holder"].wait()
    queued = [reads.start("heavy", "heavy 1"), reads.start("heavy", "heavy 2")]
    queued.append(reads.start("light", "light 1"))
    await reads.queued(3)

    reads.gates["holder"].set()
    await asyncio.gather(holder, *queued)

    order = [label for label in reads.served if label[-1].isdigit()]
    expected = {"light": ["light 1", "heavy 1", "heavy 2"], "heavy": ["heavy 1", "heavy 2"]}
    assert order[: len(expected[first])] == expected[first]
    assert sorted(order) == ["heavy 1", "heavy 2", "light 1"]  # every read was served


@pytest.mark.parametrize("clients", [["one", "one", "one"], ["a", "b", "c"]])
async def test_reads_of_equal_standing_are_served_in_arrival_order(
    reads: Reads, clients: list[str]
) -> None:
    """One client's reads, or reads of clients that never read before."""
    holder = reads.start("someone", "holder", hold=True)
    await reads.holding["holder"].wait()
    queued = [reads.start(client, f"read {i}") for i, client in enumerate(clients)]
    await reads.queued(len(clients))

    reads.gates["holder"].set()
    await asyncio.gather(holder, *queued)

    assert reads.served[1:] == ["read 0", "read 1", "read 2"]


async def test_a_read_that_waited_the_longest_wait_goes_before_new_clients(
    reads: Reads, clock: Clock
) -> None:
    """A heavy client is not starved by a stream of clients that never read before."""
    await use(reads, "heavy", 10.0)
    holder = reads.start("someone", "holder", hold=True)
    await reads.holding["holder"].wait()
    heavy = reads.start("heavy", "heavy 1")
    light = reads.start("new 1", "new 1", hold=True)
    await reads.queued(2)
    reads.gates["holder"].set()
    await reads.holding["new 1"].wait()  # the new client first: heavy waits on
    newer = reads.start("new 2", "new 2")
    await reads.queued(2)

    clock.now += LONGEST_WAIT_S
    reads.gates["new 1"].set()
    await asyncio.gather(holder, heavy, light, newer)

    assert reads.served[-3:] == ["new 1", "heavy 1", "new 2"]


@pytest.mark.parametrize("when", ["while it waits", "as the connection is handed to it"])
async def test_a_cancelled_waiter_takes_no_connection_with_it(
    reads: Reads, storage: Storage, when: str
) -> None:
    holder = reads.start("someone", "holder", hold=True)
    await reads.holding["holder"].wait()
    cancelled = reads.start("a", "cancelled")
    after = reads.start("b", "after", hold=True)
    await reads.queued(2)

    if when == "while it waits":
        cancelled.cancel()
        reads.gates["holder"].set()
    else:
        reads.gates["holder"].set()
        await reads.queued(1)  # the holder gave it back: handed to "cancelled", not yet running
        cancelled.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await cancelled
    await reads.holding["after"].wait()
    reads.gates["after"].set()
    await asyncio.gather(holder, after)

    assert "cancelled" not in reads.served
    assert storage.reads_waiting() == 0
    async with asyncio.timeout(10):  # guards a leaked connection: this read would never start
        await reads.start("c", "last")
    assert reads.served[-2:] == ["after", "last"]


async def test_bulk_reads_are_not_counted_as_their_client_s_use(
    reads: Reads, storage: Storage, clock: Clock
) -> None:
    """Bulk work has connections of its own, outside the fair queue."""
    await use(reads, "person", 0.1)
    reading_client.set("importer")
    async with storage.read(bulk=True) as conn:
        await conn.execute_fetchall("SELECT 1")
        clock.now += 5.0
    holder = reads.start("someone", "holder", hold=True)
    await reads.holding["holder"].wait()
    queued = [reads.start("person", "person 1"), reads.start("importer", "importer 1")]
    await reads.queued(2)
    reads.gates["holder"].set()
    await asyncio.gather(holder, *queued)
    assert reads.served[-2:] == ["importer 1", "person 1"]


@pytest.fixture
async def two_readers(tmp_path: Path, clock: Clock) -> AsyncIterator[Reads]:
    """Reads over a Storage of two read connections: a client's share is one."""
    storage = Storage(tmp_path / "two.db", read_connections=2, clock=clock)
    await storage.open()
    yield Reads(storage, clock)
    await storage.close()


async def test_a_client_holding_its_share_leaves_the_other_connections_to_other_clients(
    two_readers: Reads,
) -> None:
    """The script's second read waits although a connection is free; the person's read that
    comes after it takes that connection at once."""
    reads = two_readers
    first = reads.start("script", "script 1", hold=True)
    await reads.holding["script 1"].wait()
    second = reads.start("script", "script 2")
    await reads.queued(1)
    person = reads.start("person", "person 1", hold=True)
    await reads.holding["person 1"].wait()
    assert reads.served == ["script 1", "person 1"]

    reads.gates["script 1"].set()
    await second
    reads.gates["person 1"].set()
    await asyncio.gather(first, person)
    assert reads.served == ["script 1", "person 1", "script 2"]


async def test_a_read_beyond_its_client_s_share_gets_a_free_connection_after_the_longest_wait() -> (
    None
):
    """A client's read made while it holds its share (a nested read) is late, never stuck."""
    pool: FairPool[str] = FairPool(per_client=1, longest_wait=0.05)
    pool.add("connection 1")
    pool.add("connection 2")
    outer = await pool.take("script")
    async with asyncio.timeout(10):
        inner = await pool.take("script")
    assert {outer, inner} == {"connection 1", "connection 2"}
    assert pool.holding("script") == 2
    pool.give_back(inner, "script", 0.01)
    pool.give_back(outer, "script", 0.01)
    assert pool.holding("script") == 0


@pytest.mark.parametrize("when", ["while it waits", "as the connection is handed to it"])
async def test_a_cancelled_read_leaves_its_client_s_share_as_it_was(when: str) -> None:
    pool: FairPool[str] = FairPool(per_client=1)
    pool.add("connection")
    held = await pool.take("script")
    waiter = asyncio.create_task(pool.take("script"))
    for _ in range(100):
        if pool.waiting():
            break
        await asyncio.sleep(0)  # one turn of the loop
    if when == "as the connection is handed to it":
        pool.give_back(held, "script", 0.01)  # handed to the waiter, which has not run yet
    waiter.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiter
    if when == "while it waits":
        pool.give_back(held, "script", 0.01)
    assert pool.holding("script") == 0
    assert await pool.take("person") == "connection"


async def client_of_request(request: web.Request) -> web.Response:
    return web.json_response(reading_client.get())


@pytest.fixture
async def keyed(aiohttp_client: Any) -> TestClient[web.Request, web.Application]:
    """A bare app with the real middleware, answering the client it named."""
    app = web.Application(middlewares=[client_middleware])
    app.router.add_get("/client", client_of_request)
    client: TestClient[web.Request, web.Application] = await aiohttp_client(app)
    return client


@pytest.mark.parametrize(
    ("agents", "same"),
    [(["Firefox", "Firefox"], True), (["Firefox", "python-requests"], False)],
)
async def test_a_request_s_client_is_its_address_and_user_agent(
    keyed: TestClient[web.Request, web.Application], agents: list[str], same: bool
) -> None:
    """Two connections of one browser are one client; a script beside it is another."""
    keys = []
    for agent in agents:
        response = await keyed.get("/client", headers={"User-Agent": agent, "Connection": "close"})
        keys.append(tuple(await response.json()))
    assert keys[0][0] == keys[1][0] == "127.0.0.1"
    assert (keys[0] == keys[1]) is same
