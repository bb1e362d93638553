"""Stage 1 as a property: whatever a legacy library holds (any SQLite value in any column,
floats that are not numbers, text with surrogates or invalid UTF-8, blobs, nulls, JSON nested
deep or huge, hostile image names and symlinks), stage 1 finishes, every row is accounted for
in the report, every model and pending model it wrote is answered by every read endpoint, and
nothing outside the legacy folders is read."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Any

import pytest
import pyvips
from aiohttp.test_utils import TestClient, TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelshelf.app import create_app
from modelshelf.config import Settings
from tests.conftest import migrate
from tests.factories import UNTYPED_LEGACY_SCHEMA, LegacyLibrary, RawText, fake_sha, make_image
from tests.servable import assert_everything_served, assert_rows_accounted_for, staging_entries

pytestmark = pytest.mark.slow


class HostileJson(str):
    """The name of a text in HOSTILE_JSON_TEXTS, stored as that text."""


SQLITE_INTEGERS = st.integers(-(2**63), 2**63 - 1)
SQLITE_VALUES = st.one_of(
    st.none(),
    SQLITE_INTEGERS,
    st.floats(),  # NaN (stored as NULL), infinities, -0.0
    st.text(max_size=30),
    st.binary(max_size=30).map(RawText),  # TEXT that is often not UTF-8
    st.binary(max_size=30),  # BLOB
)
# Names a row may list: usable, missing, out of the folder, hostile.
IMAGE_NAMES = [
    "ok.png",
    "/media/model_1_1700000000_ok.png",
    "corrupt.png",
    "missing.png",
    "out.png",  # a symlink to a file outside the legacy root
    "up.png",  # a relative symlink climbing out
    "dir.png",  # a symlink to a folder outside
    "loop.png",  # a symlink to itself
    "../../outside/secret.png",
    "%2e%2e%2fsecret.png",
    "a" * 300 + ".png",
    "http://[broken/ok.png",
    "C:\\legacy\\ok.png",
    "",
]
# Any code point, lone surrogates included: json.dumps escapes them, as a file may hold them.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=12)
LONE_SURROGATES = st.sampled_from(["\ud800", "x\udfff", "\udbff\udbff", "\udc00y"])
JSON_LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), ANY_TEXT, LONE_SURROGATES
)
IMAGE_URLS = st.one_of(st.sampled_from(IMAGE_NAMES), JSON_LEAVES)
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=12,
)
EXTRA_OBJECTS = st.fixed_dictionaries(
    {},
    optional={
        "images": st.lists(IMAGE_URLS, max_size=4) | IMAGE_URLS,
        "image": IMAGE_URLS,
        "preview": IMAGE_URLS,
        "description": ANY_TEXT,
        "prompts": JSON_VALUES,
        "custom": JSON_VALUES,
    },
).map(lambda extra: json.dumps(extra, allow_nan=True))
# Hostile JSON texts, by name (the texts are big: hypothesis only ever sees the names).
HOSTILE_JSON_TEXTS = {
    "deep-array": "[" * 50_000 + "]" * 50_000,
    "deep-object": "{" + '"a":{' * 300 + "}" * 300 + "}",
    "nan": '{"a": NaN, "b": Infinity}',
    "overflow": '{"a": 1e999}',
    "long-integer": '{"a": 1' + "0" * 5000 + "}",
    "surrogates": '{"d": "\\ud800", "\\udc00": ["\\udbff"]}',
    "over-the-cap": '{"images": ["/media/ok.png"], "x": "' + "y" * (9 * 2**20) + '"}',
    "not-json": "not json",
    "array": "[1, 2, 3]",
    "string": '"a string"',
}
HOSTILE_JSON = st.sampled_from(sorted(HOSTILE_JSON_TEXTS)).map(HostileJson)
JSON_COLUMN = st.one_of(EXTRA_OBJECTS, HOSTILE_JSON, SQLITE_VALUES)
HASHES = [fake_sha(n) for n in range(3)]
HASH_COLUMN = st.one_of(st.sampled_from(HASHES + [h.upper() for h in HASHES] + [""]), SQLITE_VALUES)
ROWS = st.lists(
    st.fixed_dictionaries(
        {
            "id": SQLITE_INTEGERS,
            "path": st.one_of(st.sampled_from(["/m/a.ckpt", "/m/b.ckpt"]), SQLITE_VALUES),
            "name": SQLITE_VALUES,
            "type": SQLITE_VALUES,
            "size_bytes": SQLITE_VALUES,
            "hash_hex": HASH_COLUMN,
            "created_at": SQLITE_VALUES,
            "meta_json": JSON_COLUMN,
            "extra_json": JSON_COLUMN,
        }
    ),
    max_size=6,
    unique_by=lambda row: row["id"],
)
TAGS = st.lists(st.tuples(SQLITE_INTEGERS, SQLITE_VALUES), max_size=3, unique_by=lambda t: t[0])
LINKS = st.lists(st.tuples(SQLITE_VALUES, SQLITE_VALUES), max_size=6)
SECRET_COLOUR = (0, 255, 0)


def build_library(root: Path, rows: list[dict[str, Any]], tags: Any, links: Any) -> LegacyLibrary:
    outside = root / "outside"
    secret = make_image(outside / "secret.png", 37, 23, colour=SECRET_COLOUR)
    legacy = LegacyLibrary(root / "data" / "legacy", schema=UNTYPED_LEGACY_SCHEMA)
    images = legacy.images_dir
    make_image(images / "ok.png", 40, 30)
    make_image(images / "model_1_1700000000_ok.png", 30, 40)
    (images / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"broken" * 20)
    (images / "out.png").symlink_to(secret)
    (images / "up.png").symlink_to(Path("..") / ".." / ".." / "outside" / "secret.png")
    (images / "dir.png").symlink_to(outside)
    (images / "loop.png").symlink_to(images / "loop.png")
    (images / "secret.png").symlink_to(secret)
    for row in rows:
        legacy.insert_row(
            **{
                k: HOSTILE_JSON_TEXTS[v] if isinstance(v, HostileJson) else v
                for k, v in row.items()
            }
        )
    with legacy.connect() as conn:
        conn.executemany("INSERT INTO tags(id, name) VALUES (?, ?)", tags)
        conn.executemany("INSERT INTO model_tags(model_id, tag_id) VALUES (?, ?)", links)
    return legacy


def secret_bytes_found(data_dir: Path, secret: bytes) -> list[str]:
    """Files under the data directory holding the outside file's bytes or its picture."""
    found = []
    for path in (data_dir / "images").rglob("*"):
        if not path.is_file():
            continue
        if path.read_bytes() == secret:
            found.append(path.name)
        elif path.suffix == ".webp":
            image = pyvips.Image.new_from_file(str(path))
            red, green, blue = (image.extract_band(b).avg() for b in range(3))
            if green > 235 and red < 20 and blue < 20:
                found.append(path.name)
    return found


async def run_stage_one_twice(root: Path, legacy: LegacyLibrary, row_count: int) -> None:
    settings = Settings(data_dir=root / "data", workers=2, read_connections=2).resolve_paths()
    async with TestClient(TestServer(create_app(settings))) as client:
        report = await asyncio.wait_for(migrate(client, legacy), 120)
        assert report["db_migration"]["legacy_models"] == row_count
        assert_rows_accounted_for(report)
        await assert_everything_served(client)
        again = await asyncio.wait_for(migrate(client, legacy), 120)
        assert_rows_accounted_for(again)
        assert again["db_migration"]["models_imported"] == 0
        assert again["db_migration"]["pending_created"] == 0
    assert staging_entries(root / "data") == []
    secret = (root / "outside" / "secret.png").read_bytes()
    assert secret_bytes_found(root / "data", secret) == []


@given(rows=ROWS, tags=TAGS, links=LINKS)
@settings(
    max_examples=int(os.environ.get("MODELSHELF_PROPERTY_EXAMPLES", "60")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
def test_stage_one_finishes_accounts_for_every_row_and_serves_all_it_wrote(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[dict[str, Any]],
    tags: list[tuple[int, Any]],
    links: list[tuple[Any, Any]],
) -> None:
    root = tmp_path_factory.mktemp("example")
    legacy = build_library(root, rows, tags, links)
    asyncio.run(run_stage_one_twice(root, legacy, len(rows)))
