"""Another process holding the database's write lock (a backup tool, a sqlite3 shell): the
real server answers writes with 503 and Retry-After within a few seconds, keeps answering
reads, and recovers by itself once the lock goes."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from modelshelf.integrity import check_library
from tests.factories import LegacyLibrary, fake_sha, make_image, make_model_file
from tests.server import HeldLock, ServerProcess

pytestmark = pytest.mark.slow

H = fake_sha(1)


async def call(
    session: aiohttp.ClientSession, method: str, url: str, **kwargs: Any
) -> tuple[int, dict[str, str], bytes, float]:
    started = time.monotonic()
    async with session.request(method, url, **kwargs) as response:
        body = await response.read()
        return response.status, dict(response.headers), body, time.monotonic() - started


def upload_form(image: Path) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("sha256", H)
    form.add_field("image", image.read_bytes(), filename="x.png", content_type="image/png")
    return form


async def test_writes_are_503_with_retry_after_while_another_process_holds_the_lock(
    data_dir: Path, legacy: LegacyLibrary, models_dir: Path, tmp_path: Path
) -> None:
    legacy.add_model(1, hash_hex=H, images=[legacy.image("a.png"), legacy.image("b.png")])
    for i in (2, 3):
        make_model_file(models_dir / f"m{i}.bin", size=64 * 1024, seed=i)
        legacy.add_model(i, path=str(models_dir / f"m{i}.bin"))
    second = LegacyLibrary(data_dir / "legacy" / "second")
    second.add_model(7, hash_hex=fake_sha(7))
    upload = make_image(tmp_path / "upload.png")
    server = ServerProcess(data_dir, tmp_path / "server.log").start()
    url = server.url
    try:
        async with aiohttp.ClientSession() as session:
            migration = {
                "legacy_db_path": str(legacy.db_path),
                "legacy_images_dir": str(legacy.images_dir),
            }
            assert (await call(session, "POST", url + "/api/migration/migrate_legacy_db",
                               json=migration))[0] == 200  # fmt: skip
            writes: list[tuple[str, str, Any]] = [
                ("POST", "/api/migration/import_a_model", {"json": {"id": 2}}),
                ("DELETE", f"/api/images/{H}_1.webp", {}),
                ("POST", "/api/images/upload", {"data": upload_form(upload)}),
                (
                    "POST",
                    "/api/migration/migrate_legacy_db",
                    {
                        "json": {
                            "legacy_db_path": str(second.db_path),
                            "legacy_images_dir": str(second.images_dir),
                        }
                    },
                ),
            ]
            with HeldLock(data_dir / "modelshelf.db"):
                for method, path, kwargs in writes:
                    status, headers, body, elapsed = await call(
                        session, method, url + path, **kwargs
                    )
                    assert status == 503, (path, body)
                    assert headers["Retry-After"].isdigit(), path
                    assert json.loads(body)["error"] == "Service Unavailable"
                    assert elapsed < 6, (path, elapsed)
                for path in (
                    "/api/models",
                    f"/api/models/{H}",
                    "/api/migration/pending_models",
                    f"/api/images/{H}_0.webp",
                    "/api/tags",
                ):
                    status, _, body, elapsed = await call(session, "GET", url + path)
                    assert status == 200, (path, body[:300])
                    assert elapsed < 1.5, (path, elapsed)
                # A batch runs as a job, which cannot even be recorded: nothing ran, try later.
                batch = await call(
                    session, "POST", url + "/api/migration/import_models", json={"ids": [3]}
                )
                assert batch[0] == 503 and batch[1]["Retry-After"].isdigit(), batch[2]
            # The lock is gone: the same writes go through, with no restart.
            form = {"data": upload_form(upload)}
            writes[2] = ("POST", "/api/images/upload", form)
            for method, path, kwargs in writes:
                status, _, body, _ = await call(session, method, url + path, **kwargs)
                assert status == 200, (path, body)
            batch = await call(
                session, "POST", url + "/api/migration/import_models", json={"ids": [3]}
            )
            assert b'"success"' in batch[2], batch[2]
        server.signal(signal.SIGTERM)
        assert server.wait(30) == 0
    finally:
        server.kill()
    log = server.log()
    assert "unhandled error" not in log and "Traceback" not in log, log
    assert check_library(data_dir) == []
