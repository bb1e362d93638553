"""Queries for browsing the library: filtered, paged model listings."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiosqlite


@dataclass(frozen=True)
class ModelFilter:
    type: str | None = None
    tag: str | None = None
    q: str | None = None
    # True: models with no present location; False: models with at least one.
    missing: bool | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        params: list[Any] = []
        if self.type is not None:
            clauses.append("m.type = ?")
            params.append(self.type)
        if self.tag is not None:
            clauses.append(
                "EXISTS (SELECT 1 FROM model_tags mt JOIN tags t ON t.id = mt.tag_id"
                " WHERE mt.model_hash = m.sha256 AND t.name = ?)"
            )
            params.append(self.tag)
        if self.q:
            pattern = (
                "%" + self.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            )
            clauses.append("(m.name LIKE ? ESCAPE '\\' OR m.path LIKE ? ESCAPE '\\')")
            params += [pattern, pattern]
        if self.missing is not None:
            present = "SELECT 1 FROM model_files f WHERE f.sha256 = m.sha256 AND f.present = 1"
            clauses.append(f"{'NOT ' if self.missing else ''}EXISTS ({present})")
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


async def count_models(conn: aiosqlite.Connection, where: ModelFilter) -> int:
    sql, params = where.where()
    async with conn.execute(f"SELECT count(*) FROM models m{sql}", params) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def page_of_hashes(
    conn: aiosqlite.Connection, where: ModelFilter, limit: int, offset: int
) -> list[str]:
    """Hashes of one page, ordered by name (case-insensitive) then hash; uses models_name."""
    sql, params = where.where()
    async with conn.execute(
        f"SELECT m.sha256 FROM models m{sql}"
        " ORDER BY m.name COLLATE NOCASE, m.sha256 LIMIT ? OFFSET ?",
        [*params, limit, offset],
    ) as cursor:
        return [str(r[0]) for r in await cursor.fetchall()]
