"""The rows of the full-text index, built from the models they describe.

Triggers mark a model's row stale when its fields, tags or files change (storage.search); the
write transaction that changed them builds it again before it commits (`refresh_stale`), so
the index and the rows it describes are always one.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from modelshelf.storage.rows import chunks, fetch_all, parse_meta, placeholders
from modelshelf.storage.search import (
    COLUMNS,
    SearchSource,
    base_model_of,
    name_key,
    name_order,
    search_document,
)

# A change rebuilding more rows than this builds their text in a thread: 50-65 us of CPU a row
# (parsing meta_json, folding), which held the event loop 24-33 ms for each chunk of 500 rows
# of a bulk edit of models with Civitai records (BENCHMARKS, Editing and tagging many models
# at once). Fewer rows are built in place: a thread hop costs about as much as a row.
ROWS_BUILT_IN_PLACE = 32


@dataclass(frozen=True)
class SourceRows:
    """What a chunk of index rows is built from, as read (meta_json still text)."""

    rows: list[tuple[str, str | None, Any, str | None]]  # sha256, path, name, meta_json
    tags: dict[str, list[str]]
    locations: dict[str, list[str]]


@dataclass(frozen=True)
class BuiltRows:
    """A chunk of index rows ready to write: `texts` (rowid, then each column of COLUMNS),
    `facts` (base_model, name_key, name_order, id) and the ids of models gone."""

    texts: list[tuple[Any, ...]]
    facts: list[tuple[str | None, str | None, str | None, int]]
    gone: list[int]


async def refresh_stale(tx: aiosqlite.Connection, changing: Callable[[], None]) -> int:
    """Build again every stale row (and drop those of models gone); returns how many. Run
    inside the write transaction whose changes marked them; `changing` is called first if
    the index is about to change (Storage.mark_index_changing)."""
    stale = await fetch_all(tx, "SELECT id, sha256 FROM search_docs WHERE stale = 1")
    if stale:
        changing()
    for chunk in chunks(stale):
        docs = [(int(r[0]), str(r[1])) for r in chunk]
        read = await _read_sources(tx, [sha256 for _, sha256 in docs])
        if len(docs) <= ROWS_BUILT_IN_PLACE:
            built = build_rows(docs, read)
        else:
            built = await asyncio.to_thread(build_rows, docs, read)
        marks = placeholders(len(docs))
        await tx.execute(f"DELETE FROM model_search WHERE rowid IN ({marks})", [i for i, _ in docs])
        await tx.executemany(
            f"INSERT INTO model_search(rowid, {', '.join(COLUMNS)})"
            f" VALUES (?, {placeholders(len(COLUMNS))})",
            built.texts,
        )
        await tx.executemany(
            "UPDATE search_docs SET stale = 0, base_model = ?, name_key = ?, name_order = ?"
            " WHERE id = ?",
            built.facts,
        )
        await _delete_docs(tx, built.gone)
    return len(stale)


def build_rows(docs: Sequence[tuple[int, str]], read: SourceRows) -> BuiltRows:
    """The index rows of `docs` (index row id, model hash) from what was read of them; a model
    not read (deleted) is `gone`. CPU work only: safe to run in any thread."""
    sources = {
        sha256: SearchSource(
            sha256=sha256,
            name=name,
            meta=parse_meta(meta_json),
            files=_file_names(path, read.locations.get(sha256, [])),
            tags=read.tags.get(sha256, []),
        )
        for sha256, path, name, meta_json in read.rows
    }
    texts: list[tuple[Any, ...]] = []
    facts: list[tuple[str | None, str | None, str | None, int]] = []
    for doc_id, sha256 in docs:
        if (source := sources.get(sha256)) is not None:
            texts.append((doc_id, *_row_text(source)))
            name = source.name
            facts.append((base_model_of(source.meta), name_key(name), name_order(name), doc_id))
    gone = [doc_id for doc_id, sha256 in docs if sha256 not in sources]
    return BuiltRows(texts, facts, gone)


def _row_text(source: SearchSource) -> list[str]:
    text = search_document(source)
    return [text[c] for c in COLUMNS]


async def _delete_docs(tx: aiosqlite.Connection, ids: list[int]) -> None:
    if ids:
        await tx.execute(f"DELETE FROM search_docs WHERE id IN ({placeholders(len(ids))})", ids)


async def _read_sources(tx: aiosqlite.Connection, hashes: list[str]) -> SourceRows:
    marks = placeholders(len(hashes))
    tag_names: dict[str, list[str]] = defaultdict(list)
    for row in await fetch_all(
        tx,
        "SELECT mt.model_hash, t.name FROM model_tags mt JOIN tags t ON t.id = mt.tag_id"
        f" WHERE mt.model_hash IN ({marks}) ORDER BY t.name",
        hashes,
    ):
        tag_names[row[0]].append(row[1])
    locations: dict[str, list[str]] = defaultdict(list)
    for row in await fetch_all(
        tx, f"SELECT sha256, path FROM model_files WHERE sha256 IN ({marks}) ORDER BY path", hashes
    ):
        locations[row[0]].append(row[1])
    rows = await fetch_all(
        tx, f"SELECT sha256, path, name, meta_json FROM models WHERE sha256 IN ({marks})", hashes
    )
    return SourceRows([(r[0], r[1], r[2], r[3]) for r in rows], tag_names, locations)


def _file_names(path: str | None, locations: list[str]) -> list[str]:
    """The model's stored path, then every location a scan found, each once."""
    return list(dict.fromkeys([*([path] if path else []), *locations]))
