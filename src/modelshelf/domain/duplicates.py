"""Duplicates: content present at two or more paths under the model roots, and the bytes the
extra copies take."""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from typing import Any

from modelshelf.domain.shelf import Shelf
from modelshelf.storage import model_files


@dataclass
class DuplicateGroup:
    """One content and its present paths. `wasted_bytes` counts every copy but one; paths
    that are the same file (hard links, symlinks to it) take no more room and count once."""

    sha256: str
    name: str | None
    size_bytes: int
    files: list[str] = field(default_factory=list)
    wasted_bytes: int = 0


async def list_duplicates(shelf: Shelf) -> list[DuplicateGroup]:
    """Every content present at two or more paths, most wasted bytes first (then by hash)."""
    async with shelf.storage.read() as conn:
        rows = await model_files.present_copies(conn)
    # Thousands of rows for a collector: grouped in the reads pool, off the event loop.
    return await shelf.run_reads(_groups, rows)


def _groups(rows: list[Any]) -> list[DuplicateGroup]:
    groups = []
    for sha256, copies in groupby(rows, key=itemgetter(0)):
        found = list(copies)
        first = found[0]
        size = first["model_size"] if first["model_size"] is not None else first["size_bytes"]
        distinct = {(row["device"], row["inode"]) for row in found}
        groups.append(
            DuplicateGroup(
                sha256=sha256,
                name=first["name"],
                size_bytes=size or 0,
                files=[row["path"] for row in found],
                wasted_bytes=(size or 0) * (len(distinct) - 1),
            )
        )
    groups.sort(key=lambda g: (-g.wasted_bytes, g.sha256))
    return groups
