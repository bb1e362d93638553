"""Stage 1 against hostile legacy libraries: single rows holding anything SQLite can hold,
files that are not legacy libraries, images folders with symlinks out, ids of any size.
Nothing a legacy file holds stops the work, hangs it, or leaves something unservable."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from modelshelf.domain.legacy_plan import image_file_names
from modelshelf.storage import legacy_source
from tests.conftest import Client, migrate
from tests.factories import (
    UNTYPED_LEGACY_SCHEMA,
    LegacyLibrary,
    RawText,
    fake_sha,
    make_image,
    make_model_file,
)
from tests.servable import assert_everything_served, assert_rows_accounted_for, staging_entries

GOOD = fake_sha(1)
HOSTILE = fake_sha(2)


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


# One hostile value per case, in the column it is hostile in.
ROW_CASES: dict[str, dict[str, Any]] = {
    "image-name-too-long": {"extra_json": json.dumps({"images": ["/media/" + "a" * 5000]})},
    "image-name-not-a-url": {"extra_json": json.dumps({"images": ["http://[broken/x.png"]})},
    "lone-surrogate-escapes": {"extra_json": '{"d": "\\ud800 x", "\\udc00": ["\\udfff"]}'},
    "extra-json-not-utf8": {"extra_json": RawText(b'{"d": "\xed\xa0\x80\xff"}')},
    "name-not-utf8": {"name": RawText(b"caf\xe9")},
    "path-not-utf8": {"path": RawText(b"/models/\xff.ckpt")},
    "hash-not-utf8": {"hash_hex": RawText(b"\xff" * 64)},
    "nesting-beyond-the-parser": {"extra_json": "[" * 100_000 + "]" * 100_000},
    "nesting-beyond-serialising": {"extra_json": json.dumps(nested(300))},
    "nan-in-json": {"extra_json": '{"a": NaN, "b": -Infinity}'},
    "float-overflow-in-json": {"extra_json": '{"a": 1e999}'},
    "integer-of-5000-digits-in-json": {"extra_json": '{"a": 1' + "0" * 5000 + "}"},
    "integer-beyond-64-bits-in-json": {"extra_json": '{"a": ' + str(2**200) + "}"},
    "extra-json-a-blob": {"extra_json": b'{"description": "blob"}'},
    "extra-json-a-number": {"extra_json": 5.5},
    "meta-json-an-array": {"meta_json": "[1, 2]"},
    "value-over-the-size-cap": {"extra_json": json.dumps({"a": "x" * (9 * 2**20)})},
    "created-at-infinite": {"created_at": float("inf")},
    "created-at-minus-infinite": {"created_at": float("-inf")},
    "created-at-absurd": {"created_at": 10**18},
    "created-at-largest": {"created_at": 2**63 - 1},
    "created-at-negative": {"created_at": -5},
    "created-at-text": {"created_at": "yesterday"},
    "created-at-a-blob": {"created_at": b"\x01\x02"},
    "size-text": {"size_bytes": "12 bytes"},
    "size-numeric-text": {"size_bytes": "4096"},
    "size-fraction": {"size_bytes": 1.5},
    "size-whole-float": {"size_bytes": 12.0},
    "size-negative": {"size_bytes": -1},
    "size-a-blob": {"size_bytes": b"\x00"},
    "name-a-blob": {"name": b"\x00\xff\xfe"},
    "path-a-number": {"path": 12},
    "type-a-float": {"type": 1.5},
    "hash-a-blob": {"hash_hex": HOSTILE.encode()},
    "hash-a-number": {"hash_hex": 5},
    "everything-null": dict.fromkeys(
        ("path", "name", "type", "size_bytes", "hash_hex", "created_at")
    ),
}


# Values that need no change: JSON integers of any size are JSON; NULL means "not known".
KEPT_AS_THEY_ARE = [ROW_CASES["integer-beyond-64-bits-in-json"], ROW_CASES["everything-null"]]


def untyped_library(data_dir: Path) -> LegacyLibrary:
    legacy = LegacyLibrary(data_dir / "legacy", schema=UNTYPED_LEGACY_SCHEMA)
    legacy.add_tag(1, "checkpoint")
    legacy.add_model(1, hash_hex=GOOD, tags=[1], images=[legacy.image("good.png")])
    return legacy


@pytest.mark.parametrize("hashed", [True, False], ids=["hashed", "pending"])
@pytest.mark.parametrize("hostile", list(ROW_CASES.values()), ids=list(ROW_CASES))
async def test_one_hostile_row_never_stops_stage_one_and_what_it_wrote_is_served(
    client: Client, data_dir: Path, hostile: dict[str, Any], hashed: bool
) -> None:
    legacy = untyped_library(data_dir)
    row = {
        "id": 2,
        "path": "/m/2.ckpt",
        "name": "two",
        "type": "lora",
        "size_bytes": 10,
        "hash_hex": HOSTILE if hashed else "",
        "created_at": 1_700_000_000_000,
        "meta_json": None,
        "extra_json": json.dumps({"images": ["/media/good.png"]}),
    }
    legacy.insert_row(**{**row, **hostile})
    legacy.execute("INSERT INTO model_tags VALUES (2, 1)")

    report = await migrate(client, legacy)

    assert_rows_accounted_for(report)
    assert report["db_migration"]["legacy_models"] == 2
    assert (await client.get(f"/api/models/{GOOD}")).status == 200
    row_problems = [p["problem"] for p in report["problems"] if p["legacy_id"] == 2]
    assert row_problems or hostile in KEPT_AS_THEY_ARE, "what was changed in row 2 is reported"
    await assert_everything_served(client)
    assert staging_entries(data_dir) == []


async def test_changed_values_are_reported_and_stored_as_the_record_types(
    client: Client, data_dir: Path
) -> None:
    legacy = untyped_library(data_dir)
    legacy.insert_row(
        id=2,
        path=12,
        name=b"blob name",
        type="lora",
        size_bytes="4096",
        hash_hex="",
        created_at="1700000000",
        extra_json='{"d": "\\ud800"}',
    )
    report = await migrate(client, legacy)
    (record,) = (await (await client.get("/api/migration/pending_models")).json())["models"]
    assert record["path"] == "12"
    assert record["name"] == "blob name"
    assert record["size_bytes"] == 4096
    assert record["created_at"] == 1_700_000_000_000
    assert record["meta_json"] == {"d": "\ufffd"}
    problems = " | ".join(p["problem"] for p in report["problems"] if p["legacy_id"] == 2)
    for said in ("path was a number", "name was a blob", "size_bytes", "created_at", "surrogate"):
        assert said in problems


async def test_image_entries_that_name_no_file_are_reported_not_dropped_in_silence(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    """The image keys leave meta_json: an entry that is not a file name would vanish unsaid."""
    good = legacy.image("good.png")
    listed: list[Any] = [7, {"url": f"/media/{good}"}, "/media/", None, "", f"/media/{good}"]
    legacy.add_model(1, hash_hex=GOOD, extra={"images": listed, "preview": f"/media/{good}"})
    report = await migrate(client, legacy)
    problems = [p["problem"] for p in report["problems"] if p["legacy_id"] == 1]
    assert len(problems) == 3, problems  # null, "" and a name listed twice say nothing
    assert "7" in problems[0] and "a number" in problems[0]
    assert '{"url": "/media/good.png"}' in problems[1] and "an object" in problems[1]
    assert '"/media/"' in problems[2] and "names no usable file" in problems[2]
    assert report["db_migration"]["rows_with_problems"] == 1
    assert report["image_migration"]["renditions_created"] == 1
    listed_now = await client.post("/api/images/get_sample_imgs", json={"hash": GOOD})
    assert await listed_now.json() == [f"{GOOD}_0.webp"]


def test_a_row_listing_a_hundred_thousand_images_is_planned_at_once() -> None:
    """Each listed name was looked for among the names kept before it, in the square of
    their count: a row listing 100,000 images (3 MB of extra_json, well within what stage 1
    reads) held stage 1 for minutes before it looked at a single file."""
    listed = [f"/media/model_1_{i}_x.png" for i in range(100_000)]
    names = image_file_names({"images": [*listed, listed[0]], "preview": listed[-1]})
    assert names == [f"model_1_{i}_x.png" for i in range(100_000)]


async def test_deep_json_is_kept_as_text_not_lost(client: Client, data_dir: Path) -> None:
    legacy = untyped_library(data_dir)
    deep = json.dumps(nested(300))
    legacy.insert_row(id=2, path="/m/2", type="lora", hash_hex="", extra_json=deep)
    await migrate(client, legacy)
    (record,) = (await (await client.get("/api/migration/pending_models")).json())["models"]
    assert record["meta_json"] == {"legacy_extra_json_unparsed": deep}


@pytest.mark.parametrize(
    ("extra", "kept"),
    [
        ({"legacy_meta": "mine"}, {"legacy_meta_of_extra_json": "mine"}),
        (
            {"legacy_meta": 1, "legacy_meta_of_extra_json": 2},
            {"legacy_meta_of_extra_json": 2, "legacy_meta_of_extra_json_2": 1},
        ),
    ],
    ids=["own-key", "both-keys-taken"],
)
async def test_an_extra_json_key_named_legacy_meta_is_kept_beside_the_legacy_meta(
    client: Client, data_dir: Path, extra: dict[str, Any], kept: dict[str, Any]
) -> None:
    legacy = untyped_library(data_dir)
    legacy.insert_row(
        id=2,
        path="/m/2",
        type="lora",
        hash_hex="",
        meta_json='{"old": "meta"}',
        extra_json=json.dumps(extra),
    )
    report = await migrate(client, legacy)
    (record,) = (await (await client.get("/api/migration/pending_models")).json())["models"]
    assert record["meta_json"] == {**kept, "legacy_meta": {"old": "meta"}}
    (problem,) = [p["problem"] for p in report["problems"] if p["legacy_id"] == 2]
    assert "legacy_meta" in problem and "kept under" in problem


# --- a file that is not a legacy library -----------------------------------------------------

TABLES = """
CREATE TABLE tags(id INTEGER PRIMARY KEY, name TEXT UNIQUE, color TEXT, created_at INTEGER);
CREATE TABLE model_tags(model_id INTEGER, tag_id INTEGER);
"""
MODELS = """CREATE TABLE models(id INTEGER PRIMARY KEY, path TEXT UNIQUE, name TEXT,
    type TEXT NOT NULL, size_bytes INTEGER, hash_hex TEXT NOT NULL, created_at INTEGER,
    meta_json TEXT, extra_json TEXT);"""
COLUMNS = "id, path, name, type, size_bytes, hash_hex, created_at, meta_json, extra_json"
RECURSIVE = f"""CREATE VIEW models({COLUMNS}) AS WITH RECURSIVE r(n) AS
    (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n, 'p' || n, 'n', 't', 1, '', 1, NULL, '{{}}'
    FROM r;"""

NOT_LEGACY: dict[str, tuple[str, str]] = {
    "no-models-table": (TABLES, "no table models"),
    "no-tags-table": (MODELS + "CREATE TABLE model_tags(model_id, tag_id);", "no table tags"),
    "no-model-tags-table": (MODELS + "CREATE TABLE tags(id INTEGER PRIMARY KEY, name);", "no"),
    "a-column-missing": (
        TABLES + "CREATE TABLE models(id INTEGER PRIMARY KEY, path, name, type, hash_hex);",
        "lacks column(s) size_bytes, created_at, meta_json, extra_json",
    ),
    "models-a-view": (
        TABLES + MODELS.replace("TABLE models", "TABLE real") + "CREATE VIEW models AS "
        "SELECT * FROM real;",
        "models is a view",
    ),
    "models-a-recursive-view": (TABLES + RECURSIVE, "models is a view"),
    "tags-a-view": (
        MODELS + "CREATE TABLE model_tags(model_id, tag_id); CREATE VIEW tags AS SELECT 1 AS id,"
        " 'x' AS name;",
        "tags is a view",
    ),
    "models-virtual": (
        TABLES + f"CREATE VIRTUAL TABLE models USING fts5({COLUMNS});",
        "virtual table",
    ),
    "text-ids": (
        TABLES
        + MODELS.replace("id INTEGER PRIMARY KEY", "id TEXT PRIMARY KEY")
        + "INSERT INTO models(id, type, hash_hex) VALUES ('abc', 't', '');",
        "models.id holds text values",
    ),
    "empty-database": ("", "no table models"),
}


def snapshot(data_dir: Path) -> dict[str, int]:
    tables = ("models", "pending_import", "tags", "legacy_import_log", "legacy_libraries")
    with sqlite3.connect(data_dir / "modelshelf.db") as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


async def post_migrate(client: Client, db_path: Path, images: Path) -> tuple[int, dict[str, Any]]:
    response = await client.post(
        "/api/migration/migrate_legacy_db",
        json={"legacy_db_path": str(db_path), "legacy_images_dir": str(images)},
    )
    return response.status, await response.json()


@pytest.mark.parametrize(("schema", "said"), list(NOT_LEGACY.values()), ids=list(NOT_LEGACY))
async def test_a_file_that_is_not_a_legacy_library_is_refused_up_front(
    client: Client, data_dir: Path, schema: str, said: str
) -> None:
    root = data_dir / "legacy"
    (root / "images").mkdir(parents=True)
    with sqlite3.connect(root / "odd.db") as conn:
        conn.executescript(schema)
    before = snapshot(data_dir)
    started = time.monotonic()

    status, body = await post_migrate(client, root / "odd.db", root / "images")

    assert status == 400, body
    assert body["error"] == "Bad Request"
    assert said in body["detail"]
    assert time.monotonic() - started < 10
    assert snapshot(data_dir) == before
    assert staging_entries(data_dir) == []


async def test_a_damaged_legacy_file_is_refused_up_front(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    for i in range(1, 300):
        legacy.add_model(i, hash_hex=fake_sha(i), extra={"description": "x" * 500})
    with legacy.db_path.open("r+b") as handle:  # overwrite a page in the middle
        handle.seek(legacy.db_path.stat().st_size // 2)
        handle.write(os.urandom(4096))
    before = snapshot(data_dir)
    status, body = await post_migrate(client, legacy.db_path, legacy.images_dir)
    assert status == 400, body
    assert snapshot(data_dir) == before


async def test_a_query_over_its_time_bound_is_interrupted(
    client: Client, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A legacy file whose every read is slow (here a generated column doing heavy work for
    each row, planted in the schema after the rows were written) is stopped at the bound, not
    read for ever, and nothing is written."""
    # A read of one batch takes about 0.1 s here on an idle machine (more under load): a bound
    # well below it trips whatever the machine is doing.
    monkeypatch.setattr(legacy_source, "QUERY_SECONDS", 0.01)
    root = data_dir / "legacy"
    (root / "images").mkdir(parents=True)
    with sqlite3.connect(root / "slow.db") as conn:
        conn.executescript(
            TABLES + MODELS.replace("extra_json TEXT", "extra_json GENERATED ALWAYS AS (NULL)")
        )
        conn.executemany(
            "INSERT INTO models(id, path, type, hash_hex) VALUES (?, ?, 't', '')",
            [(i, f"/m/{i}") for i in range(1, 2001)],
        )
        heavy = "replace(replace(replace(hex(zeroblob(1000000)), '0', '00'), '0', '00'), '0', '0')"
        conn.execute("PRAGMA writable_schema=ON")
        conn.execute(
            "UPDATE sqlite_master SET sql = replace(sql, '(NULL)', ?) WHERE name = 'models'",
            (f"(length({heavy}))",),
        )
        version = conn.execute("PRAGMA schema_version").fetchone()[0]
        conn.execute(f"PRAGMA schema_version={version + 1}")
    before = snapshot(data_dir)
    started = time.monotonic()

    status, body = await post_migrate(client, root / "slow.db", root / "images")

    assert status == 400, body
    assert "took longer than 0.01 s" in body["detail"]
    assert time.monotonic() - started < 10
    assert snapshot(data_dir) == before


# --- the legacy images folder ------------------------------------------------------------------


async def test_symlinks_never_lead_stage_one_out_of_the_legacy_images_folder(
    client: Client, legacy: LegacyLibrary, data_dir: Path, tmp_path: Path
) -> None:
    secret = make_image(tmp_path / "outside" / "secret.png", width=33, height=21)
    images = legacy.images_dir
    (images / "out.png").symlink_to(secret)
    (images / "up.png").symlink_to(Path("..") / ".." / ".." / "outside" / "secret.png")
    (images / "loop.png").symlink_to(images / "loop.png")
    (images / "folder.png").symlink_to(tmp_path / "outside")
    (images / "inside.png").symlink_to(images / legacy.image("real.png", width=40, height=30))
    os.mkfifo(images / "fifo.png")
    listed = ["out.png", "up.png", "loop.png", "folder.png", "fifo.png", "inside.png"]
    legacy.add_model(1, hash_hex=GOOD, images=listed)
    legacy.add_model(2, hash_hex="", images=listed)

    report = await migrate(client, legacy)

    counts = report["image_migration"]
    # out, up and folder lead outside, for the model and the pending model alike; the loop is
    # not found and the FIFO is no regular file; only the symlink that stays inside is used.
    assert counts["images_outside"] == 6
    assert counts["images_missing"] == 2
    assert counts["images_unreadable"] == 2
    assert counts["renditions_created"] == 1
    assert counts["pending_images_copied"] == 1
    pending_copy = next((data_dir / "images" / "pending").iterdir())
    assert pending_copy.read_bytes() == (images / "real.png").read_bytes()
    assert secret.read_bytes() != pending_copy.read_bytes()
    outside = [p for p in report["problems"] if "outside the legacy images" in p["problem"]]
    assert {p["legacy_id"] for p in outside} == {1, 2}
    await assert_everything_served(client)


# --- ids of every size ---------------------------------------------------------------------------

EXTREME_IDS = [-(2**63), -5, 0, 2**62, 2**63 - 1]


async def test_pending_ids_of_every_size_are_served_and_imported(
    client: Client, legacy: LegacyLibrary, data_dir: Path, models_dir: Path
) -> None:
    for n, pending_id in enumerate(EXTREME_IDS):
        path = models_dir / f"m{n}.safetensors"
        make_model_file(path, size=4096, seed=n)
        image = legacy.image(f"p{n}.png", width=20 + n, height=20)
        legacy.add_model(pending_id, hash_hex="", path=str(path), images=[image])

    report = await migrate(client, legacy)

    assert report["db_migration"]["pending_created"] == len(EXTREME_IDS)
    listed = (await (await client.get("/api/migration/pending_models")).json())["models"]
    assert [m["id"] for m in listed] == EXTREME_IDS
    for n, pending_id in enumerate(EXTREME_IDS):
        image = await client.get(f"/api/images/pending/{pending_id}")
        assert image.status == 200
        assert await image.read() == (legacy.images_dir / f"p{n}.png").read_bytes()
    imported = await client.post("/api/migration/import_a_model", json={"id": EXTREME_IDS[0]})
    assert imported.status == 200, await imported.text()
    batch = await client.post("/api/migration/import_models", json={"ids": EXTREME_IDS[1:]})
    results = (await batch.json())["results"]
    assert [r["result"] for r in results] == ["success"] * (len(EXTREME_IDS) - 1)


async def test_hashed_rows_with_extreme_ids_are_all_read(
    client: Client, legacy: LegacyLibrary
) -> None:
    for n, legacy_id in enumerate(EXTREME_IDS):
        legacy.add_model(legacy_id, hash_hex=fake_sha(100 + n))
    report = await migrate(client, legacy)
    assert report["db_migration"]["models_imported"] == len(EXTREME_IDS)
    assert (await migrate(client, legacy))["db_migration"]["already_migrated"] == len(EXTREME_IDS)
