"""The meta keys a scan derives from what the files beside a model say: `trigger_words` and
`base_model`, each from the best source that says it (folders.facts reads the sources)."""

from __future__ import annotations

import re
from typing import Any

from modelshelf.folders.base_models import civitai_base_model, is_guess

# Values that say nothing about the base model.
_UNKNOWN = frozenset({"", "unknown", "none", "null"})
# A1111's "sd version" offers SD1, SD2, SDXL, SD3 and Unknown; sd-civitai-browser-plus writes
# "Other" there for every other base model (Pony, Flux, Illustrious, ...): it says nothing.
_A1111_UNKNOWN = _UNKNOWN | {"other"}


def derived_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """`trigger_words` and `base_model` from the best source that says them.

    trigger_words: Civitai's `trainedWords`, from the .civitai.info file, else from the copy
    LoRA Manager keeps (`civitai.trainedWords`, then its own `trainedWords`), else A1111's
    "activation text" (the words its page shows, so that search finds them too).
    base_model: Civitai's `baseModel`, else LoRA Manager's `base_model`, else A1111's
    `sd version`, else the header's `ss_base_model_version`, else its `modelspec.architecture`,
    the last four by Civitai's name where they name one (base_models.civitai_base_model):
    LoRA Manager copies Civitai's name, but for a LoRA Civitai does not know it wrote kohya's
    spelling as it found it ("sd_v1"). A version that names no one model (kohya's "flux1")
    comes after the architecture, which does ("flux-1-schnell/lora").
    Values that say "unknown" are skipped, and A1111's "Other".
    """
    civitai = meta.get("civitai", {})
    manager = meta.get("lora_manager", {})
    header = meta.get("file_metadata", {})
    derived: dict[str, Any] = {}
    words = (
        _words(civitai.get("trainedWords"))
        or _words(_dict(manager.get("civitai")).get("trainedWords"))
        or _words(manager.get("trainedWords"))
        or _phrases(_dict(meta.get("a1111")).get("activation text"))
    )
    if words:
        derived["trigger_words"] = words
    base_model = _base_model(meta, civitai, manager, header)
    if base_model is not None:
        derived["base_model"] = base_model
    return derived


def _base_model(meta: dict[str, Any], civitai: Any, manager: Any, header: Any) -> str | None:
    # Civitai's is Civitai's name; the others are named as Civitai does.
    version = header.get("ss_base_model_version")
    guessed = isinstance(version, str) and is_guess(version)
    a1111 = meta.get("a1111", {}).get("sd version")
    candidates = (
        (civitai.get("baseModel"), str.strip),
        (manager.get("base_model"), civitai_base_model),
        (None if _says_nothing(a1111, _A1111_UNKNOWN) else a1111, civitai_base_model),
        (None if guessed else version, civitai_base_model),
        (header.get("modelspec.architecture"), civitai_base_model),
        (version, civitai_base_model),
    )
    for candidate, named in candidates:
        if isinstance(candidate, str) and not _says_nothing(candidate, _UNKNOWN):
            return named(candidate)
    return None


def _says_nothing(value: Any, unknown: frozenset[str]) -> bool:
    return isinstance(value, str) and value.strip().lower() in unknown


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _words(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [w.strip() for w in value if isinstance(w, str) and w.strip()]


# A1111's activation text is prompt text: phrases separated by commas, a comma inside
# parentheses belonging to its phrase ("(red hair, blue eyes:1.2)"), as the web UI splits it.
_PHRASE_END = re.compile(r",(?![^()]*\))")


def _phrases(value: Any) -> list[str]:
    if not isinstance(value, str):
        return []
    return [p.strip() for p in _PHRASE_END.split(value) if p.strip()]
