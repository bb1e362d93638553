"""Civitai's names for the base models that file headers and A1111 spell their own way.

Civitai's `baseModel` ("SD 1.5", "SDXL 1.0") is what Civitai Helper's and LoRA Manager's
sidecars carry, and what most of a library's models are filtered by. A model that only its
header (kohya's `ss_base_model_version`, the SAI model spec's `modelspec.architecture`) or
A1111's sidecar (`sd version`) describes would otherwise be listed under a second spelling of
the same base model ("sdxl_base_v1-0", "stable-diffusion-xl-v1-base/lora", "SDXL"), and a
filter by one spelling misses the others. Only spellings that name one Civitai base model are
mapped; the others ("sd_v2": 2.0 or 2.1, 512 or 768) are kept as they are written.
"""

from __future__ import annotations

# Keys are lower case; a model spec's architecture is looked up without its "/<kind>" part
# ("stable-diffusion-v1/lora" -> "stable-diffusion-v1").
_CIVITAI_NAMES = {
    # kohya sd-scripts, ss_base_model_version (LoRA Manager copied it into its base_model)
    "sd_v1": "SD 1.5",
    "sdxl_base_v1-0": "SDXL 1.0",
    "sdxl_base_v0-9": "SDXL 0.9",
    "flux1": "Flux.1 D",  # as LoRA Manager names it: kohya does not tell dev from schnell
    # SAI model spec, modelspec.architecture
    "stable-diffusion-v1": "SD 1.5",
    "stable-diffusion-xl-v1-base": "SDXL 1.0",
    "flux-1-dev": "Flux.1 D",
    "flux-1-schnell": "Flux.1 S",
    # A1111's sidecar, "sd version"
    "sd1": "SD 1.5",
    "sdxl": "SDXL 1.0",
}


# Spellings whose Civitai name is a guess: kohya writes "flux1" for a LoRA of either Flux model
# (flux_train_network.py), and says which in `modelspec.architecture` ("flux-1-schnell/lora").
_GUESSED = frozenset({"flux1"})


def is_guess(spelling: str) -> bool:
    """Whether Civitai's name for `spelling` is a guess among several base models."""
    return spelling.strip().lower() in _GUESSED


def civitai_base_model(spelling: str) -> str:
    """Civitai's name for the base model `spelling` names (trimmed), or `spelling` trimmed
    when it names none or more than one."""
    written = spelling.strip()
    return _CIVITAI_NAMES.get(written.lower().split("/", 1)[0], written)
