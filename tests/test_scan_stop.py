"""A Stop that arrives while a scan commits: the cancelled job tells the files whose change
was committed (a rescan's "seen" marks, a first scan's registrations), and no others,
whichever side of the commit it lands.

The writer's own thread is held at a statement the test names (a trace callback on the single
writer, as tests/test_reorder.py reads its statements): the Stop is sent through the API while
the mark or the COMMIT waits, then the writer goes on."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from modelshelf.storage.database import Storage
from tests.conftest import Client, MakeClient, Pause, shelf_of
from tests.scanning import start
from tests.test_jobs import follow, job_of, query
from tests.test_scan_jobs import model_tree, scanning

MARK_SEEN = "UPDATE model_files SET last_seen"
SAVE_LOCATION = "INSERT INTO model_files("


def held_at(
    mark: Callable[[str], bool], hold: Callable[[str], bool], pause: Pause
) -> Callable[[str], None]:
    """A trace callback (called as each statement begins): from the first statement `mark`
    accepts on, the writer's thread is held at the first one (that one or a later one) that
    `hold` accepts."""
    marked = False

    def trace(statement: str) -> None:
        nonlocal marked
        marked = marked or mark(statement)
        if marked and hold(statement):
            pause.hold()

    return trace


@contextlib.asynccontextmanager
async def writer_held(
    storage: Storage, hold: Callable[[str], bool], after: str = MARK_SEEN
) -> AsyncIterator[Pause]:
    """The writer held at the first statement `hold` accepts from the first statement that
    begins with `after` on (released at the latest when the block ends)."""
    pause = Pause(asyncio.get_running_loop())
    async with storage.write() as writer:
        await writer.set_trace_callback(held_at(lambda s: s.startswith(after), hold, pause))
    try:
        yield pause
    finally:
        pause.release()
        async with storage.write() as writer:
            await writer.set_trace_callback(None)


@pytest.mark.parametrize(
    ("held_statement", "kept"),
    [
        # The Stop lands before the commit: the marks are rolled back, no file is done.
        (lambda s: s.startswith(MARK_SEEN), False),
        # It lands while the COMMIT runs: the marks stand, every file marked is done.
        (lambda s: s == "COMMIT", True),
    ],
    ids=["before the commit", "during the commit"],
)
async def test_a_stop_while_a_rescan_commits_its_seen_marks_tells_what_was_committed(
    make_client: MakeClient,
    tmp_path: Path,
    data_dir: Path,
    held_statement: Callable[[str], bool],
    kept: bool,
) -> None:
    sizes = model_tree(tmp_path, loras=3, checkpoints=0)
    client: Client = await start(make_client, loras=tmp_path / "loras")
    first = (await follow(client, (await scanning(client))["id"]))[-1].data
    assert first["state"] == "done"
    seen_before = query(data_dir, "SELECT path, last_seen FROM model_files")

    async with writer_held(shelf_of(client).storage, held_statement) as held:
        job = await scanning(client)  # every file unchanged: all are marked in one change
        await asyncio.wait_for(held.reached.wait(), 10)
        assert (await client.delete(f"/api/jobs/{job['id']}")).status == 202
        held.release()
        end = (await follow(client, job["id"]))[-1].data

    seen_after = query(data_dir, "SELECT path, last_seen FROM model_files")
    marked = len(set(seen_after) - set(seen_before))
    assert marked == (len(sizes) if kept else 0)
    assert end["state"] == "cancelled"
    assert (end["progress"]["done"], end["progress"]["total"]) == (marked, None)
    expected = "cancelled on request" + (
        f"; the {marked} done before it are kept" if marked else ""
    )
    assert end["error"] == expected
    assert (await job_of(client, job["id"]))["progress"] == end["progress"]


async def test_a_stop_while_a_first_scan_commits_a_registration_tells_it_was_kept(
    make_client: MakeClient, tmp_path: Path, data_dir: Path
) -> None:
    """The Stop lands while the change registering a new file commits: the file is a model
    now, and the cancelled job counts it done (it said 0 done and nothing kept)."""
    sizes = model_tree(tmp_path, loras=3, checkpoints=0)
    client: Client = await start(make_client, loras=tmp_path / "loras")

    storage = shelf_of(client).storage
    async with writer_held(storage, lambda s: s == "COMMIT", after=SAVE_LOCATION) as held:
        job = await scanning(client)
        await asyncio.wait_for(held.reached.wait(), 10)
        assert (await client.delete(f"/api/jobs/{job['id']}")).status == 202
        held.release()
        end = (await follow(client, job["id"]))[-1].data

    registered = query(data_dir, "SELECT path FROM model_files")
    assert len(registered) == len(query(data_dir, "SELECT sha256 FROM models")) >= 1
    assert end["state"] == "cancelled"
    kept = len(registered)
    assert (end["progress"]["done"], end["progress"]["total"]) == (kept, len(sizes))
    assert (
        end["error"] == f"cancelled on request; the {kept} of {len(sizes)} done before it are kept"
    )
    assert (await job_of(client, job["id"]))["progress"] == end["progress"]
