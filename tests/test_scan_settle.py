"""A scan and files still being written: a model file written in the last
`scan_settle_seconds` is looked at again after that time and taken only if it has not changed,
so a download under way is never hashed between two writes into a model of its own (which
stayed in the library, missing, once the download was done)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import Client, MakeClient
from tests.factories import make_model_file
from tests.scanning import models, problems, scan, sha256_of

SETTLE_S = 0.3


async def start(make_client: MakeClient, loras: Path) -> Client:
    return await make_client(model_roots={"loras": [loras]}, scan_settle_seconds=SETTLE_S)


@contextmanager
def downloading(path: Path) -> Iterator[None]:
    """A download writing `path` a chunk every 100 ms until the block ends, as a browser or a
    Civitai helper writes a model file to its final name over a slow connection: a file read
    whole between two writes looks complete."""
    stop = threading.Event()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(64 * 1024))

    def write() -> None:
        with path.open("ab") as handle:
            while not stop.wait(0.1):
                handle.write(os.urandom(16 * 1024))
                handle.flush()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        yield
    finally:
        stop.set()
        writer.join()


async def test_a_download_under_way_is_left_for_later_and_becomes_one_model_when_done(
    make_client: MakeClient, tmp_path: Path
) -> None:
    loras = tmp_path / "loras"
    done = make_model_file(loras / "done.ckpt", size=50_000, seed=1)
    os.utime(loras / "done.ckpt", (time.time() - 60, time.time() - 60))
    client = await start(make_client, loras)
    growing = loras / "growing.ckpt"

    with downloading(growing):
        first = await scan(client)

    assert "still being written" in problems(first)[str(growing)]
    assert [m["sha256"] for m in await models(client)] == [done]
    assert first["counts"]["models_created"] == 1
    second = await scan(client)
    assert problems(second) == {}
    assert {m["sha256"] for m in await models(client)} == {done, sha256_of(growing)}
    assert second["counts"]["models_created"] == 1


async def test_a_file_written_just_before_the_scan_is_taken_once_it_holds_still(
    make_client: MakeClient, tmp_path: Path
) -> None:
    loras = tmp_path / "loras"
    client = await start(make_client, loras)
    sha256 = make_model_file(loras / "fresh.ckpt", size=50_000, seed=2)
    started = time.monotonic()

    result = await scan(client)

    assert time.monotonic() - started >= SETTLE_S
    assert problems(result) == {}
    assert [m["sha256"] for m in await models(client)] == [sha256]


async def test_a_file_dated_in_the_future_is_taken_once_seen_unchanged(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """A network share whose clock is ahead: the file is never "old enough" by its date, so
    seeing it unchanged for the settling time is what counts."""
    loras = tmp_path / "loras"
    client = await start(make_client, loras)
    path = loras / "from a share ahead.ckpt"
    sha256 = make_model_file(path, size=50_000, seed=3)
    os.utime(path, (time.time() + 3600, time.time() + 3600))

    result = await scan(client)

    assert problems(result) == {}
    assert [m["sha256"] for m in await models(client)] == [sha256]
