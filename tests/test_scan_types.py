"""A model's `type` is its root's when a scan creates it, and follows its file into another
type's folder (a LoRA filed under checkpoints by mistake, then moved), unless a person set it."""

from __future__ import annotations

import os
from pathlib import Path

from tests.conftest import Client, MakeClient
from tests.factories import make_model_file
from tests.scanning import model, models, scan, start


async def misfiled(make_client: MakeClient, tmp_path: Path) -> tuple[Client, str, Path]:
    """A file scanned under `checkpoints`; returns the client, its content and where it goes."""
    sha256 = make_model_file(tmp_path / "checkpoints" / "cat.safetensors", size=300, seed=1)
    (tmp_path / "loras").mkdir()
    client = await start(
        make_client, checkpoints=tmp_path / "checkpoints", loras=tmp_path / "loras"
    )
    await scan(client)
    assert (await model(client, sha256))["type"] == "checkpoints"
    return client, sha256, tmp_path / "loras" / "cat.safetensors"


async def test_a_model_moved_to_another_types_folder_takes_that_type(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client, sha256, there = await misfiled(make_client, tmp_path)

    (tmp_path / "checkpoints" / "cat.safetensors").rename(there)
    await scan(client)

    record = await model(client, sha256)
    assert (record["path"], record["type"]) == (str(there), "loras")
    assert [m["sha256"] for m in await models(client, type="loras")] == [sha256]
    assert await models(client, type="checkpoints") == []


async def test_a_type_a_person_set_stays_when_the_file_moves(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client, sha256, there = await misfiled(make_client, tmp_path)
    response = await client.patch(f"/api/models/{sha256}", json={"type": "embeddings"})
    assert response.status == 200, await response.text()

    (tmp_path / "checkpoints" / "cat.safetensors").rename(there)
    await scan(client)

    record = await model(client, sha256)
    assert (record["path"], record["type"]) == (str(there), "embeddings")


async def test_a_copy_in_another_types_folder_leaves_the_type_alone(
    make_client: MakeClient, tmp_path: Path
) -> None:
    client, sha256, there = await misfiled(make_client, tmp_path)

    make_model_file(there, size=300, seed=1)
    await scan(client)

    assert (await model(client, sha256))["type"] == "checkpoints"


async def test_a_copy_in_a_root_of_the_same_type_keeps_the_path_and_the_type_there(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """A checkpoint linked into A1111's LyCORIS folder (sorting first), then moved to a
    sub-folder of its own root: it is still a checkpoint, at its new place."""
    home = tmp_path / "zz_checkpoints"
    sha256 = make_model_file(home / "sdxl.safetensors", size=300, seed=2)
    lycoris = tmp_path / "a_lycoris"
    lycoris.mkdir()
    os.link(home / "sdxl.safetensors", lycoris / "sdxl.safetensors")
    client = await start(make_client, checkpoints=home, lycoris=lycoris)
    await scan(client)
    assert (await model(client, sha256))["type"] == "checkpoints"

    (home / "sdxl").mkdir()
    (home / "sdxl.safetensors").rename(home / "sdxl" / "sdxl.safetensors")
    await scan(client)

    record = await model(client, sha256)
    assert (record["path"], record["type"]) == (
        str(home / "sdxl" / "sdxl.safetensors"),
        "checkpoints",
    )


async def test_a_scan_of_one_type_finds_a_file_by_the_path_a_scan_of_every_type_does(
    make_client: MakeClient, tmp_path: Path
) -> None:
    # Every model under one folder named as checkpoints, and ComfyUI's models folder a link
    # to it, its loras named through the link: a scan of every type walks the loras there
    # once, under checkpoints' path; a scan of loras must find them there too, not add a
    # second location by the link's path (present for good, listed as a duplicate).
    everything = tmp_path / "data" / "models"
    sha256 = make_model_file(everything / "loras" / "cat.ckpt", size=300, seed=5)
    (tmp_path / "ComfyUI").mkdir()
    (tmp_path / "ComfyUI" / "models").symlink_to(everything)
    client = await start(
        make_client, checkpoints=everything, loras=tmp_path / "ComfyUI" / "models" / "loras"
    )
    await scan(client)
    walked = [f["path"] for f in (await model(client, sha256))["files"]]
    assert walked == [str(everything / "loras" / "cat.ckpt")]

    await scan(client, ["loras"])

    assert [f["path"] for f in (await model(client, sha256))["files"]] == walked
    duplicates = await client.get("/api/duplicates")
    assert (await duplicates.json())["groups"] == []
