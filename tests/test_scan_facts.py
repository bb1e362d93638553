"""What the files already say, brought in by a scan: each source under its own meta key,
refreshed when its source file changes, never touching keys a person set; LoRA Manager tags
as tags; example images beside the model and the embedded thumbnail as renditions, added
once each; pickles hashed, never loaded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelshelf.renditions import qualities
from modelshelf.storage import model_meta
from modelshelf.storage import models as model_rows
from modelshelf.storage.rows import parse_meta
from tests.conftest import Client, MakeClient, migrate, shelf_of
from tests.factories import LegacyLibrary, image_size, make_image
from tests.model_folders import (
    a1111_user_metadata,
    civitai_version,
    files_opened,
    image_bytes,
    kohya_lora_metadata,
    later,
    lora_manager_metadata,
    modelspec_metadata,
    write_a1111_json,
    write_booby_trapped_pickle,
    write_civitai_info,
    write_lora_manager,
    write_preview,
    write_raw_header,
    write_safetensors,
)
from tests.scanning import model, models, problems, scan, sha256_of, start


async def set_meta(client: Client, sha256: str, **changes: Any) -> None:
    """Change meta_json keys as a person does (PATCH /api/models: a merge patch)."""
    async with shelf_of(client).changes.change() as change:
        row = await model_rows.fetch_model_row(change.tx, sha256)
        assert row is not None
        meta = parse_meta(row["meta_json"])
        for key, value in changes.items():
            if value is None:
                meta.pop(key, None)
            else:
                meta[key] = value
        await model_meta.set_meta_json(change.tx, sha256, meta)


@pytest.fixture
def lora(tmp_path: Path) -> Path:
    """A LoRA as a real library holds it: kohya metadata and all three sidecars."""
    path = write_safetensors(tmp_path / "loras" / "orange_cat.safetensors", kohya_lora_metadata())
    write_civitai_info(path)
    write_lora_manager(path)
    write_a1111_json(path)
    return path


async def test_each_source_goes_under_a_key_of_its_own(
    make_client: MakeClient, tmp_path: Path, lora: Path
) -> None:
    client = await start(make_client, loras=tmp_path / "loras")

    result = await scan(client)

    meta = (await model(client, sha256_of(lora)))["meta_json"]
    assert set(meta) == {
        "file_metadata", "civitai", "trigger_words", "base_model", "lora_manager", "a1111"
    }  # fmt: skip
    assert meta["file_metadata"]["ss_tag_frequency"] == {
        "5_orange cat": {"orange cat": 12, "sitting": 7}
    }
    assert meta["civitai"] == civitai_version()
    assert meta["trigger_words"] == ["orange cat", "sitting"]
    assert meta["base_model"] == "SDXL 1.0"
    assert meta["lora_manager"] == lora_manager_metadata(lora)
    assert meta["a1111"] == a1111_user_metadata()
    assert result["problems"] == []


@pytest.mark.parametrize(
    ("metadata", "expected"),
    [
        (kohya_lora_metadata(), "SDXL 1.0"),
        (modelspec_metadata(), "SDXL 1.0"),
        ({"ss_base_model_version": "unknown"}, None),
    ],
)
async def test_base_model_from_the_header_when_nothing_better_says_it(
    make_client: MakeClient, tmp_path: Path, metadata: dict[str, str], expected: str | None
) -> None:
    path = write_safetensors(tmp_path / "loras" / "m.safetensors", metadata)
    client = await start(make_client, loras=tmp_path / "loras")
    await scan(client)
    assert (await model(client, sha256_of(path)))["meta_json"].get("base_model") == expected


async def test_a_base_model_spelled_by_a_header_or_a1111_is_listed_under_civitais_name(
    make_client: MakeClient, tmp_path: Path
) -> None:
    loras = tmp_path / "loras"
    from_civitai = write_safetensors(loras / "a.safetensors", seed=1)
    write_civitai_info(from_civitai, civitai_version(base_model="SDXL 1.0"))
    write_safetensors(loras / "b.safetensors", kohya_lora_metadata(), seed=2)
    write_safetensors(loras / "c.safetensors", modelspec_metadata(), seed=3)
    from_a1111 = write_safetensors(loras / "d.safetensors", seed=4)
    write_a1111_json(from_a1111)  # "sd version": "SDXL"
    write_safetensors(loras / "e.safetensors", {"ss_base_model_version": "sd_v1"}, seed=5)
    write_safetensors(loras / "f.safetensors", {"ss_base_model_version": "sd_v2"}, seed=6)
    client = await start(make_client, loras=loras)
    await scan(client)

    response = await client.get("/api/models/base_models")
    listed = {b["name"]: b["count"] for b in (await response.json())["base_models"]}
    assert listed == {"SDXL 1.0": 4, "SD 1.5": 1, "sd_v2": 1}
    response = await client.get("/api/models", params={"base_model": "SDXL 1.0"})
    assert (await response.json())["total"] == 4


async def base_models_listed(client: Client) -> dict[str, int]:
    response = await client.get("/api/models/base_models")
    return {b["name"]: b["count"] for b in (await response.json())["base_models"]}


async def test_a_base_model_lora_manager_spelled_as_kohya_is_listed_under_civitais_name(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """Until July 2025 LoRA Manager wrote, for a LoRA Civitai does not know, the base model
    its `determine_base_model` made of kohya's `ss_base_model_version`: a substring table
    that has no entry for `sd_v1`, so every kohya SD 1.5 LoRA's record says "sd_v1"
    (ComfyUI-Lora-Manager py/utils/model_utils.py, metadata_manager.py _enrich_metadata)."""
    loras = tmp_path / "loras"
    kohya = write_safetensors(loras / "a.safetensors", {"ss_base_model_version": "sd_v1"})
    managed = write_safetensors(loras / "b.safetensors", {"ss_base_model_version": "sd_v1"}, seed=2)
    record = lora_manager_metadata(managed, base_model="sd_v1", civitai={}, from_civitai=False)
    write_lora_manager(managed, record)
    client = await start(make_client, loras=loras)
    await scan(client)

    assert (await model(client, sha256_of(kohya)))["meta_json"]["base_model"] == "SD 1.5"
    assert (await model(client, sha256_of(managed)))["meta_json"]["base_model"] == "SD 1.5"
    assert await base_models_listed(client) == {"SD 1.5": 2}


async def test_a_flux_lora_is_listed_under_the_flux_model_its_header_names(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """kohya's flux_train_network.py writes `ss_base_model_version` "flux1" for a LoRA of
    either Flux model, and says which one in the model spec: `modelspec.architecture`
    "flux-1-schnell/lora" or "flux-1-dev/lora" (library/sai_model_spec.py)."""
    loras = tmp_path / "loras"
    kohya = {"ss_base_model_version": "flux1", "ss_network_module": "networks.lora_flux"}
    schnell = write_safetensors(
        loras / "schnell.safetensors",
        kohya | modelspec_metadata(**{"modelspec.architecture": "flux-1-schnell/lora"}),
    )
    dev = write_safetensors(
        loras / "dev.safetensors",
        kohya | modelspec_metadata(**{"modelspec.architecture": "flux-1-dev/lora"}),
        seed=2,
    )
    client = await start(make_client, loras=loras)
    await scan(client)

    assert (await model(client, sha256_of(schnell)))["meta_json"]["base_model"] == "Flux.1 S"
    assert (await model(client, sha256_of(dev)))["meta_json"]["base_model"] == "Flux.1 D"


async def test_an_a1111_sd_version_of_other_gives_way_to_the_header(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """sd-civitai-browser-plus writes A1111's `<stem>.json` with "sd version" "SD1", "SD2",
    "SDXL", or "Other" for every other base model (scripts/civitai_file_manage.py,
    find_and_save); A1111's own editor offers "Unknown" there, never "Other"
    (extensions-builtin/Lora/ui_edit_user_metadata.py)."""
    loras = tmp_path / "loras"
    flux = write_safetensors(loras / "zk.safetensors", {"ss_base_model_version": "flux1"})
    browser = {"activation text": "zk style", "description": "A style", "sd version": "Other"}
    write_a1111_json(flux, browser | {"modelId": 4201, "sha256": sha256_of(flux).upper()})
    client = await start(make_client, loras=loras)
    await scan(client)

    assert (await model(client, sha256_of(flux)))["meta_json"]["base_model"] == "Flux.1 D"


async def test_the_description_lora_manager_keeps_is_searched(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """LoRA Manager keeps the model's description as `modelDescription` (HTML from Civitai,
    or a Hugging Face README made HTML), its version's in `civitai.description`
    (py/utils/models.py, py/services/metadata_sync_service.py, agent/post_processor.py)."""
    loras = tmp_path / "loras"
    hugging = write_safetensors(loras / "wash.safetensors")
    readme = "<h1>Wash</h1><p>Soft <b>watercolour</b> washes &amp; paper grain</p>"
    write_lora_manager(
        hugging, lora_manager_metadata(hugging, civitai={}, modelDescription=readme, tags=[])
    )
    civitai = write_safetensors(loras / "ink.safetensors", seed=2)
    version = {"description": "<p>Sharper <i>linework</i></p>", "trainedWords": ["ink"]}
    write_lora_manager(
        civitai, lora_manager_metadata(civitai, civitai=version, modelDescription="", tags=[])
    )
    client = await start(make_client, loras=loras)
    await scan(client)

    assert [m["name"] for m in await models(client, q="watercolour")] == ["wash"]
    assert [m["name"] for m in await models(client, q="linework")] == ["ink"]


async def test_lora_manager_tags_are_added_as_tags(
    make_client: MakeClient, tmp_path: Path, lora: Path
) -> None:
    client = await start(make_client, loras=tmp_path / "loras")
    await scan(client)
    record = await model(client, sha256_of(lora))
    assert [t["name"] for t in record["tags"]] == ["animal", "cat", "style"]


async def test_a_lora_manager_tag_the_api_refuses_is_reported_not_added(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """A tag over 100 characters, or with a control character, is one PUT tags refuses: on a
    model it made every later save of its tags a 400 (the page sends them all) and the tag
    filter refused it. The others come in, and the sidecar keeps them all."""
    lora = write_safetensors(tmp_path / "loras" / "painterly.safetensors", {"k": "v"})
    long = "concept art, painterly style, " * 4
    write_lora_manager(lora, lora_manager_metadata(lora, tags=[long, "tab\there", "Painterly"]))
    client = await start(make_client, loras=tmp_path / "loras")

    result = await scan(client)

    sha256 = sha256_of(lora)
    record = await model(client, sha256)
    assert [t["name"] for t in record["tags"]] == ["painterly"]
    assert record["meta_json"]["lora_manager"]["tags"] == [long, "tab\there", "Painterly"]
    reason = problems(result)[str(lora)]
    assert reason.startswith("LoRA Manager tag")
    assert "not added" in reason
    tags = [t["name"] for t in record["tags"]]  # as the model page saves one more
    saved = await client.put(f"/api/models/{sha256}/tags", json={"tags": [*tags, "mine"]})
    assert saved.status == 200


async def test_example_images_beside_the_model_are_added_once_each_in_order(
    make_client: MakeClient, tmp_path: Path
) -> None:
    path = write_safetensors(tmp_path / "loras" / "cat.safetensors")
    order = [".preview.png", ".preview.jpg", ".png", ".webp"]
    sizes = {}
    for index, suffix in enumerate(order):
        width = 40 + 10 * index
        make_image(path.with_name("cat" + suffix), width, 30)
        sizes[width] = suffix
    client = await start(make_client, loras=tmp_path / "loras")

    await scan(client)
    sha256 = sha256_of(path)
    record = await model(client, sha256)
    assert record["images"] == [f"{sha256}_{seq}.webp" for seq in range(4)]
    data_dir = shelf_of(client).settings.data_dir
    widths = [image_size(data_dir / f"images/{sha256}_{seq}_high.webp")[0] for seq in range(4)]
    assert [sizes[w] for w in widths] == order
    for quality in qualities():
        response = await client.get(f"/api/images/{sha256}_0.webp", params={"quality": quality})
        assert response.status == 200
        assert response.content_type == "image/webp"

    write_civitai_info(path)  # a sidecar comes: the facts are read again, images not re-added
    result = await scan(client)
    assert result["counts"]["metadata_read"] == 1
    assert (await model(client, sha256))["images"] == record["images"]


async def test_an_example_image_that_comes_later_is_added_after_the_others(
    make_client: MakeClient, tmp_path: Path
) -> None:
    path = write_safetensors(tmp_path / "loras" / "cat.safetensors")
    write_preview(path, ".preview.png")
    client = await start(make_client, loras=tmp_path / "loras")
    await scan(client)

    write_preview(path, ".jpg")
    result = await scan(client)

    assert result["counts"]["images_added"] == 1
    assert len((await model(client, sha256_of(path)))["images"]) == 2


async def test_the_embedded_thumbnail_is_an_example_image_only_when_there_is_none(
    make_client: MakeClient, tmp_path: Path
) -> None:
    thumbnail = image_bytes(".jpg", 60, 40)
    alone = write_safetensors(
        tmp_path / "loras" / "alone.safetensors", modelspec_metadata(thumbnail)
    )
    beside = write_safetensors(
        tmp_path / "loras" / "beside.safetensors", modelspec_metadata(thumbnail), seed=5
    )
    make_image(beside.with_name("beside.preview.png"), 30, 30)
    client = await start(make_client, loras=tmp_path / "loras")

    await scan(client)

    data_dir = shelf_of(client).settings.data_dir
    sha_alone, sha_beside = sha256_of(alone), sha256_of(beside)
    assert (await model(client, sha_alone))["images"] == [f"{sha_alone}_0.webp"]
    assert image_size(data_dir / f"images/{sha_alone}_0_high.webp") == (60, 40)
    assert (await model(client, sha_beside))["images"] == [f"{sha_beside}_0.webp"]
    assert image_size(data_dir / f"images/{sha_beside}_0_high.webp") == (30, 30)
    meta = (await model(client, sha_alone))["meta_json"]
    assert "modelspec.thumbnail" not in meta["file_metadata"]


@pytest.mark.parametrize(
    "preview",
    [b"", b"\x00\x00\x00\x18ftypmp42" + bytes(64)],
    ids=["empty-download", "video-under-an-image-name"],
)
async def test_the_embedded_thumbnail_stands_in_for_a_preview_that_is_no_picture(
    make_client: MakeClient, tmp_path: Path, preview: bytes
) -> None:
    # A download that failed, or a video preview saved under the image's name: the model has
    # no example image beside it, so the thumbnail in its header becomes the one it has.
    path = write_safetensors(
        tmp_path / "loras" / "cat.safetensors", modelspec_metadata(image_bytes(".jpg", 60, 40))
    )
    path.with_name("cat.preview.png").write_bytes(preview)
    client = await start(make_client, loras=tmp_path / "loras")

    result = await scan(client)

    assert problems(result)[str(path.with_name("cat.preview.png"))].startswith(
        "example image not added"
    )
    sha256 = sha256_of(path)
    assert (await model(client, sha256))["images"] == [f"{sha256}_0.webp"]
    data_dir = shelf_of(client).settings.data_dir
    assert image_size(data_dir / f"images/{sha256}_0_high.webp") == (60, 40)


async def test_facts_are_refreshed_when_their_source_file_changes(
    make_client: MakeClient, tmp_path: Path, lora: Path
) -> None:
    client = await start(make_client, loras=tmp_path / "loras")
    await scan(client)
    sha256 = sha256_of(lora)

    info = write_civitai_info(lora, civitai_version(trained_words=["tabby"], base_model="Pony"))
    later(info)
    lora.with_name("orange_cat.json").unlink()
    result = await scan(client)

    meta = (await model(client, sha256))["meta_json"]
    assert meta["trigger_words"] == ["tabby"]
    assert meta["base_model"] == "Pony"
    assert "a1111" not in meta  # its source is gone
    assert result["counts"]["metadata_read"] == 1
    assert result["counts"]["unchanged"] == 1


async def test_keys_a_person_set_are_never_touched(
    make_client: MakeClient, tmp_path: Path, lora: Path
) -> None:
    client = await start(make_client, loras=tmp_path / "loras")
    await scan(client)
    sha256 = sha256_of(lora)
    await set_meta(client, sha256, trigger_words=["my words"], a1111=None, description="mine")

    info = write_civitai_info(lora, civitai_version(trained_words=["tabby"], base_model="Pony"))
    later(info)
    write_a1111_json(lora, a1111_user_metadata(notes="changed"))
    later(lora.with_name("orange_cat.json"))
    await scan(client)

    meta = (await model(client, sha256))["meta_json"]
    assert meta["trigger_words"] == ["my words"]  # changed by a person: theirs
    assert "a1111" not in meta  # removed by a person: stays removed
    assert meta["description"] == "mine"  # not a key scans write
    assert meta["base_model"] == "Pony"  # still the scan's: refreshed
    assert meta["civitai"]["trainedWords"] == ["tabby"]


async def test_a_key_a_legacy_library_set_is_a_persons(
    make_client: MakeClient, tmp_path: Path, lora: Path
) -> None:
    client = await start(make_client, loras=tmp_path / "loras")
    legacy = LegacyLibrary(shelf_of(client).settings.data_dir / "legacy")
    sha256 = sha256_of(lora)
    legacy.add_model(1, hash_hex=sha256, extra={"base_model": "SD 1.5", "description": "old"})
    await migrate(client, legacy)

    await scan(client)

    meta = (await model(client, sha256))["meta_json"]
    assert meta["base_model"] == "SD 1.5"
    assert meta["description"] == "old"
    assert meta["civitai"] == civitai_version()


async def test_a_tag_a_person_removed_is_not_added_again(
    make_client: MakeClient, tmp_path: Path, lora: Path
) -> None:
    client = await start(make_client, loras=tmp_path / "loras")
    await scan(client)
    sha256 = sha256_of(lora)
    async with shelf_of(client).changes.change() as change:
        await change.tx.execute(
            "DELETE FROM model_tags WHERE model_hash = ? AND tag_id ="
            " (SELECT id FROM tags WHERE name = 'style')",
            (sha256,),
        )

    write_lora_manager(lora, lora_manager_metadata(lora, tags=["style", "cat", "Tabby"]))
    later(lora.with_name("orange_cat.metadata.json"))
    await scan(client)

    tags = [t["name"] for t in (await model(client, sha256))["tags"]]
    assert tags == ["animal", "cat", "tabby"]


async def test_a_renamed_model_with_its_sidecars_is_read_again_without_opening_it(
    make_client: MakeClient, tmp_path: Path, lora: Path
) -> None:
    client = await start(make_client, loras=tmp_path / "loras")
    await scan(client)
    sha256 = sha256_of(lora)
    for name in ("orange_cat.safetensors", "orange_cat.civitai.info"):
        (lora.parent / name).rename(lora.parent / name.replace("orange_cat", "tabby"))
    for name in ("orange_cat.metadata.json", "orange_cat.json"):
        (lora.parent / name).unlink()

    with files_opened() as opened:
        await scan(client)

    renamed = str(lora.with_name("tabby.safetensors"))
    assert renamed not in opened
    meta = (await model(client, sha256))["meta_json"]
    assert set(meta) == {"file_metadata", "civitai", "trigger_words", "base_model"}
    assert meta["file_metadata"] == json.loads(json.dumps(meta["file_metadata"]))


@pytest.mark.parametrize(
    ("declared", "body", "reason"),
    [
        (90, b"{not json" * 10, "safetensors header: header is not valid JSON"),
        (100_000_001, b"{}", "safetensors header: header of 100000001 bytes is over"),
    ],
    ids=["malformed", "over 100 MB"],
)
async def test_a_malformed_header_or_sidecar_is_reported_and_the_file_registered(
    make_client: MakeClient, tmp_path: Path, declared: int, body: bytes, reason: str
) -> None:
    broken = write_raw_header(tmp_path / "loras" / "broken.safetensors", declared, body)
    good = write_safetensors(tmp_path / "loras" / "good.safetensors", {"k": "v"})
    good.with_name("good.civitai.info").write_text("{truncated")
    client = await start(make_client, loras=tmp_path / "loras")

    result = await scan(client)

    found = problems(result)
    assert found[str(broken)].startswith(reason)
    assert found[str(good.with_name("good.civitai.info"))].startswith("not valid JSON")
    assert result["counts"]["models_created"] == 2
    assert (await model(client, sha256_of(broken)))["meta_json"] == {}
    assert (await model(client, sha256_of(good)))["meta_json"] == {"file_metadata": {"k": "v"}}


@pytest.mark.parametrize("levels", [100, 300, 5000])
async def test_deeply_nested_json_in_a_file_is_reported_and_every_model_is_served(
    make_client: MakeClient, tmp_path: Path, levels: int
) -> None:
    """Python's parser gives up near 1,000 levels and the API serialises records to about
    255: neither may fail a scan, nor make a model unreadable."""
    nested = "[" * levels + "]" * levels
    body = json.dumps({"__metadata__": {"k": "v"}, "deep": None}).replace("null", nested)
    deep_header = write_raw_header(
        tmp_path / "loras" / "header.safetensors", len(body), body.encode()
    )
    in_string = write_safetensors(tmp_path / "loras" / "string.safetensors", {"freq": nested})
    sidecar = write_safetensors(tmp_path / "loras" / "sidecar.safetensors", {"k": "v"})
    info = sidecar.with_name("sidecar.civitai.info")
    info.write_text('{"trainedWords": ' + nested + "}")
    client = await start(make_client, loras=tmp_path / "loras")

    result = await scan(client)

    assert result["counts"]["models_created"] == 3
    found = problems(result)
    assert "nested deeper than 64 levels" in found[str(deep_header)]
    assert "nested deeper than 64 levels" in found[str(info)]
    assert (await model(client, sha256_of(in_string)))["meta_json"]["file_metadata"] == {
        "freq": nested  # kept as the string the file holds
    }
    assert "civitai" not in (await model(client, sha256_of(sidecar)))["meta_json"]
    page = await client.get("/api/models", params={"q": "sidecar"})
    assert page.status == 200


async def test_lone_surrogates_in_a_header_or_sidecar_are_replaced_and_the_scan_goes_on(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """kohya writes `ss_tag_frequency` with json.dumps, which escapes the lone surrogates
    Python holds for the bytes of a dataset folder named in Latin-1 (`\\udce9`); JSON
    escapes in sidecars can hold them too. They are no Unicode: SQLite refused them and one
    such file failed every scan of the library. They become U+FFFD, as in stage 1."""
    frequency = json.dumps({"5_caf\udce9": {"caf\udce9 au lait": 3}})  # as kohya writes it
    lora = write_safetensors(
        tmp_path / "loras" / "latte.safetensors", kohya_lora_metadata(ss_tag_frequency=frequency)
    )
    record = lora_manager_metadata(lora, tags=["caf\udce9", "latte"])
    record["base_model"] = "SD 1.5"
    lora.with_name("latte.metadata.json").write_text(json.dumps(record, indent=2))
    info = civitai_version(trained_words=["caf\ud83d au lait"])
    lora.with_name("latte.civitai.info").write_text(json.dumps(info, indent=4))
    other = write_safetensors(tmp_path / "loras" / "other.safetensors", {"k": "v"})
    client = await start(make_client, loras=tmp_path / "loras")

    result = await scan(client)

    assert result["counts"]["models_created"] == 2
    meta = (await model(client, sha256_of(lora)))["meta_json"]
    assert meta["file_metadata"]["ss_tag_frequency"] == {"5_caf\ufffd": {"caf\ufffd au lait": 3}}
    assert meta["trigger_words"] == ["caf\ufffd au lait"]
    assert [t["name"] for t in (await model(client, sha256_of(lora)))["tags"]] == [
        "caf\ufffd", "latte"
    ]  # fmt: skip
    assert (await model(client, sha256_of(other)))["meta_json"] == {"file_metadata": {"k": "v"}}
    page = await client.get("/api/models", params={"q": "latte"})
    assert page.status == 200
    assert [m["name"] for m in (await page.json())["models"]] == ["latte"]


async def test_a_broken_preview_is_reported_and_the_others_added(
    make_client: MakeClient, tmp_path: Path
) -> None:
    path = write_safetensors(tmp_path / "loras" / "cat.safetensors")
    path.with_name("cat.preview.png").write_bytes(b"not a png")
    write_preview(path, ".jpg")
    client = await start(make_client, loras=tmp_path / "loras")

    result = await scan(client)

    reason = problems(result)[str(path.with_name("cat.preview.png"))]
    assert reason.startswith("example image not added")
    assert len((await model(client, sha256_of(path)))["images"]) == 1


@pytest.mark.parametrize("suffix", [".ckpt", ".pt", ".pth", ".bin"])
async def test_pickles_are_hashed_and_never_loaded(
    make_client: MakeClient, tmp_path: Path, suffix: str
) -> None:
    marker = tmp_path / "unpickled"
    path = write_booby_trapped_pickle(tmp_path / "checkpoints" / f"old{suffix}", marker)
    client = await start(make_client, checkpoints=tmp_path / "checkpoints")

    with files_opened() as opened:
        result = await scan(client)

    assert not marker.exists()
    assert not [p for p in opened if p.startswith("pickle:")]
    assert result["counts"]["models_created"] == 1
    assert (await model(client, sha256_of(path)))["meta_json"] == {}
