"""Model roots: the `model_roots` setting, a ComfyUI extra_model_paths.yaml, start-up checks,
and which root's type a file takes."""

from __future__ import annotations

from pathlib import Path

import pytest

from modelshelf.config import load_settings
from modelshelf.folders.changed import look_at
from modelshelf.folders.roots import (
    NOT_ROOTS,
    ModelRoots,
    Root,
    RootsError,
    gather_roots,
    read_comfyui_paths,
)
from modelshelf.folders.walk import Walk
from tests.model_folders import a1111_tree, comfyui_tree, write_extra_model_paths


def roots_of(yaml_text: str, tmp_path: Path) -> list[tuple[str, str]]:
    path = tmp_path / "comfy" / "extra_model_paths.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml_text)
    return [(r.type, str(r.path)) for r in read_comfyui_paths(path)]


def test_every_section_of_a_real_extra_model_paths_yaml_gives_its_roots_in_order(
    tmp_path: Path,
) -> None:
    a1111, comfy, shared = tmp_path / "sd-webui", tmp_path / "ComfyUI", tmp_path / "shared"
    path = write_extra_model_paths(
        tmp_path / "extra.yaml", a1111=a1111, comfyui=comfy, shared=shared
    )

    roots = [(r.type, r.path) for r in read_comfyui_paths(path)]

    assert roots == [
        ("checkpoints", a1111 / "models/Stable-diffusion"),
        ("vae", a1111 / "models/VAE"),
        ("loras", a1111 / "models/Lora"),
        ("loras", a1111 / "models/LyCORIS"),
        ("upscale_models", a1111 / "models/ESRGAN"),
        ("upscale_models", a1111 / "models/RealESRGAN"),
        ("embeddings", a1111 / "embeddings"),
        ("hypernetworks", a1111 / "models/hypernetworks"),
        ("controlnet", a1111 / "models/ControlNet"),
        ("checkpoints", comfy / "models/checkpoints"),
        ("clip_vision", comfy / "models/clip_vision"),
        ("loras", comfy / "models/loras"),
        ("loras", shared / "absolute_loras"),
    ]


@pytest.mark.parametrize("key", sorted(NOT_ROOTS))
def test_keys_that_name_no_model_folder_are_not_roots(tmp_path: Path, key: str) -> None:
    text = f"s:\n  base_path: /base\n  {key}: x\n  loras: l\n"
    if key == "base_path":
        text = "s:\n  base_path: /base\n  loras: l\n"
    assert roots_of(text, tmp_path) == [("loras", "/base/l")]


def test_the_is_default_flag_of_comfyui_desktop_is_not_a_root(tmp_path: Path) -> None:
    text = "desktop:\n  is_default: true\n  base_path: /d\n  download_model_base: models\n"
    assert roots_of(text + "  vae: models/vae\n", tmp_path) == [("vae", "/d/models/vae")]


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("s:\n  base_path: /b\n  loras: rel\n", [("loras", "/b/rel")]),
        ("s:\n  base_path: /b\n  loras: /abs/l\n", [("loras", "/abs/l")]),
        ("s:\n  base_path: up/base\n  loras: l\n", [("loras", "{yaml}/up/base/l")]),
        ("s:\n  loras: no/base\n", [("loras", "{yaml}/no/base")]),
        ("s:\n  base_path: /b/\n  loras: models/loras/\n", [("loras", "/b/models/loras")]),
        ("s:\n  base_path: /b\n  loras: ../outside\n", [("loras", "/outside")]),
        (
            "s:\n  base_path: /b\n  loras: |\n    one\n\n    two  \n",
            [("loras", "/b/one"), ("loras", "/b/two")],
        ),
        ("s:\n  base_path: /b\n  loras: [one, two]\n", [("loras", "/b/one"), ("loras", "/b/two")]),
        ("s:\n  base_path: /b\n  'My LoRAs': x\n", [("My LoRAs", "/b/x")]),
        ("s:\n  base_path: /b\n  vae:\n  loras: l\n", [("loras", "/b/l")]),
        ("empty:\nfull:\n  base_path: /b\n  vae: v\n", [("vae", "/b/v")]),
    ],
    ids=[
        "relative-to-base",
        "absolute-value",
        "relative-base",
        "no-base",
        "trailing-slashes",
        "dot-dot",
        "multi-line",
        "yaml-list",
        "type-as-written",
        "empty-value",
        "empty-section",
    ],
)
def test_folders_are_relative_to_base_path_unless_absolute(
    tmp_path: Path, yaml_text: str, expected: list[tuple[str, str]]
) -> None:
    folder = str(tmp_path / "comfy")
    wanted = [(kind, path.format(yaml=folder)) for kind, path in expected]
    assert roots_of(yaml_text, tmp_path) == wanted


def test_base_path_expands_the_home_folder_and_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MODELS_DISK", "/mnt/disk")
    text = "a:\n  base_path: ~/sd\n  loras: l\nb:\n  base_path: $MODELS_DISK/comfy\n  vae: v\n"
    assert roots_of(text, tmp_path) == [
        ("loras", f"{tmp_path}/home/sd/l"),
        ("vae", "/mnt/disk/comfy/v"),
    ]


@pytest.mark.parametrize("text", ["", "# every line commented\n#a1111:\n#  base_path: x\n"])
def test_an_empty_yaml_names_no_roots(tmp_path: Path, text: str) -> None:
    assert roots_of(text, tmp_path) == []


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("a1111:\n  base_path: /x\n loras: bad-indent\n", r"not valid YAML.*line 3"),
        ("a1111: [base_path, loras]\n", r"section 'a1111' must be a mapping, not a list"),
        ("- /models/loras\n", r"must be a mapping of sections, not a list"),
        ("a1111:\n  base_path: [/x]\n", r"a1111\.base_path must be a string"),
        ("a1111:\n  loras: 5\n", r"a1111\.loras must be a folder or folders, not int"),
        ("a1111:\n  loras: {x: y}\n", r"a1111\.loras must be a folder or folders"),
        ("a1111:\n  loras: 'unclosed\n", r"not valid YAML"),
    ],
)
def test_a_malformed_yaml_is_a_clear_error_naming_the_file(
    tmp_path: Path, text: str, says: str
) -> None:
    with pytest.raises(RootsError, match=says) as caught:
        roots_of(text, tmp_path)
    assert "extra_model_paths.yaml" in str(caught.value)


def test_a_yaml_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "extra_model_paths.yaml"
    path.write_bytes(b"a:\n  base_path: /caf\xe9\n")
    with pytest.raises(RootsError, match=r"extra_model_paths\.yaml is not UTF-8"):
        read_comfyui_paths(path)


def test_roots_from_both_settings_model_roots_first_duplicates_once(tmp_path: Path) -> None:
    comfy = comfyui_tree(tmp_path / "ComfyUI")
    a1111 = a1111_tree(tmp_path / "sd")
    yaml_path = write_extra_model_paths(
        tmp_path / "extra.yaml", a1111=a1111.base, comfyui=comfy.base, shared=tmp_path / "s"
    )
    own = {"loras": [comfy.folders["loras"], tmp_path / "mine"], "vae": [a1111.folders["vae"]]}

    roots = gather_roots(own, yaml_path)

    listed = [(r.type, r.path) for r in roots.roots]
    assert listed[:3] == [
        ("loras", comfy.folders["loras"]),
        ("loras", tmp_path / "mine"),
        ("vae", a1111.folders["vae"]),
    ]
    assert listed.count(("loras", comfy.folders["loras"])) == 1
    assert listed.count(("vae", a1111.folders["vae"])) == 1
    assert roots.types[:3] == ["loras", "vae", "checkpoints"]


def test_a_root_that_does_not_exist_is_a_warning_and_stays_a_root(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    roots = gather_roots(
        {"loras": [tmp_path / "gone"], "vae": [tmp_path / "a-file"], "sd": [tmp_path]}, None
    )
    assert [r.type for r in roots.roots] == ["loras", "vae", "sd"]
    assert roots.warnings == (
        f"model root {tmp_path / 'gone'} (loras) does not exist",
        f"model root {tmp_path / 'a-file'} (vae) is not a folder",
    )


# The a111 section of ComfyUI's extra_model_paths.yaml.example, as it comes.
STOCK_A111 = """
a111:
    base_path: path/to/stable-diffusion-webui/

    checkpoints: models/Stable-diffusion
    configs: models/Stable-diffusion
    vae: models/VAE
    loras: |
         models/Lora
         models/LyCORIS
    upscale_models: |
                  models/ESRGAN
                  models/RealESRGAN
                  models/SwinIR
    embeddings: embeddings
    hypernetworks: models/hypernetworks
    controlnet: models/ControlNet
"""


def test_roots_under_a_base_path_that_does_not_exist_are_one_warning(tmp_path: Path) -> None:
    yaml_path = tmp_path / "extra_model_paths.yaml"
    yaml_path.write_text(STOCK_A111)
    roots = gather_roots({"vae": [tmp_path / "gone"]}, yaml_path)
    assert len(roots.roots) == 11 and len(roots.missing) == 11  # each stays a root
    base = tmp_path / "path"  # the highest folder that is not there
    assert roots.warnings == (
        f"model root {tmp_path / 'gone'} (vae) does not exist",
        f"folder {base} does not exist, nor the 10 model roots under it (checkpoints, vae,"
        " loras, upscale_models, embeddings, hypernetworks, controlnet)",
    )
    # A scan of some types only is warned about its own.
    assert roots.only(["loras"]).warnings == (
        f"folder {base} does not exist, nor the 2 model roots under it (loras)",
    )
    assert roots.only(["embeddings"]).warnings == (
        f"model root {tmp_path / 'path/to/stable-diffusion-webui/embeddings'} (embeddings)"
        " does not exist",
    )


def test_a_missing_comfyui_yaml_is_a_warning_not_an_error(tmp_path: Path) -> None:
    roots = gather_roots({}, tmp_path / "nowhere.yaml")
    assert roots.roots == ()
    assert roots.warnings == (
        f"ComfyUI model paths file {tmp_path / 'nowhere.yaml'} does not exist",
    )


def test_roots_come_from_the_settings_files_and_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    comfy = comfyui_tree(tmp_path / "ComfyUI")
    yaml_path = write_extra_model_paths(
        tmp_path / "extra.yaml", a1111=tmp_path / "sd", comfyui=comfy.base, shared=tmp_path / "s"
    )
    config = tmp_path / "config"
    config.mkdir()
    (config / "site.toml").write_text('[model_roots]\nloras = ["ComfyUI/models/loras"]\n')
    settings = load_settings(
        environ={"MODELSHELF_COMFYUI_MODEL_PATHS": str(yaml_path)}, config_dir=config
    )

    roots = gather_roots(settings.model_roots, settings.comfyui_model_paths)

    assert roots.roots[0] == Root(comfy.folders["loras"], "loras")
    assert Root(comfy.folders["checkpoints"], "checkpoints") in roots.roots


@pytest.mark.parametrize(
    ("listed", "file", "expected"),
    [
        ([("checkpoints", "/m/ckpt"), ("loras", "/m/ckpt/loras")], "/m/ckpt/loras/a/x.pt", "loras"),
        ([("loras", "/m/ckpt/loras"), ("checkpoints", "/m/ckpt")], "/m/ckpt/loras/x.pt", "loras"),
        ([("checkpoints", "/m/ckpt"), ("loras", "/m/ckpt/loras")], "/m/ckpt/x.pt", "checkpoints"),
        ([("checkpoints", "/m/sd"), ("sdxl", "/m/sd")], "/m/sd/x.pt", "checkpoints"),
        ([("sdxl", "/m/sd"), ("checkpoints", "/m/sd")], "/m/sd/x.pt", "sdxl"),
        ([("checkpoints", "/m/ckpt")], "/m/ckpt-other/x.pt", None),
        ([("checkpoints", "/m/ckpt")], "/elsewhere/x.pt", None),
    ],
    ids=[
        "nested-deeper",
        "nested-listed-first",
        "outer",
        "same-folder-first",
        "same-folder-order",
        "prefix-not-parent",
        "outside",
    ],
)
def test_a_file_takes_the_type_of_the_deepest_root_ties_to_the_first_listed(
    listed: list[tuple[str, str]], file: str, expected: str | None
) -> None:
    roots = ModelRoots(tuple(Root(Path(path), kind) for kind, path in listed))
    assert roots.type_of(Path(file)) == expected


def test_a1111_configs_beside_checkpoints_leave_them_checkpoints(tmp_path: Path) -> None:
    a1111 = a1111_tree(tmp_path / "sd")
    yaml_path = write_extra_model_paths(
        tmp_path / "extra.yaml", a1111=a1111.base, comfyui=tmp_path / "c", shared=tmp_path / "s"
    )
    roots = gather_roots({}, yaml_path)
    model = a1111.folders["checkpoints"] / "sd_xl_base_1.0.safetensors"
    assert roots.type_of(model) == "checkpoints"
    assert "configs" not in roots.types


def test_only_keeps_the_roots_of_the_given_types() -> None:
    roots = ModelRoots((Root(Path("/a"), "loras"), Root(Path("/b"), "vae")), ("w",))
    assert roots.only(["vae"]) == ModelRoots((Root(Path("/b"), "vae"),), ("w",))


def test_a_path_reached_through_a_symlink_into_a_root_is_told_apart(tmp_path: Path) -> None:
    """What a watcher may report by a second path: a scan finds those files by their real
    path only. A root that is itself a symlink, or a link leading out of every root, is the
    only way to its files and counts as real."""
    comfy, a1111, outside = tmp_path / "comfy", tmp_path / "a1111", tmp_path / "outside"
    for folder in (comfy / "sub", a1111, outside):
        folder.mkdir(parents=True)
    (a1111 / "to_comfy").symlink_to(comfy)
    (a1111 / "to_outside").symlink_to(outside)
    (tmp_path / "linked_root").symlink_to(comfy)
    roots = ModelRoots(
        (Root(a1111, "loras"), Root(comfy, "loras"), Root(tmp_path / "linked_root", "vae"))
    )

    assert roots.reached_through_link(a1111 / "to_comfy" / "m.safetensors")
    assert roots.reached_through_link(a1111 / "to_comfy" / "sub" / "m.safetensors")
    assert not roots.reached_through_link(comfy / "sub" / "m.safetensors")
    assert not roots.reached_through_link(a1111 / "m.safetensors")
    assert not roots.reached_through_link(a1111 / "to_outside" / "m.safetensors")
    assert not roots.reached_through_link(tmp_path / "linked_root" / "sub" / "m.safetensors")


def test_a_path_reached_through_a_symlink_into_a_root_is_walked_by_its_real_path(
    tmp_path: Path,
) -> None:
    """What a watcher reports by a link's path is, for the scan, the file a walk finds: by
    the path of the first root listed whose folder holds it, links resolved (a root that is a
    link to one listed before it is that one: its folder is walked once, there)."""
    comfy, a1111 = tmp_path / "comfy", tmp_path / "a1111"
    (comfy / "sub").mkdir(parents=True)
    a1111.mkdir()
    (a1111 / "to_comfy").symlink_to(comfy)
    (comfy / "sub" / "loop").symlink_to(comfy)
    (tmp_path / "linked_root").symlink_to(comfy)
    roots = ModelRoots(
        (
            Root(a1111, "loras"),
            Root(comfy, "loras"),
            Root(comfy / "sub", "vae"),
            Root(tmp_path / "linked_root", "vae"),
        )
    )

    assert roots.walked_path(a1111 / "to_comfy" / "m.pt") == comfy / "m.pt"
    assert roots.walked_path(a1111 / "to_comfy" / "sub" / "m.pt") == comfy / "sub" / "m.pt"
    assert roots.walked_path(comfy / "sub" / "loop" / "sub" / "m.pt") == comfy / "sub" / "m.pt"
    assert roots.walked_path(a1111 / "m.pt") == a1111 / "m.pt"
    assert roots.walked_path(tmp_path / "linked_root" / "m.pt") == comfy / "m.pt"
    first_a_link = ModelRoots((Root(tmp_path / "linked_root", "vae"), Root(comfy, "loras")))
    assert first_a_link.walked_path(comfy / "m.pt") == tmp_path / "linked_root" / "m.pt"
    (comfy / "m.pt").write_bytes(b"model")
    walked = [found.path for found in Walk(first_a_link)]
    assert walked == [tmp_path / "linked_root" / "m.pt"]


def test_a_change_reported_through_a_linked_folder_is_looked_at_by_its_real_path(
    tmp_path: Path,
) -> None:
    """inotify names a change in a folder by whichever path to it was watched last: a new
    model, or one gone, reported through a link into a root is one at its real path."""
    comfy, a1111 = tmp_path / "comfy", tmp_path / "a1111"
    comfy.mkdir()
    a1111.mkdir()
    (comfy / "a1111").symlink_to(a1111)
    (a1111 / "new.pt").write_bytes(b"model")
    roots = ModelRoots((Root(a1111, "embeddings"), Root(comfy, "embeddings")))

    changed = look_at(roots, [str(comfy / "a1111" / "new.pt"), str(comfy / "a1111" / "gone.pt")])

    assert [(found.path, found.type) for found in changed.found] == [
        (a1111 / "new.pt", "embeddings")
    ]
    assert changed.gone == [str(a1111 / "gone.pt")]


def test_a_change_in_a_root_reached_through_a_link_takes_the_type_a_walk_gives(
    tmp_path: Path,
) -> None:
    """Every model under one folder named as checkpoints, and ComfyUI's models folder a link
    to it, its loras named through the link: a walk gives the files in that loras folder the
    type loras (it knows folders by identity), and a change there is a lora too."""
    everything = tmp_path / "data" / "models"
    (everything / "loras" / "new").mkdir(parents=True)
    (everything / "loras" / "cat.ckpt").write_bytes(b"model")
    (everything / "loras" / "new" / "dog.ckpt").write_bytes(b"model")
    (tmp_path / "ComfyUI").mkdir()
    (tmp_path / "ComfyUI" / "models").symlink_to(everything)
    roots = ModelRoots(
        (
            Root(everything, "checkpoints"),
            Root(tmp_path / "ComfyUI" / "models" / "loras", "loras"),
        )
    )
    walked = {found.path: found.type for found in Walk(roots)}
    assert set(walked.values()) == {"loras"}

    changed = look_at(roots, [str(everything / "loras" / "cat.ckpt")])

    assert [(found.path, found.type) for found in changed.found] == [
        (everything / "loras" / "cat.ckpt", "loras")
    ]
