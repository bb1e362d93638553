"""Queries for the `models` and `model_tags` tables, and the assembly of model records (a
model's `meta_json` alone: `model_meta`)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from operator import itemgetter
from typing import Any, TypeVar

import aiosqlite
from pydantic import TypeAdapter
from pydantic_core import from_json

from modelshelf.records import MODEL_COLUMNS, ModelRecord, Tag, image_name
from modelshelf.storage.image_index import image_seqs_of
from modelshelf.storage.model_files import files_of
from modelshelf.storage.rows import (
    chunks,
    dump_meta,
    fetch_all,
    fetch_one,
    grouped_by_hash,
    parse_meta,
    placeholders,
    query_json,
    query_tuples,
    run_on_connection,
    same_json,
)

T = TypeVar("T")
RECORDS = TypeAdapter(list[ModelRecord])
TAGS = TypeAdapter(list[Tag])


def record_columns(row: sqlite3.Row) -> dict[str, Any]:
    """The columns models and pending models share, meta_json parsed."""
    return {c: row[c] for c in MODEL_COLUMNS} | {"meta_json": parse_meta(row["meta_json"])}


async def fetch_model_row(conn: aiosqlite.Connection, sha256: str) -> sqlite3.Row | None:
    return await fetch_one(conn, "SELECT * FROM models WHERE sha256 = ?", (sha256,))


async def model_exists(conn: aiosqlite.Connection, sha256: str) -> bool:
    return await fetch_model_row(conn, sha256) is not None


async def existing_models(conn: aiosqlite.Connection, hashes: Sequence[str]) -> list[str]:
    """The hashes of `hashes` that are models, in that order."""
    return await run_on_connection(conn, _existing_models, hashes)


def _existing_models(db: sqlite3.Connection, hashes: Sequence[str]) -> list[str]:
    present: set[str] = set()
    for chunk in chunks(hashes):
        sql = f"SELECT sha256 FROM models WHERE sha256 IN ({placeholders(len(chunk))})"
        present.update(str(row[0]) for row in query_tuples(db, sql, chunk))
    return [h for h in hashes if h in present]


def tags_json_sql(owner: str, links: str = "model_tags", link: str = "model_hash") -> str:
    """SQL value: the tags linked to the row whose key is `owner` (a column, e.g. `m.sha256`)
    through `links`.`link`, as a JSON array of [id, name] in no set order (see
    tags_from_json)."""
    return (
        "(SELECT json_group_array(json_array(t.id, t.name)) FROM"
        f" {links} l JOIN tags t ON t.id = l.tag_id WHERE l.{link} = {owner})"
    )


def tags_from_json(text: str) -> list[Tag]:
    """Tags from the text of tags_json_sql's array, ordered by name."""
    return TAGS.validate_python(tag_fields_by_name(json.loads(text)))


def tag_fields_by_name(pairs: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """The fields of the tags of tags_json_sql's [id, name] pairs, ordered by name (what a
    query's ORDER BY t.name gives: SQLite compares UTF-8 bytes, which order as the code
    points Python compares). Left to be validated with the records that hold them: a Tag
    built apart costs a page of 50 records a third of its assembly."""
    return [{"id": i, "name": n} for i, n in sorted(pairs, key=itemgetter(1))]


async def fetch_models(conn: aiosqlite.Connection, hashes: Sequence[str]) -> list[ModelRecord]:
    """Full records for these hashes, in the given order, skipping unknown ones (one trip to
    the connection's thread for the four queries)."""
    return await run_on_connection(conn, read_models, hashes)


def read_models(db: sqlite3.Connection, hashes: Sequence[str]) -> list[ModelRecord]:
    """fetch_models on the connection's own thread (see rows.run_on_connection). A chunk of
    records is read as one row (see rows.query_json)."""
    try:
        found = [
            row
            for chunk in chunks(hashes)
            for row in query_json(db, records_json_sql(placeholders(len(chunk))), chunk)
        ]
    except sqlite3.OperationalError:  # a BLOB, which JSON cannot hold (another program's)
        return read_models_by_rows(db, hashes)
    return records_from_rows(hashes, found)


def read_models_by_rows(db: sqlite3.Connection, hashes: Sequence[str]) -> list[ModelRecord]:
    """read_models a row at a time, one query a table: for the rare column JSON cannot hold
    (and for bench/gil_rows.py to compare)."""
    # Rows as tuples in this column order: (sha256, *MODEL_COLUMNS, meta_json).
    columns = ", ".join(("sha256", *MODEL_COLUMNS, "meta_json"))
    rows: list[tuple[Any, ...]] = []
    for chunk in chunks(hashes):
        sql = f"SELECT {columns} FROM models WHERE sha256 IN ({placeholders(len(chunk))})"
        rows += query_tuples(db, sql, chunk)
    found = [row[0] for row in rows]
    tags, seqs, files = tags_of(db, found), image_seqs_of(db, found), files_of(db, found)
    return records_from_rows(
        hashes,
        [[*row, tags.get(row[0], []), seqs.get(row[0], []), files.get(row[0], [])] for row in rows],
    )


def records_from_rows(hashes: Sequence[str], found: Sequence[Sequence[Any]]) -> list[ModelRecord]:
    """The records of `hashes` (in that order, unknown ones skipped) from rows laid out as
    records_json_sql's, whose lists may come in any order."""
    rows = {row[0]: row for row in found}
    width = len(MODEL_COLUMNS)
    # Validated as one list: a page of 50 records costs a third of building them one by one.
    return RECORDS.validate_python(
        [
            {
                "sha256": h,
                **dict(zip(MODEL_COLUMNS, rows[h][1 : 1 + width], strict=True)),
                "meta_json": parse_meta(rows[h][1 + width]),
                "tags": tag_fields_by_name(rows[h][2 + width]),
                "images": [image_name(h, s) for s in sorted(rows[h][3 + width])],
                "files": [{"path": p, "present": bool(on)} for p, on in sorted(rows[h][4 + width])],
            }
            for h in hashes
            if h in rows
        ]
    )


def records_json_sql(hashes: str) -> str:
    """SQL answering one row, a JSON array of record_row_sql's arrays, one for each model whose
    hash is IN (`hashes`): placeholders or a subquery. A BLOB in a column makes it raise
    sqlite3.OperationalError."""
    return f"SELECT json_group_array({record_row_sql()}) FROM models m WHERE m.sha256 IN ({hashes})"


def record_row_sql() -> str:
    """SQL value: a JSON array with [sha256, *MODEL_COLUMNS, meta_json text, [[tag id, name]],
    [seq], [[path, present]]] of the model `m`. The lists come in no set order
    (records_from_rows sorts them as the per-row queries order them: SQLite compares UTF-8
    bytes, which order as Python's code points)."""
    columns = ", ".join(f"m.{c}" for c in ("sha256", *MODEL_COLUMNS, "meta_json"))
    return (
        f"json_array({columns}, {tags_json_sql('m.sha256')},"
        " (SELECT json_group_array(i.seq) FROM images i WHERE i.model_hash = m.sha256),"
        " (SELECT json_group_array(json_array(f.path, f.present)) FROM model_files f"
        "  WHERE f.sha256 = m.sha256))"
    )


async def fetch_model_and_image_keys(
    conn: aiosqlite.Connection, sha256: str
) -> tuple[ModelRecord, list[int]] | None:
    """A model's record and its images' content keys in seq order (image_index's), read by
    one statement: one snapshot, one trip to the connection's thread. None if unknown."""
    return await fetch_model_as(conn, sha256, _pair)


def _pair(record: ModelRecord, keys: list[int]) -> tuple[ModelRecord, list[int]]:
    return record, keys


async def fetch_model_as(
    conn: aiosqlite.Connection, sha256: str, make: Callable[[ModelRecord, list[int]], T]
) -> T | None:
    """`make(record, content keys)` of a model (fetch_model_and_image_keys'), or None if
    unknown: read, parsed and made on the connection's thread. A record whose meta_json is
    megabytes (a scan keeps a kohya header's tag counts) took tens of milliseconds to parse
    and digest on the event loop."""

    def read(db: sqlite3.Connection) -> T | None:
        found = read_model_and_image_keys(db, sha256)
        return None if found is None else make(*found)

    return await run_on_connection(conn, read)


def read_model_and_image_keys(
    db: sqlite3.Connection, sha256: str
) -> tuple[ModelRecord, list[int]] | None:
    """fetch_model_and_image_keys on the connection's own thread."""
    sql = (
        f"SELECT ({records_json_sql('?')}), (SELECT json_group_array(json_array(seq,"
        " content_key)) FROM images WHERE model_hash = ?)"
    )
    try:
        found, keys = query_tuples(db, sql, (sha256, sha256))[0]
    except sqlite3.OperationalError:  # a BLOB, which JSON cannot hold (another program's)
        records = read_models(db, [sha256])
        keys_sql = "SELECT seq, content_key FROM images WHERE model_hash = ?"
        keys = query_tuples(db, keys_sql, (sha256,))
        return (records[0], _keys_by_seq(keys)) if records else None
    records = records_from_rows([sha256], from_json(found))
    return (records[0], _keys_by_seq(from_json(keys))) if records else None


def _keys_by_seq(pairs: Iterable[Sequence[Any]]) -> list[int]:
    return [int(key) for _seq, key in sorted(pairs, key=itemgetter(0))]


async def fetch_model(conn: aiosqlite.Connection, sha256: str) -> ModelRecord | None:
    found = await fetch_models(conn, [sha256])
    return found[0] if found else None


_INSERT = (
    "INSERT INTO models(sha256, path, name, type, size_bytes, created_at, meta_json)"
    " VALUES (?, ?, ?, ?, ?, ?, ?)"
)


async def insert_model(tx: aiosqlite.Connection, sha256: str, fields: dict[str, Any]) -> None:
    """Insert a model's row; its meta_json is serialised on the connection's thread (see
    update_model)."""
    await run_on_connection(tx, _insert_model, sha256, fields)


def _insert_model(db: sqlite3.Connection, sha256: str, fields: dict[str, Any]) -> None:
    meta = dump_meta(fields.get("meta_json", {}))
    db.execute(_INSERT, (sha256, *(fields.get(c) for c in MODEL_COLUMNS), meta))


# meta_json is kept as it is when `fields` has none (see written_fields).
_UPDATE = (
    "UPDATE models SET path=?, name=?, type=?, size_bytes=?, created_at=?,"
    " meta_json=coalesce(?, meta_json) WHERE sha256=?"
)


def _update_values(sha256: str, fields: dict[str, Any]) -> tuple[Any, ...]:
    meta = dump_meta(fields["meta_json"]) if "meta_json" in fields else None
    return (*(fields.get(c) for c in MODEL_COLUMNS), meta, sha256)


def written_fields(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """What update_model writes of an edit from fields `before` to `after`: without meta_json
    when the edit leaves it as it was, so that a column another program wrote (text that is
    not JSON, an array, NULL, a NaN), read here only as far as it goes, keeps its text."""
    if same_json(before["meta_json"], after["meta_json"]):
        return {k: v for k, v in after.items() if k != "meta_json"}
    return after


async def update_model(tx: aiosqlite.Connection, sha256: str, fields: dict[str, Any]) -> None:
    """Write a model's fields; its meta_json is serialised on the connection's thread, not on
    the event loop: a megabyte of it takes about 10 ms to serialise."""
    await run_on_connection(tx, _update_model, sha256, fields)


def _update_model(db: sqlite3.Connection, sha256: str, fields: dict[str, Any]) -> None:
    db.execute(_UPDATE, _update_values(sha256, fields))


async def update_models(tx: aiosqlite.Connection, fields: dict[str, dict[str, Any]]) -> None:
    """update_model for each model of `fields` (sha256 -> its fields), in one trip to the
    connection's thread, where each meta_json is serialised."""
    await run_on_connection(tx, _update_models, fields)


def _update_models(db: sqlite3.Connection, fields: dict[str, dict[str, Any]]) -> None:
    db.executemany(_UPDATE, [_update_values(h, f) for h, f in fields.items()])


Edit = Callable[[dict[str, Any]], dict[str, Any]]


async def edited_fields(
    conn: aiosqlite.Connection, hashes: Sequence[str], edit: Edit
) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """The hashes of `hashes` that are models, in that order, and sha256 -> fields for those
    whose fields (columns and meta_json, as record_fields has them) `edit` changes: what
    `edit` makes of them, as update_model writes them (written_fields). Writes nothing. One
    trip to the connection's thread, where the rows are read and parsed and `edit` runs: a
    thousand large meta_json would hold up the loop."""
    return await run_on_connection(conn, _edited_fields, hashes, edit)


def _edited_fields(
    db: sqlite3.Connection, hashes: Sequence[str], edit: Edit
) -> tuple[list[str], dict[str, dict[str, Any]]]:
    columns = ", ".join(("sha256", *MODEL_COLUMNS, "meta_json"))
    before: dict[str, dict[str, Any]] = {}
    for chunk in chunks(hashes):
        sql = f"SELECT {columns} FROM models WHERE sha256 IN ({placeholders(len(chunk))})"
        for row in query_tuples(db, sql, chunk):
            fields = dict(zip(MODEL_COLUMNS, row[1:-1], strict=True))
            before[row[0]] = fields | {"meta_json": parse_meta(row[-1])}
    found = [h for h in hashes if h in before]
    after = {h: edit(before[h]) for h in found}
    return found, {
        h: written_fields(before[h], fields)
        for h, fields in after.items()
        if not same_json(fields, before[h])
    }


def tags_of(db: sqlite3.Connection, hashes: Sequence[str]) -> dict[str, list[tuple[int, str]]]:
    """sha256 -> its tags as (id, name) ordered by name."""
    return grouped_by_hash(
        db,
        "SELECT mt.model_hash, t.id, t.name FROM model_tags mt JOIN tags t ON t.id = mt.tag_id"
        " WHERE mt.model_hash IN ({marks}) ORDER BY t.name",
        hashes,
        lambda row: (row[1], row[2]),
    )


async def add_model_tags(tx: aiosqlite.Connection, sha256: str, tag_ids: Iterable[int]) -> None:
    await tx.executemany(
        "INSERT OR IGNORE INTO model_tags(model_hash, tag_id) VALUES (?, ?)",
        [(sha256, t) for t in tag_ids],
    )


async def set_model_tags(tx: aiosqlite.Connection, sha256: str, tag_ids: Sequence[int]) -> None:
    """The model's tags become exactly `tag_ids` (links already there are kept)."""
    await tx.execute(
        f"DELETE FROM model_tags WHERE model_hash = ? AND tag_id NOT IN"
        f" ({placeholders(len(tag_ids))})",
        (sha256, *tag_ids),
    )
    await add_model_tags(tx, sha256, tag_ids)


async def delete_model(tx: aiosqlite.Connection, sha256: str) -> None:
    """Remove the model's row and its tag links (explicitly: a library made by another program
    may lack the ON DELETE CASCADE)."""
    await tx.execute("DELETE FROM model_tags WHERE model_hash = ?", (sha256,))
    await tx.execute("DELETE FROM models WHERE sha256 = ?", (sha256,))


async def delete_models(tx: aiosqlite.Connection, hashes: Sequence[str]) -> None:
    """delete_model of each of `hashes`, in two statements."""
    await tx.executemany("DELETE FROM model_tags WHERE model_hash = ?", [(h,) for h in hashes])
    await tx.executemany("DELETE FROM models WHERE sha256 = ?", [(h,) for h in hashes])


async def hashes_with_tag(conn: aiosqlite.Connection, tag_id: int) -> list[str]:
    rows = await fetch_all(
        conn, "SELECT model_hash FROM model_tags WHERE tag_id = ? ORDER BY model_hash", (tag_id,)
    )
    return [str(r[0]) for r in rows]


async def list_types(conn: aiosqlite.Connection) -> list[str]:
    rows = await fetch_all(
        conn, "SELECT DISTINCT type FROM models WHERE type IS NOT NULL AND type != '' ORDER BY type"
    )
    return [r[0] for r in rows]


async def existing_paths(
    conn: aiosqlite.Connection, hashes: Sequence[str]
) -> dict[str, str | None]:
    """sha256 -> stored path, for the hashes that are models."""
    result: dict[str, str | None] = {}
    for chunk in chunks(hashes):
        for row in await fetch_all(
            conn,
            f"SELECT sha256, path FROM models WHERE sha256 IN ({placeholders(len(chunk))})",
            chunk,
        ):
            result[row[0]] = row[1]
    return result


async def set_model_path(
    tx: aiosqlite.Connection, sha256: str, path: str, kind: str | None = None
) -> None:
    """Set a model's `path`, and its `type` too unless `kind` is None."""
    await tx.execute(
        "UPDATE models SET path = ?, type = coalesce(?, type) WHERE sha256 = ?",
        (path, kind, sha256),
    )
