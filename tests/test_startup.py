"""The service as a process at start-up: a start that fails exits at once and frees the data
directory; a library damaged while it ran, then killed, starts again and answers right."""

from __future__ import annotations

import json
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest

from modelshelf.storage import Storage
from tests.factories import LegacyLibrary, fake_sha, service_environ
from tests.server import ServerProcess

pytestmark = pytest.mark.slow

H = fake_sha(1)


def run_check(data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelshelf", "check", "--data-dir", str(data_dir)],
        capture_output=True,
        text=True,
        env=service_environ(),
        timeout=60,
    )


def images_folder_is_a_file(data_dir: Path) -> None:
    (data_dir / "images").write_text("a file where the images folder belongs")


def database_is_not_a_database(data_dir: Path) -> None:
    (data_dir / "modelshelf.db").write_bytes(b"garbage, not an SQLite file " * 100)


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (images_folder_is_a_file, "/images is a file where a folder belongs"),
        (database_is_not_a_database, "DatabaseError: file is not a database"),
    ],
    ids=["images-is-a-file", "database-is-garbage"],
)
async def test_a_start_up_that_fails_exits_within_seconds_and_frees_the_data_dir(
    data_dir: Path, tmp_path: Path, damage: Callable[[Path], None], reason: str
) -> None:
    data_dir.mkdir(parents=True)
    damage(data_dir)
    server = ServerProcess(data_dir, tmp_path / "server.log")
    with pytest.raises(RuntimeError, match="server exited with 4"):
        server.start(timeout=20)
    assert "start-up failed: " in server.log()
    assert reason in server.log()
    assert "Traceback" not in server.log()  # one line says why; --log-level DEBUG says more
    (data_dir / "modelshelf.db").unlink(missing_ok=True)
    (data_dir / "images").unlink(missing_ok=True)
    storage = Storage(data_dir / "modelshelf.db")
    await storage.open()  # the lock went with the process
    await storage.close()


def test_a_port_in_use_is_one_line_and_exit_4_before_a_library_is_made(
    data_dir: Path, tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = ServerProcess(data_dir, tmp_path / "server.log")
        server.port = taken.getsockname()[1]
        with pytest.raises(RuntimeError, match="server exited with 4"):
            server.start(timeout=20)
    assert f"start-up failed: port {server.port} on 127.0.0.1 is in use" in server.log()
    assert "Traceback" not in server.log()
    # A mistyped --port beside a running service leaves no new, empty library behind.
    assert not data_dir.exists()


def test_a_data_dir_that_is_a_file_is_said_so_and_exit_4(tmp_path: Path) -> None:
    a_file = tmp_path / "library.tar"
    a_file.write_bytes(b"not a folder")
    server = ServerProcess(a_file, tmp_path / "server.log")
    with pytest.raises(RuntimeError, match="server exited with 4"):
        server.start(timeout=20)
    assert f"start-up failed: {a_file} is a file where a folder belongs" in server.log()
    assert "Traceback" not in server.log()
    assert a_file.read_bytes() == b"not a folder"


def wait_for_log(log: Path, after: int, text: str, timeout: float = 30) -> None:
    """Wait until the server's log says `text` past offset `after` (the process announcing an
    event it reached)."""
    deadline = time.monotonic() + timeout
    while text not in log.read_text(errors="replace")[after:]:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the server never logged {text!r}")
        time.sleep(0.05)


async def test_a_library_damaged_while_serving_then_killed_restarts_and_answers_right(
    data_dir: Path, legacy: LegacyLibrary, tmp_path: Path
) -> None:
    names = [legacy.image(f"model_1_{i}_x.png", width=60 + 10 * i, height=40) for i in range(3)]
    legacy.add_model(1, hash_hex=H, images=names)
    server = ServerProcess(data_dir, tmp_path / "server.log").start()
    images = data_dir / "images"
    try:
        async with aiohttp.ClientSession() as session:
            body = {
                "legacy_db_path": str(legacy.db_path),
                "legacy_images_dir": str(legacy.images_dir),
            }
            async with session.post(
                server.url + "/api/migration/migrate_legacy_db", json=body
            ) as r:
                assert r.status == 200
            originals = [(images / f"{H}_{s}_high.webp").read_bytes() for s in range(3)]
            (images / f"{H}_1_medium.webp").unlink()  # lost while the service runs
            async with session.delete(f"{server.url}/api/images/{H}_0.webp") as r:
                assert r.status == 200
        server.kill()
        with sqlite3.connect(data_dir / "modelshelf.db") as conn:  # and a journal entry gone bad
            conn.execute(
                "INSERT INTO file_journal(created_at, ops) VALUES (0, ?)",
                (json.dumps([{"op": "unlink", "path": "../escape"}]),),
            )

        damaged = run_check(data_dir)
        assert damaged.returncode == 1
        assert f"image {H}_0 is listed but lacks medium" in damaged.stdout
        assert "unfinished file journal entry" in damaged.stdout

        restarted_at = len(server.log_path.read_text(errors="replace"))
        server.start()
        wait_for_log(server.log_path, restarted_at, "rendering missing renditions: finished")
        async with aiohttp.ClientSession() as session:
            async with session.post(
                server.url + "/api/images/get_sample_imgs", json={"hash": H}
            ) as r:
                assert await r.json() == [f"{H}_0.webp", f"{H}_1.webp"]
            for seq, original in enumerate(originals[1:]):
                async with session.get(f"{server.url}/api/images/{H}_{seq}.webp") as r:
                    assert await r.read() == original
                async with session.get(
                    f"{server.url}/api/images/{H}_{seq}.webp?quality=medium"
                ) as r:
                    assert r.status == 200
    finally:
        server.kill()
    after = run_check(data_dir)
    assert after.returncode == 1
    [line] = after.stdout.splitlines()
    set_aside = r"file journal entry \d+ was set aside: FileOpError: '\.\./escape' leaves the"
    assert re.fullmatch(set_aside + " data directory", line)
