"""Planning what each row of a legacy (first Hikaze model manager) library becomes.

The functions are pure: they take legacy rows and return plans, so they can run in an executor
and be tested without a database. Reading the legacy database is storage.legacy_source.
"""

from __future__ import annotations

import json
import posixpath
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from modelshelf.domain.meta import IMAGE_KEYS, without_image_keys
from modelshelf.records import is_sha256

# Before this many milliseconds (1973) a timestamp is taken to be in seconds.
_SECONDS_THRESHOLD = 100_000_000_000


@dataclass
class LegacyPlan:
    """What one legacy row becomes: a model (sha256 set) or a pending model."""

    legacy_id: int
    sha256: str | None
    fields: dict[str, Any]
    tag_ids: list[int]
    image_names: list[str]
    problems: list[str] = field(default_factory=list)
    # A hashed row whose SHA256 is already taken goes to pending too, for promotion to resolve.
    to_pending: bool = False


def plan_rows(rows: list[dict[str, Any]], tags_by_model: dict[int, list[int]]) -> list[LegacyPlan]:
    return [plan_row(row, tags_by_model.get(int(row["id"]), [])) for row in rows]


def plan_row(row: dict[str, Any], tag_ids: list[int]) -> LegacyPlan:
    """Plan one legacy `models` row (a dict of its columns)."""
    problems: list[str] = []
    extra = _json_object(row.get("extra_json"), "extra_json", problems)
    meta = without_image_keys(extra)
    legacy_meta = _json_object(row.get("meta_json"), "meta_json", problems)
    if legacy_meta:
        meta["legacy_meta"] = legacy_meta
    hash_hex = (row.get("hash_hex") or "").strip().lower()
    if hash_hex and not is_sha256(hash_hex):
        problems.append(f"hash_hex {hash_hex[:80]!r} is not a SHA256; sent to pending")
    fields = {
        "path": row.get("path"),
        "name": row.get("name"),
        "type": row.get("type"),
        "size_bytes": row.get("size_bytes"),
        "created_at": legacy_created_at(row.get("created_at")),
        "meta_json": meta,
    }
    return LegacyPlan(
        legacy_id=int(row["id"]),
        sha256=hash_hex if is_sha256(hash_hex) else None,
        fields=fields,
        tag_ids=list(tag_ids),
        image_names=image_file_names(extra),
        problems=problems,
    )


def image_file_names(extra: dict[str, Any]) -> list[str]:
    """Base names of the images a legacy row lists, in order: `images`, then `image`, then
    `preview`, each name once. A URL such as /media/model_12_1700000000_cat%20x.png gives
    `model_12_1700000000_cat x.png`; only the base name is kept, so no path can escape the
    legacy images folder."""
    listed: list[Any] = []
    for key in ("images", *[k for k in IMAGE_KEYS if k != "images"]):
        value = extra.get(key)
        listed.extend(value if isinstance(value, list) else [value])
    names: list[str] = []
    for item in listed:
        if not isinstance(item, str) or not item.strip():
            continue
        path = urllib.parse.unquote(urllib.parse.urlsplit(item.strip()).path)
        name = posixpath.basename(path.replace("\\", "/"))
        if name and name not in (".", "..") and "\x00" not in name and name not in names:
            names.append(name)
    return names


def legacy_created_at(value: Any) -> int:
    """Milliseconds since the epoch; legacy rows may hold seconds, or nothing (then: now)."""
    if isinstance(value, int | float) and value > 0:
        return int(value * 1000 if value < _SECONDS_THRESHOLD else value)
    return int(time.time() * 1000)


def _json_object(text: Any, column: str, problems: list[str]) -> dict[str, Any]:
    """Parse a legacy JSON column. Nothing is lost: text that is not a JSON object is kept
    under a key of its own and the row is reported."""
    if text is None or (isinstance(text, str) and not text.strip()):
        return {}
    try:
        value = json.loads(text)
    except (TypeError, ValueError) as exc:
        problems.append(f"{column} is not valid JSON ({exc}); kept as text")
        return {f"legacy_{column}_unparsed": str(text)}
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{column} is not a JSON object; kept under legacy_{column}")
        return {f"legacy_{column}": value}
    return value
