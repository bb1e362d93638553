"""What the watcher's scan of changed paths (`scan_paths`, no folder walk) finds unchanged is
marked seen, as a whole scan marks it: a scan running meanwhile that found the file gone a
moment before must not mark it missing once the watcher has seen it there again.

The scan's check of the files it did not walk is held in the file pool right after it ran (a
gate on the pool's submit for `gone_paths`, as tests/test_edit_races.py gates file
operations); the file comes back and the watcher's scan runs meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pytest

from modelshelf.domain.locations import gone_paths
from modelshelf.domain.scan import model_roots, scan_paths
from modelshelf.domain.shelf import Shelf
from tests.conftest import MakeClient, Pause, shelf_of
from tests.model_folders import write_safetensors
from tests.scanning import Recorder, model, scan, sha256_of, start
from tests.test_jobs import follow
from tests.test_scan_jobs import scanning


@contextlib.contextmanager
def held_after_gone_check(shelf: Shelf, monkeypatch: pytest.MonkeyPatch) -> Iterator[Pause]:
    """The first `gone_paths` the file pool runs is held after it has looked, until release
    (at the latest when the block ends); `reached` is set once it has."""
    pause = Pause(asyncio.get_running_loop())
    pool = shelf.executors.files
    submit = pool.submit

    def gated_submit(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if fn is not gone_paths:
            return submit(fn, *args, **kwargs)

        def looked_then_held() -> Any:
            gone = fn(*args, **kwargs)
            pause.hold()
            return gone

        return submit(looked_then_held)

    monkeypatch.setattr(pool, "submit", gated_submit)
    try:
        yield pause
    finally:
        pause.release()  # never leave a worker blocked, even when the test failed
        monkeypatch.undo()


async def test_a_file_the_watcher_saw_unchanged_is_not_marked_missing_by_a_scan_meanwhile(
    make_client: MakeClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    loras = tmp_path / "loras"
    kept = write_safetensors(loras / "kept.safetensors", seed=1)
    moved = write_safetensors(loras / "moved.safetensors", seed=2)
    client = await start(make_client, loras=loras)
    await scan(client)
    shelf = shelf_of(client)
    away = tmp_path / "away.safetensors"
    moved.rename(away)  # out of the roots for a moment (inode and mtime kept)

    with held_after_gone_check(shelf, monkeypatch) as held:
        job = await scanning(client)  # its walk misses the file, its check finds it gone
        await asyncio.wait_for(held.reached.wait(), 10)
        away.rename(moved)  # back as it was: the watcher reports the path
        told = Recorder()
        watched = await scan_paths(shelf, await model_roots(shelf), [str(moved)], told)
        held.release()
        end = (await follow(client, job["id"]))[-1].data

    # The library says the file is where it is (it said missing, and no event would come to
    # say otherwise until the next whole scan).
    record = await model(client, sha256_of(moved))
    assert record["files"] == [{"path": str(moved), "present": True}]
    assert record["missing"] is False
    assert end["state"] == "done"
    assert end["result"]["counts"]["locations_missing"] == 0
    # The watcher's scan found it unchanged and told its progress it was done with it.
    assert watched.counts.unchanged == 1
    assert told.done == [str(moved)]
    assert (await model(client, sha256_of(kept)))["missing"] is False
