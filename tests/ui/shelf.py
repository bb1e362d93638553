"""A small library of its own for browser tests that change tags, files and types (the session
library's tags are what the other tests rely on): models with tags, a few of whose files are
present and the others missing, written through the storage layer in one change, served by a
process of its own."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from aiohttp import web

from modelshelf.app import create_app
from modelshelf.config import Settings
from modelshelf.storage import models, tags
from modelshelf.web.keys import SHELF
from tests.server import ServerProcess, serve_seeded

MODELS = 12
PRESENT = range(7)  # the others' files are missing
# Tag -> the models (by number) that carry it.
TAGGED = {
    "anime": [0, 1, 2, 3, 4],
    "animal": [5, 6],
    "portrait": [0, 7, 8],
    "portraits": [7, 9],
    "landscape": [10, 11],
    "style": [10],
    "unused": [],
    "watercolor": [1, 2],
    "sketch": [3],
}


def sha_of(i: int) -> str:
    return hashlib.sha256(f"shelf-{i}".encode()).hexdigest()


def name_of(i: int) -> str:
    return f"Shelf model {i:02d}"


async def seed(data_dir: Path) -> None:
    runner = web.AppRunner(create_app(Settings(data_dir=data_dir).resolve_paths()))
    await runner.setup()
    try:
        async with runner.app[SHELF].changes.change() as change:
            ids = {name: await tags.insert_tag(change.tx, name) for name in TAGGED}
            for i in range(MODELS):
                path = f"/models/shelf_{i:02d}.safetensors"
                await models.insert_model(
                    change.tx,
                    sha_of(i),
                    {
                        "path": path,
                        "name": name_of(i),
                        "type": "lora" if i % 2 else "checkpoint",
                        "size_bytes": 1_000_000 + i,
                        "created_at": 1_700_000_000_000 + i,
                        "meta_json": {"base_model": "SDXL 1.0" if i % 3 else "Pony"},
                    },
                )
                carried = [ids[name] for name, numbers in TAGGED.items() if i in numbers]
                await models.add_model_tags(change.tx, sha_of(i), carried)
                await change.tx.execute(
                    "INSERT INTO model_files(path, sha256, type, size_bytes, mtime_ns, inode,"
                    " device, present, last_seen) VALUES (?, ?, 'loras', ?, 0, ?, 1, ?, 0)",
                    (path, sha_of(i), 1_000_000 + i, 1000 + i, int(i in PRESENT)),
                )
    finally:
        await runner.cleanup()


def shelf_server(root: Path) -> Iterator[ServerProcess]:
    """The server of a fresh small library under `root` (a fixture's body)."""
    yield from serve_seeded(root / "data", seed(root / "data"))
