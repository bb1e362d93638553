"""Real model folders for tests: ComfyUI and A1111 trees, a ComfyUI extra_model_paths.yaml,
safetensors files written by the `safetensors` package, and the sidecars other tools write
beside models, shaped as those tools write them:

- `<stem>.civitai.info`: the A1111 Civitai Helper saves Civitai's model-version object
  (GET /api/v1/model-versions/by-hash/<sha256>) with `json.dumps(info, indent=4)`, and `{}`
  when Civitai does not know the file (scripts/ch_lib/model.py, model_action_civitai.py).
- `<stem>.metadata.json`: ComfyUI LoRA Manager's `LoraMetadata.to_dict()`, written with
  `indent=2, ensure_ascii=False` (py/utils/models.py, py/utils/metadata_manager.py).
- `<stem>.json`: A1111's user metadata, `indent=4, ensure_ascii=False`
  (modules/ui_extra_networks_user_metadata.py, extensions-builtin/Lora/ui_edit_user_metadata.py).
"""

from __future__ import annotations

import base64
import json
import os
import pickle
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pyvips
from safetensors.numpy import save_file

from tests.factories import make_image

COMFYUI_FOLDERS = ("checkpoints", "loras", "vae", "embeddings", "controlnet", "upscale_models")
A1111_FOLDERS = {
    "checkpoints": "models/Stable-diffusion",
    "loras": "models/Lora",
    "lycoris": "models/LyCORIS",
    "vae": "models/VAE",
    "embeddings": "embeddings",
}


# --- safetensors and pickles --------------------------------------------------------------------


def write_safetensors(
    path: Path, metadata: dict[str, str] | None = None, *, floats: int = 256, seed: int = 0
) -> Path:
    """A real safetensors file (two float32 tensors, `floats` values in all) with `metadata`
    as its `__metadata__`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    half = max(floats // 2, 1)
    tensors = {
        "lora_unet_down.lora_down.weight": rng.standard_normal(half, dtype=np.float32),
        "lora_unet_down.lora_up.weight": rng.standard_normal(floats - half or 1, dtype=np.float32),
    }
    save_file(tensors, str(path), metadata=metadata)
    return path


def write_raw_header(path: Path, declared_length: int, body: bytes, tail: bytes = b"") -> Path:
    """A file that starts like safetensors: the 8-byte little-endian length, then `body`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(declared_length.to_bytes(8, "little") + body + tail)
    return path


def kohya_lora_metadata(**overrides: str) -> dict[str, str]:
    """`__metadata__` as kohya-ss sd-scripts writes it for a LoRA: every value a string, some
    of them JSON (ss_tag_frequency, ss_dataset_dirs, ss_bucket_info)."""
    metadata = {
        "ss_session_id": "1234567890",
        "ss_training_started_at": "1716912345.6789",
        "ss_output_name": "orange_cat",
        "ss_network_module": "networks.lora",
        "ss_network_dim": "32",
        "ss_network_alpha": "16.0",
        "ss_learning_rate": "0.0001",
        "ss_resolution": "(1024, 1024)",
        "ss_clip_skip": "None",
        "ss_v2": "False",
        "ss_base_model_version": "sdxl_base_v1-0",
        "ss_sd_model_name": "sd_xl_base_1.0.safetensors",
        "ss_tag_frequency": json.dumps({"5_orange cat": {"orange cat": 12, "sitting": 7}}),
        "ss_dataset_dirs": json.dumps({"5_orange cat": {"n_repeats": 5, "img_count": 12}}),
        "ss_bucket_info": "null",
        "sshs_model_hash": "6f1e2d3c4b5a69788796a5b4c3d2e1f0",
    }
    return metadata | overrides


def modelspec_metadata(thumbnail: bytes | None = None, **overrides: str) -> dict[str, str]:
    """`modelspec.*` keys of the SAI model spec, with the thumbnail as a data URI."""
    metadata = {
        "modelspec.sai_model_spec": "1.0.0",
        "modelspec.architecture": "stable-diffusion-xl-v1-base/lora",
        "modelspec.implementation": "https://github.com/Stability-AI/generative-models",
        "modelspec.title": "Orange Cat",
        "modelspec.resolution": "1024x1024",
        "modelspec.date": "2024-05-28T16:05:45",
    }
    if thumbnail is not None:
        metadata["modelspec.thumbnail"] = data_uri(thumbnail, "image/jpeg")
    return metadata | overrides


def data_uri(data: bytes, media_type: str) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode('ascii')}"


def image_bytes(suffix: str = ".jpg", width: int = 32, height: int = 24) -> bytes:
    """A real encoded image made with pyvips."""
    image = pyvips.Image.black(width, height, bands=3).new_from_image([10, 120, 200])
    return bytes(image.cast("uchar").write_to_buffer(suffix))


def write_booby_trapped_pickle(path: Path, marker: Path) -> Path:
    """A real pickle (as old `torch.save` wrote .ckpt files) that creates the folder `marker`
    if anything ever unpickles it."""

    class Trap:
        def __reduce__(self) -> tuple[Any, ...]:
            return (os.mkdir, (str(marker),))

    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(pickle.dumps({"state_dict": Trap()}, protocol=2))
    return path


_watched: list[list[str]] = []
_listings: list[list[str]] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _listings and event in ("os.listdir", "os.scandir"):
        _listings[-1].append(os.fsdecode(args[0]))
    if _watched and event in ("open", "pickle.find_class"):
        target = args[0]
        if isinstance(target, str | bytes | os.PathLike):
            _watched[-1].append(os.fsdecode(target))
        elif event == "pickle.find_class":
            _watched[-1].append(f"pickle:{args[0]}.{args[1]}")


sys.addaudithook(_audit)


@contextmanager
def files_opened() -> Iterator[list[str]]:
    """Every path opened in this process while the block runs (and any unpickling), from
    Python's audit events."""
    seen: list[str] = []
    _watched.append(seen)
    try:
        yield seen
    finally:
        _watched.remove(seen)


@contextmanager
def folders_listed() -> Iterator[list[str]]:
    """Every folder listed in this process while the block runs (os.listdir, os.scandir),
    once for each time it was listed, from Python's audit events."""
    seen: list[str] = []
    _listings.append(seen)
    try:
        yield seen
    finally:
        _listings.remove(seen)


def later(path: Path) -> None:
    """Make a rewritten file look changed even on a coarse clock."""
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 2_000_000_000))


# --- sidecars -----------------------------------------------------------------------------------


def civitai_version(
    *, sha256: str = "a" * 64, trained_words: list[str] | None = None, base_model: str = "SDXL 1.0"
) -> dict[str, Any]:
    """Civitai's model-version object, as the by-hash endpoint answers it."""
    return {
        "id": 130072,
        "modelId": 4201,
        "name": "v2.0",
        "createdAt": "2023-07-29T20:44:06.397Z",
        "updatedAt": "2023-08-02T10:11:12.000Z",
        "status": "Published",
        "publishedAt": "2023-07-29T21:00:00.000Z",
        "trainedWords": ["orange cat", "sitting"] if trained_words is None else trained_words,
        "trainingStatus": None,
        "trainingDetails": None,
        "baseModel": base_model,
        "baseModelType": "Standard",
        "earlyAccessTimeFrame": 0,
        "description": "<p>Cats, mostly orange.</p>",
        "stats": {"downloadCount": 1520, "ratingCount": 12, "rating": 4.9, "thumbsUpCount": 230},
        "model": {"name": "Orange Cat", "type": "LORA", "nsfw": False, "poi": False},
        "files": [
            {
                "id": 98765,
                "sizeKB": 223105.3,
                "name": "orange_cat.safetensors",
                "type": "Model",
                "pickleScanResult": "Success",
                "pickleScanMessage": "No Pickle imports",
                "virusScanResult": "Success",
                "scannedAt": "2023-07-29T20:50:00.000Z",
                "metadata": {"format": "SafeTensor", "size": None, "fp": None},
                "hashes": {
                    "AutoV1": "1A2B3C4D",
                    "AutoV2": sha256[:10].upper(),
                    "SHA256": sha256.upper(),
                    "CRC32": "DEADBEEF",
                    "BLAKE3": "B" * 64,
                },
                "primary": True,
                "downloadUrl": "https://civitai.com/api/download/models/130072",
            }
        ],
        "images": [
            {
                "url": "https://image.civitai.com/xG1nkqKTMzGDvpLrqFT7WA/abc/width=1024/1.jpeg",
                "nsfw": "None",
                "width": 1024,
                "height": 1024,
                "hash": "U9Ew3B00~q-;00?b9F%M",
                "type": "image",
                "meta": {"prompt": "orange cat, sitting", "steps": 30, "cfgScale": 7},
            }
        ],
        "downloadUrl": "https://civitai.com/api/download/models/130072",
    }


def write_civitai_info(model: Path, info: dict[str, Any] | None = None) -> Path:
    """`<stem>.civitai.info` as the Civitai Helper writes it ({} for a file Civitai lacks)."""
    path = model.with_name(model.name[: -len(model.suffix)] + ".civitai.info")
    path.write_text(json.dumps(civitai_version() if info is None else info, indent=4))
    return path


def lora_manager_metadata(model: Path, **overrides: Any) -> dict[str, Any]:
    """LoRA Manager's record of a LoRA (`LoraMetadata.to_dict()`)."""
    record = {
        "file_name": model.stem,
        "model_name": "Orange Cat",
        "file_path": str(model).replace(os.sep, "/"),
        "size": 228459827,
        "modified": 1716912345.678,
        "sha256": "a" * 64,
        "base_model": "SDXL 1.0",
        "preview_url": str(model.with_suffix(".webp")).replace(os.sep, "/"),
        "preview_nsfw_level": 1,
        "notes": "Works best at 0.8 — très bien",
        "from_civitai": True,
        "civitai": {"trainedWords": ["orange cat"], "baseModel": "SDXL 1.0", "id": 130072},
        "tags": ["Animal", "cat ", "style", "animal"],
        "modelDescription": "<p>Cats, mostly orange.</p>",
        "civitai_deleted": False,
        "favorite": False,
        "exclude": False,
        "db_checked": False,
        "skip_metadata_refresh": False,
        "metadata_source": "civitai_api",
        "last_checked_at": 1716912400.0,
        "hash_status": "completed",
        "trainedWords": [],
        "usage_tips": '{"strength": 0.8}',
    }
    return record | overrides


def write_lora_manager(model: Path, record: dict[str, Any] | None = None) -> Path:
    path = model.with_name(model.name[: -len(model.suffix)] + ".metadata.json")
    body = lora_manager_metadata(model) if record is None else record
    path.write_text(json.dumps(body, indent=2, ensure_ascii=False), encoding="utf-8")
    return path


def a1111_user_metadata(**overrides: Any) -> dict[str, Any]:
    """What A1111's "Edit user metadata" dialog saves for a LoRA."""
    record = {
        "description": "An orange cat LoRA",
        "sd version": "SDXL",
        "activation text": "orange cat, sitting",
        "preferred weight": 0.8,
        "negative text": "",
        "notes": "Trained on 12 images — chat orange",
    }
    return record | overrides


def write_a1111_json(model: Path, record: dict[str, Any] | None = None) -> Path:
    path = model.with_name(model.name[: -len(model.suffix)] + ".json")
    body = a1111_user_metadata() if record is None else record
    path.write_text(json.dumps(body, indent=4, ensure_ascii=False), encoding="utf8")
    return path


def write_preview(model: Path, suffix: str = ".preview.png") -> Path:
    """A real example image beside the model: `<stem><suffix>`."""
    return make_image(model.with_name(model.name[: -len(model.suffix)] + suffix), 40, 30)


# --- trees --------------------------------------------------------------------------------------


class ModelTree:
    """A tool's model folders under `base`: `folders` maps a type to its folder."""

    def __init__(self, base: Path, folders: dict[str, str]) -> None:
        self.base = base
        self.folders = {kind: base / rel for kind, rel in folders.items()}
        for folder in self.folders.values():
            folder.mkdir(parents=True, exist_ok=True)

    def add(self, kind: str, name: str, metadata: dict[str, str] | None = None) -> Path:
        """A real safetensors model at `<folder of kind>/<name>` (sub-folders allowed)."""
        return write_safetensors(self.folders[kind] / name, metadata, seed=len(name))


def comfyui_tree(base: Path) -> ModelTree:
    """ComfyUI's layout: `models/<type>` for each type."""
    return ModelTree(base, {kind: f"models/{kind}" for kind in COMFYUI_FOLDERS})


def a1111_tree(base: Path) -> ModelTree:
    """A1111's layout: `models/Stable-diffusion`, `models/Lora`, ..., `embeddings`."""
    return ModelTree(base, A1111_FOLDERS)


def write_extra_model_paths(path: Path, *, a1111: Path, comfyui: Path, shared: Path) -> Path:
    """An extra_model_paths.yaml shaped like the one ComfyUI ships
    (extra_model_paths.yaml.example) and like ComfyUI Desktop writes, with three sections."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"""#Rename this to extra_model_paths.yaml and ComfyUI will load it

#config for a1111 ui
a1111:
    base_path: {a1111}/

    checkpoints: models/Stable-diffusion
    configs: models/Stable-diffusion
    vae: models/VAE
    loras: |
         models/Lora
         models/LyCORIS
    upscale_models: |
                  models/ESRGAN
                  models/RealESRGAN
    embeddings: embeddings
    hypernetworks: models/hypernetworks
    controlnet: models/ControlNet

comfyui:
    is_default: true
    base_path: {comfyui}
    checkpoints: models/checkpoints/
    clip_vision: models/clip_vision/
    configs: models/configs/
    loras: models/loras/
    custom_nodes: custom_nodes/
    download_model_base: models

#other_ui:
#    base_path: path/to/ui
#    checkpoints: models/checkpoints

shared:
    base_path: {shared}
    loras: {shared}/absolute_loras
""",
        encoding="utf-8",
    )
    return path
