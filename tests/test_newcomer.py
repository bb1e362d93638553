"""A newcomer's first steps: a scan with no folders named says how to name them, and what the
sidecars say is found as their tools show it: the trigger words of a LoRA
that only A1111 knows (its "activation text", which the model's page shows) are searchable."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import MakeClient, shelf_of
from tests.factories import image_size, make_image
from tests.model_folders import (
    a1111_user_metadata,
    civitai_version,
    kohya_lora_metadata,
    lora_manager_metadata,
    write_a1111_json,
    write_civitai_info,
    write_lora_manager,
    write_safetensors,
)
from tests.scanning import model, models, scan, sha256_of, start
from tests.server import ServerProcess


async def test_a1111_activation_text_is_the_trigger_words_search_finds(
    make_client: MakeClient, tmp_path: Path
) -> None:
    lora = write_safetensors(tmp_path / "Lora" / "more_details.safetensors", kohya_lora_metadata())
    text = "mdtl, (red hair, blue eyes:1.2) ,"
    write_a1111_json(lora, a1111_user_metadata(**{"activation text": text}))
    client = await start(make_client, loras=tmp_path / "Lora")

    await scan(client)

    meta = (await model(client, sha256_of(lora)))["meta_json"]
    assert meta["trigger_words"] == ["mdtl", "(red hair, blue eyes:1.2)"]
    assert [m["sha256"] for m in await models(client, q="mdtl")] == [sha256_of(lora)]
    assert [m["sha256"] for m in await models(client, q="blue eyes")] == [sha256_of(lora)]


async def test_civitai_words_still_come_before_the_activation_text(
    make_client: MakeClient, tmp_path: Path
) -> None:
    lora = write_safetensors(tmp_path / "Lora" / "cat.safetensors", kohya_lora_metadata())
    write_a1111_json(lora, a1111_user_metadata(**{"activation text": "mdtl"}))
    write_civitai_info(lora, civitai_version(trained_words=["orange cat"]))
    client = await start(make_client, loras=tmp_path / "Lora")

    await scan(client)

    assert (await model(client, sha256_of(lora)))["meta_json"]["trigger_words"] == ["orange cat"]


async def test_a_scan_without_roots_says_how_to_name_them(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.post("/api/scan")
    assert response.status == 202
    job = (await response.json())["job"]
    while job["state"] in ("queued", "running"):
        job = await (await client.get(f"/api/jobs/{job['id']}")).json()
    [warning] = job["result"]["warnings"]
    assert "no model roots are configured" in warning
    for words in ("model_roots", "config/local.toml", "comfyui_model_paths", "restart"):
        assert words in warning


async def test_the_preview_lora_manager_shows_is_the_cover(
    make_client: MakeClient, tmp_path: Path
) -> None:
    lora = write_safetensors(tmp_path / "loras" / "cat.safetensors", kohya_lora_metadata())
    make_image(lora.with_name("cat.png"), 40, 30)  # A1111's preview, found first by name
    make_image(lora.with_name("cat.webp"), 60, 30)  # the one LoRA Manager downloaded and shows
    shown = "C:\\ComfyUI\\models\\loras\\cat.webp"  # written on another machine
    write_lora_manager(lora, lora_manager_metadata(lora, preview_url=shown))
    client = await start(make_client, loras=tmp_path / "loras")

    await scan(client)

    sha256 = sha256_of(lora)
    assert len((await model(client, sha256))["images"]) == 2
    images = shelf_of(client).settings.data_dir / "images"
    widths = [image_size(images / f"{sha256}_{seq}_high.webp")[0] for seq in range(2)]
    assert widths == [60, 40]


async def test_the_description_a_page_shows_from_a_sidecar_is_searched(
    make_client: MakeClient, tmp_path: Path
) -> None:
    a1111 = write_safetensors(tmp_path / "Lora" / "details.safetensors", kohya_lora_metadata())
    write_a1111_json(a1111, a1111_user_metadata(description="adds intricate filigree"))
    civitai = write_safetensors(tmp_path / "Lora" / "cat.safetensors", {"k": "v"})
    version = civitai_version(sha256=sha256_of(civitai))
    version["description"] = "<p>Whiskers &amp; <strong>tabby</strong> fur</p>"
    write_civitai_info(civitai, version)
    client = await start(make_client, loras=tmp_path / "Lora")

    await scan(client)

    assert [m["sha256"] for m in await models(client, q="filigree")] == [sha256_of(a1111)]
    assert [m["sha256"] for m in await models(client, q="tabby whiskers")] == [sha256_of(civitai)]
    assert await models(client, q="strong") == []  # markup is no word of it


def test_serve_says_which_model_folders_a_scan_walks(tmp_path: Path) -> None:
    (tmp_path / "loras").mkdir()
    roots = f"loras={tmp_path / 'loras'},{tmp_path / 'gone'};vae={tmp_path / 'loras'}"
    server = ServerProcess(tmp_path / "data", tmp_path / "a.log", MODELSHELF_MODEL_ROOTS=roots)
    try:
        server.start()
        server.wait_for_line("model folders: 3, of types loras, vae")
        server.wait_for_line(f"model root {tmp_path / 'gone'} (loras) does not exist")
    finally:
        server.kill()
    bare = ServerProcess(tmp_path / "bare", tmp_path / "b.log")
    try:
        bare.start()
        assert "config/local.toml" in bare.wait_for_line("no model roots are configured")
    finally:
        bare.kill()
