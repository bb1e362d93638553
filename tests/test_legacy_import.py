"""Stage 1: a legacy library comes in; hashed models to the library, the rest to pending."""

from __future__ import annotations

import asyncio
import json
import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from modelshelf.images import rendition_sizes
from tests.conftest import (
    Client,
    MakeClient,
    assert_error_body,
    migrate,
    migrate_body,
    paused_at,
    shelf_of,
)
from tests.factories import LegacyLibrary, fake_sha, image_size, make_model_file, rendition_files
from tests.scanning import scan, start

H1, H2, H3 = fake_sha(1), fake_sha(2), fake_sha(3)


def db(data_dir: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(data_dir / "modelshelf.db")
    conn.row_factory = sqlite3.Row
    return conn


def rows(data_dir: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with db(data_dir) as conn:
        return [tuple(r) for r in conn.execute(sql, params)]


@pytest.fixture
def small_library(legacy: LegacyLibrary) -> LegacyLibrary:
    legacy.add_tag(7, "checkpoint")
    legacy.add_tag(9, "anime")
    legacy.add_tag(12, "lora")
    legacy.add_model(
        1,
        hash_hex=H1,
        tags=[7, 9],
        images=[
            legacy.image("model_1_1_a.png", width=3000, height=2000, alpha=True),
            legacy.image("model_1_2_b.jpg", width=640, height=480),
        ],
        extra={
            "description": "first",
            "prompts": {"positive": "cat", "negative": ""},
            "community_links": ["https://example.org/1"],
            "preview": "/media/x.png",
            "custom_key": {"kept": True},
        },
        meta_json=json.dumps({"old": "meta"}),
    )
    legacy.add_model(
        2,
        hash_hex="",
        type="lora",
        tags=[12, 9],
        images=[legacy.image("model_2_1_c.png", width=100, height=80)],
    )
    legacy.add_model(3, hash_hex=H3.upper(), tags=[7], created_at=1_700_000_000)
    return legacy


async def test_hashed_rows_become_models_and_unhashed_rows_pending(
    client: Client, small_library: LegacyLibrary, data_dir: Path
) -> None:
    report = await migrate(client, small_library)
    assert report["status"] == "success"
    assert report["db_migration"]["models_imported"] == 2
    assert report["db_migration"]["pending_created"] == 1
    assert sorted(r[0] for r in rows(data_dir, "SELECT sha256 FROM models")) == sorted([H1, H3])
    assert rows(data_dir, "SELECT id, sha256, type FROM pending_import") == [(2, None, "lora")]


async def test_tags_keep_their_ids_and_follow_their_models(
    client: Client, small_library: LegacyLibrary, data_dir: Path
) -> None:
    await migrate(client, small_library)
    assert rows(data_dir, "SELECT id, name FROM tags ORDER BY id") == [
        (7, "checkpoint"),
        (9, "anime"),
        (12, "lora"),
    ]
    assert sorted(rows(data_dir, "SELECT tag_id FROM model_tags WHERE model_hash = ?", H1)) == [
        (7,),
        (9,),
    ]
    assert sorted(rows(data_dir, "SELECT tag_id FROM pending_model_tags WHERE model_id = 2")) == [
        (9,),
        (12,),
    ]


async def test_meta_json_loses_image_keys_and_keeps_everything_else(
    client: Client, small_library: LegacyLibrary, data_dir: Path
) -> None:
    await migrate(client, small_library)
    (meta_text,) = rows(data_dir, "SELECT meta_json FROM models WHERE sha256 = ?", H1)[0]
    assert json.loads(meta_text) == {
        "description": "first",
        "prompts": {"positive": "cat", "negative": ""},
        "community_links": ["https://example.org/1"],
        "custom_key": {"kept": True},
        "legacy_meta": {"old": "meta"},
    }
    (pending_meta,) = rows(data_dir, "SELECT meta_json FROM pending_import WHERE id = 2")[0]
    assert "images" not in json.loads(pending_meta)


async def test_uppercase_hash_is_stored_lowercase_and_seconds_become_milliseconds(
    client: Client, small_library: LegacyLibrary, data_dir: Path
) -> None:
    await migrate(client, small_library)
    assert rows(data_dir, "SELECT created_at FROM models WHERE sha256 = ?", H3) == [
        (1_700_000_000_000,)
    ]


async def test_images_of_hashed_models_become_dense_renditions_with_the_right_sizes(
    client: Client, small_library: LegacyLibrary, data_dir: Path
) -> None:
    report = await migrate(client, small_library)
    assert report["image_migration"]["renditions_created"] == 2
    images = data_dir / "images"
    assert rendition_files(images) == sorted(
        f"{H1}_{seq}_{q}.webp" for seq in (0, 1) for q in ("high", "medium", "low")
    )
    for seq, (w, h) in enumerate([(3000, 2000), (640, 480)]):
        for quality, expected in rendition_sizes(w, h).items():
            got = image_size(images / f"{H1}_{seq}_{quality}.webp")
            assert abs(got[0] - expected[0]) <= 1 and abs(got[1] - expected[1]) <= 1
    listing = await client.post("/api/images/get_sample_imgs", json={"hash": H1})
    assert await listing.json() == [f"{H1}_0.webp", f"{H1}_1.webp"]


async def test_pending_image_is_copied_unchanged(
    client: Client, small_library: LegacyLibrary, data_dir: Path
) -> None:
    await migrate(client, small_library)
    copied = data_dir / "images" / "pending" / "2.png"
    assert copied.read_bytes() == (small_library.images_dir / "model_2_1_c.png").read_bytes()
    served = await client.get("/api/images/pending/2")
    assert served.status == 200
    assert await served.read() == copied.read_bytes()
    pending = await (await client.get("/api/migration/pending_models")).json()
    assert pending["models"][0]["images"] == ["pending/2"]
    assert [t["id"] for t in pending["models"][0]["tags"]] == [9, 12]


@pytest.mark.parametrize(
    ("limit", "copied"), [(64 * 48, True), (64 * 48 - 1, False)], ids=["at-limit", "over-limit"]
)
async def test_a_pending_original_is_copied_only_within_the_pixel_limit(
    make_client: MakeClient, legacy: LegacyLibrary, data_dir: Path, limit: int, copied: bool
) -> None:
    """Stage 1 copies a pending model's original unchanged, but decodes it first: a picture
    over `max_image_pixels` (a decompression bomb) is reported and left behind."""
    client = await make_client(max_image_pixels=limit)
    legacy.add_model(1, images=[legacy.image("bomb.png", width=64, height=48)])
    report = await migrate(client, legacy)
    assert report["db_migration"]["pending_created"] == 1
    assert report["image_migration"]["pending_images_copied"] == int(copied)
    assert report["image_migration"]["images_unreadable"] == int(not copied)
    pending = sorted(p.name for p in (data_dir / "images" / "pending").iterdir())
    assert pending == (["1.png"] if copied else [])
    assert rows(data_dir, "SELECT pending_id FROM pending_images") == ([(1,)] if copied else [])
    if not copied:
        assert report["problems"] == [
            {
                "legacy_id": 1,
                "problem": f"image bomb.png: bomb.png has 64x48 = 3072 pixels,"
                f" over the limit of {limit}",
                "pending_id": None,  # kept its legacy id
            }
        ]


async def test_running_stage_one_twice_adds_nothing_twice(
    client: Client, small_library: LegacyLibrary, data_dir: Path
) -> None:
    await migrate(client, small_library)
    files_before = sorted(p.name for p in (data_dir / "images").rglob("*") if p.is_file())
    tables = ("models", "tags", "model_tags", "pending_import", "pending_model_tags", "images")
    counts_before = {t: rows(data_dir, f"SELECT count(*) FROM {t}") for t in tables}
    second = await migrate(client, small_library)
    assert second["db_migration"]["already_migrated"] == 3
    assert second["db_migration"]["models_imported"] == 0
    assert second["db_migration"]["pending_created"] == 0
    assert {t: rows(data_dir, f"SELECT count(*) FROM {t}") for t in tables} == counts_before
    assert sorted(p.name for p in (data_dir / "images").rglob("*") if p.is_file()) == files_before


async def test_a_second_run_brings_back_no_tag_deleted_or_renamed_since(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    """The tags stage 1 brought in are the person's afterwards, as its models are: running it
    again (the old manager was used on and has a new model) neither makes a tag deleted here
    again nor a second tag under the old name of one renamed here; a new row's tag is the
    one its legacy tag became."""
    legacy.add_tag(3, "anime")
    legacy.add_tag(4, "style")
    legacy.add_model(1, hash_hex=H1, tags=[3, 4], created_at=1_700_000_000_001)
    legacy.add_model(2, hash_hex=H2, tags=[4], created_at=1_700_000_000_002)
    await migrate(client, legacy)
    assert (await client.delete("/api/tags/3")).status == 200
    assert (await client.patch("/api/tags/4", json={"name": "styled"})).status == 200
    legacy.add_model(5, hash_hex=H3, tags=[3, 4], created_at=1_700_000_000_005)
    second = await migrate(client, legacy)
    assert second["library"]["seen_before"] is True
    assert second["db_migration"]["models_imported"] == 1
    assert second["db_migration"]["tags_created"] == 0
    assert rows(data_dir, "SELECT id, name FROM tags") == [(4, "styled")]
    assert rows(data_dir, "SELECT tag_id FROM model_tags WHERE model_hash = ?", H3) == [(4,)]


async def migrate_one_tagged(client: Client, legacy: LegacyLibrary, tag: str) -> None:
    """Stage 1 of a legacy library of two models, the first with legacy tag 3, `tag`."""
    legacy.add_tag(3, tag)
    legacy.add_model(1, hash_hex=H1, tags=[3], created_at=1_700_000_000_001)
    legacy.add_model(2, hash_hex=H2, created_at=1_700_000_000_002)
    await migrate(client, legacy)


async def migrate_a_new_row_tagged(client: Client, legacy: LegacyLibrary) -> dict[str, Any]:
    """Stage 1 again, the legacy library grown by a model with legacy tag 3."""
    legacy.add_model(5, hash_hex=H3, tags=[3], created_at=1_700_000_000_005)
    return await migrate(client, legacy)


async def test_a_second_run_tags_a_new_row_with_the_tag_its_legacy_tag_was_merged_into(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    await migrate_one_tagged(client, legacy, "photo")
    made = await (await client.post("/api/tags", json={"name": "photograph"})).json()
    merged = await client.post("/api/tags/3/merge", json={"into": made["id"]})
    assert merged.status == 200, await merged.text()
    second = await migrate_a_new_row_tagged(client, legacy)
    assert second["db_migration"]["tags_created"] == 0
    assert rows(data_dir, "SELECT name FROM tags") == [("photograph",)]
    assert rows(data_dir, "SELECT tag_id FROM model_tags WHERE model_hash = ?", H3) == [
        (made["id"],)
    ]


async def test_a_second_run_takes_a_tag_made_again_here_under_the_name_of_one_deleted(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    await migrate_one_tagged(client, legacy, "anime")
    assert (await client.delete("/api/tags/3")).status == 200
    made = await (await client.post("/api/tags", json={"name": "anime"})).json()
    second = await migrate_a_new_row_tagged(client, legacy)
    assert second["db_migration"]["tags_created"] == 0
    assert rows(data_dir, "SELECT tag_id FROM model_tags WHERE model_hash = ?", H3) == [
        (made["id"],)
    ]


async def test_promoted_model_is_not_brought_back_by_a_second_run(
    client: Client, legacy: LegacyLibrary, data_dir: Path, models_dir: Path
) -> None:
    from tests.factories import make_model_file

    make_model_file(models_dir / "m.safetensors")
    legacy.add_model(5, hash_hex="", path=str(models_dir / "m.safetensors"))
    await migrate(client, legacy)
    promoted = await client.post("/api/migration/import_a_model", json={"id": 5})
    assert promoted.status == 200
    await migrate(client, legacy)
    assert rows(data_dir, "SELECT count(*) FROM pending_import") == [(0,)]


async def test_broken_rows_are_reported_and_the_rest_migrates(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    (legacy.images_dir / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 50)
    good = legacy.image("good.png")
    legacy.add_model(1, hash_hex=fake_sha(10), extra="{not json")
    legacy.add_model(2, hash_hex=fake_sha(11), images=["missing.png", good])
    legacy.add_model(3, hash_hex=fake_sha(12), images=["corrupt.png"])
    legacy.add_model(4, hash_hex="", images=["corrupt.png", good])
    legacy.add_model(5, hash_hex="", extra="[1, 2]")
    legacy.add_model(6, hash_hex=fake_sha(13), images=[good])
    report = await migrate(client, legacy)
    assert report["db_migration"]["models_imported"] == 4
    assert report["db_migration"]["pending_created"] == 2
    assert report["image_migration"]["images_missing"] == 1
    assert report["image_migration"]["images_unreadable"] == 2
    problems = {p["legacy_id"] for p in report["problems"]}
    assert problems == {1, 2, 3, 4, 5}
    # Nothing is lost: unparsable text is kept, and the usable image of row 2 became seq 0.
    (meta,) = rows(data_dir, "SELECT meta_json FROM models WHERE sha256 = ?", fake_sha(10))[0]
    assert json.loads(meta) == {"legacy_extra_json_unparsed": "{not json"}
    assert rows(data_dir, "SELECT seq FROM images WHERE model_hash = ?", fake_sha(11)) == [(0,)]
    assert rows(data_dir, "SELECT count(*) FROM images WHERE model_hash = ?", fake_sha(12)) == [
        (0,)
    ]
    # A pending model gets the first listed image that can be used.
    assert (data_dir / "images" / "pending" / "4.png").read_bytes() == (
        legacy.images_dir / good
    ).read_bytes()
    assert not (data_dir / "images" / ".staging").exists() or not any(
        (data_dir / "images" / ".staging").iterdir()
    )


async def test_hashed_duplicates_go_to_pending_with_their_hash(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    legacy.add_model(1, hash_hex=H1, path="/a.safetensors")
    legacy.add_model(2, hash_hex=H1, path="/b.safetensors", extra={"description": "copy"})
    report = await migrate(client, legacy)
    assert report["db_migration"]["duplicates_to_pending"] == 1
    assert rows(data_dir, "SELECT id, sha256, path FROM pending_import") == [
        (2, H1, "/b.safetensors")
    ]


async def test_a_row_of_a_model_a_scan_found_first_is_not_taken_for_one_brought_in(
    make_client: MakeClient, legacy: LegacyLibrary, models_dir: Path, data_dir: Path
) -> None:
    """The person scans their model folders first, then brings in the old manager's library,
    which knew the same files by the same paths: its description, tags and pictures are not
    in the library yet, so the row is a duplicate to resolve (pending), not a row already
    brought in and skipped in silence."""
    client = await start(make_client, checkpoints=models_dir)
    path = models_dir / "cat.safetensors"
    sha = make_model_file(path, seed=3)
    await scan(client)
    legacy.add_tag(4, "cats")
    legacy.add_model(
        1,
        hash_hex=sha,
        path=str(path),
        tags=[4],
        extra={"description": "my cat model"},
        images=[legacy.image("model_1_1_cat.png")],
    )
    report = await migrate(client, legacy)
    assert report["db_migration"]["already_migrated"] == 0
    assert report["db_migration"]["duplicates_to_pending"] == 1
    pending = (await (await client.get("/api/migration/pending_models")).json())["models"]
    assert [(p["sha256"], p["meta_json"], p["images"]) for p in pending] == [
        (sha, {"description": "my cat model"}, ["pending/1"])
    ]


async def test_rows_a_library_brought_in_without_a_log_of_them_are_not_brought_twice(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    """A Hikaze Model Manager 2 library that ran its own stage 1 holds the legacy rows as
    models, at their paths, with all they brought, and no log of them."""
    legacy.add_tag(7, "checkpoint")
    images = [legacy.image("model_1_1_a.png")]
    legacy.add_model(1, hash_hex=H1, tags=[7], images=images, extra={"links": ["x"]})
    legacy.add_model(2, hash_hex=H2, extra={})
    await migrate(client, legacy)
    with db(data_dir) as conn:
        for table in ("legacy_import_log", "legacy_tag_log", "legacy_libraries"):
            conn.execute(f"DELETE FROM {table}")
    again = await migrate(client, legacy)
    assert again["db_migration"]["already_migrated"] == 2
    assert rows(data_dir, "SELECT count(*) FROM pending_import") == [(0,)]


async def test_wal_content_of_the_legacy_database_is_read(
    client: Client, data_dir: Path, tmp_path: Path
) -> None:
    source = LegacyLibrary(tmp_path / "source")
    writer = source.connect()
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute(
        "INSERT INTO models(id, path, type, hash_hex, extra_json)"
        " VALUES (1, '/x', 'lora', ?, '{}')",
        (H2,),
    )
    writer.commit()
    # Copy while the writer is open, so the row exists only in the -wal file.
    target = data_dir / "legacy" / "walcopy"
    target.mkdir(parents=True)
    for suffix in ("", "-wal"):
        shutil.copyfile(f"{source.db_path}{suffix}", target / f"hikaze.db{suffix}")
    writer.close()
    (target / "images").mkdir()
    response = await client.post(
        "/api/migration/migrate_legacy_db",
        json={
            "legacy_db_path": str(target / "hikaze.db"),
            "legacy_images_dir": str(target / "images"),
        },
    )
    assert response.status == 200, await response.text()
    assert rows(data_dir, "SELECT sha256 FROM models") == [(H2,)]


@pytest.mark.parametrize(
    ("db_path", "images_dir"),
    [
        pytest.param("/etc/passwd", "{legacy}/images", id="absolute-outside"),
        pytest.param("{legacy}/../../outside.db", "{legacy}/images", id="dotdot-escape"),
        pytest.param("{legacy}/hikaze.db", "/tmp", id="images-outside"),
        pytest.param("{legacy}/link.db", "{legacy}/images", id="symlink-out"),
    ],
)
async def test_paths_outside_legacy_root_are_forbidden(
    client: Client, legacy: LegacyLibrary, tmp_path: Path, db_path: str, images_dir: str
) -> None:
    outside = tmp_path / "outside.db"
    shutil.copyfile(legacy.db_path, outside)
    (legacy.root / "link.db").symlink_to(outside)
    body = {
        "legacy_db_path": db_path.format(legacy=legacy.root),
        "legacy_images_dir": images_dir.format(legacy=legacy.root),
    }
    response = await client.post("/api/migration/migrate_legacy_db", json=body)
    assert response.status == 403
    assert (await response.json())["error"] == "Forbidden"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"{", id="malformed-json"),
        pytest.param(b"", id="empty"),
        pytest.param(b"[]", id="array"),
        pytest.param(b'{"legacy_db_path": 5, "legacy_images_dir": "x"}', id="wrong-type"),
        pytest.param(b'{"legacy_db_path": "x"}', id="missing-field"),
        pytest.param(b'{"legacy_db_path": "x", "legacy_images_dir": "y", "z": 1}', id="unknown"),
        pytest.param(b'{"legacy_db_path": "", "legacy_images_dir": "y"}', id="empty-path"),
        pytest.param(b'{"legacy_db_path": "a\\u0000b", "legacy_images_dir": "y"}', id="nul"),
    ],
)
async def test_malformed_bodies_are_answered_400(client: Client, body: bytes) -> None:
    response = await client.post(
        "/api/migration/migrate_legacy_db",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    assert response.status == 400
    answer = await response.json()
    assert answer["error"] == "Bad Request" and answer["detail"]


async def test_missing_inputs_are_404_and_a_non_legacy_file_is_400(
    client: Client, legacy: LegacyLibrary
) -> None:
    missing = await client.post(
        "/api/migration/migrate_legacy_db",
        json={
            "legacy_db_path": str(legacy.root / "nope.db"),
            "legacy_images_dir": str(legacy.images_dir),
        },
    )
    assert missing.status == 404
    assert_error_body(await missing.json(), 404, "nope.db does not exist")
    (legacy.root / "not.db").write_bytes(b"this is not sqlite" * 100)
    wrong = await client.post(
        "/api/migration/migrate_legacy_db",
        json={
            "legacy_db_path": str(legacy.root / "not.db"),
            "legacy_images_dir": str(legacy.images_dir),
        },
    )
    assert wrong.status == 400, await wrong.text()
    assert_error_body(await wrong.json(), 400, "not.db")


async def test_other_requests_keep_answering_while_a_migration_runs(
    client: Client, legacy: LegacyLibrary
) -> None:
    for i in (1, 2):
        legacy.add_model(i, hash_hex=fake_sha(100 + i), images=[legacy.image(f"m{i}.jpg")])
    with paused_at("fileop.before") as moving:  # the batch committed, its files being moved
        migration = asyncio.create_task(migrate(client, legacy))
        await moving.reached.wait()
        health = await client.get("/api/health")
        assert (health.status, await health.json()) == (200, {"status": "ok"})
        listed = await client.get("/api/models")
        assert listed.status == 200
        assert not migration.done()
    report = await migration
    assert report["db_migration"]["models_imported"] == 2


async def test_a_listing_while_stage_one_moves_a_models_files_names_none_not_in_place(
    client: Client, legacy: LegacyLibrary
) -> None:
    """A client listing a model's images while stage 1 has committed the model but not yet
    moved its renditions into place waits for them, as it does for any other change: it is
    never handed a name whose file would answer 404."""
    sha = fake_sha(301)
    legacy.add_model(1, hash_hex=sha, images=[legacy.image("m1.jpg")])
    locks = shelf_of(client).model_locks
    with paused_at("fileop.before") as moving:  # model 1 committed, its files not moved yet
        migration = asyncio.create_task(migrate(client, legacy))
        await moving.reached.wait()
        listed = asyncio.create_task(client.post("/api/images/get_sample_imgs", json={"hash": sha}))
        # Until the listing waits for stage 1's change (or, wrongly, answers during it).
        while locks.waiting(sha) == 0 and not listed.done():
            await asyncio.sleep(0)
        assert not listed.done(), "a listing answered while the model's files were not in place"
    assert (await migration)["db_migration"]["models_imported"] == 1
    names = await (await listed).json()
    assert names == [f"{sha}_0.webp"]
    assert (await client.get(f"/api/images/{names[0]}")).status == 200


async def test_a_second_migration_while_one_runs_is_locked(
    client: Client, legacy: LegacyLibrary, data_dir: Path
) -> None:
    legacy.add_model(1, hash_hex=fake_sha(201), images=[legacy.image("m1.jpg")])
    with paused_at("fileop.before") as moving:
        first = asyncio.create_task(migrate(client, legacy))
        await moving.reached.wait()
        second = await client.post("/api/migration/migrate_legacy_db", json=migrate_body(legacy))
        assert second.status == 423
        assert_error_body(await second.json(), 423, "a legacy migration is already running")
    assert (await first)["db_migration"]["models_imported"] == 1
    assert rows(data_dir, "SELECT count(*) FROM models") == [(1,)]
