"""The service as a process: clean shutdown on SIGTERM, consistency after SIGKILL.

Crashes at every named step are in test_crashpoints.py; here the kills land where they land,
among several imports at once, as a user's `kill -9` would.
"""

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
from tests.conftest import IMPORT, http_post, migrate_body
from tests.factories import LegacyLibrary, make_model_file
from tests.server import ServerProcess

pytestmark = pytest.mark.slow

MODEL_SIZE = 256 * 1024


async def post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> int:
    async with session.post(url, json=body) as response:
        await response.read()
        return response.status


def seed_pending(
    legacy: LegacyLibrary, models_dir: Path, count: int, first: int = 1
) -> dict[int, str]:
    """`count` pending models from id `first`; every third shares its content with the one
    before it, so imports collide. Returns id -> SHA256."""
    hashes = {}
    for i in range(first, first + count):
        content = i - 1 if i % 3 == 0 else i
        path = models_dir / f"m{i}.safetensors"
        hashes[i] = make_model_file(path, size=MODEL_SIZE, seed=content)
        image = legacy.image(f"model_{i}_1_x.jpg", width=120 + i, height=90)
        legacy.add_model(i, hash_hex="", path=str(path), images=[image])
    return hashes


def migrate_over_http(server: ServerProcess, legacy: LegacyLibrary) -> None:
    status, body = http_post(server, "/api/migration/migrate_legacy_db", migrate_body(legacy))
    assert status == 200, body


async def test_sigterm_lets_an_in_flight_import_finish_and_exits_cleanly(
    data_dir: Path, legacy: LegacyLibrary, models_dir: Path, tmp_path: Path
) -> None:
    seed_pending(legacy, models_dir, 1)
    server = ServerProcess(
        data_dir, tmp_path / "server.log", MODELSHELF_PAUSE_AT="hash.reading"
    ).start()
    try:
        migrate_over_http(server, legacy)
        async with aiohttp.ClientSession() as session:
            request = asyncio.create_task(post(session, server.url + IMPORT, {"id": 1}))
            # The import is hashing, held there; SIGTERM arrives; shutdown has begun (no new
            # connections) before the import may go on.
            await asyncio.to_thread(server.wait_for_line, "pause point hash.reading#1 reached")
            server.signal(signal.SIGTERM)
            await asyncio.to_thread(server.wait_for_line, "shutting down")
            assert not request.done()
            server.release()
            assert await request == 200
        assert await asyncio.to_thread(server.wait, 30) == 0
    finally:
        server.kill()
    assert check_library(data_dir) == []
    with sqlite3.connect(data_dir / "modelshelf.db") as conn:
        assert conn.execute("SELECT count(*) FROM models").fetchone() == (1,)


@pytest.mark.timeout(300)
async def test_sigkill_at_random_moments_during_imports_never_breaks_the_library(
    data_dir: Path, legacy: LegacyLibrary, models_dir: Path, tmp_path: Path
) -> None:
    """Each round fires 8 imports, waits for 0 to 3 answers, then SIGKILLs the server and
    starts it again. An import answered 200 must survive the kill; every id is still pending
    or imported; the check finds nothing."""
    hashes = seed_pending(legacy, models_dir, 30)
    server = ServerProcess(data_dir, tmp_path / "server.log").start()
    migrate_over_http(server, legacy)
    rng = random.Random(20261125)
    acknowledged: dict[int, str] = {}
    cut_short = 0  # rounds in which the kill found imports still running
    try:
        for _ in range(20):
            pending = pending_ids(data_dir)
            if len(pending) < 8:  # top up through stage 1, so every round has imports to cut
                hashes |= seed_pending(legacy, models_dir, 15, first=len(hashes) + 1)
                migrate_over_http(server, legacy)
                pending = pending_ids(data_dir)
            batch = rng.sample(sorted(pending), 8)
            answers_to_wait_for = rng.randint(0, 3)
            async with aiohttp.ClientSession() as session:
                requests = {
                    asyncio.create_task(
                        post(
                            session,
                            server.url + IMPORT,
                            {
                                "id": i,
                                "conf_strategy": rng.choice([None, "override", "merge", "delete"]),
                            },
                        )
                    ): i
                    for i in batch
                }
                running = set(requests)
                for _ in range(answers_to_wait_for):
                    _, running = await asyncio.wait(running, return_when="FIRST_COMPLETED")
                server.kill()
                cut_short += bool(running)
                await asyncio.gather(*requests, return_exceptions=True)
            for task, pending_id in requests.items():
                if not task.exception() and task.result() == 200:
                    acknowledged[pending_id] = hashes[pending_id]
            server.start()  # start-up recovery runs before /api/health answers
            assert check_library(data_dir) == [], server.log()
            assert_every_pending_id_accounted_for(data_dir, hashes, legacy)
            assert set(acknowledged.values()) <= model_hashes(data_dir)
            assert not set(acknowledged) & pending_ids(data_dir)
    finally:
        server.kill()
    assert acknowledged, "no import was ever answered: the rounds proved nothing"
    assert cut_short > 0, "no kill ever landed while imports ran"


def pending_ids(data_dir: Path) -> set[int]:
    with sqlite3.connect(data_dir / "modelshelf.db") as conn:
        return {r[0] for r in conn.execute("SELECT id FROM pending_import")}


def model_hashes(data_dir: Path) -> set[str]:
    with sqlite3.connect(data_dir / "modelshelf.db") as conn:
        return {r[0] for r in conn.execute("SELECT sha256 FROM models")}


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
