"""Faults from the outside world: a full disk, a read-only database, a model file that goes
away at the worst moment. Each ends with a clear error and nothing lost."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pyvips

from modelshelf import crashpoints
from modelshelf.integrity import check_library
from tests.conftest import (
    IMPORT,
    MakeClient,
    assert_error_body,
    http_post,
    migrate,
    migrate_body,
    post_import,
    read_only_file,
    shelf_of,
)
from tests.factories import HASHED, LegacyLibrary, make_model_file, snapshot
from tests.server import ServerProcess


def can_mount(tmp_path: Path) -> bool:
    """Whether this process may mount (root with CAP_SYS_ADMIN, as in CI's container)."""
    target = tmp_path / "probe"
    target.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(target)], capture_output=True)
    if result.returncode != 0:
        return False
    subprocess.run(["umount", str(target)], check=True)
    return True


@contextlib.contextmanager
def mounted(*args: str) -> Iterator[None]:
    """Run `mount args...` for the block."""
    target = args[-1]
    subprocess.run(["mount", *args], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", target], check=True)


def seed(legacy: LegacyLibrary, models_dir: Path) -> None:
    for i in (1, 2):
        path = models_dir / f"m{i}.bin"
        make_model_file(path, size=64 * 1024, seed=i)
        legacy.add_model(
            i, path=str(path), images=[legacy.image(f"p{i}.png", width=900, height=900)]
        )


async def test_full_images_disk_is_507_and_nothing_changes(
    make_client: MakeClient,
    legacy: LegacyLibrary,
    models_dir: Path,
    data_dir: Path,
    tmp_path: Path,
) -> None:
    """A tmpfs filled to the last block where this process may mount; elsewhere (a non-root
    user) a real server process whose file size limit is below the size of a rendition."""
    if not can_mount(tmp_path):
        await full_disk_by_file_size_limit(legacy, models_dir, data_dir, tmp_path)
        return
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
        assert_error_body(body, 503, "read-only")
        await client.close()
    assert snapshot(data_dir, ignore=HASHED) == before


async def test_model_file_removed_after_hashing_and_before_commit_is_422(
    make_client: MakeClient, legacy: LegacyLibrary, models_dir: Path, data_dir: Path
) -> None:
    client = await make_client()
    seed(legacy, models_dir)
    await migrate(client, legacy)
    before = snapshot(data_dir, ignore=HASHED)
    model = models_dir / "m1.bin"
    # The digest is cached in a change of its own, committed before the import's change
    # begins: the file goes away right then, after hashing and before the import commits.
    with crashpoints.hooked("change.after_commit", lambda: model.unlink(missing_ok=True)):
        status, body = await post_import(client, 1)
    assert (status, body["error"]) == (422, "Unprocessable Entity"), body
    assert "changed or disappeared" in body["detail"]
    assert snapshot(data_dir, ignore=HASHED) == before
    assert len(shelf_of(client).model_locks) == 0
    await client.close()
    assert check_library(data_dir) == []


async def full_disk_by_file_size_limit(
    legacy: LegacyLibrary, models_dir: Path, data_dir: Path, tmp_path: Path
) -> None:
    path = models_dir / "m1.bin"
    make_model_file(path, size=64 * 1024, seed=1)
    bands = [pyvips.Image.gaussnoise(1600, 1200, sigma=120) for _ in range(3)]
    noise = bands[0].bandjoin(bands[1:]).cast("uchar").copy(interpretation="srgb")
    noise.write_to_file(str(legacy.images_dir / "noise.png"))  # its high rendition: ~1.4 MB
    legacy.add_model(1, path=str(path), images=["noise.png"])
    with ServerProcess(data_dir, tmp_path / "server.log") as server:
        assert http_post(server, "/api/migration/migrate_legacy_db", migrate_body(legacy))[0] == 200
    before = snapshot(data_dir, ignore=HASHED)
    limited = ServerProcess(data_dir, tmp_path / "server.log", file_size_limit=512 * 1024)
    with limited:
        status, body = http_post(limited, IMPORT, {"id": 1})
        assert (status, body["error"]) == (507, "Insufficient Storage"), body
        assert "no space left" in body["detail"]
    assert snapshot(data_dir, ignore=HASHED) == before
    with ServerProcess(data_dir, tmp_path / "server.log") as server:
        status, body = http_post(server, IMPORT, {"id": 1})
        assert (status, body["action_taken"]) == (200, "imported"), body
    assert check_library(data_dir) == []
