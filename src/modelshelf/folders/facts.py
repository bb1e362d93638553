"""What model files and the files beside them already say: a safetensors header's metadata and
thumbnail, sidecars written by other tools, example images. Pickles are never opened.

Each source fills meta keys of its own (META_KEYS), so a scan can refresh exactly those keys
when their source changes and leave every other key, and any key a person set, alone.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from modelshelf.folders.derived_meta import derived_meta
from modelshelf.folders.names import (
    PREVIEW_SUFFIXES,
    SAFETENSORS_EXTENSIONS,
    SIDECAR_SUFFIXES,
    companion_stems,
    extension,
    model_stem,
)
from modelshelf.folders.problems import Problem, printable
from modelshelf.records import (
    MAX_META_DEPTH,
    folded_tag_name,
    nests_deeper_than,
    without_surrogates,
)

# The limit the safetensors library itself puts on a header.
MAX_HEADER_BYTES = 100_000_000
# Real sidecars are kilobytes (a Civitai version object with its image list, ~100 KB).
MAX_SIDECAR_BYTES = 16 * 1024 * 1024
THUMBNAIL_KEY = "modelspec.thumbnail"
# Every meta key a file can fill; the scan owns these and nothing else.
META_KEYS = ("file_metadata", "civitai", "trigger_words", "base_model", "lora_manager", "a1111")


class HeaderError(ValueError):
    """A safetensors header that is oversized, truncated or not a JSON object."""


@dataclass(frozen=True, slots=True)
class Thumbnail:
    """An image embedded in a file, as its bytes and media type (`image/jpeg`)."""

    data: bytes
    media_type: str


@dataclass(frozen=True, slots=True)
class FileFacts:
    """What one model file and its companions say. Treat the containers as read-only.

    - meta: only keys from META_KEYS, only those some source filled;
    - tags: lower case, trimmed, without duplicates, in the order found;
    - preview_images: example images beside the model, in the order they are to be added;
    - thumbnail: the image embedded in a safetensors header, if any;
    - problems: what could not be read, with the reason (the file is still a model);
    - sources: every companion considered, name -> (size, mtime_ns) as stat'ed before it was
      read (the header's source is the model file itself, known by its location);
    - copy_sources: the same for each other copy read, by its path.
    """

    meta: dict[str, Any]
    tags: tuple[str, ...]
    preview_images: tuple[Path, ...]
    thumbnail: Thumbnail | None
    problems: tuple[Problem, ...]
    sources: dict[str, tuple[int, int]]
    copy_sources: dict[str, dict[str, tuple[int, int]]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Copy:
    """Another location of the same content, with the names beside it that may belong to it
    (a walk's `FoundFile.companions`; None lists its folder)."""

    path: Path
    companions: Iterable[str] | None = None


class KnownHeader:
    """A header's decoded `__metadata__` already read from the same content (None: it had
    none), and the reasons it could not all be used then; passed to `read_facts`, the model
    file is not opened again and those reasons are its problems again."""

    def __init__(self, metadata: dict[str, Any] | None, problems: Iterable[str] = ()) -> None:
        self.metadata = metadata
        self.problems = tuple(problems)


def read_facts(
    model: Path,
    companions: Iterable[str] | None = None,
    header: KnownHeader | None = None,
    copies: Iterable[Copy] = (),
) -> FileFacts:
    """Read what `model` and the files beside it say. Never raises for what a file holds.

    `companions` are the names beside the model that may belong to it (a walk's
    `FoundFile.companions`); None lists the model's folder to find them. With `header`,
    the model file itself is not read (its metadata is `header.metadata`, its thumbnail
    is not looked for): a file renamed or moved is the same content.

    `copies` are other locations of the same content (an A1111 folder beside a ComfyUI one):
    their model files are never opened; their sidecars fill the keys that those beside
    `model` (then those of the copies before them) left empty, and their example images
    come after `model`'s.
    """
    names = _present(model.parent, _companion_names(model, companions))
    problems: list[Problem] = []
    meta: dict[str, Any] = {}
    thumbnail = None
    if header is not None:
        if header.metadata:
            meta["file_metadata"] = header.metadata
        problems += [Problem(printable(model), reason) for reason in header.problems]
    elif extension(model.name) in SAFETENSORS_EXTENSIONS:
        metadata, thumbnail = _header_facts(model, problems)
        if metadata:
            meta["file_metadata"] = metadata
    previews = _read_companions(model, names, meta, problems)
    copy_sources = {}
    for copy in copies:
        copy_names = _present(copy.path.parent, _companion_names(copy.path, copy.companions))
        copy_sources[str(copy.path)] = copy_names
        previews += _read_companions(copy.path, copy_names, meta, problems)
    meta.update(derived_meta(meta))
    tags = normalized_tags(meta.get("lora_manager", {}).get("tags"))
    return FileFacts(meta, tags, tuple(previews), thumbnail, tuple(problems), names, copy_sources)


def _read_companions(
    model: Path, names: dict[str, tuple[int, int]], meta: dict[str, Any], problems: list[Problem]
) -> list[Path]:
    """Fill the sidecar keys of `meta` still empty from the sidecars of `model` among
    `names`; returns its example images, in the order they are to be added."""
    stem = model_stem(model.name)
    for key, suffix in SIDECAR_SUFFIXES.items():
        name = None if key in meta else _pick(names, stem, suffix)
        value = _read_sidecar(model.parent / name, problems) if name else None
        if value:  # Civitai Helper writes `{}` for a file Civitai does not know
            meta[key] = value
    previews = [model.parent / n for s in PREVIEW_SUFFIXES if (n := _pick(names, stem, s))]
    return _cover_first(previews, meta.get("lora_manager"))


def _cover_first(previews: list[Path], manager: Any) -> list[Path]:
    """`previews` with the one LoRA Manager shows as the model's preview (its `preview_url`,
    known by file name: the record may have been written on another machine) first."""
    url = manager.get("preview_url") if isinstance(manager, dict) else None
    if not isinstance(url, str) or not url.strip():
        return previews
    shown = url.strip().replace("\\", "/").rsplit("/", 1)[-1]
    return sorted(previews, key=lambda path: path.name != shown)  # stable: the rest in order


def _companion_names(model: Path, given: Iterable[str] | None) -> list[str]:
    if given is not None:
        return list(given)
    stem = model_stem(model.name)
    try:
        listed = os.listdir(model.parent)
    except OSError:
        return []
    return [n for n in listed if any(s == stem for s, _ in companion_stems(n))]


def _present(folder: Path, names: Iterable[str]) -> dict[str, tuple[int, int]]:
    """The names that are regular files now, with their (size, mtime_ns), in name order."""
    present = {}
    for name in sorted(names):
        try:
            st = os.stat(folder / name)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            present[name] = (st.st_size, st.st_mtime_ns)
    return present


def _pick(names: Iterable[str], stem: str, suffix: str) -> str | None:
    """The companion of `stem` with `suffix` (any case; the lower-case spelling first)."""
    matches = [n for n in names if (stem, suffix) in companion_stems(n)]
    return min(matches, key=lambda n: (n != stem + suffix, n)) if matches else None


# --- the safetensors header ---------------------------------------------------------------------


def read_safetensors_header(path: Path) -> dict[str, Any]:
    """The JSON header of a safetensors file; reads the 8-byte length and that many bytes only.

    Raises HeaderError if the length is over MAX_HEADER_BYTES or past the end of the file, or
    the bytes are not a UTF-8 JSON object; OSError if the file cannot be read.
    """
    with open(path, "rb", buffering=0) as handle:
        prefix = _read_exactly(handle, 8)
        if len(prefix) < 8:
            raise HeaderError(f"file is {len(prefix)} bytes, too short for a safetensors header")
        length = int.from_bytes(prefix, "little")
        if length > MAX_HEADER_BYTES:
            raise HeaderError(f"header of {length} bytes is over the {MAX_HEADER_BYTES} limit")
        raw = _read_exactly(handle, length)
    if len(raw) < length:
        raise HeaderError(f"header says {length} bytes but the file ends after {len(raw)}")
    try:
        header = load_file_json(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise HeaderError(f"header is not valid JSON: {exc}") from exc
    if not isinstance(header, dict):
        raise HeaderError("header is not a JSON object")
    return header


def _read_exactly(handle: Any, count: int) -> bytes:
    chunks = []
    while count > 0 and (chunk := handle.read(min(count, 16 * 1024 * 1024))):
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


def _header_facts(
    model: Path, problems: list[Problem]
) -> tuple[dict[str, Any] | None, Thumbnail | None]:
    try:
        header = read_safetensors_header(model)
    except HeaderError as exc:
        problems.append(Problem(printable(model), f"safetensors header: {exc}"))
        return None, None
    except OSError as exc:
        problems.append(Problem(printable(model), f"cannot read: {exc.strerror or exc}"))
        return None, None
    metadata = header.get("__metadata__")
    if metadata is None:
        return None, None
    if not isinstance(metadata, dict):
        problems.append(Problem(printable(model), "safetensors __metadata__ is not an object"))
        return None, None
    return header_metadata(metadata, model, problems)


def header_metadata(
    metadata: dict[str, Any], model: Path, problems: list[Problem]
) -> tuple[dict[str, Any], Thumbnail | None]:
    """`__metadata__` with JSON objects and arrays held in strings decoded (as A1111 does,
    scalars stay strings), and the embedded thumbnail taken out of it as an image."""
    decoded = {key: _decoded(value) for key, value in metadata.items() if key != THUMBNAIL_KEY}
    uri = metadata.get(THUMBNAIL_KEY)
    thumbnail = None
    if isinstance(uri, str) and uri.strip():
        thumbnail = decode_data_uri(uri)
        if thumbnail is None:
            problems.append(Problem(printable(model), f"{THUMBNAIL_KEY} is not an image data URI"))
    return decoded, thumbnail


def _decoded(value: Any) -> Any:
    if not isinstance(value, str) or value.lstrip()[:1] not in ("{", "["):
        return value
    try:
        return load_file_json(value)
    except ValueError:
        return value


def decode_data_uri(uri: str) -> Thumbnail | None:
    """The image in a `data:image/...;base64,...` URI, or None if it is not one."""
    head, comma, payload = uri.strip().partition(",")
    params = head.removeprefix("data:").split(";")
    if not (head.startswith("data:") and comma and "base64" in params[1:]):
        return None
    media_type = params[0].strip().lower()
    if not media_type.startswith("image/"):
        return None
    try:
        data = base64.b64decode("".join(payload.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return Thumbnail(data, media_type) if data else None


def load_file_json(text: str) -> Any:
    """JSON that a file holds, as meta_json may keep it: NaN and Infinity refused, nothing
    nested deeper than MAX_META_DEPTH (Python's parser itself gives up near 1,000 levels with
    a RecursionError, which no reader of a file expects), and lone surrogates (`\\udce9`, as
    json.dumps escapes the bytes of a Latin-1 folder name kohya writes into
    `ss_tag_frequency`) replaced with U+FFFD in every string and key: they are no Unicode, and
    neither SQLite nor a JSON answer takes them. Raises ValueError."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        value = None
    else:
        if not nests_deeper_than(value, MAX_META_DEPTH):
            return without_surrogates(value)[0] if _SURROGATE_ESCAPE.search(text) else value
    raise ValueError(f"nested deeper than {MAX_META_DEPTH} levels")


# Text read as UTF-8 holds no surrogate: only a JSON escape of one (`\uD800`-`\uDFFF`) can
# put one in a parsed value (a pair of them is one character, and is kept).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89abcdefABCDEF]")


def _refuse_constant(name: str) -> Any:
    # NaN and Infinity are not JSON: meta_json must stay valid for every client.
    raise ValueError(f"{name} is not a JSON value")


# --- sidecars and derived keys ------------------------------------------------------------------


def _read_sidecar(path: Path, problems: list[Problem]) -> dict[str, Any] | None:
    """A sidecar's JSON object, or None (with a problem) if it cannot be used."""
    try:
        with open(path, "rb") as handle:
            if os.fstat(handle.fileno()).st_size > MAX_SIDECAR_BYTES:
                problems.append(Problem(printable(path), "over 16 MiB: not read"))
                return None
            raw = handle.read(MAX_SIDECAR_BYTES + 1)
        value = load_file_json(raw.decode("utf-8-sig"))
    except OSError as exc:
        problems.append(Problem(printable(path), f"cannot read: {exc.strerror or exc}"))
        return None
    except (UnicodeDecodeError, ValueError) as exc:
        problems.append(Problem(printable(path), f"not valid JSON: {exc}"))
        return None
    if not isinstance(value, dict):
        problems.append(Problem(printable(path), "not a JSON object"))
        return None
    return value


def normalized_tags(value: Any) -> tuple[str, ...]:
    """Tag names as the library keeps them (records.folded_tag_name), no empties or
    duplicates."""
    if not isinstance(value, list):
        return ()
    names = (folded_tag_name(t) for t in value if isinstance(t, str))
    return tuple(dict.fromkeys(n for n in names if n))
