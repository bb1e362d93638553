"""A bad entry met while reading model folders: reported with its reason, never raised."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Problem:
    """`path` is printable (valid UTF-8 whatever the name on disk); `reason` is for a person."""

    path: str
    reason: str


def printable(path: str | os.PathLike[str]) -> str:
    """`path` as valid UTF-8: bytes that are not UTF-8 are shown as `\\xNN` escapes.

    Python keeps such bytes as lone surrogates, which neither JSON encoders nor SQLite accept.
    """
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def is_valid_utf8(name: str) -> bool:
    """False if `name` holds bytes from disk that are not UTF-8 (lone surrogates)."""
    if name.isascii():
        return True
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
