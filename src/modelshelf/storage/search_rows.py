"""The rows of the full-text index, built from the models they describe.

Triggers mark a model's row stale when its fields, tags or files change (storage.search); the
write transaction that changed them builds it again before it commits (`refresh_stale`), so
the index and the rows it describes are always one.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import aiosqlite

from modelshelf.storage.rows import (
    chunks,
    fetch_all,
    parse_meta,
    placeholders,
    query_tuples,
    run_on_connection,
)
from modelshelf.storage.search import (
    COLUMNS,
    SearchSource,
    base_model_of,
    name_key,
    name_order,
    name_rank,
    search_document,
)


@dataclass(frozen=True)
class SourceRows:
    """What a chunk of index rows is built from, as read (meta_json still text)."""

    rows: list[tuple[str, str | None, Any, str | None]]  # sha256, path, name, meta_json
    tags: dict[str, list[str]]
    locations: dict[str, list[str]]


@dataclass(frozen=True)
class BuiltRows:
    """A chunk of index rows ready to write: `texts` (rowid, then each column of COLUMNS),
    `facts` (base_model, name_key, name_rank, name_order, id) and the ids of models gone."""

    texts: list[tuple[Any, ...]]
    facts: list[tuple[str | None, str | None, str | None, str | None, int]]
    gone: list[int]


async def refresh_stale(tx: aiosqlite.Connection, changing: Callable[[], None]) -> int:
    """Build again every stale row (and drop those of models gone); returns how many. Run
    inside the write transaction whose changes marked them; `changing` is called first if
    the index is about to change (Storage.mark_index_changing)."""
    stale = await fetch_all(tx, "SELECT id, sha256 FROM search_docs WHERE stale = 1")
    if stale:
        changing()
        # On the connection's own thread, in one trip: reading, parsing and folding the text
        # of a bulk edit's 1,000 models cost the event loop 62-70 ms of CPU a request when it
        # ran there, against 17-18 ms for the whole request now (BENCHMARKS, Editing and
        # tagging many models at once).
        await run_on_connection(tx, _rebuild, [(int(r[0]), str(r[1])) for r in stale])
    return len(stale)


def _rebuild(db: sqlite3.Connection, stale: Sequence[tuple[int, str]]) -> None:
    for docs in chunks(stale):
        built = build_rows(docs, _read_sources(db, [sha256 for _, sha256 in docs]))
        marks = placeholders(len(docs))
        db.execute(f"DELETE FROM model_search WHERE rowid IN ({marks})", [i for i, _ in docs])
        db.executemany(
            f"INSERT INTO model_search(rowid, {', '.join(COLUMNS)})"
            f" VALUES (?, {placeholders(len(COLUMNS))})",
            built.texts,
        )
        db.executemany(
            "UPDATE search_docs SET stale = 0, base_model = ?, name_key = ?, name_rank = ?,"
            " name_order = ? WHERE id = ?",
            built.facts,
        )
        if gone := built.gone:
            db.execute(f"DELETE FROM search_docs WHERE id IN ({placeholders(len(gone))})", gone)


def build_rows(docs: Sequence[tuple[int, str]], read: SourceRows) -> BuiltRows:
    """The index rows of `docs` (index row id, model hash) from what was read of them; a model
    not read (deleted) is `gone`. CPU work only."""
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
    facts: list[tuple[str | None, str | None, str | None, str | None, int]] = []
    for doc_id, sha256 in docs:
        if (source := sources.get(sha256)) is not None:
            texts.append((doc_id, *_row_text(source)))
            key = name_key(source.name)
            rank = name_rank(key) if key is not None else None
            facts.append((base_model_of(source.meta), key, rank, name_order(source.name), doc_id))
    gone = [doc_id for doc_id, sha256 in docs if sha256 not in sources]
    return BuiltRows(texts, facts, gone)


def _row_text(source: SearchSource) -> list[str]:
    text = search_document(source)
    return [text[c] for c in COLUMNS]


def _read_sources(db: sqlite3.Connection, hashes: list[str]) -> SourceRows:
    marks = placeholders(len(hashes))
    tag_names: dict[str, list[str]] = defaultdict(list)
    for sha256, tag in query_tuples(
        db,
        "SELECT mt.model_hash, t.name FROM model_tags mt JOIN tags t ON t.id = mt.tag_id"
        f" WHERE mt.model_hash IN ({marks}) ORDER BY t.name",
        hashes,
    ):
        tag_names[sha256].append(tag)
    locations: dict[str, list[str]] = defaultdict(list)
    for sha256, path in query_tuples(
        db, f"SELECT sha256, path FROM model_files WHERE sha256 IN ({marks}) ORDER BY path", hashes
    ):
        locations[sha256].append(path)
    rows = query_tuples(
        db, f"SELECT sha256, path, name, meta_json FROM models WHERE sha256 IN ({marks})", hashes
    )
    return SourceRows([(r[0], r[1], r[2], r[3]) for r in rows], tag_names, locations)


def _file_names(path: str | None, locations: list[str]) -> list[str]:
    """The model's stored path, then every location a scan found, each once."""
    return list(dict.fromkeys([*([path] if path else []), *locations]))
