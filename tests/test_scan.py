"""The scan: model folders become the library. New content is a model, the same content
elsewhere one more location, changed files are hashed again, moved files recognised without
reading them, vanished files marked missing; nothing is deleted."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from modelshelf.domain.scan import model_roots, scan_paths
from modelshelf.errors import InvalidInput, NotFound
from tests.conftest import MakeClient, shelf_of
from tests.factories import make_model_file
from tests.model_folders import (
    a1111_tree,
    civitai_version,
    comfyui_tree,
    files_opened,
    write_civitai_info,
    write_extra_model_paths,
    write_safetensors,
)
from tests.scanning import Recorder, model, models, scan, sha256_of, start


async def test_new_content_becomes_a_model_at_its_first_location(
    make_client: MakeClient, tmp_path: Path
) -> None:
    loras = tmp_path / "loras"
    path = write_safetensors(loras / "styles" / "orange.cat.safetensors", {"ss_v2": "False"})
    client = await start(make_client, loras=loras)
    before = int(time.time() * 1000)

    result = await scan(client)

    sha256 = sha256_of(path)
    record = await model(client, sha256)
    assert record["path"] == str(path)
    assert record["name"] == "orange.cat"
    assert record["type"] == "loras"
    assert record["size_bytes"] == path.stat().st_size
    assert before <= record["created_at"] <= int(time.time() * 1000)
    assert record["meta_json"] == {"file_metadata": {"ss_v2": "False"}}
    assert record["files"] == [{"path": str(path), "present": True}]
    assert record["missing"] is False
    assert record["autov2"] == sha256[:10]
    assert result["counts"]["models_created"] == 1
    assert result["counts"]["hashed"] == 1
    assert result["problems"] == []


async def test_the_same_content_in_two_folders_is_one_model_with_two_locations(
    make_client: MakeClient, tmp_path: Path
) -> None:
    first = tmp_path / "a" / "cat.safetensors"
    second = tmp_path / "b" / "copy of cat.safetensors"
    sha256 = make_model_file(first, size=300_000, seed=1)
    make_model_file(second, size=300_000, seed=1)
    client = await start(make_client, loras=[tmp_path / "a", tmp_path / "b"])

    result = await scan(client)

    listed = await models(client)
    assert [m["sha256"] for m in listed] == [sha256]
    assert listed[0]["files"] == [
        {"path": str(first), "present": True},
        {"path": str(second), "present": True},
    ]
    assert result["counts"]["models_created"] == 1
    assert result["counts"]["locations_added"] == 1
    pending = await (await client.get("/api/migration/pending_models")).json()
    assert pending == {"models": []}


async def test_a_changed_file_is_hashed_again_and_moves_to_the_model_of_its_new_content(
    make_client: MakeClient, tmp_path: Path
) -> None:
    path = tmp_path / "loras" / "cat.safetensors"
    old = make_model_file(path, size=100_000, seed=1)
    client = await start(make_client, loras=tmp_path / "loras")
    await scan(client)

    new = make_model_file(path, size=120_000, seed=2)
    result = await scan(client)

    assert result["counts"]["hashed"] == 1
    assert result["counts"]["locations_changed"] == 1
    assert result["counts"]["models_created"] == 1
    moved = await model(client, new)
    assert moved["files"] == [{"path": str(path), "present": True}]
    left = await model(client, old)  # nothing is deleted
    assert left["files"] == []
    assert left["missing"] is True


async def test_a_changed_file_joins_the_model_that_already_has_its_content(
    make_client: MakeClient, tmp_path: Path
) -> None:
    a, b = tmp_path / "loras" / "a.safetensors", tmp_path / "loras" / "b.safetensors"
    make_model_file(a, size=50_000, seed=1)
    target = make_model_file(b, size=60_000, seed=2)
    client = await start(make_client, loras=tmp_path / "loras")
    await scan(client)

    make_model_file(a, size=60_000, seed=2)  # now a copy of b
    result = await scan(client)

    assert result["counts"]["models_created"] == 0
    record = await model(client, target)
    assert [f["path"] for f in record["files"]] == [str(a), str(b)]


@pytest.mark.parametrize("how", ["renamed", "moved to another folder", "moved to another root"])
async def test_a_moved_or_renamed_file_is_recognised_without_reading_it(
    make_client: MakeClient, tmp_path: Path, how: str
) -> None:
    old = tmp_path / "loras" / "cat.safetensors"
    sha256 = make_model_file(old, size=200_000, seed=3)
    new = {
        "renamed": tmp_path / "loras" / "orange cat.safetensors",
        "moved to another folder": tmp_path / "loras" / "animals" / "cat.safetensors",
        "moved to another root": tmp_path / "more" / "cat.safetensors",
    }[how]
    client = await start(make_client, loras=[tmp_path / "loras", tmp_path / "more"])
    await scan(client)
    new.parent.mkdir(parents=True, exist_ok=True)
    old.rename(new)

    with files_opened() as opened:
        result = await scan(client)

    assert str(new) not in opened
    assert result["counts"]["hashed"] == 0
    assert result["counts"]["recognised"] == 1
    assert result["counts"]["locations_missing"] == 1
    record = await model(client, sha256)
    assert record["path"] == str(new)  # off the location that is gone
    assert record["files"] == sorted(
        [{"path": str(new), "present": True}, {"path": str(old), "present": False}],
        key=lambda f: str(f["path"]),
    )
    assert record["missing"] is False


async def test_a_deleted_file_is_marked_missing_and_nothing_is_deleted(
    make_client: MakeClient, tmp_path: Path
) -> None:
    path = tmp_path / "loras" / "cat.safetensors"
    sha256 = make_model_file(path, size=10_000, seed=4)
    client = await start(make_client, loras=tmp_path / "loras")
    await scan(client)

    path.unlink()
    result = await scan(client)

    assert result["counts"]["locations_missing"] == 1
    record = await model(client, sha256)
    assert record["files"] == [{"path": str(path), "present": False}]
    assert record["missing"] is True
    assert [m["sha256"] for m in await models(client, missing="true")] == [sha256]
    assert await models(client, missing="false") == []

    make_model_file(path, size=10_000, seed=4)  # it comes back (a new inode)
    result = await scan(client)
    assert (await model(client, sha256))["missing"] is False
    assert [m["sha256"] for m in await models(client, missing="false")] == [sha256]


async def test_a_scan_of_unchanged_files_reads_no_file_content(
    make_client: MakeClient, tmp_path: Path
) -> None:
    tree = comfyui_tree(tmp_path / "ComfyUI")
    for index in range(5):
        tree.add("loras", f"lora_{index}.safetensors", {"ss_output_name": f"l{index}"})
    tree.add("checkpoints", "sdxl/base.safetensors")
    client = await start(
        make_client, loras=tree.folders["loras"], checkpoints=tree.folders["checkpoints"]
    )
    await scan(client)

    with files_opened() as opened:
        result = await scan(client)

    assert [p for p in opened if p.startswith(str(tree.base))] == []
    assert result["counts"]["unchanged"] == 6
    assert result["counts"]["hashed"] == 0
    assert result["counts"]["metadata_read"] == 0


async def test_a_comfyui_and_an_a1111_tree_through_extra_model_paths_yaml(
    make_client: MakeClient, tmp_path: Path
) -> None:
    comfy = comfyui_tree(tmp_path / "ComfyUI")
    a1111 = a1111_tree(tmp_path / "sd-webui")
    files = {
        comfy.add("checkpoints", "sdxl_base.safetensors"): "checkpoints",
        comfy.add("loras", "flat.safetensors"): "loras",
        a1111.add("checkpoints", "v1-5-pruned.safetensors"): "checkpoints",
        a1111.add("lycoris", "loha/dog.safetensors"): "loras",  # a second loras folder
        a1111.add("vae", "vae.safetensors"): "vae",
    }
    yaml_path = write_extra_model_paths(
        tmp_path / "extra_model_paths.yaml", a1111=a1111.base, comfyui=comfy.base,
        shared=tmp_path / "shared",
    )  # fmt: skip
    client = await make_client(comfyui_model_paths=yaml_path)

    result = await scan(client)

    listed = await models(client)
    assert {m["path"]: m["type"] for m in listed} == {str(p): t for p, t in files.items()}
    assert any("does not exist" in w for w in result["warnings"])  # models/ESRGAN and others


async def test_a_scan_of_some_types_leaves_the_others_alone(
    make_client: MakeClient, tmp_path: Path
) -> None:
    tree = comfyui_tree(tmp_path / "ComfyUI")
    lora = tree.add("loras", "a.safetensors")
    checkpoint = tree.add("checkpoints", "bb.safetensors")
    nested = tree.folders["checkpoints"] / "loras"
    nested_lora = write_safetensors(nested / "c.safetensors", seed=9)
    client = await start(
        make_client, checkpoints=tree.folders["checkpoints"], loras=[tree.folders["loras"], nested]
    )

    result = await scan(client, types=["checkpoints"])

    assert [m["path"] for m in await models(client)] == [str(checkpoint)]
    assert result["counts"]["files_found"] == 1
    await scan(client, types=["loras"])
    listed = {m["path"]: m["type"] for m in await models(client)}
    assert listed == {str(checkpoint): "checkpoints", str(lora): "loras", str(nested_lora): "loras"}
    lora.unlink()
    result = await scan(client, types=["checkpoints"])
    assert result["counts"]["locations_missing"] == 0


@pytest.mark.parametrize("types", [["nope"], ["loras", "nope"]])
async def test_a_scan_of_a_type_no_root_has_is_refused(
    make_client: MakeClient, tmp_path: Path, types: list[str]
) -> None:
    (tmp_path / "loras").mkdir()
    client = await start(make_client, loras=tmp_path / "loras")
    with pytest.raises(NotFound, match="types with roots are: loras"):
        await scan(client, types=types)


async def test_a_scan_of_no_type_is_refused(make_client: MakeClient, tmp_path: Path) -> None:
    (tmp_path / "loras").mkdir()
    client = await start(make_client, loras=tmp_path / "loras")
    with pytest.raises(InvalidInput, match="leave `types` out to scan every root"):
        await scan(client, types=[])


async def test_progress_tells_phases_files_and_bytes(
    make_client: MakeClient, tmp_path: Path
) -> None:
    sizes = [5_000_000, 70_000, 1]
    for index, size in enumerate(sizes):
        make_model_file(tmp_path / "loras" / f"m{index}.pt", size=size, seed=index)
    client = await start(make_client, loras=tmp_path / "loras")
    progress = Recorder()

    await scan(client, progress=progress)

    assert progress.phases == ["walking", "hashing", "checking", "reading metadata"]
    assert progress.found_counts == [3]
    assert progress.plans == [(3, sum(sizes))]
    assert progress.bytes_hashed == sum(sizes)
    assert sorted(progress.done) == sorted(str(p) for p in (tmp_path / "loras").iterdir())

    make_model_file(tmp_path / "loras" / "m3.pt", size=1000, seed=7)
    again = Recorder()
    await scan(client, progress=again)
    assert again.plans == [(4, 1000)]
    assert len(again.done) == 4


async def test_a_model_deleted_from_the_library_comes_back_with_the_next_scan(
    make_client: MakeClient, tmp_path: Path
) -> None:
    path = write_safetensors(tmp_path / "loras" / "cat.safetensors", {"a": "1"})
    client = await start(make_client, loras=tmp_path / "loras")
    await scan(client)
    sha256 = sha256_of(path)
    async with shelf_of(client).changes.change() as change:  # as DELETE /api/models will
        await change.tx.execute("DELETE FROM models WHERE sha256 = ?", (sha256,))

    with files_opened() as opened:
        result = await scan(client)

    assert result["counts"]["models_created"] == 1
    assert result["counts"]["hashed"] == 0
    assert (await model(client, sha256))["meta_json"] == {"file_metadata": {"a": "1"}}
    assert str(path) in opened  # its facts are read again, its content is not hashed


@pytest.mark.parametrize("legacy_file_exists", [False, True])
async def test_a_legacy_model_found_in_the_folders_gains_a_location(
    make_client: MakeClient, tmp_path: Path, legacy_file_exists: bool
) -> None:
    """Its `path` moves to the location found when the file it named is gone (a path of
    another machine, `D:/old/...`), and stays when that file is still there."""
    from tests.conftest import migrate
    from tests.factories import LegacyLibrary

    path = tmp_path / "loras" / "cat.safetensors"
    sha256 = make_model_file(path, size=1000, seed=1)
    old = tmp_path / "elsewhere" / "cat.safetensors"
    if legacy_file_exists:
        make_model_file(old, size=1000, seed=1)
    client = await start(make_client, loras=tmp_path / "loras")
    legacy = LegacyLibrary(shelf_of(client).settings.data_dir / "legacy")
    legacy.add_model(1, hash_hex=sha256, path=str(old), extra={"base_model": "mine"})
    await migrate(client, legacy)
    assert (await model(client, sha256))["missing"] is True

    result = await scan(client)

    record = await model(client, sha256)
    assert record["path"] == str(old if legacy_file_exists else path)
    assert result["counts"]["paths_moved"] == int(not legacy_file_exists)
    assert record["files"] == [{"path": str(path), "present": True}]
    assert record["missing"] is False


async def test_duplicates_are_contents_at_two_or_more_present_paths_with_the_bytes_wasted(
    make_client: MakeClient, tmp_path: Path
) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    small = make_model_file(a / "small.ckpt", size=1000, seed=1)
    big = make_model_file(a / "big.ckpt", size=5000, seed=2)
    make_model_file(a / "alone.ckpt", size=3000, seed=3)
    b.mkdir()
    client = await start(make_client, checkpoints=[a, b])
    await scan(client)  # the models are named after these first locations
    make_model_file(b / "small copy.ckpt", size=1000, seed=1)
    os.link(a / "small.ckpt", b / "small link.ckpt")  # the same file: wastes nothing more
    make_model_file(b / "small gone.ckpt", size=1000, seed=1)
    for name in ("big 2.ckpt", "big 3.ckpt"):
        make_model_file(b / name, size=5000, seed=2)
    await scan(client)
    (b / "small gone.ckpt").unlink()
    await scan(client)

    response = await client.get("/api/duplicates")

    assert response.status == 200
    assert await response.json() == {
        "groups": [
            {
                "sha256": big,
                "name": "big",
                "size_bytes": 5000,
                "files": [str(a / "big.ckpt"), str(b / "big 2.ckpt"), str(b / "big 3.ckpt")],
                "wasted_bytes": 10_000,
            },
            {
                "sha256": small,
                "name": "small",
                "size_bytes": 1000,
                "files": [
                    str(a / "small.ckpt"),
                    str(b / "small copy.ckpt"),
                    str(b / "small link.ckpt"),
                ],
                "wasted_bytes": 1000,
            },
        ],
        "wasted_bytes": 11_000,
    }


async def test_every_model_record_carries_files_missing_and_autov2(
    make_client: MakeClient, tmp_path: Path
) -> None:
    present = make_model_file(tmp_path / "loras" / "here.ckpt", size=100, seed=1)
    gone = make_model_file(tmp_path / "loras" / "gone.ckpt", size=100, seed=2)
    client = await start(make_client, loras=tmp_path / "loras")
    await scan(client)
    (tmp_path / "loras" / "gone.ckpt").unlink()
    await scan(client)

    listed = {m["sha256"]: m for m in await models(client)}
    single = {sha: await model(client, sha) for sha in (present, gone)}

    for records in (listed, single):
        assert records[present]["files"] == [
            {"path": str(tmp_path / "loras" / "here.ckpt"), "present": True}
        ]
        assert records[present]["missing"] is False
        assert records[gone]["missing"] is True
        assert {sha: r["autov2"] for sha, r in records.items()} == {
            present: present[:10],
            gone: gone[:10],
        }
    response = await client.get("/api/models", params={"missing": "maybe"})
    assert response.status == 400


async def test_scan_paths_applies_what_changed_at_the_paths_a_watcher_reports(
    make_client: MakeClient, tmp_path: Path
) -> None:
    loras = tmp_path / "loras"
    kept = write_safetensors(loras / "kept.safetensors", seed=1)
    in_folder = make_model_file(loras / "pack" / "a.ckpt", size=100, seed=2)
    client = await start(make_client, loras=loras)
    await scan(client)
    shelf = shelf_of(client)
    roots = await model_roots(shelf)

    shutil.rmtree(loras / "pack")
    (kept.with_name("kept.civitai.info")).write_text('{"baseModel": "Pony"}')
    new = make_model_file(loras / "new" / "b.ckpt", size=100, seed=3)
    make_model_file(loras / ".trash" / "c.ckpt", size=100, seed=4)
    outside = make_model_file(tmp_path / "elsewhere" / "d.ckpt", size=100, seed=5)
    changed = [
        loras / "pack",
        kept.with_name("kept.civitai.info"),
        loras / "new",
        loras / ".trash" / "c.ckpt",
        tmp_path / "elsewhere" / "d.ckpt",
    ]
    result = await scan_paths(shelf, roots, [str(p) for p in changed])

    assert result.counts.locations_missing == 1
    assert (await model(client, in_folder))["missing"] is True
    assert (await model(client, sha256_of(kept)))["meta_json"]["base_model"] == "Pony"
    assert (await model(client, new))["type"] == "loras"
    assert outside not in {m["sha256"] for m in await models(client)}
    assert len(await models(client)) == 3


async def test_empty_model_files_are_reported_and_never_made_one_model(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """A download that failed leaves a file of no bytes, often with the sidecar and preview its
    tool wrote first. Every such file has one content (the SHA256 of nothing): registered,
    they were one model named after the first, carrying the sidecars of unrelated models and
    listed as duplicates. A model file truncated to nothing is its content gone."""
    loras, lyco = tmp_path / "loras", tmp_path / "lycoris"
    first = loras / "failed_one.safetensors"
    second = lyco / "failed_two.safetensors"
    for empty in (first, second):
        empty.parent.mkdir(parents=True)
        empty.write_bytes(b"")
    write_civitai_info(second, civitai_version(base_model="Illustrious"))
    kept = write_safetensors(loras / "kept.safetensors", seed=1)
    truncated = write_safetensors(loras / "truncated.safetensors", seed=2)
    client = await start(make_client, loras=[loras, lyco])
    await scan(client)
    truncated_sha = sha256_of(truncated)

    truncated.write_bytes(b"")  # a new download over it failed
    result = await scan(client)

    reasons = {p["path"]: p["reason"] for p in result["problems"]}
    for empty in (first, second, truncated):
        assert reasons[str(empty)].startswith("empty file (0 bytes)")
    assert {m["sha256"] for m in await models(client)} == {sha256_of(kept), truncated_sha}
    assert (await model(client, truncated_sha))["missing"] is True
    assert (await (await client.get("/api/duplicates")).json())["groups"] == []

    shelf = shelf_of(client)
    watched = await scan_paths(shelf, await model_roots(shelf), [str(first), str(second)])
    assert watched.counts.models_created == 0
    assert {p.path for p in watched.problems} == {str(first), str(second)}
