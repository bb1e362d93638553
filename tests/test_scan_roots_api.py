"""GET /api/scan/roots: the model folders a scan walks, as the settings name them now (both
`model_roots` and an `extra_model_paths.yaml`), each with its type and whether it is a folder
now, the types a scan can be limited to, and what is wrong with them; with none named, where
to name them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from modelshelf.domain.scan import NO_ROOTS
from tests.conftest import MakeClient, assert_error_body
from tests.model_folders import write_extra_model_paths


async def folders(client: Any) -> dict[str, Any]:
    response = await client.get("/api/scan/roots")
    assert response.status == 200
    body: dict[str, Any] = await response.json()
    return body


async def test_each_named_folder_is_listed_with_its_type_and_whether_it_is_there(
    make_client: MakeClient, tmp_path: Path
) -> None:
    loras = tmp_path / "loras"
    loras.mkdir()
    gone = tmp_path / "gone"
    client = await make_client(model_roots={"loras": [loras], "checkpoints": [gone]})

    body = await folders(client)

    assert body["roots"] == [
        {"path": str(loras), "type": "loras", "present": True},
        {"path": str(gone), "type": "checkpoints", "present": False},
    ]
    assert body["types"] == ["loras", "checkpoints"]
    assert body["warnings"] == [f"model root {gone} (checkpoints) does not exist"]


async def test_the_folders_of_an_extra_model_paths_yaml_follow_model_roots(
    make_client: MakeClient, tmp_path: Path
) -> None:
    mine = tmp_path / "mine"
    mine.mkdir()
    a1111, comfy = tmp_path / "sd-webui", tmp_path / "ComfyUI"
    (a1111 / "models" / "Lora").mkdir(parents=True)
    yaml_path = write_extra_model_paths(
        tmp_path / "extra_model_paths.yaml", a1111=a1111, comfyui=comfy, shared=tmp_path / "s"
    )
    client = await make_client(model_roots={"loras": [mine]}, comfyui_model_paths=yaml_path)

    body = await folders(client)

    listed = [(r["path"], r["type"], r["present"]) for r in body["roots"]]
    assert listed[:3] == [
        (str(mine), "loras", True),
        (str(a1111 / "models" / "Stable-diffusion"), "checkpoints", False),
        (str(a1111 / "models" / "VAE"), "vae", False),
    ]
    assert (str(a1111 / "models" / "Lora"), "loras", True) in listed
    # Each missing folder is warned about: by its path, or, under the ComfyUI folder that is
    # not there, by that folder once.
    missing = [Path(r["path"]) for r in body["roots"] if not r["present"]]
    said = body["warnings"]
    for path in missing:
        names = [f"{path} (", *(f"folder {above} does not exist" for above in path.parents)]
        assert any(name in w for w in said for name in names), path
    assert any(w.startswith(f"folder {comfy} does not exist, nor the") for w in said), said
    assert len(said) < len(missing)


async def test_with_no_folder_named_it_says_where_to_name_them(make_client: MakeClient) -> None:
    client = await make_client()
    assert await folders(client) == {"roots": [], "types": [], "warnings": [NO_ROOTS]}


async def test_an_unreadable_yaml_is_a_422_that_names_it(
    make_client: MakeClient, tmp_path: Path
) -> None:
    yaml_path = tmp_path / "extra_model_paths.yaml"
    yaml_path.write_text("a1111: [unclosed\n")
    client = await make_client(comfyui_model_paths=yaml_path)

    response = await client.get("/api/scan/roots")

    assert response.status == 422
    assert_error_body(await response.json(), 422, str(yaml_path))
