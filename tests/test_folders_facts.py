"""What files say: safetensors headers (only the header is read), embedded thumbnails,
sidecars from the Civitai Helper, LoRA Manager and A1111, example images; pickles never
opened."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from modelshelf.folders.facts import (
    MAX_HEADER_BYTES,
    META_KEYS,
    FileFacts,
    Thumbnail,
    normalized_tags,
    read_facts,
    read_safetensors_header,
)
from modelshelf.folders.problems import Problem
from modelshelf.folders.roots import Root
from modelshelf.folders.walk import Walk
from tests.model_folders import (
    a1111_user_metadata,
    civitai_version,
    data_uri,
    files_opened,
    image_bytes,
    kohya_lora_metadata,
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


def bytes_read_by_this_process() -> int:
    """`rchar` of /proc/self/io: every byte this process has read so far, from any file."""
    with open("/proc/self/io") as handle:
        fields = dict(line.split(": ") for line in handle.read().splitlines())
    return int(fields["rchar"])


def test_the_header_metadata_is_kept_with_json_in_strings_decoded(tmp_path: Path) -> None:
    model = write_safetensors(tmp_path / "cat.safetensors", kohya_lora_metadata())

    facts = read_facts(model)

    metadata = facts.meta["file_metadata"]
    assert metadata["ss_tag_frequency"] == {"5_orange cat": {"orange cat": 12, "sitting": 7}}
    assert metadata["ss_dataset_dirs"] == {"5_orange cat": {"n_repeats": 5, "img_count": 12}}
    # Scalars stay the strings the file holds, as A1111 reads them.
    assert metadata["ss_network_dim"] == "32"
    assert metadata["ss_bucket_info"] == "null"
    assert metadata["ss_clip_skip"] == "None"
    assert set(metadata) == set(kohya_lora_metadata())
    assert facts.problems == ()
    json.dumps(facts.meta, allow_nan=False)  # storable as meta_json


@pytest.mark.parametrize(
    ("value", "kept"),
    [
        ('["a", "b"]', ["a", "b"]),
        ('  {"k": 1}', {"k": 1}),
        ("{not json", "{not json"),
        ('{"x": NaN}', '{"x": NaN}'),
        ("12", "12"),
        ("true", "true"),
        ("[" * 100 + "]" * 100, "[" * 100 + "]" * 100),  # deeper than meta_json keeps
        ("[" * 5000 + "]" * 5000, "[" * 5000 + "]" * 5000),  # deeper than Python parses
    ],
)
def test_only_objects_and_arrays_held_in_strings_are_decoded(
    tmp_path: Path, value: str, kept: object
) -> None:
    model = write_safetensors(tmp_path / "m.safetensors", {"key": value})
    assert read_facts(model).meta["file_metadata"] == {"key": kept}


def test_only_the_header_is_read(tmp_path: Path) -> None:
    model = write_safetensors(tmp_path / "big.safetensors", kohya_lora_metadata(), floats=2**21)
    header_length = int.from_bytes(model.read_bytes()[:8], "little")
    assert model.stat().st_size > 8 * 1024 * 1024

    before = bytes_read_by_this_process()
    with files_opened() as opened:
        facts = read_facts(model, companions=[])
    read = bytes_read_by_this_process() - before

    assert "file_metadata" in facts.meta
    assert opened == [str(model)]
    assert read <= 8 + header_length + 4096  # the 4 KiB are /proc/self/io itself


def test_an_embedded_thumbnail_becomes_an_image_and_leaves_the_metadata(tmp_path: Path) -> None:
    jpeg = image_bytes(".jpg")
    model = write_safetensors(tmp_path / "m.safetensors", modelspec_metadata(jpeg))

    facts = read_facts(model)

    assert facts.thumbnail == Thumbnail(jpeg, "image/jpeg")
    assert "modelspec.thumbnail" not in facts.meta["file_metadata"]
    assert facts.meta["file_metadata"]["modelspec.title"] == "Orange Cat"


@pytest.mark.parametrize(
    "uri",
    [
        "https://example.com/thumb.jpg",
        "data:image/jpeg;base64,@@not base64@@",
        "data:text/plain;base64,aGVsbG8=",
        "data:image/png,rawpixels",
        "data:image/png;base64,",
    ],
)
def test_a_thumbnail_that_is_not_an_image_data_uri_is_reported(tmp_path: Path, uri: str) -> None:
    model = write_safetensors(tmp_path / "m.safetensors", {"modelspec.thumbnail": uri})
    facts = read_facts(model)
    assert facts.thumbnail is None
    assert facts.problems == (Problem(str(model), "modelspec.thumbnail is not an image data URI"),)


def test_a_png_thumbnail_keeps_its_media_type(tmp_path: Path) -> None:
    png = image_bytes(".png")
    model = write_safetensors(
        tmp_path / "m.sft", {"modelspec.thumbnail": data_uri(png, "image/png")}
    )
    assert read_facts(model).thumbnail == Thumbnail(png, "image/png")


def test_a_header_over_100_mb_is_reported_never_read_and_the_file_still_found(
    tmp_path: Path,
) -> None:
    model = write_raw_header(tmp_path / "loras" / "huge.safetensors", MAX_HEADER_BYTES + 1, b"{}")

    before = bytes_read_by_this_process()
    facts = read_facts(model)
    read = bytes_read_by_this_process() - before
    found = [f.path for f in Walk([Root(tmp_path / "loras", "loras")])]

    assert facts.meta == {}
    assert facts.problems == (
        Problem(
            str(model),
            "safetensors header: header of 100000001 bytes is over the 100000000 limit",
        ),
    )
    assert read < 64 * 1024
    assert found == [model]


@pytest.mark.parametrize(
    ("declared", "body", "says"),
    [
        (None, b"{not json}", "header is not valid JSON"),
        (None, b"[1, 2]", "header is not a JSON object"),
        (None, b'{"__metadata__": {"x": NaN}}', "header is not valid JSON"),
        (None, b'{"__metadata__": "caf\xe9"}', "header is not valid JSON"),
        (4096, b"{}", "header says 4096 bytes but the file ends after 2"),
        (0, b"", "header is not valid JSON"),
        (None, b'{"deep": ' + b"[" * 100 + b"]" * 100 + b"}", "nested deeper than 64 levels"),
        (None, b'{"deep": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested deeper than 64 levels"),
    ],
    ids=[
        "not-json",
        "array",
        "nan",
        "not-utf8",
        "truncated",
        "empty",
        "deep",
        "deeper-than-python",
    ],
)
def test_a_malformed_header_is_reported_and_the_file_still_found(
    tmp_path: Path, declared: int | None, body: bytes, says: str
) -> None:
    length = len(body) if declared is None else declared
    model = write_raw_header(tmp_path / "loras" / "bad.safetensors", length, body)

    facts = read_facts(model)

    assert facts.meta == {}
    assert len(facts.problems) == 1 and says in facts.problems[0].reason
    assert [f.path for f in Walk([Root(tmp_path / "loras", "loras")])] == [model]


def test_a_file_too_short_for_a_header_is_reported(tmp_path: Path) -> None:
    model = tmp_path / "tiny.safetensors"
    model.write_bytes(b"\x01\x02")
    assert read_facts(model).problems == (
        Problem(
            str(model), "safetensors header: file is 2 bytes, too short for a safetensors header"
        ),
    )


@pytest.mark.parametrize(
    ("metadata_json", "problems"),
    [
        (b'{"w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}', 0),
        (b'{"__metadata__": ["a"]}', 1),
    ],
)
def test_a_header_without_a_metadata_object_fills_nothing(
    tmp_path: Path, metadata_json: bytes, problems: int
) -> None:
    model = write_raw_header(
        tmp_path / "m.safetensors", len(metadata_json), metadata_json, b"\0" * 4
    )
    facts = read_facts(model)
    assert facts.meta == {}
    assert len(facts.problems) == problems


def test_read_safetensors_header_gives_the_whole_header(tmp_path: Path) -> None:
    model = write_safetensors(tmp_path / "m.safetensors", {"a": "b"}, floats=4)
    header = read_safetensors_header(model)
    assert header["__metadata__"] == {"a": "b"}
    assert header["lora_unet_down.lora_down.weight"]["dtype"] == "F32"


@pytest.mark.parametrize("suffix", [".ckpt", ".pt", ".pth", ".bin"])
def test_pickles_are_never_opened_let_alone_loaded(tmp_path: Path, suffix: str) -> None:
    marker = tmp_path / "the-pickle-ran"
    model = write_booby_trapped_pickle(tmp_path / "loras" / f"old{suffix}", marker)
    write_preview(model, ".png")

    with files_opened() as opened:
        found = list(Walk([Root(tmp_path / "loras", "loras")]))
        facts = read_facts(model, found[0].companions)

    assert [f.path for f in found] == [model]
    assert not marker.exists()
    assert str(model) not in opened
    assert not [event for event in opened if event.startswith("pickle:")]
    assert facts.meta == {} and facts.problems == ()
    assert facts.preview_images == (model.with_suffix(".png"),)


def test_a_civitai_helper_info_file_fills_civitai_trigger_words_and_base_model(
    tmp_path: Path,
) -> None:
    model = write_safetensors(tmp_path / "cat.safetensors", kohya_lora_metadata())
    info = write_civitai_info(model)

    facts = read_facts(model)

    assert facts.meta["civitai"] == civitai_version()
    assert facts.meta["trigger_words"] == ["orange cat", "sitting"]
    assert facts.meta["base_model"] == "SDXL 1.0"  # Civitai says it better than the header
    assert facts.sources == {info.name: (info.stat().st_size, info.stat().st_mtime_ns)}


def test_an_empty_civitai_info_means_civitai_does_not_know_the_file(tmp_path: Path) -> None:
    model = write_safetensors(tmp_path / "mine.safetensors")
    info = write_civitai_info(model, {})
    facts = read_facts(model)
    assert facts.meta == {} and facts.problems == ()
    assert list(facts.sources) == [info.name]


def test_lora_manager_metadata_is_kept_and_its_tags_become_tags(tmp_path: Path) -> None:
    model = write_safetensors(tmp_path / "cat.safetensors")
    write_lora_manager(model)

    facts = read_facts(model)

    assert facts.meta["lora_manager"] == lora_manager_metadata(model)
    assert facts.tags == ("animal", "cat", "style")
    assert facts.meta["trigger_words"] == ["orange cat"]
    assert facts.meta["base_model"] == "SDXL 1.0"


@pytest.mark.parametrize(
    ("info", "record", "expected"),
    [
        ({"trainedWords": [" a ", "", 5, "b"]}, None, ["a", "b"]),
        ({"trainedWords": []}, {"civitai": {"trainedWords": ["m"]}}, ["m"]),
        (None, {"civitai": {}, "trainedWords": ["own"]}, ["own"]),
        ({"trainedWords": "not a list"}, {"civitai": None}, None),
    ],
    ids=["civitai", "manager-copy", "manager-own", "none"],
)
def test_trigger_words_come_from_civitai_then_lora_manager(
    tmp_path: Path,
    info: dict[str, object] | None,
    record: dict[str, object] | None,
    expected: list[str] | None,
) -> None:
    model = write_safetensors(tmp_path / "cat.safetensors")
    if info is not None:
        write_civitai_info(model, info)
    if record is not None:
        write_lora_manager(model, record)
    assert read_facts(model).meta.get("trigger_words") == expected


def test_a1111_user_metadata_is_kept_under_its_own_key(tmp_path: Path) -> None:
    model = write_safetensors(tmp_path / "cat.safetensors")
    write_a1111_json(model)
    facts = read_facts(model)
    assert facts.meta["a1111"] == a1111_user_metadata()
    assert facts.meta["base_model"] == "SDXL 1.0"


def test_all_sources_together_fill_exactly_the_meta_keys(tmp_path: Path) -> None:
    model = write_safetensors(tmp_path / "cat.safetensors", kohya_lora_metadata())
    write_civitai_info(model)
    write_lora_manager(model)
    write_a1111_json(model)
    facts = read_facts(model)
    assert set(facts.meta) == set(META_KEYS)


@pytest.mark.parametrize(
    ("header", "sidecars", "expected"),
    [
        (kohya_lora_metadata(), {}, "SDXL 1.0"),
        (modelspec_metadata(), {}, "SDXL 1.0"),
        (kohya_lora_metadata(ss_base_model_version="sd_v2") | modelspec_metadata(), {}, "sd_v2"),
        (kohya_lora_metadata(ss_base_model_version=""), {}, None),
        ({}, {"a1111": {"sd version": "Unknown"}}, None),
        ({}, {"a1111": {"sd version": "SD1"}}, "SD 1.5"),
        (kohya_lora_metadata(), {"lora_manager": {"base_model": "Unknown"}}, "SDXL 1.0"),
        (kohya_lora_metadata(), {"lora_manager": {"base_model": "Illustrious"}}, "Illustrious"),
        ({}, {"civitai": {"baseModel": "Pony"}, "a1111": {"sd version": "SDXL"}}, "Pony"),
    ],
    ids=[
        "kohya",
        "modelspec",
        "kohya-unnamed-first",
        "empty",
        "a1111-unknown",
        "a1111",
        "manager-unknown",
        "manager",
        "civitai-first",
    ],
)
def test_base_model_comes_from_the_best_source_that_says_it(
    tmp_path: Path, header: dict[str, str], sidecars: dict[str, dict[str, str]], expected: str
) -> None:
    model = write_safetensors(tmp_path / "m.safetensors", header)
    writers = {
        "civitai": write_civitai_info,
        "lora_manager": write_lora_manager,
        "a1111": write_a1111_json,
    }
    for key, body in sidecars.items():
        writers[key](model, body)
    assert read_facts(model).meta.get("base_model") == expected


def test_example_images_come_in_the_contract_order(tmp_path: Path) -> None:
    model = write_safetensors(tmp_path / "cat.safetensors")
    order = [".preview.png", ".preview.jpg", ".preview.jpeg", ".preview.webp"]
    order += [".png", ".jpg", ".jpeg", ".webp"]
    for suffix in reversed(order):
        write_preview(model, suffix)
    write_preview(tmp_path / "cats.safetensors", ".png")
    write_preview(model, ".gif")
    (tmp_path / ".cat.png").write_bytes(b"hidden")

    facts = read_facts(model)

    assert [p.name for p in facts.preview_images] == [f"cat{s}" for s in order]


def test_companions_match_their_suffix_in_any_case(tmp_path: Path) -> None:
    model = write_safetensors(tmp_path / "cat.safetensors")
    write_preview(model, ".Preview.PNG")
    (tmp_path / "cat.CIVITAI.info").write_text(json.dumps(civitai_version()))
    facts = read_facts(model)
    assert [p.name for p in facts.preview_images] == ["cat.Preview.PNG"]
    assert "civitai" in facts.meta


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"trainedWords": NaN}', "not valid JSON"),
        (b'{"description": "caf\xe9"}', "not valid JSON"),
        (b'{"trainedWords": ' + b"[" * 100 + b"]" * 100 + b"}", "nested deeper than 64 levels"),
        (b'{"trainedWords": ' + b"[" * 5000 + b"]" * 5000 + b"}", "nested deeper than 64"),
    ],
)
def test_a_malformed_sidecar_is_reported_and_the_rest_still_read(
    tmp_path: Path, content: bytes, says: str
) -> None:
    model = write_safetensors(tmp_path / "cat.safetensors", kohya_lora_metadata())
    bad = tmp_path / "cat.civitai.info"
    bad.write_bytes(content)
    write_a1111_json(model)

    facts = read_facts(model)

    assert "civitai" not in facts.meta and "a1111" in facts.meta
    assert facts.meta["base_model"] == "SDXL 1.0"
    assert [(p.path, says in p.reason) for p in facts.problems] == [(str(bad), True)]
    assert bad.name in facts.sources  # not read again until it changes


def test_a_sidecar_over_16_mib_is_reported_and_not_read(tmp_path: Path) -> None:
    model = write_safetensors(tmp_path / "cat.safetensors")
    huge = tmp_path / "cat.metadata.json"
    with open(huge, "wb") as handle:
        handle.truncate(17 * 1024 * 1024)  # sparse: the test writes no 17 MiB
    before = bytes_read_by_this_process()
    facts = read_facts(model)
    assert bytes_read_by_this_process() - before < 64 * 1024
    assert facts.problems == (Problem(str(huge), "over 16 MiB: not read"),)


def test_a_utf8_bom_in_a_sidecar_is_accepted(tmp_path: Path) -> None:
    model = write_safetensors(tmp_path / "cat.safetensors")
    (tmp_path / "cat.json").write_bytes(b"\xef\xbb\xbf" + json.dumps({"notes": "n"}).encode())
    assert read_facts(model).meta == {"a1111": {"notes": "n"}}


def test_facts_sources_are_the_companions_the_walk_found(tmp_path: Path) -> None:
    model = write_safetensors(tmp_path / "loras" / "cat.safetensors", kohya_lora_metadata())
    write_civitai_info(model)
    write_lora_manager(model)
    write_a1111_json(model)
    write_preview(model, ".preview.png")
    write_preview(model, ".webp")

    [found] = list(Walk([Root(tmp_path / "loras", "loras")]))
    given = read_facts(model, found.companions)
    listed = read_facts(model)

    assert given.sources == found.companions == listed.sources
    assert given == listed


def test_a_companion_that_vanished_since_the_walk_is_skipped(tmp_path: Path) -> None:
    model = write_safetensors(tmp_path / "cat.safetensors")
    preview = write_preview(model, ".png")
    names = ["cat.png", "cat.civitai.info"]  # the info file is gone
    os.utime(preview, ns=(1, 2))
    facts = read_facts(model, names)
    assert facts.sources == {"cat.png": (preview.stat().st_size, 2)}
    assert facts.problems == ()


def test_file_facts_are_frozen(tmp_path: Path) -> None:
    facts = read_facts(write_safetensors(tmp_path / "m.safetensors"))
    assert isinstance(facts, FileFacts)
    with pytest.raises(AttributeError):
        facts.tags = ("x",)  # type: ignore[misc]


def test_sidecar_tags_are_kept_as_the_library_keeps_tag_names() -> None:
    assert normalized_tags([" Anime ", "anime", "Style ", "", "  ", 5]) == ("anime", "style")
