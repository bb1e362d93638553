"""The records the library hands out (models, pending models, tags, jobs) and the one
definition of what a SHA256 looks like; request bodies, path patterns and OpenAPI derive from it."""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field

SHA256_HEX = "[0-9a-f]{64}"
# The columns models and pending models share, besides meta_json.
MODEL_COLUMNS = ("path", "name", "type", "size_bytes", "created_at")
SHA256_PATTERN = re.compile(f"^{SHA256_HEX}$")
# What clients may send where a hash is expected; it is lower-cased before use.
SHA256_ANY_CASE = f"^{SHA256_HEX.replace('a-f', 'a-fA-F')}$"


# The id of a row (a pending model, a tag, a history entry) is anything SQLite's INTEGER PRIMARY
# KEY can hold: every signed 64-bit integer (a pending model keeps its legacy id, a tag its
# legacy tag id). Path patterns, file names and bodies all use this.
ROW_ID_MIN = -(2**63)
ROW_ID_MAX = 2**63 - 1
ROW_ID_TEXT = "-?[0-9]{1,19}"
_ROW_ID = re.compile(ROW_ID_TEXT)


def row_id_from_text(text: str) -> int | None:
    """The row id `text` spells in decimal ASCII digits, or None if it spells none."""
    if _ROW_ID.fullmatch(text) is None:
        return None
    value = int(text)
    return value if ROW_ID_MIN <= value <= ROW_ID_MAX else None


def is_sha256(value: object) -> bool:
    return isinstance(value, str) and SHA256_PATTERN.fullmatch(value) is not None


class Tag(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    name: str


# How deep a JSON value from outside (a legacy row, a file's metadata) may nest to be kept as
# JSON: the API serialises records, which hold meta_json a few levels down, with a depth limit
# (pydantic's, about 255), and no real library nests metadata this deep.
MAX_META_DEPTH = 64
# The deepest meta_json an answer can hold at all: pydantic serialises to about 255 levels,
# and an answer holds meta_json up to four levels down (a page: {"models": [record]}).
SERVABLE_META_DEPTH = 240


def nests_deeper_than(value: Any, limit: int) -> bool:
    """Whether `value` (parsed JSON) holds anything more than `limit` levels down (`value`
    itself is level 1)."""
    level: list[tuple[Any, int]] = [(value, 1)]
    while level:
        item, depth = level.pop()
        if depth > limit:
            return True
        if isinstance(item, dict | list):
            children = item.values() if isinstance(item, dict) else item
            level.extend((child, depth + 1) for child in children)
    return False


_SURROGATES = re.compile("[\ud800-\udfff]")


def without_surrogates(value: Any) -> tuple[Any, bool]:
    """Parsed JSON `value` with each lone surrogate replaced with U+FFFD in every string and
    key, and whether any was. json.loads makes one of an escape such as `\\udce9` (json.dumps
    writes one for each byte of a name that was not UTF-8); it is no Unicode, and neither
    SQLite nor a JSON answer takes it. Recursive: check the depth first (nests_deeper_than)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return _SURROGATES.sub("\ufffd", value), True
        return value, False
    if isinstance(value, list):
        items = [without_surrogates(item) for item in value]
        return [v for v, _ in items], any(c for _, c in items)
    if isinstance(value, dict):
        result: dict[str, Any] = {}
        changed = False
        for key, item in value.items():
            clean_key, key_changed = without_surrogates(key)
            result[clean_key], item_changed = without_surrogates(item)
            changed = changed or key_changed or item_changed
        return result, changed
    return value, False


def folded_tag_name(text: str) -> str:
    """A tag name as the library keeps a new one: in Unicode's compatibility form (NFKC: a
    `café` typed as e and a combining accent, or LORA in full-width letters, is the name it
    looks like), trimmed and lower case. Names stored otherwise (stage 1 keeps the old
    manager's `Anime`) are found by their spelling in any case (storage.tags)."""
    return unicodedata.normalize("NFKC", text).strip().lower()


class _Record(BaseModel):
    """What models and pending models both carry."""

    path: str | None
    name: str | None
    type: str | None
    size_bytes: int | None
    created_at: int | None
    meta_json: dict[str, Any]
    tags: list[Tag]
    images: list[str]


def record_fields(record: _Record) -> dict[str, Any]:
    """A record's columns and meta_json: what is written to a `models` row."""
    return {c: getattr(record, c) for c in MODEL_COLUMNS} | {"meta_json": record.meta_json}


class ModelFile(BaseModel):
    """A location of a model under the model roots; `present` is false once its file is gone."""

    model_config = ConfigDict(frozen=True)

    path: str
    present: bool


class ModelRecord(_Record):
    """A model in the library, with its tags, the names of its example images and its files."""

    sha256: str = Field(pattern=SHA256_PATTERN.pattern)
    files: list[ModelFile] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def missing(self) -> bool:
        """True when no location of the model holds its file (a model no scan has found
        has no location, so it is missing too)."""
        return not any(f.present for f in self.files)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def autov2(self) -> str:
        """The first 10 hex digits of the SHA256, the short hash Civitai and A1111 show."""
        return self.sha256[:10]


class PendingRecord(_Record):
    """A model waiting to be promoted into the library; `sha256` is null until hashed."""

    id: int
    sha256: str | None


class QueuedPending(PendingRecord):
    """A pending model as the queue lists it, with what an import of it would meet as far as
    the service knows without reading its model file."""

    missing: bool = Field(
        description="its model file is not there or cannot be read: an import would fail"
    )
    conflict: bool | None = Field(
        description="a model in the library has its file's SHA256 (an import without a strategy"
        " answers 409); null while its file has not been hashed here (by a scan, an import or"
        " a preview) and it carries no SHA256 of its own, or while its file is missing"
    )


def image_name(sha256: str, seq: int) -> str:
    """The public name of example image `seq` of a model, as clients request it."""
    return f"{sha256}_{seq}.webp"


JobKind = Literal["scan", "migrate_legacy", "import_models"]
JobState = Literal["queued", "running", "done", "failed", "cancelled"]
ENDED_STATES: tuple[JobState, ...] = ("done", "failed", "cancelled")


def _unknown(value: object) -> bool:
    return value is None


class JobProgress(BaseModel):
    """How far a job is. `total` is null while unknown; the other keys are left out of answers
    while the job does not count them."""

    done: int = 0
    total: int | None = None
    bytes_done: int | None = Field(default=None, exclude_if=_unknown)
    bytes_total: int | None = Field(default=None, exclude_if=_unknown)
    rate: float | None = Field(
        default=None,
        exclude_if=_unknown,
        description="bytes per second when the job counts bytes, else units per second",
    )
    eta_s: float | None = Field(default=None, exclude_if=_unknown, description="seconds left")
    phase: str | None = Field(default=None, exclude_if=_unknown)


class Job(BaseModel):
    """Long work run in the background, as the API shows it. Times are milliseconds since the
    epoch, null until they happen."""

    id: str
    kind: JobKind
    state: JobState
    created_at: int
    started_at: int | None = None
    finished_at: int | None = None
    progress: JobProgress = Field(default_factory=JobProgress)
    result: dict[str, Any] | None = None
    error: str | None = None

    @property
    def ended(self) -> bool:
        return self.state in ENDED_STATES
