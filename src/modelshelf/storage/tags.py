"""Queries for the `tags` table, and for links between tags and many models at once (tagging
a list of models, a tag that goes)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence

import aiosqlite

from modelshelf.records import Tag
from modelshelf.storage.rows import fetch_all, fetch_one, fetch_value


async def list_tags(conn: aiosqlite.Connection) -> list[sqlite3.Row]:
    """Every tag with the number of models carrying it, by name."""
    return await fetch_all(
        conn,
        "SELECT t.id, t.name, (SELECT count(*) FROM model_tags mt WHERE mt.tag_id = t.id) AS models"
        " FROM tags t ORDER BY t.name",
    )


async def tag_id_by_name(conn: aiosqlite.Connection, name: str) -> int | None:
    """The id of the tag `name` names (see tag_ids_by_names), None if none does."""
    return (await tag_ids_by_names(conn, [name])).get(name)


async def tag_id_taken(conn: aiosqlite.Connection, tag_id: int) -> bool:
    return await fetch_value(conn, "SELECT 1 FROM tags WHERE id = ?", (tag_id,)) is not None


async def insert_tag(tx: aiosqlite.Connection, name: str, tag_id: int | None = None) -> int:
    """Insert a tag (with `tag_id`, or a new id when None) and return its id."""
    cursor = await tx.execute("INSERT INTO tags(id, name) VALUES (?, ?)", (tag_id, name))
    if cursor.lastrowid is None:  # pragma: no cover - SQLite always reports it for an INSERT
        raise RuntimeError("SQLite did not report the new tag's id")
    return int(cursor.lastrowid)


async def fetch_tag(conn: aiosqlite.Connection, tag_id: int) -> Tag | None:
    row = await fetch_one(conn, "SELECT id, name FROM tags WHERE id = ?", (tag_id,))
    return None if row is None else Tag(id=row[0], name=row[1])


async def tag_ids_for_names(tx: aiosqlite.Connection, names: list[str]) -> list[int]:
    """The ids of the tags these names name (see tag_ids_by_names), creating those that do
    not exist yet."""
    found = await tag_ids_by_names(tx, names)
    return [found[n] if n in found else await insert_tag(tx, n) for n in names]


async def rename_tag(tx: aiosqlite.Connection, tag_id: int, name: str) -> None:
    await tx.execute("UPDATE tags SET name = ? WHERE id = ?", (name, tag_id))


async def merge_tag(tx: aiosqlite.Connection, tag_id: int, into: int) -> None:
    """Every model and pending model carrying tag `tag_id` carries tag `into` instead (once,
    if it carried both), and tag `tag_id` is deleted."""
    # NOT EXISTS rather than INSERT OR IGNORE alone: a library another program made may lack
    # the links' primary key (its tables are adopted as they are).
    for links, owner in (("model_tags", "model_hash"), ("pending_model_tags", "model_id")):
        await tx.execute(
            f"INSERT OR IGNORE INTO {links}({owner}, tag_id) SELECT DISTINCT l.{owner}, ?1"
            f" FROM {links} l WHERE l.tag_id = ?2 AND NOT EXISTS (SELECT 1 FROM {links} o"
            f" WHERE o.{owner} = l.{owner} AND o.tag_id = ?1)",
            (into, tag_id),
        )
    # A legacy tag that became `tag_id` is `into` now, for a later run of stage 1.
    await tx.execute("UPDATE legacy_tag_log SET tag_id = ? WHERE tag_id = ?", (into, tag_id))
    await delete_tag(tx, tag_id)


async def delete_tag(tx: aiosqlite.Connection, tag_id: int) -> None:
    """Remove a tag and every link to it, from models and pending models alike."""
    await tx.execute("DELETE FROM model_tags WHERE tag_id = ?", (tag_id,))
    await tx.execute("DELETE FROM pending_model_tags WHERE tag_id = ?", (tag_id,))
    # Stage 1 run again makes no tag deleted here again (nor follows its id, if reused).
    await tx.execute("UPDATE legacy_tag_log SET tag_id = NULL WHERE tag_id = ?", (tag_id,))
    await tx.execute("DELETE FROM tags WHERE id = ?", (tag_id,))


def _json_list(items: Sequence[str] | Sequence[int]) -> str:
    """A list as one parameter, read back with json_each: any length, under SQLite's cap on
    bound parameters."""
    return json.dumps(list(items))


async def tag_ids_by_names(conn: aiosqlite.Connection, names: Sequence[str]) -> dict[str, int]:
    """name -> id of the tags among `names` that exist (none is created): the tag of that
    very name, else one spelt so in another case (a stage-1 `Anime` for `anime`; SQLite's
    NOCASE folds ASCII letters only), the oldest if several."""
    rows = await fetch_all(
        conn,
        """
        SELECT asked.value, tags.id, tags.name = asked.value FROM json_each(?) AS asked
        JOIN tags ON tags.name = asked.value COLLATE NOCASE
        """,
        (_json_list(names),),
    )
    found: dict[str, int] = {}
    # Best first, the first kept: the very name, then the oldest tag.
    for name, tag_id, _ in sorted(rows, key=lambda r: (not r[2], r[1])):
        found.setdefault(str(name), int(tag_id))
    return found


async def models_retagged(
    conn: aiosqlite.Connection,
    hashes: Sequence[str],
    add: Sequence[int],
    wanted: int,
    remove: Sequence[int],
) -> list[tuple[str, bool]]:
    """The models among `hashes`, in that order (unknown hashes left out), each with whether
    its tags would change: it carries fewer than `wanted` of the tags `add` (so it lacks one
    of the `wanted` names, some of which may be no tag yet), or one of `remove`."""
    rows = await fetch_all(
        conn,
        "SELECT m.sha256, (SELECT count(DISTINCT l.tag_id) FROM model_tags l"
        "   WHERE l.model_hash = m.sha256 AND l.tag_id IN (SELECT value FROM json_each(?2))) < ?3"
        " OR EXISTS (SELECT 1 FROM model_tags l"
        "   WHERE l.model_hash = m.sha256 AND l.tag_id IN (SELECT value FROM json_each(?4)))"
        " FROM json_each(?1) j JOIN models m ON m.sha256 = j.value ORDER BY j.key",
        (_json_list(hashes), _json_list(add), wanted, _json_list(remove)),
    )
    return [(str(r[0]), bool(r[1])) for r in rows]


async def link_models(
    tx: aiosqlite.Connection, hashes: Sequence[str], tag_ids: Sequence[int]
) -> None:
    """Every model of `hashes` carries every tag of `tag_ids` (links already there are kept,
    never doubled)."""
    await tx.execute(
        "INSERT OR IGNORE INTO model_tags(model_hash, tag_id) SELECT h.value, t.value"
        " FROM json_each(?) h, json_each(?) t WHERE NOT EXISTS (SELECT 1 FROM model_tags l"
        "  WHERE l.model_hash = h.value AND l.tag_id = t.value)",
        (_json_list(hashes), _json_list(tag_ids)),
    )


async def unlink_models(
    tx: aiosqlite.Connection, hashes: Sequence[str], tag_ids: Sequence[int]
) -> None:
    """No model of `hashes` carries any tag of `tag_ids`."""
    await tx.execute(
        "DELETE FROM model_tags WHERE model_hash IN (SELECT value FROM json_each(?))"
        " AND tag_id IN (SELECT value FROM json_each(?))",
        (_json_list(hashes), _json_list(tag_ids)),
    )
