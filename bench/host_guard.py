"""What the DNS-rebinding guard (`web.hosts.HostGuard`) adds to every request: one call of
its middleware around a handler that does nothing, against that handler called alone, in
the same run; and the judgment of a Host header it has not kept, which the guard makes once
per header value.

Run from the repository root:

    flock -x /work/helpers/quiet.lock .venv/bin/python bench/host_guard.py

It prints the best of 5 rounds of 200,000 calls each, in microseconds a request, and the
ratio. Compare the added time with a served rendition's server CPU (BENCHMARKS.md, "Serving
one rendition": about 100-300 us a request).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp.test_utils import make_mocked_request

from modelshelf.web.hosts import HostGuard, is_address_or_local, name_of_host

CALLS = 200_000
ROUNDS = 5


async def nothing(request: Any) -> Any:
    return None


async def best_of(call: Callable[[], Awaitable[Any]]) -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(CALLS):
            await call()
        best = min(best, (time.perf_counter() - start) / CALLS)
    return best * 1e6


def judged_afresh() -> float:
    best = float("inf")
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for _ in range(CALLS // 10):
            is_address_or_local(name_of_host("127.0.0.1:8080"))
        best = min(best, (time.perf_counter() - start) / (CALLS // 10))
    return best * 1e6


async def main() -> None:
    guard = HostGuard([], "127.0.0.1", False)
    assert guard.on
    request = make_mocked_request("GET", "/api/images/x.webp", headers={"Host": "127.0.0.1:8080"})
    alone = await best_of(lambda: nothing(request))
    guarded = await best_of(lambda: guard.middleware(request, nothing))
    print(f"handler alone:              {alone:.3f} us a request")
    print(f"through the guard:          {guarded:.3f} us a request")
    print(f"added by the guard:         {guarded - alone:.3f} us ({guarded / alone:.2f}x)")
    print(f"a Host header judged afresh: {judged_afresh():.3f} us (once per header value)")


if __name__ == "__main__":
    asyncio.run(main())
