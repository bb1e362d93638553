"""serving.ensure_port_free, the check `modelshelf serve` makes before it opens the library:
a port in use, or an address this machine does not have, is said in words."""

from __future__ import annotations

import socket

import pytest

from modelshelf.serving import StartFailed, ensure_port_free


async def test_a_free_port_passes_and_stays_free() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    await ensure_port_free("127.0.0.1", port)
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))  # the check let go of it


async def test_port_zero_is_always_free() -> None:
    await ensure_port_free("127.0.0.1", 0)


async def test_a_port_in_use_says_so_and_what_to_do() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(StartFailed, match=f"port {port} on 127.0.0.1 is in use.*--port"):
            await ensure_port_free("127.0.0.1", port)


async def test_an_address_this_machine_does_not_have_is_named() -> None:
    # 192.0.2.1 is TEST-NET-1 (RFC 5737): no machine has it.
    with pytest.raises(StartFailed, match=r"cannot listen on 192\.0\.2\.1:8799: "):
        await ensure_port_free("192.0.2.1", 8799)
