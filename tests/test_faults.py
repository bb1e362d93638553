"""Faults from the outside world: a full disk, a read-only database, a model file that goes
away at the worst moment. Each ends with a clear error and nothing lost."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelshelf.integrity import check_library
from tests.conftest import MakeClient, migrate, post_import, shelf_of
from tests.factories import HASHED, LegacyLibrary, make_model_file, snapshot


@contextlib.contextmanager
def mounted(*args: str) -> Iterator[None]:
    """Run `mount args...` for the block; skip the test where mounting is not permitted."""
    target = args[-1]
    result = subprocess.run(["mount", *args], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount here ({result.stderr.strip()}); needs CAP_SYS_ADMIN")
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", target], check=True)


def read_only_file(path: Path) -> contextlib.AbstractContextManager[None]:
    """Make one file read-only in a way that holds for root too (a read-only bind mount)."""
    if os.geteuid() != 0:
        return _chmod_read_only(path)
    return _bind_read_only(path)


@contextlib.contextmanager
def _chmod_read_only(path: Path) -> Iterator[None]:
    mode = path.stat().st_mode
    path.chmod(0o444)
    try:
        yield
    finally:
        path.chmod(mode)


@contextlib.contextmanager
def _bind_read_only(path: Path) -> Iterator[None]:
    with mounted("--bind", str(path), str(path)):
        subprocess.run(["mount", "-o", "remount,bind,ro", str(path)], check=True)
        yield


def seed(legacy: LegacyLibrary, models_dir: Path) -> None:
    for i in (1, 2):
        path = models_dir / f"m{i}.bin"
        make_model_file(path, size=64 * 1024, seed=i)
        legacy.add_model(
            i, path=str(path), images=[legacy.image(f"p{i}.png", width=900, height=900)]
        )


async def test_full_images_disk_is_507_and_nothing_changes(
    make_client: MakeClient, legacy: LegacyLibrary, models_dir: Path, data_dir: Path
) -> None:
    images = data_dir / "images"
    images.mkdir(parents=True)
    with mounted("-t", "tmpfs", "-o", "size=4m", "tmpfs", str(images)):
        client = await make_client()
        seed(legacy, models_dir)
        await migrate(client, legacy)
        ballast = images / "ballast"
        with contextlib.suppress(OSError), ballast.open("wb") as handle:
            while True:  # fill the disk to the last block
                handle.write(b"\0" * 65536)
        with contextlib.suppress(OSError), (images / "ballast2").open("wb") as handle:
            while True:
                handle.write(b"\0" * 512)
        before = snapshot(data_dir, ignore=HASHED)
        status, body = await post_import(client, 1)
        assert status == 507, body
        assert body["error"] == "Insufficient Storage"
        assert "space" in body["detail"]
        assert snapshot(data_dir, ignore=HASHED) == before
        ballast.unlink()
        (images / "ballast2").unlink()
        status, body = await post_import(client, 1)
        assert (status, body["action_taken"]) == (200, "imported")
        await client.close()
        assert check_library(data_dir) == []


async def test_read_only_database_is_503_for_writes_and_reads_keep_working(
    make_client: MakeClient, legacy: LegacyLibrary, models_dir: Path, data_dir: Path
) -> None:
    client = await make_client()
    seed(legacy, models_dir)
    await migrate(client, legacy)
    await client.close()
    before = snapshot(data_dir, ignore=HASHED)
    with read_only_file(data_dir / "modelshelf.db"):
        client = await make_client()
        pending = await client.get("/api/migration/pending_models")
        assert pending.status == 200
        assert len((await pending.json())["models"]) == 2
        status, body = await post_import(client, 1)
        assert status == 503, body
        assert "read-only" in body["detail"]
        await client.close()
    assert snapshot(data_dir, ignore=HASHED) == before


async def test_model_file_removed_after_hashing_and_before_commit_is_422(
    make_client: MakeClient, legacy: LegacyLibrary, models_dir: Path, data_dir: Path
) -> None:
    client = await make_client()
    seed(legacy, models_dir)
    await migrate(client, legacy)
    before = snapshot(data_dir, ignore=HASHED)
    shelf = shelf_of(client)
    sha = make_model_file(models_dir / "m1.bin", size=64 * 1024, seed=1)
    # Hold the model's lock: the import hashes and renders, then waits here, before its
    # transaction. The file goes away in that window.
    async with shelf.model_locks.hold(sha):
        task = asyncio.create_task(post_import(client, 1))
        while not shelf.model_locks.is_locked(sha) or len(shelf.model_locks) < 1:
            await asyncio.sleep(0.001)
        while shelf.hasher._running or not _waiting_for(shelf, sha):
            await asyncio.sleep(0.001)
        (models_dir / "m1.bin").unlink()
    status, body = await task
    assert status == 422, body
    assert "changed or disappeared" in body["detail"]
    assert snapshot(data_dir, ignore=HASHED) == before
    await client.close()
    assert check_library(data_dir) == []


def _waiting_for(shelf: object, sha: str) -> bool:
    """True once a second user (the import) is queued on the model's lock."""
    entry = shelf.model_locks._entries.get(sha)  # type: ignore[attr-defined]
    return entry is not None and entry.users >= 2
