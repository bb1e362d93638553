"""What one value of a legacy row becomes. A legacy file may hold anything SQLite can: any
storage class in any column, TEXT that is not UTF-8, NaN and infinities, integers beyond 64
bits in JSON, lone surrogates, JSON nested thousands deep. Each function here turns such a value
into one a record can hold and serve, and notes in `notes` (for the report) whatever it had to
change. Pure functions: no database, no files.
"""

from __future__ import annotations

import json
import math
from typing import Any

from modelshelf.records import (
    MAX_META_DEPTH,
    ROW_ID_MAX,
    is_sha256,
    nests_deeper_than,
    without_surrogates,
)
from modelshelf.storage.legacy_source import UndecodedText

MAX_INTEGER = ROW_ID_MAX
# Before this many milliseconds (1973) a timestamp is taken to be in seconds.
_SECONDS_THRESHOLD = 100_000_000_000
# 9999-12-31T23:59:59.999Z: later "times" are not times.
LATEST_MS = 253_402_300_799_999


class _TooDeep(Exception):
    pass


def as_text(value: Any, column: str, notes: list[str]) -> str | None:
    """A text column: text stays, anything else is read as text and noted."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return _bytes_as_text(value, column, notes)
    notes.append(f"{column} was a number ({_short(value)}); kept as text")
    return str(value)


def as_size(value: Any, notes: list[str]) -> int | None:
    """size_bytes: a whole number of bytes from 0 to 2^63-1, or None (noted)."""
    if value is None:
        return None
    number = _whole_number(value)
    if number is None or not 0 <= number <= MAX_INTEGER:
        notes.append(f"size_bytes {_short(value)} is not a size; left empty")
        return None
    if not isinstance(value, int):
        notes.append(f"size_bytes {_short(value)} was not an integer; stored as {number}")
    return number


def as_created_at(value: Any, notes: list[str], now_ms: int) -> int:
    """Milliseconds since the epoch; legacy rows may hold seconds. Nothing, or something that
    is no time, becomes `now_ms` (noted unless it was nothing)."""
    if value is None:
        return now_ms
    number = _number(value)
    if number is None or not math.isfinite(number) or number <= 0:
        notes.append(f"created_at {_short(value)} is not a time; set to the time of the import")
        return now_ms
    millis = int(number * 1000 if number < _SECONDS_THRESHOLD else number)
    if millis > LATEST_MS:
        notes.append(
            f"created_at {_short(value)} is past the year 9999; set to the time of the import"
        )
        return now_ms
    if isinstance(value, str | bytes):
        notes.append(f"created_at {_short(value)} was text; stored as a number")
    return millis


def as_sha256(value: Any, notes: list[str]) -> str | None:
    """hash_hex: a SHA256 (lower-cased), or None for an unhashed model (noted when the column
    held something that is not a hash)."""
    if isinstance(value, bytes):
        value = _bytes_as_text(value, "hash_hex", notes)
    if not isinstance(value, str):
        if value is not None:
            notes.append(f"hash_hex {_short(value)} is not text; sent to pending")
        return None
    candidate = value.strip().lower()
    if candidate and not is_sha256(candidate):
        notes.append(f"hash_hex {candidate[:80]!r} is not a SHA256; sent to pending")
    return candidate if is_sha256(candidate) else None


def as_json_object(value: Any, column: str, notes: list[str]) -> dict[str, Any]:
    """A JSON column as an object. Nothing is lost: text that is not a JSON object a record
    can serve is kept under a key of its own, and noted."""
    if isinstance(value, bytes):
        value = _bytes_as_text(value, column, notes)
    if value is None or (isinstance(value, str) and not value.strip()):
        return {}
    if not isinstance(value, str):
        notes.append(f"{column} is a number ({_short(value)}), not JSON text; kept as text")
        return {f"legacy_{column}_unparsed": str(value)}
    try:
        parsed = json.loads(value, parse_constant=_refuse_constant, parse_float=_finite_float)
        if nests_deeper_than(parsed, MAX_META_DEPTH):
            raise _TooDeep
        cleaned, changed = without_surrogates(parsed)
    except (ValueError, RecursionError) as exc:
        notes.append(f"{column} is not valid JSON ({_reason(exc)}); kept as text")
        return {f"legacy_{column}_unparsed": value}
    except _TooDeep:
        notes.append(f"{column} is nested deeper than {MAX_META_DEPTH} levels; kept as text")
        return {f"legacy_{column}_unparsed": value}
    if changed:
        notes.append(f"{column} held lone surrogates (not Unicode); replaced with U+FFFD")
    if cleaned is None:
        return {}
    if not isinstance(cleaned, dict):
        notes.append(f"{column} is not a JSON object; kept under legacy_{column}")
        return {f"legacy_{column}": cleaned}
    return cleaned


def set_aside_own_key(meta: dict[str, Any], key: str, notes: list[str]) -> None:
    """Move the value `extra_json` itself held under `key` to a free key of its own, so that
    the value stage 1 puts under `key` (the contract's) replaces nothing; noted."""
    if key not in meta:
        return
    free, n = f"{key}_of_extra_json", 2
    while free in meta:
        free, n = f"{key}_of_extra_json_{n}", n + 1
    meta[free] = meta.pop(key)
    notes.append(f"extra_json had a key {key} of its own; kept under {free}")


def _bytes_as_text(value: bytes, column: str, notes: list[str]) -> str:
    if isinstance(value, UndecodedText):
        notes.append(f"{column} is not valid UTF-8; the invalid bytes were replaced with U+FFFD")
        return value.decode("utf-8", "replace")
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        notes.append(f"{column} was a blob that is not UTF-8; read with U+FFFD for invalid bytes")
        return value.decode("utf-8", "replace")
    notes.append(f"{column} was a blob; read as UTF-8 text")
    return text


def _whole_number(value: Any) -> int | None:
    if isinstance(value, int):
        return value
    number = _number(value)
    if number is None or not math.isfinite(number) or number != int(number):
        return None
    return int(number)


def _number(value: Any) -> float | int | None:
    if isinstance(value, int | float):
        return value
    if isinstance(value, bytes):
        return None
    if isinstance(value, str) and len(value) <= 40:
        try:
            return int(value.strip())
        except ValueError:
            pass
        try:
            return float(value.strip())
        except ValueError:
            return None
    return None


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise ValueError(f"{text[:40]} is too large for a JSON number")
    return number


def _reason(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deep to parse"
    return str(exc)[:200]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
