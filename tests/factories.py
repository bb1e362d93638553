"""Real test data: images made with pyvips, model files with real bytes, legacy libraries in
the first Hikaze model manager's SQLite schema."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyvips

LEGACY_SCHEMA = """
CREATE TABLE models(id INTEGER PRIMARY KEY, path TEXT UNIQUE, name TEXT, type TEXT NOT NULL,
    size_bytes INTEGER, hash_hex TEXT NOT NULL, created_at INTEGER, meta_json TEXT,
    extra_json TEXT);
CREATE TABLE tags(id INTEGER PRIMARY KEY, name TEXT UNIQUE, color TEXT, created_at INTEGER);
CREATE TABLE model_tags(model_id INTEGER, tag_id INTEGER);
"""


def make_image(
    path: Path,
    width: int = 64,
    height: int = 48,
    *,
    alpha: bool = False,
    orientation: int | None = None,
    colour: tuple[int, int, int] = (200, 30, 30),
) -> Path:
    """A real image file whose format follows the suffix (.png, .jpg, .webp, .gif, .tif).

    The left half is `colour`, the right half blue, so orientation can be checked."""
    base = pyvips.Image.black(width, height, bands=3).new_from_image(list(colour))
    right = pyvips.Image.black(width - width // 2, height, bands=3).new_from_image([0, 0, 255])
    image = base.insert(right, width // 2, 0).cast("uchar").copy(interpretation="srgb")
    if alpha:
        mask = pyvips.Image.black(width, height).new_from_image(255).cast("uchar")
        mask = mask.draw_rect(0, 0, 0, width, height // 2, fill=True)  # top half transparent
        image = image.bandjoin(mask)
    if orientation is not None:
        image = image.copy()
        image.set_type(pyvips.GValue.gint_type, "orientation", orientation)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.write_to_file(str(path))
    return path


def make_model_file(path: Path, size: int = 256 * 1024, seed: int = 0) -> str:
    """A model file of `size` real bytes; returns its SHA256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    chunk = hashlib.sha256(f"model-{seed}".encode()).digest() * 2048  # 64 KiB
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        remaining = size
        while remaining:
            piece = chunk[: min(remaining, len(chunk))]
            handle.write(piece)
            digest.update(piece)
            remaining -= len(piece)
    return digest.hexdigest()


# The same tables with no declared types: every column keeps whatever SQLite value it is
# given (a TEXT column would turn numbers into text), as a hostile library may.
UNTYPED_LEGACY_SCHEMA = """
CREATE TABLE models(id INTEGER PRIMARY KEY, path, name, type, size_bytes, hash_hex, created_at,
    meta_json, extra_json);
CREATE TABLE tags(id INTEGER PRIMARY KEY, name, color, created_at);
CREATE TABLE model_tags(model_id, tag_id);
"""


class RawText(bytes):
    """Bytes to store as a TEXT value as they are, e.g. text that is not valid UTF-8."""


@dataclass
class LegacyLibrary:
    """A legacy library on disk: its database file and its images folder."""

    root: Path
    schema: str = LEGACY_SCHEMA
    db_path: Path = field(init=False)
    images_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.db_path = self.root / "hikaze.db"
        self.images_dir = self.root / "images"
        self.images_dir.mkdir(exist_ok=True)
        with self.connect() as conn:
            conn.executescript(self.schema)

    def connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.db_path)

    def insert_row(self, **values: Any) -> None:
        """Insert one `models` row exactly as given (any SQLite value in any column;
        `RawText` bytes are stored as TEXT, valid UTF-8 or not)."""
        columns = ", ".join(values)
        marks = ", ".join(
            "CAST(? AS TEXT)" if isinstance(v, RawText) else "?" for v in values.values()
        )
        with self.connect() as conn:
            conn.execute(f"INSERT INTO models({columns}) VALUES ({marks})", tuple(values.values()))

    def execute(self, sql: str, *params: Any) -> None:
        with self.connect() as conn:
            conn.execute(sql, params)

    def add_tag(self, tag_id: int, name: str) -> int:
        with self.connect() as conn:
            conn.execute(
                "INSERT INTO tags(id, name, color, created_at) VALUES (?, ?, '#fff', 0)",
                (tag_id, name),
            )
        return tag_id

    def add_model(
        self,
        model_id: int,
        *,
        hash_hex: str = "",
        type: str = "checkpoint",
        path: str | None = None,
        name: str | None = None,
        extra: dict[str, Any] | str | None = None,
        meta_json: str | None = None,
        tags: Sequence[int] = (),
        images: Sequence[str] = (),
        created_at: int = 1_700_000_000_000,
        size_bytes: int | None = 1234,
    ) -> None:
        """Add a model row; `images` are file names in the images folder listed as URLs."""
        if extra is None:
            extra = {"description": f"model {model_id}"}
        if isinstance(extra, dict) and images:
            extra = {**extra, "images": [f"/media/{name}" for name in images]}
        extra_text = extra if isinstance(extra, str) else json.dumps(extra)
        with self.connect() as conn:
            conn.execute(
                "INSERT INTO models(id, path, name, type, size_bytes, hash_hex, created_at,"
                " meta_json, extra_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    model_id,
                    path or f"/models/{type}/model_{model_id}.safetensors",
                    name or f"model {model_id}",
                    type,
                    size_bytes,
                    hash_hex,
                    created_at,
                    meta_json,
                    extra_text,
                ),
            )
            conn.executemany(
                "INSERT INTO model_tags(model_id, tag_id) VALUES (?, ?)",
                [(model_id, t) for t in tags],
            )

    def migrate_args(self, data_dir: Path) -> list[str]:
        """Arguments of `modelshelf migrate-legacy` bringing this library into `data_dir`."""
        return [
            "migrate-legacy",
            "--data-dir",
            str(data_dir),
            "--legacy-db",
            str(self.db_path),
            "--legacy-images",
            str(self.images_dir),
            "--no-progress",
        ]

    def image(self, name: str, **kwargs: Any) -> str:
        """Make a real image in the legacy images folder; returns its file name."""
        make_image(self.images_dir / name, **kwargs)
        return name


def fake_sha(n: int) -> str:
    return hashlib.sha256(f"fake-{n}".encode()).hexdigest()


def rendition_files(images_dir: Path) -> list[str]:
    return sorted(p.name for p in images_dir.glob("*.webp"))


def image_size(path: Path) -> tuple[int, int]:
    image = pyvips.Image.new_from_file(str(path))
    return image.width, image.height


def environ_without_modelshelf() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MODELSHELF_")}
