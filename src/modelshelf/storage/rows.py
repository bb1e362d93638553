"""Small helpers every query module shares: running a query, chunking parameters, and the
JSON text of `meta_json` columns."""

from __future__ import annotations

import json
import math
import sqlite3
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar, cast

import aiosqlite
import pydantic_core

from modelshelf.records import SERVABLE_META_DEPTH, nests_deeper_than

T = TypeVar("T")

# SQLite caps the number of bound parameters; 500 keeps well under every build's limit.
CHUNK = 500
# The length of records' JSON when they were read row by row (a BLOB), not as one text.
UNKNOWN_CHARS = -1


def now_ms() -> int:
    return int(time.time() * 1000)


def parse_json(text: str | bytes) -> Any:
    """JSON text parsed by pydantic's parser, the faster one, or by json.loads where it gives
    up (nesting deeper than 200 levels, which a record's meta_json may hold: see parse_meta).
    Raises ValueError (or RecursionError) for text that is not JSON."""
    try:
        return pydantic_core.from_json(text)
    except ValueError:
        return json.loads(text)


def parse_meta(text: str | None) -> dict[str, Any]:
    """meta_json as an object; NULL is {}, and a non-object value is kept under `value`."""
    if text is None or text == "":
        return {}
    try:
        # pydantic's parser is the faster one. It refuses what json.loads refuses, but also a
        # few strings json.loads takes (lone surrogates, deep nesting), so json.loads has the
        # last word: the values are the same either way (tests/test_meta_text.py).
        value = pydantic_core.from_json(text)
    except (TypeError, ValueError):
        try:
            value = json.loads(text)
        except (TypeError, ValueError, RecursionError):
            return {"unparsed_meta_json": str(text)}
        # Written by another program: deeper than any record can be served (a 500 on every
        # read of the model, and of every page that holds it), so served as text.
        if nests_deeper_than(value, SERVABLE_META_DEPTH):
            return {"unparsed_meta_json": str(text)}
    return value if isinstance(value, dict) else {"value": value}


def dump_meta(meta: dict[str, Any]) -> str:
    """meta_json's text: always JSON, whose numbers are finite. A NaN or an infinity (which
    Python's parsers read from a legacy row, or from `1e400`) is written as null; otherwise
    the column would hold text that `json_valid` refuses and other readers cannot load."""
    try:
        return json.dumps(meta, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except ValueError:
        return json.dumps(_finite(meta), ensure_ascii=False, separators=(",", ":"))


def same_json(a: Any, b: Any) -> bool:
    """Whether `a` and `b`, values as JSON reads them (a model's fields and meta_json), are
    the same JSON. Not `==` alone: Python holds 1 == True, 0 == False and 1 == 1.0, and an
    edit from one to the other is a change. Keys may come in any order."""
    if a != b:
        return False
    return json_key(a) == json_key(b)


def json_key(value: Any) -> str:
    """The text that values which are the same JSON (same_json) share, and no other value:
    to find a value among many by a dict or a set rather than one comparison each."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def _finite(value: Any) -> Any:
    """`value` with every NaN and infinity in it replaced by None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_finite(item) for item in value]
    return value


async def fetch_all(
    conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()
) -> list[sqlite3.Row]:
    """Every row of `sql`, in one trip to the connection's thread.

    One trip, not three (execute, fetch, close the cursor): each trip waits for that thread
    and then for the event loop, and under bulk work those waits, not SQLite, made a page of
    models slow."""
    return list(await conn.execute_fetchall(sql, params))


async def fetch_one(
    conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()
) -> sqlite3.Row | None:
    """The first row of `sql`, or None; for queries of at most one row (a key, an aggregate,
    LIMIT 1), which are read whole in one trip (see fetch_all)."""
    rows = await fetch_all(conn, sql, params)
    return rows[0] if rows else None


async def fetch_value(conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    """The first column of the first row, or None."""
    row = await fetch_one(conn, sql, params)
    return None if row is None else row[0]


async def run_on_connection(conn: aiosqlite.Connection, work: Callable[..., T], *args: Any) -> T:
    """`work(db, *args)` with `db` the sqlite3 connection under `conn`, on that connection's
    own thread: one trip however many statements `work` runs. For reads of many queries (a
    page of records), and for writes of many rows inside a change's transaction (history,
    the search index's rows), whose Python work then holds that thread, not the event loop;
    `work` must leave no transaction open that it did not find open.

    aiosqlite has no public way to run a function on its thread; `_execute` is what its own
    methods use to do so (pinned version in requirements/; tests/test_storage.py covers it)."""

    def on_thread() -> T:
        return work(conn._conn, *args)

    execute = cast(Callable[[Callable[[], T]], Awaitable[T]], conn._execute)
    return await execute(on_thread)


def query_all(db: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> list[Any]:
    """Every row of `sql` (on the connection's own thread: see run_on_connection)."""
    return db.execute(sql, params).fetchall()


def query_tuples(
    db: sqlite3.Connection, sql: str, params: Sequence[Any] = ()
) -> list[tuple[Any, ...]]:
    """Every row of `sql` as a plain tuple, read by position, without making each an
    sqlite3.Row (on the connection's own thread: see run_on_connection)."""
    cursor = db.cursor()
    cursor.row_factory = None
    return cursor.execute(sql, params).fetchall()


async def fetch_json(conn: aiosqlite.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    """query_json in one trip from the event loop."""
    return pydantic_core.from_json(await fetch_value(conn, sql, params))


def query_json(db: sqlite3.Connection, sql: str, params: Sequence[Any] = ()) -> Any:
    """The parsed JSON of `sql`, a query that answers one row of one value SQLite builds
    (`json_group_array(...)`), on the connection's own thread (see run_on_connection).

    Why reads on a person's path take this shape: the sqlite3 module lets go of the GIL
    around every step of a query, a row each, and takes it back after; while other threads
    run Python (the event loop, other reads, renders) each taking back can wait a switch
    interval. A page of 50 models read row by row (some 300 rows) took about 2 s beside one
    busy thread, as one row about 30 ms; idle, the two are alike (bench/gil_rows.py)."""
    return pydantic_core.from_json(query_tuples(db, sql, params)[0][0])


def grouped_by_hash(
    db: sqlite3.Connection, sql: str, hashes: Sequence[str], item: Callable[[Any], T]
) -> dict[str, list[T]]:
    """sha256 -> `item(row)` of each row of `sql` under it, in the query's order. `sql` selects
    the hash first and has `{marks}` where a chunk of `hashes` goes (`IN ({marks})`); it runs
    once per chunk (on the connection's own thread: see run_on_connection)."""
    result: dict[str, list[T]] = defaultdict(list)
    for chunk in chunks(hashes):
        for row in query_tuples(db, sql.format(marks=placeholders(len(chunk))), chunk):
            result[row[0]].append(item(row))
    return result


def placeholders(count: int) -> str:
    return ",".join("?" * count)


def chunks(items: Sequence[Any], size: int = CHUNK) -> list[Sequence[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]
