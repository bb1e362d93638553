"""What a change puts in the images folder is on the disk when its answer comes: every file's
bytes are flushed before it is renamed into place, and every folder it moved files into or
out of is flushed after. (A power cut cannot be made in a test; what is checked is the order
of the real calls: renames as Python's audit events report them, fsyncs as the kernel got
them, by the path of their descriptor.)"""

from __future__ import annotations

import errno
import os
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from modelshelf.durability import sync_folders
from tests.conftest import Client, migrate, shelf_of
from tests.factories import LegacyLibrary, fake_sha, make_image

H = fake_sha(1)
# The fsyncs are told apart by their descriptor's path, which Linux shows in /proc.
pytestmark = pytest.mark.skipif(
    not Path("/proc/self/fd").is_dir(), reason="needs /proc/self/fd (Linux)"
)

Event = tuple[str, str, str]  # ("fsync", path, "") or ("rename", src, dst)
_recording: list[list[Event]] = []
_lock = threading.Lock()


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _recording and event == "os.rename":
        with _lock:
            _recording[-1].append(("rename", os.fsdecode(args[0]), os.fsdecode(args[1])))


sys.addaudithook(_audit)


@contextmanager
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Event]]:
    """Every rename and fsync in this process while the block runs, in order. os.fsync
    raises no audit event: it is wrapped, and still flushes."""
    events: list[Event] = []
    real_fsync = os.fsync

    def fsync(descriptor: int) -> None:
        with _lock:
            events.append(("fsync", os.readlink(f"/proc/self/fd/{descriptor}"), ""))
        real_fsync(descriptor)

    monkeypatch.setattr(os, "fsync", fsync)
    _recording.append(events)
    try:
        yield events
    finally:
        _recording.remove(events)
        monkeypatch.setattr(os, "fsync", real_fsync)


def assert_durable(events: list[Event], images: Path) -> None:
    """Each file renamed into place (into `images` or `images/pending`) holds bytes that were
    flushed under some earlier name of it, and each such folder was flushed after its last
    rename. (Staging folders hold nothing a restart keeps.)"""
    places = (images, images / "pending")
    flushed: set[str] = set()
    last_rename_into: dict[str, int] = {}
    into = 0
    for index, (kind, path, destination) in enumerate(events):
        if kind == "fsync":
            flushed.add(path)
        elif path in flushed or Path(path).parent in places:  # in place: flushed when put there
            flushed.add(destination)
        if kind == "rename" and Path(destination).parent in places:
            into += 1
            assert path in flushed, f"{destination} renamed into place before it was flushed"
            last_rename_into[str(Path(destination).parent)] = index
    assert into, "nothing was renamed into the images folder"
    for folder, index in last_rename_into.items():
        later = [e for e in events[index + 1 :] if e == ("fsync", folder, "")]
        assert later, f"{folder} was not flushed after files moved into it"


async def upload(client: Client, tmp_path: Path) -> None:
    form = aiohttp.FormData()
    form.add_field("sha256", H)
    picture = make_image(tmp_path / "upload.png", 60, 40).read_bytes()
    form.add_field("image", picture, filename="x.png", content_type="image/png")
    response = await client.post("/api/images/upload", data=form)
    assert response.status == 200, await response.text()


async def delete_first(client: Client, tmp_path: Path) -> None:
    response = await client.delete(f"/api/images/{H}_0.webp")
    assert response.status == 200, await response.text()


async def stage_one(client: Client, legacy: LegacyLibrary) -> None:
    legacy.add_model(2, hash_hex=H, images=[legacy.image("a.png"), legacy.image("b.png")])
    legacy.add_model(3, images=[legacy.image("pending.png")])  # unhashed: a pending original
    await migrate(client, legacy)


Change = Callable[[Client, Path], Awaitable[None]]


@pytest.mark.parametrize("change", [upload, delete_first], ids=["upload", "delete and shift"])
async def test_a_changes_files_are_on_the_disk_when_it_answers(
    client: Client,
    legacy: LegacyLibrary,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    change: Change,
) -> None:
    legacy.add_model(1, hash_hex=H, images=[legacy.image(f"{i}.png") for i in range(3)])
    await migrate(client, legacy)

    with recorded(monkeypatch) as events:
        await change(client, tmp_path)

    assert_durable(events, shelf_of(client).folder.root)


async def test_stage_1s_renditions_and_pending_originals_are_on_the_disk_when_it_answers(
    client: Client, legacy: LegacyLibrary, monkeypatch: pytest.MonkeyPatch
) -> None:
    with recorded(monkeypatch) as events:
        await stage_one(client, legacy)

    images = shelf_of(client).folder.root
    assert_durable(events, images)
    assert any(Path(dst).parent == images / "pending" for kind, _, dst in events if dst)


@pytest.mark.parametrize("code", [errno.EINVAL, errno.EOPNOTSUPP])
def test_a_file_system_that_cannot_sync_a_folder_is_told_once_and_the_work_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, code: int
) -> None:
    """Some network and FUSE file systems refuse an fsync of a folder; SQLite and PostgreSQL
    go on there, and so does the service (otherwise every change would stay unfinished)."""

    def refuse(descriptor: int) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(os, "fsync", refuse)
    folder = tmp_path / f"share-{code}"
    folder.mkdir()

    sync_folders([folder])
    sync_folders([folder])

    told = [r for r in caplog.records if "cannot sync a folder" in r.getMessage()]
    assert len(told) == 1


def test_a_folder_sync_that_fails_otherwise_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(descriptor: int) -> None:
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    monkeypatch.setattr(os, "fsync", fail)

    with pytest.raises(OSError, match=os.strerror(errno.EIO)):
        sync_folders([tmp_path])
