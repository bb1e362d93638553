"""One content in several folders (a ComfyUI tree and an A1111 tree holding the same LoRA):
what the sidecars beside every copy say is brought in, the copy at the model's `path` first;
and what could not be used is listed by every scan, not only the one that first read it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from modelshelf.domain import scan_turns
from tests.conftest import Client, MakeClient, shelf_of
from tests.factories import image_size, make_image, make_model_file
from tests.model_folders import (
    a1111_user_metadata,
    civitai_version,
    files_opened,
    folders_listed,
    image_bytes,
    kohya_lora_metadata,
    later,
    modelspec_metadata,
    write_a1111_json,
    write_civitai_info,
    write_lora_manager,
    write_raw_header,
    write_safetensors,
)
from tests.scanning import model, models, problems, scan, sha256_of, start


def two_copies(tmp_path: Path, metadata: dict[str, str] | None = None) -> tuple[Path, Path]:
    """The same LoRA (with `metadata` in its header) in ComfyUI's `loras` (the copy the model's
    path names: its folder sorts first) and A1111's `Lora`, under another name."""
    comfy = write_safetensors(tmp_path / "a_comfy" / "loras" / "cat.safetensors", metadata)
    a1111 = tmp_path / "b_a1111" / "Lora" / "Cat_v2.safetensors"
    a1111.parent.mkdir(parents=True)
    shutil.copyfile(comfy, a1111)
    return comfy, a1111


async def test_sidecars_beside_another_copy_fill_what_the_first_copy_lacks(
    make_client: MakeClient, tmp_path: Path
) -> None:
    comfy, a1111 = two_copies(tmp_path)
    write_lora_manager(comfy)  # LoRA Manager runs in ComfyUI
    write_civitai_info(a1111, civitai_version(trained_words=["tabby"], base_model="Pony"))
    write_a1111_json(a1111)
    client = await start(make_client, loras=[comfy.parent, a1111.parent])

    await scan(client)

    record = await model(client, sha256_of(comfy))
    assert record["path"] == str(comfy)
    meta = record["meta_json"]
    assert {"lora_manager", "civitai", "a1111", "trigger_words", "base_model"} <= set(meta)
    assert meta["trigger_words"] == ["tabby"]  # Civitai's words, though beside the other copy
    assert meta["base_model"] == "Pony"
    assert meta["a1111"] == a1111_user_metadata()
    assert {"animal", "cat", "style"} <= {tag["name"] for tag in record["tags"]}


async def test_the_copy_at_the_models_path_wins_a_key_both_copies_say(
    make_client: MakeClient, tmp_path: Path
) -> None:
    comfy, a1111 = two_copies(tmp_path)
    write_civitai_info(comfy, civitai_version(base_model="SDXL 1.0"))
    write_civitai_info(a1111, civitai_version(base_model="Pony"))
    client = await start(make_client, loras=[comfy.parent, a1111.parent])

    await scan(client)

    assert (await model(client, sha256_of(comfy)))["meta_json"]["base_model"] == "SDXL 1.0"


async def test_a_sidecar_written_beside_a_copy_later_is_read_by_the_next_scan(
    make_client: MakeClient, tmp_path: Path
) -> None:
    comfy, a1111 = two_copies(tmp_path)
    write_a1111_json(a1111)
    client = await start(make_client, loras=[comfy.parent, a1111.parent])
    await scan(client)
    assert "civitai" not in (await model(client, sha256_of(comfy)))["meta_json"]
    with files_opened() as opened:
        again = await scan(client)
    assert again["counts"]["metadata_read"] == 0  # copies unchanged: nothing read again
    assert not [path for path in opened if path.startswith(str(tmp_path))]

    write_civitai_info(a1111, civitai_version(base_model="Pony"))
    result = await scan(client)

    assert result["counts"]["metadata_read"] == 1
    assert (await model(client, sha256_of(comfy)))["meta_json"]["base_model"] == "Pony"
    assert (await scan(client))["counts"]["metadata_read"] == 0


def ten_copies(loras: Path) -> list[Path]:
    """One LoRA in ten folders, c00 to c09: more than COPIES_READ (8)."""
    first = write_safetensors(loras / "c00" / "cat.safetensors")
    for n in range(1, 10):
        (loras / f"c{n:02}").mkdir()
        shutil.copyfile(first, loras / f"c{n:02}" / "cat.safetensors")
    return [loras / f"c{n:02}" / "cat.safetensors" for n in range(10)]


async def test_a_rescan_of_a_model_in_more_folders_than_are_read_lists_each_folder_once(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """Past the first COPIES_READ copies, a copy is not read, and an unchanged one is no
    reason to look at the model again."""
    loras = tmp_path / "loras"
    first = ten_copies(loras)[0]
    write_a1111_json(loras / "c07" / "cat.safetensors")  # the last copy read
    client = await start(make_client, loras=loras)
    await scan(client)
    assert (await model(client, sha256_of(first)))["meta_json"]["a1111"]["sd version"] == "SDXL"

    with folders_listed() as listed, files_opened() as opened:
        result = await scan(client)

    assert result["counts"]["unchanged"] == 10
    assert result["counts"]["metadata_read"] == 0
    assert sorted(listed) == sorted(map(str, [loras, *loras.iterdir()]))  # the walk's
    assert not [path for path in opened if path.startswith(str(tmp_path))]


async def test_when_a_copy_read_goes_the_next_copy_by_path_is_read(
    make_client: MakeClient, tmp_path: Path
) -> None:
    copies = ten_copies(tmp_path / "loras")
    write_a1111_json(copies[8])
    client = await start(make_client, loras=tmp_path / "loras")
    await scan(client)
    assert "a1111" not in (await model(client, sha256_of(copies[0])))["meta_json"]

    copies[3].unlink()
    result = await scan(client)

    assert result["counts"]["metadata_read"] == 1
    assert (await model(client, sha256_of(copies[0])))["meta_json"]["a1111"]["notes"]


async def test_what_only_a_gone_copy_said_goes_with_it(
    make_client: MakeClient, tmp_path: Path
) -> None:
    comfy, a1111 = two_copies(tmp_path)
    write_civitai_info(a1111, civitai_version(base_model="Pony"))
    client = await start(make_client, loras=[comfy.parent, a1111.parent])
    await scan(client)
    assert (await model(client, sha256_of(comfy)))["meta_json"]["base_model"] == "Pony"

    a1111.unlink()
    await scan(client)

    meta = (await model(client, sha256_of(comfy)))["meta_json"]
    assert "civitai" not in meta
    assert "base_model" not in meta


async def test_a_copy_found_after_the_model_was_created_is_read(
    make_client: MakeClient, tmp_path: Path
) -> None:
    comfy, a1111 = two_copies(tmp_path)
    write_a1111_json(a1111)
    client = await start(make_client, loras=[comfy.parent])
    await scan(client)
    await client.close()

    client = await start(make_client, loras=[comfy.parent, a1111.parent])
    result = await scan(client)

    assert result["counts"]["locations_added"] == 1
    assert (await model(client, sha256_of(comfy)))["meta_json"]["a1111"]["sd version"] == "SDXL"


async def test_example_images_beside_every_copy_are_added_once_each(
    make_client: MakeClient, tmp_path: Path
) -> None:
    comfy, a1111 = two_copies(tmp_path)
    make_image(comfy.with_name("cat.preview.png"), 40, 30)
    shutil.copyfile(comfy.with_name("cat.preview.png"), a1111.with_name("Cat_v2.preview.png"))
    make_image(a1111.with_name("Cat_v2.jpg"), 50, 30)
    client = await start(make_client, loras=[comfy.parent, a1111.parent])

    result = await scan(client)

    sha256 = sha256_of(comfy)
    assert result["counts"]["images_added"] == 2  # the same picture beside both is one image
    assert (await model(client, sha256))["images"] == [f"{sha256}_0.webp", f"{sha256}_1.webp"]


async def test_a_first_scan_reads_a_model_found_in_two_folders_once(
    make_client: MakeClient, tmp_path: Path
) -> None:
    comfy, a1111 = two_copies(tmp_path, kohya_lora_metadata())
    write_lora_manager(comfy)
    write_civitai_info(a1111, civitai_version(base_model="Pony"))
    client = await start(make_client, loras=[comfy.parent, a1111.parent])

    result = await scan(client)

    assert result["counts"]["models_created"] == 1
    assert result["counts"]["locations_added"] == 1
    assert result["counts"]["metadata_read"] == 1
    meta = (await model(client, sha256_of(comfy)))["meta_json"]
    assert {"file_metadata", "lora_manager", "civitai"} <= set(meta)
    assert meta["base_model"] == "Pony"


async def test_a_picture_beside_another_copy_is_the_cover_not_the_headers_thumbnail(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """As for one file with both: the thumbnail stands in only when no copy has a picture."""
    thumbnail = image_bytes(".jpg", 60, 40)
    comfy, a1111 = two_copies(tmp_path, modelspec_metadata(thumbnail))
    make_image(a1111.with_name("Cat_v2.preview.png"), 30, 30)
    client = await start(make_client, loras=[comfy.parent, a1111.parent])

    result = await scan(client)

    sha256 = sha256_of(comfy)
    assert (await model(client, sha256))["images"] == [f"{sha256}_0.webp"]
    data_dir = shelf_of(client).settings.data_dir
    assert image_size(data_dir / f"images/{sha256}_0_high.webp") == (30, 30)
    assert result["counts"]["images_added"] == 1


async def test_files_of_one_size_past_those_that_may_wait_are_registered_in_walk_order(
    make_client: MakeClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files of one size wait for the last of their size (any of them may be a copy of
    another); past MAX_HELD, a file is registered at once, with the copies held before it,
    and the copy walked first still makes the model."""
    monkeypatch.setattr(scan_turns, "MAX_HELD", 2)
    loras = tmp_path / "loras"
    hashes = [make_model_file(loras / f"m{n}.safetensors", 300, seed=n) for n in range(5)]
    for name, original in (("y_copy", "m0"), ("z_copy", "m4")):  # walked after m0 to m4
        shutil.copyfile(loras / f"{original}.safetensors", loras / f"{name}.safetensors")
        write_a1111_json(loras / f"{name}.safetensors", a1111_user_metadata(notes=name))
    client = await start(make_client, loras=loras)

    result = await scan(client)

    assert result["counts"]["models_created"] == 5
    assert result["counts"]["locations_added"] == 2
    assert sorted(m["sha256"] for m in await models(client)) == sorted(hashes)
    for sha256, first, copy in ((hashes[0], "m0", "y_copy"), (hashes[4], "m4", "z_copy")):
        record = await model(client, sha256)
        assert record["path"] == str(loras / f"{first}.safetensors")
        assert [f["path"] for f in record["files"]] == [
            str(loras / f"{first}.safetensors"), str(loras / f"{copy}.safetensors")
        ]  # fmt: skip
        assert record["meta_json"]["a1111"]["notes"] == copy


def cat_with_a_broken_sidecar(tmp_path: Path) -> tuple[Path, Path]:
    """loras/cat.safetensors and, beside it, a cat.civitai.info that is not JSON."""
    path = write_safetensors(tmp_path / "loras" / "cat.safetensors", kohya_lora_metadata())
    info = path.with_name("cat.civitai.info")
    info.write_text("{not json")
    return path, info


async def test_problems_of_unchanged_files_are_listed_by_every_scan(
    make_client: MakeClient, tmp_path: Path
) -> None:
    path, info = cat_with_a_broken_sidecar(tmp_path)
    client = await start(make_client, loras=tmp_path / "loras")

    first = await scan(client)
    second = await scan(client)

    assert str(info) in problems(first)
    assert problems(second) == problems(first)
    assert second["counts"]["metadata_read"] == 0  # listed from the last reading
    write_civitai_info(path)
    later(info)
    assert problems(await scan(client)) == {}
    assert problems(await scan(client)) == {}


async def test_problems_are_listed_after_the_model_file_is_touched(
    make_client: MakeClient, tmp_path: Path
) -> None:
    # Touched (a copy tool, `touch`): hashed again to the same content, whose files beside it
    # were read as they are, so their problems are listed from the last reading.
    path, info = cat_with_a_broken_sidecar(tmp_path)
    client = await start(make_client, loras=tmp_path / "loras")

    first = await scan(client)
    later(path)
    touched = await scan(client)

    assert str(info) in problems(first)
    assert touched["counts"]["hashed"] == 1
    assert problems(touched) == problems(first)
    assert problems(await scan(client)) == problems(first)


async def test_problems_beside_a_copy_are_listed_by_every_scan(
    make_client: MakeClient, tmp_path: Path
) -> None:
    comfy, a1111 = two_copies(tmp_path)
    broken = a1111.with_name("Cat_v2.json")
    broken.write_text("[1, 2")
    client = await start(make_client, loras=[comfy.parent, a1111.parent])

    first = await scan(client)
    second = await scan(client)

    assert str(broken) in problems(first)
    assert problems(second) == problems(first)


async def test_a_header_problem_is_listed_after_the_files_beside_it_are_read_again(
    make_client: MakeClient, tmp_path: Path
) -> None:
    big = write_raw_header(tmp_path / "loras" / "big.safetensors", 200_000_000, b"{}")
    client = await start(make_client, loras=tmp_path / "loras")
    first = problems(await scan(client))
    assert first[str(big)].startswith("safetensors header: header of 200000000 bytes")

    write_civitai_info(big)  # read again, the model file still not opened
    result = await scan(client)

    assert result["counts"]["metadata_read"] == 1
    assert problems(result) == first
    assert problems(await scan(client)) == first


async def test_a_header_problem_of_a_content_in_two_folders_is_listed_once_by_every_scan(
    make_client: MakeClient, tmp_path: Path
) -> None:
    big = write_raw_header(tmp_path / "a" / "loras" / "big.safetensors", 200_000_000, b"{}")
    copy = tmp_path / "b" / "loras" / "big.safetensors"
    copy.parent.mkdir(parents=True)
    shutil.copyfile(big, copy)
    client = await start(make_client, loras=[big.parent, copy.parent])

    scans = [await scan(client) for _ in range(3)]

    for result in scans:
        assert list(problems(result)) == [str(big)]
        assert len(result["problems"]) == 1


async def test_a_problem_beside_a_model_found_with_a_copy_is_listed_once(
    make_client: MakeClient, tmp_path: Path
) -> None:
    comfy, a1111 = two_copies(tmp_path)
    broken = comfy.with_name("cat.json")
    broken.write_text("[1, 2]")
    client = await start(make_client, loras=[comfy.parent, a1111.parent])

    result = await scan(client)

    assert result["problems"] == [{"path": str(broken), "reason": "not a JSON object"}]


async def misfiled_copy(
    make_client: MakeClient, tmp_path: Path
) -> tuple[Client, Path, dict[str, str]]:
    """A LoRA (the model's path) with a copy filed under checkpoints, each with a broken
    sidecar beside it, scanned: the client, the LoRA and the problems a whole scan lists."""
    lora = write_safetensors(tmp_path / "a_loras" / "cat.safetensors")
    misfiled = tmp_path / "b_checkpoints" / "cat.safetensors"
    misfiled.parent.mkdir()
    shutil.copyfile(lora, misfiled)
    lora.with_name("cat.json").write_text("[1, 2")
    misfiled.with_name("cat.civitai.info").write_text("{not json")
    client = await start(make_client, loras=lora.parent, checkpoints=misfiled.parent)
    everything = problems(await scan(client))
    assert [Path(path).parent.name for path in everything] == ["a_loras", "b_checkpoints"]
    assert (await model(client, sha256_of(lora)))["path"] == str(lora)
    return client, lora, everything


def folders_of(result: dict[str, Any]) -> list[str]:
    return [Path(path).parent.name for path in problems(result)]


async def test_a_scan_of_some_types_lists_no_problem_of_a_file_outside_their_roots(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client, lora, everything = await misfiled_copy(make_client, tmp_path)

    assert folders_of(await scan(client, types=["loras"])) == ["a_loras"]
    write_lora_manager(lora)  # both copies' sidecars read again by a scan of loras
    read_again = await scan(client, types=["loras"])
    assert read_again["counts"]["metadata_read"] == 1
    assert folders_of(read_again) == ["a_loras"]
    assert problems(await scan(client)) == everything


async def test_a_scan_of_the_roots_of_a_copy_lists_the_problems_beside_it(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client, _, _ = await misfiled_copy(make_client, tmp_path)

    result = await scan(client, types=["checkpoints"])

    assert folders_of(result) == ["b_checkpoints"]
    assert result["counts"]["metadata_read"] == 0  # listed from the last reading
