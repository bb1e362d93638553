"""Start-up recovery never bricks a library: journal entries are replayed idempotently, an entry
that cannot be carried out is set aside and reported, renumbering never mixes the renditions of
two images, and a new rendition in the registry is rendered for every existing image."""

from __future__ import annotations

import json
import logging
import sqlite3
from pathlib import Path
from typing import Any

import pytest
import pyvips

from modelshelf import renditions
from modelshelf.integrity import check_library
from modelshelf.renditions import Rendition, qualities
from modelshelf.storage import fileops
from tests.conftest import MakeClient, migrate, shelf_of
from tests.factories import LegacyLibrary, fake_sha, image_size

H = fake_sha(1)


def add_model_with_images(legacy: LegacyLibrary, legacy_id: int, sha: str, count: int) -> None:
    names = [
        legacy.image(f"model_{legacy_id}_{i}_x.png", width=60 + 10 * i, height=40)
        for i in range(count)
    ]
    legacy.add_model(legacy_id, hash_hex=sha, images=names)


def plant_journal_entry(data_dir: Path, ops: Any) -> None:
    text = ops if isinstance(ops, str) else json.dumps(ops)
    with sqlite3.connect(data_dir / "modelshelf.db") as conn:
        conn.execute("INSERT INTO file_journal(created_at, ops) VALUES (0, ?)", (text,))


def journal_rows(data_dir: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(data_dir / "modelshelf.db") as conn:
        return list(conn.execute("SELECT id, set_aside_at IS NOT NULL, problem FROM file_journal"))


# --- renumber as a file operation -----------------------------------------------------------------


def write_images(images: Path, sha: str, seqs: range) -> dict[tuple[int, str], bytes]:
    images.mkdir(parents=True, exist_ok=True)
    contents = {}
    for seq in seqs:
        for quality in qualities():
            contents[(seq, quality)] = f"{seq}-{quality}".encode()
            (images / f"{sha}_{seq}_{quality}.webp").write_bytes(contents[(seq, quality)])
    return contents


def files_by_name(images: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(images.glob("*.webp"))}


def delete_seq_one_of_four(root: Path) -> fileops.FileOp:
    folder = root / "images" / ".staging" / "renumber"
    folder.mkdir(parents=True)
    return fileops.renumber(H, [(2, 1), (3, 2)], [1], folder, root)


def expected_after_deleting_seq_one(contents: dict[tuple[int, str], bytes]) -> dict[str, bytes]:
    return {
        f"{H}_{new}_{q}.webp": contents[(old, q)]
        for old, new in [(0, 0), (2, 1), (3, 2)]
        for q in qualities()
    }


def test_a_renumber_carried_out_twice_ends_as_once(tmp_path: Path) -> None:
    contents = write_images(tmp_path / "images", H, range(4))
    op = delete_seq_one_of_four(tmp_path)
    fileops.apply_file_ops(tmp_path, [op])
    fileops.apply_file_ops(tmp_path, [op])
    assert files_by_name(tmp_path / "images") == expected_after_deleting_seq_one(contents)


def test_a_renumber_replayed_after_its_folder_was_removed_changes_nothing(tmp_path: Path) -> None:
    contents = write_images(tmp_path / "images", H, range(4))
    op = delete_seq_one_of_four(tmp_path)
    fileops.apply_file_ops(tmp_path, [op])
    for path in (tmp_path / op["folder"]).iterdir():
        path.unlink()
    (tmp_path / op["folder"]).rmdir()
    fileops.apply_file_ops(tmp_path, [op])
    assert files_by_name(tmp_path / "images") == expected_after_deleting_seq_one(contents)


@pytest.mark.parametrize("moved_back", [0, 1, 4])
def test_a_renumber_cut_off_half_way_is_finished_by_a_replay(
    tmp_path: Path, moved_back: int
) -> None:
    images = tmp_path / "images"
    contents = write_images(images, H, range(4))
    op = delete_seq_one_of_four(tmp_path)
    folder = tmp_path / op["folder"]
    # As a crash would leave it: every involved file moved aside, some already moved back.
    for seq in (1, 2, 3):
        for quality in qualities():
            (images / f"{H}_{seq}_{quality}.webp").replace(folder / f"{seq}_{quality}")
    (folder / fileops.MOVED_OUT_MARKER).touch()
    for old, new in [(2, 1), (3, 2)]:
        for quality in qualities():
            if moved_back > 0:
                moved_back -= 1
                (folder / f"{old}_{quality}").replace(images / f"{H}_{new}_{quality}.webp")
    fileops.apply_file_ops(tmp_path, [op])
    assert files_by_name(images) == expected_after_deleting_seq_one(contents)


def test_a_renumber_with_a_missing_rendition_never_mixes_two_images(tmp_path: Path) -> None:
    images = tmp_path / "images"
    contents = write_images(images, H, range(4))
    (images / f"{H}_2_medium.webp").unlink()
    fileops.apply_file_ops(tmp_path, [delete_seq_one_of_four(tmp_path)])
    after = files_by_name(images)
    assert f"{H}_1_medium.webp" not in after  # old seq 2 had none: its new seq has none
    assert after[f"{H}_1_high.webp"] == contents[(2, "high")]
    assert after[f"{H}_2_medium.webp"] == contents[(3, "medium")]


def test_a_renumber_clears_orphan_renditions_at_its_target_names(tmp_path: Path) -> None:
    images = tmp_path / "images"
    contents = write_images(images, H, range(3))
    (images / f"{H}_3_low.webp").write_bytes(b"orphan")  # no index row, a leftover
    folder = tmp_path / "images" / ".staging" / "r"
    folder.mkdir(parents=True)
    op = fileops.renumber(H, [(2, 3)], [], folder, tmp_path)
    fileops.apply_file_ops(tmp_path, [op])
    after = files_by_name(images)
    assert after[f"{H}_3_low.webp"] == contents[(2, "low")]
    assert f"{H}_2_low.webp" not in after


# --- journal entries at start-up ------------------------------------------------------------------


async def test_a_move_whose_files_are_gone_is_noted_and_the_start_goes_on(
    make_client: MakeClient, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = await make_client()
    await client.close()
    plant_journal_entry(
        data_dir, [{"op": "move", "src": "images/.staging/x/high.webp", "dst": "images/a.webp"}]
    )
    with caplog.at_level(logging.WARNING):
        client = await make_client()
    assert (await client.get("/api/health")).status == 200
    assert journal_rows(data_dir) == []
    assert "is gone" in caplog.text


@pytest.mark.parametrize(
    ("ops", "reason"),
    [
        ([{"op": "teleport", "path": "images/a.webp"}], "unknown file operation"),
        ("[{not json", "not JSON"),
        ({"op": "unlink"}, "not a list"),
        ([{"op": "unlink", "path": "../outside.txt"}], "leaves the data directory"),
        ([{"op": "unlink", "path": "/etc/hostname"}], "not a path inside"),
        ([{"op": "move", "src": "images/x"}], "KeyError"),
    ],
    ids=["unknown-op", "malformed-json", "not-a-list", "escape", "absolute", "missing-field"],
)
async def test_an_entry_that_cannot_be_carried_out_is_set_aside_and_reported(
    make_client: MakeClient, data_dir: Path, tmp_path: Path, ops: Any, reason: str
) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    client = await make_client()
    await client.close()
    plant_journal_entry(data_dir, ops)

    client = await make_client()
    assert (await client.get("/api/health")).status == 200
    [(_, set_aside, problem)] = journal_rows(data_dir)
    assert set_aside and reason in problem
    assert outside.read_text() == "keep me"
    assert any("set aside" in p and reason in p for p in check_library(data_dir))
    await client.close()

    # The next start neither retries it nor fails on it.
    client = await make_client()
    assert (await client.get("/api/health")).status == 200
    assert len(journal_rows(data_dir)) == 1


async def test_an_entry_failing_on_the_disk_is_set_aside_and_later_entries_still_run(
    make_client: MakeClient, data_dir: Path
) -> None:
    client = await make_client()
    await client.close()
    (data_dir / "images" / "not-a-folder").write_text("a file where a folder should be")
    staged = data_dir / "images" / ".staging" / "s"
    staged.mkdir(parents=True)
    (staged / "a").write_bytes(b"a")
    (staged / "b").write_bytes(b"b")
    plant_journal_entry(
        data_dir, [{"op": "move", "src": "images/.staging/s/a", "dst": "images/not-a-folder/a"}]
    )
    plant_journal_entry(
        data_dir, [{"op": "move", "src": "images/.staging/s/b", "dst": "images/b.txt"}]
    )

    client = await make_client()
    assert (await client.get("/api/health")).status == 200
    [(_, set_aside, problem)] = journal_rows(data_dir)
    assert set_aside and "NotADirectoryError" in problem
    assert (data_dir / "images" / "b.txt").read_bytes() == b"b"


# --- the images of a model after files vanished ---------------------------------------------------


async def test_deleting_an_image_after_a_rendition_of_a_later_one_vanished_never_mixes(
    make_client: MakeClient, legacy: LegacyLibrary, data_dir: Path
) -> None:
    client = await make_client()
    add_model_with_images(legacy, 1, H, 3)
    await migrate(client, legacy)
    images = data_dir / "images"
    second_high = (images / f"{H}_1_high.webp").read_bytes()
    (images / f"{H}_1_medium.webp").unlink()  # while the service runs

    assert (await client.delete(f"/api/images/{H}_0.webp")).status == 200
    assert (images / f"{H}_0_high.webp").read_bytes() == second_high
    assert not (images / f"{H}_0_medium.webp").exists()
    assert check_library(data_dir) == [f"image {H}_0 is listed but lacks medium"]
    await client.close()

    client = await make_client()  # the next start renders what is missing
    assert await shelf_of(client).maintenance == 1
    assert (images / f"{H}_0_high.webp").read_bytes() == second_high
    high_w, high_h = image_size(images / f"{H}_0_high.webp")
    medium = image_size(images / f"{H}_0_medium.webp")
    assert medium == (round(high_w * 0.66), round(high_h * 0.66))
    assert check_library(data_dir) == []


# --- the rendition registry -----------------------------------------------------------------------


async def test_a_library_restarted_on_a_registry_with_one_more_quality_renders_it_for_every_image(
    make_client: MakeClient, legacy: LegacyLibrary, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = await make_client()
    add_model_with_images(legacy, 1, H, 3)
    add_model_with_images(legacy, 2, fake_sha(2), 1)
    await migrate(client, legacy)
    await client.close()

    monkeypatch.setattr(
        renditions, "RENDITIONS", (*renditions.RENDITIONS, Rendition("thumb", 0.1, 40))
    )
    client = await make_client()
    assert await shelf_of(client).maintenance == 4
    names = await (await client.post("/api/images/get_sample_imgs", json={"hash": H})).json()
    assert names == [f"{H}_{seq}.webp" for seq in range(3)]
    for seq in range(3):
        high = pyvips.Image.new_from_file(str(data_dir / "images" / f"{H}_{seq}_high.webp"))
        response = await client.get(f"/api/images/{H}_{seq}.webp?quality=thumb")
        assert response.status == 200
        thumb = pyvips.Image.new_from_buffer(await response.read(), "")
        assert (thumb.width, thumb.height) == (round(high.width * 0.1), round(high.height * 0.1))
    assert check_library(data_dir) == []
    document = await (await client.get("/api/openapi.json")).json()
    serve = document["paths"]["/api/images/{filename}"]["get"]
    [quality] = [p for p in serve["parameters"] if p["name"] == "quality"]
    assert "thumb" in quality["schema"]["enum"]
