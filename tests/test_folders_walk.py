"""Walking the model roots: which files are models, their type and stat, their companions,
symlinks and loops, and every bad entry reported with its reason instead of raised."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from modelshelf.folders.problems import Problem
from modelshelf.folders.roots import Root, gather_roots
from modelshelf.folders.walk import FoundFile, Walk
from tests.model_folders import (
    a1111_tree,
    comfyui_tree,
    write_a1111_json,
    write_civitai_info,
    write_extra_model_paths,
    write_lora_manager,
    write_preview,
    write_safetensors,
)
from tests.server import drop_permission_bypass

REPO = Path(__file__).resolve().parents[1]


def walk(*roots: tuple[str, Path]) -> tuple[dict[Path, FoundFile], list[Problem]]:
    walker = Walk(Root(path, kind) for kind, path in roots)
    found: dict[Path, FoundFile] = {}
    for file in walker:
        assert file.path not in found, f"{file.path} yielded twice"
        found[file.path] = file
    return found, walker.problems


def touch(path: Path, content: bytes = b"weights") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def test_a_comfyui_tree_gives_every_model_with_its_type_and_stat(tmp_path: Path) -> None:
    tree = comfyui_tree(tmp_path / "ComfyUI")
    models = [
        tree.add("checkpoints", "sd_xl_base_1.0.safetensors"),
        tree.add("checkpoints", "sdxl/juggernaut.safetensors"),
        tree.add("loras", "styles/anime/flat.safetensors"),
        tree.add("vae", "sdxl_vae.safetensors"),
    ]
    roots = [(kind, tree.folders[kind]) for kind in ("checkpoints", "loras", "vae", "embeddings")]

    found, problems = walk(*roots)

    assert problems == []
    assert sorted(found) == sorted(models)
    types = ["checkpoints", "checkpoints", "loras", "vae"]
    for path, kind in zip(models, types, strict=True):
        st = path.stat()
        assert found[path] == FoundFile(
            path, kind, st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, {}
        )


def test_an_a1111_tree_read_through_its_extra_model_paths_yaml(tmp_path: Path) -> None:
    tree = a1111_tree(tmp_path / "sd-webui")
    ckpt = tree.add("checkpoints", "v1-5-pruned-emaonly.safetensors")
    config = touch(tree.folders["checkpoints"] / "v1-5-pruned-emaonly.yaml", b"model: {}")
    lora = tree.add("loras", "cat.safetensors")
    lycoris = tree.add("lycoris", "loha/dog.safetensors")
    embedding = touch(tree.folders["embeddings"] / "bad_hands.pt")
    yaml_path = write_extra_model_paths(
        tmp_path / "extra.yaml", a1111=tree.base, comfyui=tmp_path / "c", shared=tmp_path / "s"
    )

    roots = gather_roots({}, yaml_path)
    walker = Walk(roots)
    types = {f.path: f.type for f in walker}

    assert types == {ckpt: "checkpoints", lora: "loras", lycoris: "loras", embedding: "embeddings"}
    assert config not in types
    # Roots that do not exist are warned about, once: not again as problems of the walk.
    esrgan = str(tree.base / "models/ESRGAN")
    assert any(esrgan in warning for warning in roots.warnings)
    assert esrgan not in {p.path for p in walker.problems}


@pytest.mark.parametrize(
    "name",
    ["a.safetensors", "b.SAFETENSORS", "c.sft", "d.ckpt", "e.Ckpt", "f.pt", "g.PTH", "h.bin",
     "i.gguf", "j.k.l.safetensors"],
)  # fmt: skip
def test_model_extensions_count_in_any_case(tmp_path: Path, name: str) -> None:
    path = touch(tmp_path / "root" / name)
    found, _ = walk(("loras", tmp_path / "root"))
    assert list(found) == [path]


@pytest.mark.parametrize(
    "name",
    [
        "readme.txt",
        "model.onnx",
        "model.yaml",
        "cat.png",
        "safetensors",
        ".safetensors",
        ".hidden.safetensors",
        "x.safetensors.part",
        "x.safetensors.tmp",
        "x.safetensors.crdownload",
        "x.safetensors.download",
        "x.safetensors.PART",
        "x.Crdownload",
        ".cache/x.safetensors",
        ".git/objects/x.safetensors",
        "sub/.trash/x.safetensors",
    ],
)
def test_hidden_files_folders_and_unfinished_downloads_are_ignored_silently(
    tmp_path: Path, name: str
) -> None:
    touch(tmp_path / "root" / name)
    assert walk(("loras", tmp_path / "root")) == ({}, [])


def test_a_folder_named_like_a_download_is_still_walked(tmp_path: Path) -> None:
    path = touch(tmp_path / "root" / "from.download" / "x.safetensors")
    found, _ = walk(("loras", tmp_path / "root"))
    assert list(found) == [path]


@pytest.mark.parametrize("order", ["outer-first", "inner-first"])
def test_loras_nested_inside_checkpoints_are_loras_and_walked_once(
    tmp_path: Path, order: str
) -> None:
    checkpoints = tmp_path / "models" / "checkpoints"
    ckpt = touch(checkpoints / "base.safetensors")
    lora = touch(checkpoints / "loras" / "cat.safetensors")
    deep = touch(checkpoints / "loras" / "animals" / "dog.safetensors")
    roots = [("checkpoints", checkpoints), ("loras", checkpoints / "loras")]

    found, problems = walk(*(roots if order == "outer-first" else roots[::-1]))

    assert problems == []
    assert {p: f.type for p, f in found.items()} == {
        ckpt: "checkpoints",
        lora: "loras",
        deep: "loras",
    }


@pytest.mark.parametrize(
    ("listed", "expected"), [(["checkpoints", "configs"], "checkpoints"), (["sd", "ckpt"], "sd")]
)
def test_a_folder_that_is_the_root_of_two_types_is_walked_once_with_the_first_type(
    tmp_path: Path, listed: list[str], expected: str
) -> None:
    folder = tmp_path / "Stable-diffusion"
    model = touch(folder / "v1-5.safetensors")
    found, problems = walk(*((kind, folder) for kind in listed))
    assert problems == []
    assert {p: f.type for p, f in found.items()} == {model: expected}


def test_symlinked_files_and_folders_are_followed(tmp_path: Path) -> None:
    store = tmp_path / "big-disk"
    target = touch(store / "flux1-dev.safetensors", b"x" * 1000)
    touch(store / "shared-loras" / "cat.safetensors")
    root = tmp_path / "models"
    (root / "checkpoints").mkdir(parents=True)
    (root / "checkpoints" / "flux.safetensors").symlink_to(target)
    (root / "loras").symlink_to(store / "shared-loras")

    found, problems = walk(("checkpoints", root / "checkpoints"), ("loras", root / "loras"))

    assert problems == []
    link = found[root / "checkpoints" / "flux.safetensors"]
    assert (link.size, link.inode) == (1000, target.stat().st_ino)
    assert found[root / "loras" / "cat.safetensors"].type == "loras"


def test_a_symlink_loop_is_reported_and_never_followed_twice(tmp_path: Path) -> None:
    root = tmp_path / "loras"
    model = touch(root / "a" / "b" / "cat.safetensors")
    (root / "a" / "b" / "back-to-a").symlink_to(root / "a")
    (root / "a" / "b" / "to-root").symlink_to(root)
    (root / "self").symlink_to(root / "self")

    found, problems = walk(("loras", root))

    assert list(found) == [model]
    assert sorted(problems, key=lambda p: p.path) == [
        Problem(f"{root}/a/b/back-to-a", f"symlink loop: leads back to {root}/a"),
        Problem(f"{root}/a/b/to-root", f"symlink loop: leads back to {root}"),
        Problem(f"{root}/self", "symlink loop: the link leads back to itself"),
    ]


def test_a_folder_reached_by_a_real_path_and_a_symlink_is_walked_by_the_real_path(
    tmp_path: Path,
) -> None:
    root = tmp_path / "loras"
    (root / "0-shortcut").parent.mkdir(parents=True)
    (root / "0-shortcut").symlink_to(root / "z-real")  # listed before the real folder
    model = touch(root / "z-real" / "cat.safetensors")

    found, problems = walk(("loras", root))

    assert list(found) == [model]
    assert problems == [
        Problem(f"{root}/0-shortcut", f"same folder as {root}/z-real, walked there")
    ]


def test_a_broken_symlink_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "loras"
    root.mkdir()
    (root / "gone.safetensors").symlink_to(tmp_path / "deleted.safetensors")
    (root / ".hidden-gone").symlink_to(tmp_path / "deleted")
    (root / "gone.safetensors.part").symlink_to(tmp_path / "deleted")
    found, problems = walk(("loras", root))
    assert found == {}
    assert problems == [
        Problem(f"{root}/gone.safetensors", "broken symlink: its target does not exist")
    ]


def test_names_that_are_not_utf8_are_reported_and_the_rest_walked(tmp_path: Path) -> None:
    root = tmp_path / "loras"
    good = touch(root / "café.safetensors")
    raw = os.fsencode(root)
    with open(raw + b"/caf\xe9.safetensors", "wb") as handle:
        handle.write(b"latin-1 name")
    os.mkdir(raw + b"/dossier-\xe9t\xe9")
    with open(raw + b"/dossier-\xe9t\xe9/inside.safetensors", "wb") as handle:
        handle.write(b"under a latin-1 folder")

    found, problems = walk(("loras", root))

    assert list(found) == [good]
    assert sorted(problems, key=lambda p: p.path) == [
        Problem(f"{root}/caf\\xe9.safetensors", "name is not valid UTF-8"),
        Problem(f"{root}/dossier-\\xe9t\\xe9", "name is not valid UTF-8"),
    ]
    json.dumps([p.path for p in problems]).encode("utf-8")  # printable everywhere


def test_a_model_name_that_is_not_a_regular_file_is_reported(tmp_path: Path) -> None:
    root = tmp_path / "loras"
    root.mkdir()
    os.mkfifo(root / "pipe.safetensors")
    found, problems = walk(("loras", root))
    assert found == {}
    assert problems == [Problem(f"{root}/pipe.safetensors", "not a regular file")]


def test_roots_that_are_missing_or_not_folders_are_reported(tmp_path: Path) -> None:
    touch(tmp_path / "file")
    found, problems = walk(("loras", tmp_path / "gone"), ("vae", tmp_path / "file"))
    assert found == {}
    assert problems == [
        Problem(str(tmp_path / "gone"), "model root (loras) does not exist"),
        Problem(str(tmp_path / "file"), "model root (vae) is not a folder"),
    ]


def test_companions_are_the_sidecars_and_previews_of_the_same_stem(tmp_path: Path) -> None:
    root = tmp_path / "loras"
    cat = write_safetensors(root / "cat.safetensors")
    cat_ckpt = touch(root / "cat.ckpt")
    dog = write_safetensors(root / "dog.safetensors")
    sidecars = [
        write_civitai_info(cat),
        write_lora_manager(cat),
        write_a1111_json(cat),
        write_preview(cat, ".preview.png"),
        write_preview(cat, ".webp"),
        write_preview(cat, ".JPG"),
    ]
    touch(root / "cat.txt")
    touch(root / ".cat.png")
    touch(root / "cat.png.part")
    touch(root / "cats.png")

    found, _ = walk(("loras", root))

    expected = {p.name: (p.stat().st_size, p.stat().st_mtime_ns) for p in sidecars}
    assert found[cat].companions == expected
    assert found[cat_ckpt].companions == expected  # same stem, same companions
    assert found[dog].companions == {}


def test_files_are_yielded_folder_by_folder_in_name_order(tmp_path: Path) -> None:
    root = tmp_path / "loras"
    names = ["b/z.pt", "a.pt", "b/a.pt", "c.pt", "b/c/d.pt", "B.pt"]
    for name in names:
        touch(root / name)
    found, _ = walk(("loras", root))
    assert [str(p.relative_to(root)) for p in found] == ["B.pt", "a.pt", "c.pt", "b/a.pt",
                                                        "b/z.pt", "b/c/d.pt"]  # fmt: skip


# --- permissions: root reads everything, so the walk runs in a child process without the ---------
# --- capabilities that bypass file permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) ---------

CHILD = """
import json, sys
from pathlib import Path
from modelshelf.folders.roots import Root
from modelshelf.folders.walk import Walk
walker = Walk([Root(Path(sys.argv[1]), "loras")])
files = [str(f.path) for f in walker]
print(json.dumps({"files": files, "problems": [[p.path, p.reason] for p in walker.problems]}))
"""


def walk_without_privilege(root: Path) -> dict[str, list[object]]:
    """Walk `root` in a child process that cannot bypass permissions."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(root)],
        preexec_fn=drop_permission_bypass,
        env={"PYTHONPATH": str(REPO / "src"), "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, list[object]] = json.loads(done.stdout)
    return result


def test_unreadable_folders_and_entries_are_reported_with_permission_denied(
    tmp_path: Path,
) -> None:
    root = tmp_path / "loras"
    readable = touch(root / "ok" / "cat.safetensors")
    touch(root / "locked" / "secret.safetensors")
    touch(root / "listable-only" / "no-stat.safetensors")
    (root / "locked").chmod(0o000)
    (root / "listable-only").chmod(0o444)  # names can be listed, not stat'ed
    try:
        result = walk_without_privilege(root)
    finally:
        (root / "locked").chmod(0o755)
        (root / "listable-only").chmod(0o755)

    assert result["files"] == [str(readable)]
    assert result["problems"] == [
        [f"{root}/listable-only/no-stat.safetensors", "cannot read: permission denied"],
        [f"{root}/locked", "cannot list folder: permission denied"],
    ]
