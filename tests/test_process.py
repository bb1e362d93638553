"""The service as a process: clean shutdown on SIGTERM, consistency after SIGKILL."""

from __future__ import annotations

import asyncio
import random
import signal
import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from modelshelf.integrity import check_library
from tests.factories import LegacyLibrary, make_model_file
from tests.server import ServerProcess

pytestmark = pytest.mark.slow


async def post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> int:
    async with session.post(url, json=body) as response:
        await response.read()
        return response.status


def seed_pending(
    legacy: LegacyLibrary, models_dir: Path, count: int, size: int, first: int = 1
) -> dict[int, str]:
    """`count` pending models from id `first`; every third shares its content with the one
    before it, so imports collide. Returns id -> SHA256."""
    hashes = {}
    for i in range(first, first + count):
        content = i - 1 if i % 3 == 0 else i
        path = models_dir / f"m{i}.safetensors"
        hashes[i] = make_model_file(path, size=size, seed=content)
        image = legacy.image(f"model_{i}_1_x.jpg", width=1200 + i, height=900)
        legacy.add_model(i, hash_hex="", path=str(path), images=[image])
    return hashes


async def migrate_over_http(server: ServerProcess, legacy: LegacyLibrary) -> None:
    async with aiohttp.ClientSession() as session:
        status = await post(
            session,
            server.url + "/api/migration/migrate_legacy_db",
            {"legacy_db_path": str(legacy.db_path), "legacy_images_dir": str(legacy.images_dir)},
        )
    assert status == 200


async def test_sigterm_lets_an_in_flight_import_finish_and_exits_cleanly(
    data_dir: Path, legacy: LegacyLibrary, models_dir: Path, tmp_path: Path
) -> None:
    seed_pending(legacy, models_dir, 1, size=512 * 2**20)
    server = ServerProcess(data_dir, tmp_path / "server.log").start()
    try:
        await migrate_over_http(server, legacy)
        async with aiohttp.ClientSession() as session:
            request = asyncio.create_task(
                post(session, server.url + "/api/migration/import_a_model", {"id": 1})
            )
            await asyncio.sleep(0.15)  # hashing 512 MiB takes longer than this
            assert not request.done()
            server.signal(signal.SIGTERM)
            assert await request == 200
        assert await asyncio.to_thread(server.wait, 30) == 0
    finally:
        server.kill()
    assert check_library(data_dir) == []
    with sqlite3.connect(data_dir / "modelshelf.db") as conn:
        assert conn.execute("SELECT count(*) FROM models").fetchone() == (1,)


async def test_sigkill_at_random_moments_during_imports_never_breaks_the_library(
    data_dir: Path, legacy: LegacyLibrary, models_dir: Path, tmp_path: Path
) -> None:
    hashes = seed_pending(legacy, models_dir, 30, size=24 * 2**20)
    server = ServerProcess(data_dir, tmp_path / "server.log").start()
    await migrate_over_http(server, legacy)
    rng = random.Random(20261125)
    kills = 0
    try:
        for _ in range(20):
            pending = pending_ids(data_dir)
            if len(pending) < 8:  # top up through stage 1, so every round has imports to cut
                hashes |= seed_pending(legacy, models_dir, 15, 24 * 2**20, first=len(hashes) + 1)
                await migrate_over_http(server, legacy)
                pending = pending_ids(data_dir)
            batch = rng.sample(sorted(pending), min(8, len(pending)))
            async with aiohttp.ClientSession() as session:
                requests = [
                    asyncio.create_task(
                        post(
                            session,
                            server.url + "/api/migration/import_a_model",
                            {
                                "id": i,
                                "conf_strategy": rng.choice([None, "override", "merge", "delete"]),
                            },
                        )
                    )
                    for i in batch
                ]
                await asyncio.sleep(rng.uniform(0.02, 0.6))
                server.kill()
                kills += 1
                await asyncio.gather(*requests, return_exceptions=True)
            server.start()  # start-up recovery runs before /api/health answers
            assert check_library(data_dir) == [], server.log()
            assert_every_pending_id_accounted_for(data_dir, hashes, legacy)
    finally:
        server.kill()
    assert kills == 20
    assert len(pending_ids(data_dir)) < len(hashes)  # imports did complete between kills


def pending_ids(data_dir: Path) -> set[int]:
    with sqlite3.connect(data_dir / "modelshelf.db") as conn:
        return {r[0] for r in conn.execute("SELECT id FROM pending_import")}


def assert_every_pending_id_accounted_for(
    data_dir: Path, hashes: dict[int, str], legacy: LegacyLibrary
) -> None:
    """Each id is still pending with its tags and image, or its content is in the library."""
    with sqlite3.connect(data_dir / "modelshelf.db") as conn:
        models = {r[0] for r in conn.execute("SELECT sha256 FROM models")}
        pending = {r[0] for r in conn.execute("SELECT id FROM pending_import")}
        with_image = {r[0] for r in conn.execute("SELECT pending_id FROM pending_images")}
    for pending_id, sha in hashes.items():
        if pending_id in pending:
            assert pending_id in with_image
            original = legacy.images_dir / f"model_{pending_id}_1_x.jpg"
            copied = data_dir / "images" / "pending" / f"{pending_id}.jpg"
            assert copied.read_bytes() == original.read_bytes()
        else:
            assert sha in models, f"pending {pending_id} vanished without its model"
