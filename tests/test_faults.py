"""Faults from the outside world: a full disk, a read-only database, a model file that goes
away at the worst moment. Each ends with a clear error and nothing lost."""

from __future__ import annotations

import contextlib
import io
import subprocess
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import aiohttp
import pytest
import pyvips

from modelshelf import crashpoints
from modelshelf.integrity import check_library
from tests.conftest import (
    IMPORT,
    Client,
    MakeClient,
    assert_error_body,
    http_post,
    migrate,
    migrate_body,
    post_import,
    read_only_file,
    shelf_of,
)
from tests.factories import (
    HASHED,
    LegacyLibrary,
    fake_sha,
    make_image,
    make_model_file,
    snapshot,
)
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


async def test_a_write_the_storage_refuses_is_a_warning_in_the_server_log(
    make_client: MakeClient,
    legacy: LegacyLibrary,
    models_dir: Path,
    data_dir: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A 503 or 507 is the operator's to fix (free the disk, fix a mount), not the client's:
    the log at WARNING, where an operator looks, says what and why; the access log's INFO
    line with a bare status was all there was."""
    client = await make_client()
    seed(legacy, models_dir)
    await migrate(client, legacy)
    await client.close()
    with read_only_file(data_dir / "modelshelf.db"):
        client = await make_client()
        caplog.set_level("INFO")
        status, _ = await post_import(client, 1)
        await client.close()
    assert status == 503
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any(IMPORT in line and "read-only" in line for line in warnings), warnings


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


async def test_a_small_upload_to_a_full_images_disk_is_507(
    make_client: MakeClient,
    legacy: LegacyLibrary,
    models_dir: Path,
    data_dir: Path,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A file smaller than a write buffer: its bytes reach the disk only when it is closed,
    which must happen where a full disk becomes StorageFull (it was a 500)."""
    if not can_mount(tmp_path):
        pytest.skip("mounting a tmpfs needs root with CAP_SYS_ADMIN")
    images = data_dir / "images"
    images.mkdir(parents=True)
    small = make_image(tmp_path / "small.png", 24, 16).read_bytes()
    assert len(small) < io.DEFAULT_BUFFER_SIZE
    with mounted("-t", "tmpfs", "-o", "size=1m", "tmpfs", str(images)):
        client = await make_client()
        legacy.add_model(1, hash_hex=fake_sha(1))
        await migrate(client, legacy)
        fill(images)
        before = snapshot(data_dir, ignore=HASHED)
        form = aiohttp.FormData()
        form.add_field("sha256", fake_sha(1))
        form.add_field("image", small, filename="small.png", content_type="image/png")
        response = await client.post("/api/images/upload", data=form)
        assert response.status == 507, await response.text()
        assert_error_body(await response.json(), 507, "no space left")
        assert snapshot(data_dir, ignore=HASHED) == before
        await client.close()
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("/api/images/upload" in w and "no space left" in w for w in warnings), warnings


def fill(folder: Path) -> None:
    """Fill the file system of `folder` to its last block."""
    for size in (65536, 512, 1):
        with contextlib.suppress(OSError), (folder / f"ballast{size}").open("wb") as handle:
            while True:
                handle.write(b"\0" * size)
                handle.flush()


Sent = Callable[[Client], Awaitable[aiohttp.ClientResponse]]


async def upload_small(client: Client) -> aiohttp.ClientResponse:
    form = aiohttp.FormData()
    form.add_field("sha256", fake_sha(1))
    picture = bytes(pyvips.Image.black(30, 20, bands=3).pngsave_buffer())
    form.add_field("image", picture, filename="new.png", content_type="image/png")
    return await client.post("/api/images/upload", data=form)


async def import_pending(client: Client) -> aiohttp.ClientResponse:
    return await client.post(IMPORT, json={"id": 2})


async def delete_image(client: Client) -> aiohttp.ClientResponse:
    return await client.delete(f"/api/images/{fake_sha(1)}_0.webp")


async def reorder(client: Client) -> aiohttp.ClientResponse:
    order = [f"{fake_sha(1)}_1.webp", f"{fake_sha(1)}_0.webp"]
    return await client.post("/api/images/reorder", json={"hash": fake_sha(1), "order": order})


@pytest.mark.parametrize("change", [upload_small, import_pending, delete_image, reorder])
async def test_changes_that_write_files_where_they_cannot_are_503_and_change_nothing(
    make_client: MakeClient,
    legacy: LegacyLibrary,
    models_dir: Path,
    data_dir: Path,
    change: Sent,
) -> None:
    """The folder where every change that writes files prepares them refuses writes (a
    read-only file system, or no permission): a clear 503, not a 500."""
    client = await make_client()
    images = [legacy.image(f"i{n}.png", width=30 + n, height=20) for n in range(2)]
    legacy.add_model(1, hash_hex=fake_sha(1), images=images)
    path = models_dir / "m2.bin"
    make_model_file(path, size=4096, seed=2)
    legacy.add_model(2, path=str(path), images=[legacy.image("p2.png")])
    await migrate(client, legacy)
    before = snapshot(data_dir, ignore=HASHED)
    with read_only_file(data_dir / "images" / ".staging"):
        response = await change(client)
        assert response.status == 503
        assert_error_body(await response.json(), 503, "the images folder cannot be written")
    assert snapshot(data_dir, ignore=HASHED) == before
    await client.close()
    assert check_library(data_dir) == []
