"""The records the library hands out (models, pending models, tags) and the one definition of
what a SHA256 looks like; request bodies, path patterns and OpenAPI derive from it."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

SHA256_HEX = "[0-9a-f]{64}"
SHA256_PATTERN = re.compile(f"^{SHA256_HEX}$")
# What clients may send where a hash is expected; it is lower-cased before use.
SHA256_ANY_CASE = f"^{SHA256_HEX.replace('a-f', 'a-fA-F')}$"


# A pending model keeps its legacy id, and a legacy id is anything SQLite's INTEGER PRIMARY KEY
# can hold: every signed 64-bit integer. Path patterns, file names and bodies all use this.
PENDING_ID_MIN = -(2**63)
PENDING_ID_MAX = 2**63 - 1
PENDING_ID_TEXT = "-?[0-9]{1,19}"
_PENDING_ID = re.compile(PENDING_ID_TEXT)


def pending_id_from_text(text: str) -> int | None:
    """The pending id `text` spells in decimal ASCII digits, or None if it spells none."""
    if _PENDING_ID.fullmatch(text) is None:
        return None
    value = int(text)
    return value if PENDING_ID_MIN <= value <= PENDING_ID_MAX else None


def is_sha256(value: object) -> bool:
    return isinstance(value, str) and SHA256_PATTERN.fullmatch(value) is not None


class Tag(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: int
    name: str


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


class ModelRecord(_Record):
    """A model in the library, with its tags and the names of its example images."""

    sha256: str = Field(pattern=SHA256_PATTERN.pattern)


class PendingRecord(_Record):
    """A model waiting to be promoted into the library; `sha256` is null until hashed."""

    id: int
    sha256: str | None


def image_name(sha256: str, seq: int) -> str:
    """The public name of example image `seq` of a model, as clients request it."""
    return f"{sha256}_{seq}.webp"
