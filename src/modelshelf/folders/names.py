"""Which names in a model folder are models, which are ignored, and which belong to a model
(its sidecar files and example images, same stem, beside it)."""

from __future__ import annotations

from collections.abc import Iterable

MODEL_EXTENSIONS = frozenset({".safetensors", ".sft", ".ckpt", ".pt", ".pth", ".bin", ".gguf"})
# `.sft` is the short spelling of safetensors (Flux releases use it).
# Only these are opened for their content (the header): the others may be pickles, and
# loading a pickle runs code from the file, so they are hashed and never read otherwise.
SAFETENSORS_EXTENSIONS = frozenset({".safetensors", ".sft"})
UNFINISHED_EXTENSIONS = (".part", ".tmp", ".crdownload", ".download")
# What a model file of no bytes is: a download that failed or has not begun. Every such file
# has one content (the SHA256 of nothing), so registering them made one model of them all,
# with the sidecars and previews of unrelated models merged into it and listed as duplicates.
EMPTY_MODEL_FILE = "empty file (0 bytes): not registered as a model"

# Sidecar files by the meta key they fill. `.json` is matched last so that
# `<stem>.metadata.json` is never taken for the A1111 file of a model named `<stem>.metadata`
# unless such a model exists.
SIDECAR_SUFFIXES = {
    "civitai": ".civitai.info",
    "lora_manager": ".metadata.json",
    "a1111": ".json",
}
# Example images in the order they are added.
PREVIEW_SUFFIXES = tuple(
    f"{prefix}.{ext}" for prefix in (".preview", "") for ext in ("png", "jpg", "jpeg", "webp")
)
COMPANION_SUFFIXES = (*SIDECAR_SUFFIXES.values(), *PREVIEW_SUFFIXES)
# The last suffix of every companion: most names in a folder are ruled out by it alone.
_COMPANION_EXTENSIONS = frozenset(suffix[suffix.rfind(".") :] for suffix in COMPANION_SUFFIXES)


def extension(name: str) -> str:
    """The last suffix of `name`, lower case (`.safetensors`), or "" if it has none."""
    dot = name.rfind(".")
    return name[dot:].lower() if dot > 0 else ""


def is_ignored(name: str) -> bool:
    """A file never taken for a model or a companion: hidden (leading dot) or an unfinished
    download. (A folder is ignored only when hidden.)"""
    return name.startswith(".") or name.lower().endswith(UNFINISHED_EXTENSIONS)


def is_model_name(name: str) -> bool:
    """A model file's name: not ignored, with a model extension in any case."""
    return extension(name) in MODEL_EXTENSIONS and not is_ignored(name)


def model_stem(name: str) -> str:
    """The name without its extension: `a.b.safetensors` -> `a.b`."""
    dot = name.rfind(".")
    return name[:dot] if dot > 0 else name


def companion_stems(name: str) -> list[tuple[str, str]]:
    """Every (stem, suffix) under which `name` could be a companion of a model with that stem.

    The suffix is the lower-case one from COMPANION_SUFFIXES; the stem keeps its case.
    `x.preview.png` gives [("x", ".preview.png"), ("x.preview", ".png")].
    """
    if extension(name) not in _COMPANION_EXTENSIONS or is_ignored(name):
        return []
    lower = name.lower()
    return [
        (name[: -len(suffix)], suffix)
        for suffix in COMPANION_SUFFIXES
        if lower.endswith(suffix) and len(name) > len(suffix)
    ]


def companions_by_stem(names: Iterable[str], stems: set[str]) -> dict[str, list[str]]:
    """The names among `names` that are companions of a model stem in `stems`, by stem."""
    found: dict[str, list[str]] = {}
    for name in names:
        for stem, _suffix in companion_stems(name):
            if stem in stems:
                found.setdefault(stem, []).append(name)
    return found
