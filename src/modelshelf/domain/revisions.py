"""Versions of a model and its history: the strong ETag a client sends back with If-Match, the
precondition check, and the entries of `model_history` read back as records.

An edit goes through `editing()`: inside one change under the model's lock it reads the record,
checks the precondition and hands the record to the caller, who saves it in history (`save`)
before changing anything. The version is derived from everything a client sees of the model
(fields, meta_json, tags, image names) and from the content keys of its images, so replacing
or reordering images changes it as well.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import aiosqlite
from pydantic import ValidationError

from modelshelf.domain.catalog import require_sha256
from modelshelf.domain.shelf import Shelf
from modelshelf.errors import InvalidInput, NotFound, PreconditionFailed
from modelshelf.records import MODEL_COLUMNS, ModelRecord, Tag
from modelshelf.storage import history, models
from modelshelf.storage.change import Change
from modelshelf.storage.rows import parse_meta

log = logging.getLogger(__name__)

# An entity-tag as RFC 9110 writes it: optional W/, then a quoted string.
ENTITY_TAG = re.compile(r'\s*(W/)?"([\x21\x23-\x7e\x80-\xff]*)"\s*(?:,|$)')
# Empty elements of a list, which a recipient ignores (RFC 9110 5.6.1.2: senders that merge
# field lines make them).
EMPTY_ELEMENTS = re.compile(r"[\s,]+")
# What an If-Match header may hold (printable ASCII): * or a comma-separated list of tags.
_TAG = r'(W/)?"[\x21\x23-\x7e]*"'
IF_MATCH_PATTERN = rf"^[ \t]*(\*|{_TAG}([ \t]*,[ \t]*{_TAG})*)[ \t]*$"


@dataclass(frozen=True)
class Versioned:
    """A model with its version (`etag`); `chars`, the length of the JSON its version digests,
    is about that of its answer (a long one is serialised off the event loop)."""

    record: ModelRecord
    etag: str
    chars: int = 0
    # The version of its images alone (their content keys in order): an image's name is its
    # place, so a client tells by it whether the pictures stayed where they were when only the
    # ETag changed (a tag or a name changed elsewhere leaves it as it was).
    images_version: str = ""


@dataclass(frozen=True)
class _EntityTagCondition:
    """A condition on a model's version read from a list header: any current version (`*`)
    or one of `etags`. WEAK_MATCHES: whether a W/ tag matches the version it quotes (a weak
    comparison, If-None-Match) or never does (a strong one, If-Match)."""

    HEADER: ClassVar[str]
    WEAK_MATCHES: ClassVar[bool]

    etags: frozenset[str]
    any: bool = False

    @classmethod
    def parse(cls, header: str | None) -> Self | None:
        """None when there is no header. Raises InvalidInput for a malformed one."""
        if header is None:
            return None
        if header.strip() == "*":
            return cls(frozenset(), any=True)
        tags = entity_tags(header, cls.HEADER)
        return cls(frozenset(tag for weak, tag in tags if cls.WEAK_MATCHES or not weak))

    def matches(self, etag: str) -> bool:
        return self.any or etag in self.etags


class IfMatch(_EntityTagCondition):
    """An If-Match precondition, compared strongly."""

    HEADER = "If-Match"
    WEAK_MATCHES = False

    def require(self, etag: str) -> None:
        """Raises PreconditionFailed unless `etag` satisfies the precondition."""
        if not self.matches(etag):
            raise PreconditionFailed(
                "the model changed since it was read (If-Match does not match); "
                "nothing was changed: read it again and retry",
                etag=etag,
            )


class IfNoneMatch(_EntityTagCondition):
    """An If-None-Match condition, compared weakly: `matches` says the client holds that
    version already (a GET answers 304)."""

    HEADER = "If-None-Match"
    WEAK_MATCHES = True


def entity_tags(header: str, name: str) -> list[tuple[bool, str]]:
    """The entity tags of a list header, each as (weak, the quoted tag without W/); empty
    elements are ignored (RFC 9110 5.6.1.2). Raises InvalidInput for a malformed or empty
    list."""
    tags, position = [], 0
    while (position := _past_empty_elements(header, position)) < len(header):
        match = ENTITY_TAG.match(header, position)
        if match is None or match.end() == position:
            raise InvalidInput(f'{name} must be * or a list of entity tags such as "abc"')
        tags.append((match[1] is not None, f'"{match[2]}"'))
        position = match.end()
    if not tags:
        raise InvalidInput(f"{name} is empty")
    return tags


def _past_empty_elements(header: str, position: int) -> int:
    match = EMPTY_ELEMENTS.match(header, position)
    return position if match is None else match.end()


def version_of(record: ModelRecord, content_keys: list[int]) -> Versioned:
    """The model with its strong ETag: a digest of its record and its images' content keys.
    Blocking for a record of large meta_json (a megabyte takes tens of milliseconds)."""
    payload = {"record": record.model_dump(mode="json"), "images": content_keys}
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    etag = '"' + hashlib.sha256(text.encode()).hexdigest()[:40] + '"'
    images = hashlib.sha256(json.dumps(content_keys).encode()).hexdigest()[:20]
    return Versioned(record, etag, len(text), images)


async def versioned(conn: aiosqlite.Connection, sha256: str) -> Versioned | None:
    """The model and its version as `conn` sees it (a read connection or a change's tx), read,
    parsed and digested on the connection's thread."""
    return await models.fetch_model_as(conn, sha256, version_of)


async def read_model(shelf: Shelf, sha256: str) -> Versioned:
    """The full record and its ETag. Raises InvalidInput, NotFound."""
    require_sha256(sha256)
    await shelf.settled(sha256)
    async with shelf.storage.read() as conn:
        found = await versioned(conn, sha256)
    if found is None:
        raise NotFound(f"no model with SHA256 {sha256}")
    return found


async def require_version(tx: aiosqlite.Connection, sha256: str, if_match: IfMatch) -> None:
    """Raises PreconditionFailed unless the model's version, as `tx` sees it, satisfies
    `if_match` (a model not in the library has no version to match)."""
    current = await versioned(tx, sha256)
    if current is None:
        raise PreconditionFailed(f"no model with SHA256 {sha256}; If-Match cannot match")
    if_match.require(current.etag)


@dataclass
class Edit:
    """An edit under way: the change, and the model as it was when the change began."""

    change: Change
    before: Versioned

    @property
    def tx(self) -> aiosqlite.Connection:
        return self.change.tx

    async def save(self, action: str, details: dict[str, Any]) -> None:
        """Save the record as it was in history, with the action and its arguments. Call it
        once, before changing anything."""
        await history.record_history(
            self.tx,
            self.before.record.sha256,
            None,
            action,
            self.before.record,
            details,
        )

    async def after(self) -> Versioned:
        """The model as this change leaves it."""
        found = await versioned(self.tx, self.before.record.sha256)
        if found is None:  # pragma: no cover - an edit never removes the model it reads back
            raise NotFound(f"no model with SHA256 {self.before.record.sha256}")
        return found


@asynccontextmanager
async def editing(shelf: Shelf, sha256: str, if_match: IfMatch | None) -> AsyncIterator[Edit]:
    """One change to an existing model, under its lock. Raises InvalidInput, NotFound,
    PreconditionFailed (nothing changed), and what the change raises."""
    require_sha256(sha256)
    async with shelf.changes.change(lock=[sha256]) as change:
        current = await versioned(change.tx, sha256)
        if current is None:
            raise NotFound(f"no model with SHA256 {sha256}")
        if if_match is not None:
            if_match.require(current.etag)
        yield Edit(change, current)


@dataclass(frozen=True)
class HistoryEntry:
    id: int
    at: int
    action: str
    before: ModelRecord


def history_entry(row: sqlite3.Row) -> HistoryEntry:
    """A `model_history` row as an entry; a `previous` that is not a valid record (written by
    an older version, or by hand) is read as far as it goes."""
    return HistoryEntry(
        id=int(row["id"]),
        at=int(row["changed_at"] or 0),
        action=str(row["strategy"]),
        before=record_from_history(str(row["model_hash"]), row["previous"]),
    )


def record_from_history(sha256: str, text: str | None) -> ModelRecord:
    data = parse_meta(text)
    data["sha256"] = sha256
    try:
        return ModelRecord.model_validate(data)
    except ValidationError:
        log.warning("history of %s: a previous record is malformed; read what is usable", sha256)
    fields: dict[str, Any] = {}
    for column in MODEL_COLUMNS:
        value = data.get(column)
        wanted = int if column in ("size_bytes", "created_at") else str
        fields[column] = (
            value if isinstance(value, wanted) and not isinstance(value, bool) else None
        )
    meta = data.get("meta_json")
    tags = [t for t in _list(data.get("tags")) if _is_tag(t)]
    images = [i for i in _list(data.get("images")) if isinstance(i, str)]
    return ModelRecord(
        sha256=sha256,
        meta_json=meta if isinstance(meta, dict) else {},
        tags=[Tag(id=t["id"], name=t["name"]) for t in tags],
        images=images,
        **fields,
    )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _is_tag(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("id"), int)
        and isinstance(value.get("name"), str)
    )
