"""Queries for `model_files`: the locations of models under the model roots, one row per path,
with what `stat` said of the file when it was last hashed or recognised. A location whose
file is gone keeps its row with `present = 0`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from json.encoder import encode_basestring as encode_string
from typing import Any

import aiosqlite

from modelshelf.storage.rows import chunks, fetch_all, grouped_by_hash, placeholders

Signatures = dict[str, tuple[int, int]]  # file name -> (size, mtime_ns)


@dataclass(frozen=True, slots=True)
class Location:
    """A model file at `path` with content `sha256`, as stat'ed when it was registered."""

    path: str
    sha256: str
    type: str | None
    size_bytes: int
    mtime_ns: int
    inode: int
    device: int
    present: bool = True

    def same_file(self, size: int, mtime_ns: int, inode: int, device: int) -> bool:
        """True if a file with this stat is the one registered (so its content is known)."""
        return (self.size_bytes, self.mtime_ns, self.inode, self.device) == (
            size,
            mtime_ns,
            inode,
            device,
        )


@dataclass(frozen=True, slots=True)
class KnownLocation:
    """A location with what a scan needs to know about its model: whether the model still
    exists, and which location its file facts were last read from, with that location's
    companions as `signatures_text` wrote them."""

    location: Location
    model_exists: bool
    facts_source: str | None
    facts_sources: str | None
    facts_copies: str | None = None
    facts_problems: str | None = None
    # Its model's `path`, or a file its facts were read from, is a location whose file is
    # gone (or that holds other content now): a scan stopped before it brought the model up
    # to date (scan phases 3 and 4) left it so, and the next one must finish that.
    left_behind: bool = False

    def companions_changed(self, companions: Signatures) -> bool:
        """Whether `companions` differ from those the facts were read with (compared as text:
        a rescan of unchanged files parses nothing)."""
        return self.facts_sources != signatures_text(companions)

    def copy_changed(self, companions: Signatures, most: int) -> bool:
        """Whether this location, not the one the facts were read from, was read as one of
        the model's other copies with other companions than `companions`, or was not read
        though it would have been: copies are read by path, at most `most` of them, so one
        that sorts after all of `most` copies read was left out then and is now. Parses
        only the facts of models that have copies."""
        if not self.facts_copies or self.facts_copies == "{}":
            return True
        try:
            copies = json.loads(self.facts_copies)
            read = copies.get(self.location.path)
        except (ValueError, AttributeError):
            return True
        if read is None:
            # Paths sort here as in SQL: code point order is UTF-8's byte order.
            return len(copies) < most or self.location.path < max(copies)
        return signatures_of(read) != companions


LOCATION_COLUMNS = "path, sha256, type, size_bytes, mtime_ns, inode, device, present"
_PREFIXED = "f." + LOCATION_COLUMNS.replace(", ", ", f.")


def _location(row: Any) -> Location:
    """A Location from a row whose first columns are LOCATION_COLUMNS."""
    return Location(row[0], row[1], row[2], row[3], row[4], row[5], row[6], bool(row[7]))


def signatures_text(signatures: Signatures) -> str:
    """The one JSON text of a set of companions' signatures, as stored (names in order)."""
    if not signatures:
        return "{}"
    items = (
        f"{encode_string(name)}:[{size},{mtime_ns}]"
        for name, (size, mtime_ns) in sorted(signatures.items())
    )
    return "{" + ",".join(items) + "}"


def parse_signatures(text: str | None) -> Signatures | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return signatures_of(value)


def signatures_of(value: Any) -> Signatures | None:
    """Signatures from their parsed JSON (None if it is not an object of pairs)."""
    if not isinstance(value, dict):
        return None
    try:
        return {str(k): (int(v[0]), int(v[1])) for k, v in value.items()}
    except (TypeError, ValueError, IndexError, KeyError):
        return None


# Whether the model `m` (its facts `ff`) of a location is left behind (KnownLocation): a
# lookup by primary key for its path and facts source, and for each copy its facts were read
# from (models with copies only; `copies` is JSON this code wrote, checked all the same).
_LEFT_BEHIND = (
    "EXISTS (SELECT 1 FROM model_files g WHERE g.path = m.path"
    "   AND (g.present = 0 OR g.sha256 != m.sha256))"
    " OR EXISTS (SELECT 1 FROM model_files g WHERE g.path = ff.source_path AND g.present = 0)"
    " OR CASE WHEN ff.copies != '{}' AND json_valid(ff.copies) THEN EXISTS ("
    "   SELECT 1 FROM json_each(ff.copies) AS j JOIN model_files g ON g.path = j.key"
    "   WHERE g.present = 0) ELSE 0 END"
)


async def known_locations(
    conn: aiosqlite.Connection, paths: Sequence[str]
) -> dict[str, KnownLocation]:
    """The registered locations among `paths`, with their models' facts bookkeeping."""
    found: dict[str, KnownLocation] = {}
    for chunk in chunks(paths):
        rows = await fetch_all(
            conn,
            f"SELECT {_PREFIXED}, m.sha256 IS NOT NULL,"
            f" ff.source_path, ff.sources, ff.copies, ff.problems, {_LEFT_BEHIND}"
            " FROM model_files AS f"
            " LEFT JOIN models m ON m.sha256 = f.sha256"
            " LEFT JOIN file_facts ff ON ff.model_hash = f.sha256"
            f" WHERE f.path IN ({placeholders(len(chunk))})",
            chunk,
        )
        for row in rows:
            found[row[0]] = KnownLocation(
                _location(row), bool(row[8]), row[9], row[10], row[11], row[12], bool(row[13])
            )
    return found


async def location(conn: aiosqlite.Connection, path: str) -> Location | None:
    rows = await fetch_all(
        conn, f"SELECT {LOCATION_COLUMNS} FROM model_files WHERE path = ?", (path,)
    )
    return _location(rows[0]) if rows else None


async def digests_by_inode(
    conn: aiosqlite.Connection, inodes: Sequence[int]
) -> dict[tuple[int, int, int, int], str]:
    """(device, inode, size, mtime_ns) -> sha256 of every location (present or not) whose
    inode is among `inodes`: a file renamed or moved keeps all four."""
    found: dict[tuple[int, int, int, int], str] = {}
    for chunk in chunks(list(set(inodes))):
        rows = await fetch_all(
            conn,
            "SELECT device, inode, size_bytes, mtime_ns, sha256 FROM model_files"
            f" WHERE inode IN ({placeholders(len(chunk))})",
            chunk,
        )
        for row in rows:
            found[(row[0], row[1], row[2], row[3])] = row[4]
    return found


async def save_location(tx: aiosqlite.Connection, where: Location, last_seen: int) -> None:
    """Insert or replace the location at `where.path`."""
    await tx.execute(
        "INSERT INTO model_files(path, sha256, type, size_bytes, mtime_ns, inode, device,"
        " present, last_seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT(path) DO UPDATE SET sha256 = excluded.sha256, type = excluded.type,"
        " size_bytes = excluded.size_bytes, mtime_ns = excluded.mtime_ns,"
        " inode = excluded.inode, device = excluded.device, present = excluded.present,"
        " last_seen = excluded.last_seen",
        (
            where.path,
            where.sha256,
            where.type,
            where.size_bytes,
            where.mtime_ns,
            where.inode,
            where.device,
            int(where.present),
            last_seen,
        ),
    )


async def mark_seen(tx: aiosqlite.Connection, paths: Sequence[str], last_seen: int) -> None:
    """Present locations found unchanged: seen at `last_seen`."""
    for chunk in chunks(paths):
        await tx.execute(
            f"UPDATE model_files SET last_seen = ? WHERE path IN ({placeholders(len(chunk))})",
            [last_seen, *chunk],
        )


async def mark_present(
    tx: aiosqlite.Connection, found: Iterable[tuple[str, str | None]], last_seen: int
) -> None:
    """Locations (path, type) found unchanged that were missing or of another type."""
    await tx.executemany(
        "UPDATE model_files SET present = 1, type = ?, last_seen = ? WHERE path = ?",
        [(kind, last_seen, path) for path, kind in found],
    )


async def unseen_locations(
    conn: aiosqlite.Connection, before: int, types: Sequence[str] | None
) -> list[tuple[str, str]]:
    """(path, sha256) of present locations not seen since `before`; only of `types` if given."""
    sql = "SELECT path, sha256 FROM model_files WHERE present = 1 AND coalesce(last_seen, 0) < ?"
    params: list[Any] = [before]
    if types is not None:
        sql += f" AND type IN ({placeholders(len(types))})"
        params += list(types)
    return [(r[0], r[1]) for r in await fetch_all(conn, sql, params)]


async def present_at_or_under(conn: aiosqlite.Connection, path: str) -> list[tuple[str, str]]:
    """(path, sha256) of present locations at `path` or inside it, if it is a folder."""
    # '0' follows '/' in byte order: the range holds exactly the paths below `path/`.
    rows = await fetch_all(
        conn,
        "SELECT path, sha256 FROM model_files WHERE present = 1"
        " AND (path = ? OR (path > ? AND path < ?))",
        (path, path + "/", path + "0"),
    )
    return [(r[0], r[1]) for r in rows]


async def mark_missing(tx: aiosqlite.Connection, paths: Sequence[str], before: int) -> list[str]:
    """Mark these locations missing unless seen since `before`; the hashes of those marked."""
    marked: list[str] = []
    for chunk in chunks(paths):
        rows = await fetch_all(
            tx,
            "UPDATE model_files SET present = 0 WHERE present = 1"
            f" AND coalesce(last_seen, 0) < ? AND path IN ({placeholders(len(chunk))})"
            " RETURNING sha256",
            [before, *chunk],
        )
        marked += [r[0] for r in rows]
    return marked


def files_of(db: sqlite3.Connection, hashes: Sequence[str]) -> dict[str, list[tuple[str, bool]]]:
    """sha256 -> [(path, present)] ordered by path (on the connection's thread:
    rows.run_on_connection)."""
    return grouped_by_hash(
        db,
        "SELECT sha256, path, present FROM model_files WHERE sha256 IN ({marks})"
        " ORDER BY sha256, path",
        hashes,
        lambda row: (str(row[1]), bool(row[2])),
    )


async def files_of_model(conn: aiosqlite.Connection, sha256: str) -> list[tuple[str, bool]]:
    """files_of one model, from the event loop."""
    rows = await fetch_all(
        conn, "SELECT path, present FROM model_files WHERE sha256 = ? ORDER BY path", (sha256,)
    )
    return [(str(row[0]), bool(row[1])) for row in rows]


async def facts_locations(conn: aiosqlite.Connection, sha256: str, most: int) -> list[str]:
    """The present locations a model's file facts are read from, at most `most`: its `path`
    first if that is one of them (else the first by path), then the others by path."""
    rows = await fetch_all(
        conn,
        "SELECT f.path FROM model_files f LEFT JOIN models m ON m.sha256 = f.sha256"
        " WHERE f.sha256 = ? AND f.present = 1"
        " ORDER BY f.path IS NOT m.path, f.path LIMIT ?",
        (sha256, most),
    )
    return [str(row[0]) for row in rows]


async def stranded_paths(
    conn: aiosqlite.Connection, hashes: Sequence[str]
) -> dict[str, tuple[str, str | None]]:
    """sha256 -> (the location its `path` should name instead, the type it should take or
    None), for models whose `path` is a location that is gone or now holds other content,
    while they have a present location: the first by path of those in a root of the old
    location's type, else the first by path. The type is the new location's when it differs
    and the model's type is still the one its old location had (a person who set another
    type keeps it)."""
    moved: dict[str, tuple[str, str | None]] = {}
    for chunk in chunks(hashes):
        rows = await fetch_all(
            conn,
            "SELECT m.sha256, b.path,"
            " CASE WHEN m.type IS f.type AND b.type IS NOT f.type THEN b.type END"
            " FROM models m JOIN model_files f ON f.path = m.path"
            " JOIN model_files b ON b.path = coalesce("
            "   (SELECT min(p.path) FROM model_files p"
            "     WHERE p.sha256 = m.sha256 AND p.present = 1 AND p.type IS f.type),"
            "   (SELECT min(p.path) FROM model_files p"
            "     WHERE p.sha256 = m.sha256 AND p.present = 1))"
            f" WHERE m.sha256 IN ({placeholders(len(chunk))})"
            " AND (f.present = 0 OR f.sha256 != m.sha256)",
            chunk,
        )
        moved.update({r[0]: (r[1], r[2]) for r in rows})
    return moved


async def unlisted_paths(
    conn: aiosqlite.Connection, hashes: Sequence[str]
) -> dict[str, tuple[str | None, str]]:
    """sha256 -> (its `path`, its first present location), for models whose `path` is none
    of the locations scans know (a path stage 1 or an import brought, or none) while they
    have a present location."""
    found: dict[str, tuple[str | None, str]] = {}
    for chunk in chunks(hashes):
        rows = await fetch_all(
            conn,
            "SELECT m.sha256, m.path, (SELECT min(p.path) FROM model_files p"
            "   WHERE p.sha256 = m.sha256 AND p.present = 1) AS better"
            f" FROM models m WHERE m.sha256 IN ({placeholders(len(chunk))})"
            " AND NOT EXISTS (SELECT 1 FROM model_files f WHERE f.path = m.path)",
            chunk,
        )
        found.update({r[0]: (r[1], r[2]) for r in rows if r[2] is not None})
    return found


async def present_copies(conn: aiosqlite.Connection) -> list[Any]:
    """Every present location of a content present at two or more paths, with its model's
    name and size: (sha256, path, size_bytes, device, inode, name, model_size), by hash, path."""
    return await fetch_all(
        conn,
        "SELECT f.sha256, f.path, f.size_bytes, f.device, f.inode, m.name,"
        " m.size_bytes AS model_size FROM model_files f"
        " LEFT JOIN models m ON m.sha256 = f.sha256"
        " WHERE f.present = 1 AND f.sha256 IN"
        " (SELECT sha256 FROM model_files WHERE present = 1 GROUP BY sha256 HAVING count(*) > 1)"
        " ORDER BY f.sha256, f.path",
    )
