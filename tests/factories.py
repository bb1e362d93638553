"""Real test data: images made with pyvips, model files with real bytes, legacy libraries in
the first Hikaze model manager's SQLite schema."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyvips

from modelshelf.storage.schema import MIGRATIONS

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
        if not self.db_path.exists():  # else: opening one made before, to add to it
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

    def migrate_with_cli(self, data_dir: Path, config_dir: Path) -> None:
        """Stage 1 of this library into `data_dir` by `modelshelf migrate-legacy` in a process
        of its own, reading settings from `config_dir` only. Raises CalledProcessError."""
        subprocess.run(
            [
                sys.executable,
                "-m",
                "modelshelf",
                *self.migrate_args(data_dir),
                "--config-dir",
                str(config_dir),
            ],
            check=True,
            capture_output=True,
            env=service_environ(),
        )

    def image(self, name: str, **kwargs: Any) -> str:
        """Make a real image in the legacy images folder; returns its file name."""
        make_image(self.images_dir / name, **kwargs)
        return name


class Library:
    """A legacy library whose models live in `models_dir`, brought in with stage 1."""

    def __init__(self, legacy: LegacyLibrary, models_dir: Path) -> None:
        self.legacy = legacy
        self.models_dir = models_dir
        self.tags_made: set[int] = set()

    def tag(self, tag_id: int, name: str) -> int:
        if tag_id not in self.tags_made:
            self.legacy.add_tag(tag_id, name)
            self.tags_made.add(tag_id)
        return tag_id

    def model(
        self,
        legacy_id: int,
        *,
        content: int,
        hashed: bool = False,
        image: tuple[int, int] | None = (80, 60),
        size: int = 64 * 1024,
        **kwargs: Any,
    ) -> str:
        """A model file with content seed `content`; returns its SHA256."""
        path = self.models_dir / f"m{legacy_id}.safetensors"
        sha = make_model_file(path, size=size, seed=content)
        images = []
        if image is not None:
            images = [
                self.legacy.image(f"model_{legacy_id}_1_i.png", width=image[0], height=image[1])
            ]
        self.legacy.add_model(
            legacy_id, hash_hex=sha if hashed else "", path=str(path), images=images, **kwargs
        )
        return sha


def fake_sha(n: int) -> str:
    return hashlib.sha256(f"fake-{n}".encode()).hexdigest()


def rendition_files(images_dir: Path) -> list[str]:
    return sorted(p.name for p in images_dir.glob("*.webp"))


def image_size(path: Path) -> tuple[int, int]:
    image = pyvips.Image.new_from_file(str(path))
    return image.width, image.height


def environ_without_modelshelf() -> dict[str, str]:
    """The environment for a child process: no MODELSHELF_ setting, and PYTHONPATH made
    absolute. Run as `PYTHONPATH=src pytest`, a child started in another folder (the CLI
    tests run in tmp_path) found no `src` there and imported whichever modelshelf was
    installed: another checkout's code, tested in place of this one."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MODELSHELF_")}
    if environ.get("PYTHONPATH"):
        entries = environ["PYTHONPATH"].split(os.pathsep)
        environ["PYTHONPATH"] = os.pathsep.join(str(Path(e).resolve()) for e in entries if e)
    return environ


# What the settings of a test's service say unless the test says otherwise: a scan takes the
# model files a test has just written at once, without waiting to see them hold still (that
# wait has tests of its own, tests/test_scan_settle.py).
TEST_SETTINGS: dict[str, object] = {"scan_settle_seconds": 0}


def service_environ() -> dict[str, str]:
    """The environment of a service process a test starts: none of the caller's MODELSHELF_
    variables, and TEST_SETTINGS."""
    given = {f"MODELSHELF_{k.upper()}": str(v) for k, v in TEST_SETTINGS.items()}
    return environ_without_modelshelf() | given


def add_pending_models(
    legacy: LegacyLibrary,
    models_dir: Path,
    ids: Sequence[int],
    *,
    image: tuple[int, int] | None = (320, 240),
    size: int = 4096,
) -> dict[int, str]:
    """Unhashed legacy models (each with its own content and, unless `image` is None, one
    JPEG), which stage 1 makes pending. Returns id -> SHA256."""
    hashes: dict[int, str] = {}
    for i in ids:
        path = models_dir / f"p{i}.safetensors"
        hashes[i] = make_model_file(path, size=size, seed=10_000 + i)
        images = (
            []
            if image is None
            else [legacy.image(f"model_{i}_1_p.jpg", width=image[0] + i % 7, height=image[1])]
        )
        legacy.add_model(i, path=str(path), images=images)
    return hashes


def query(data_dir: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows of `sql` on the library's database, read with a plain connection."""
    with sqlite3.connect(data_dir / "modelshelf.db") as conn:
        return [tuple(r) for r in conn.execute(sql, params)]


def table_names(data_dir: Path) -> list[str]:
    rows = query(data_dir, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
    return [str(r[0]) for r in rows]


# Tables a failed import may change on purpose: the digest of a model file hashed before the
# failure stays cached, so that a retry does not read the file again.
HASHED = ("hash_cache",)


def snapshot(data_dir: Path, *, ignore: Sequence[str] = ()) -> dict[str, Any]:
    """The whole store: the rows of every table (schema included) and the bytes of every file
    under images/ (staging and pending originals included). `ignore` names tables a test
    expects to change, each for a reason it states (the digest cache, filled by hashing before
    a change fails, is the usual one)."""
    tables = [t for t in table_names(data_dir) if t not in ignore]
    files = {
        str(p.relative_to(data_dir)): p.read_bytes()
        for p in sorted((data_dir / "images").rglob("*"))
        if p.is_file()
    }
    return {
        "schema": query(data_dir, "SELECT type, name, sql FROM sqlite_master ORDER BY name"),
        "rows": {t: sorted(query(data_dir, f"SELECT * FROM {t}"), key=repr) for t in tables},
        "files": files,
    }


def schema_before(step: str) -> str:
    """SQL making a library's schema as it was just before the migration whose name begins
    with `step` (storage.schema.MIGRATIONS), with its bookkeeping: a library from before."""
    at = next(i for i, (name, _) in enumerate(MIGRATIONS) if name.startswith(step))
    script = "".join(sql + ";" for _, sql in MIGRATIONS[:at])
    script += (
        "CREATE TABLE schema_migrations(version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
        " applied_at INTEGER NOT NULL);"
    )
    return script + "".join(
        f"INSERT INTO schema_migrations VALUES ({v}, 'old', 0);" for v in range(1, at + 1)
    )
