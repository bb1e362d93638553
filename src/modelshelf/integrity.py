"""A consistency check of a data directory: do the database and the images folder agree?

Meant for a library at rest (the service stopped, or started and idle): it reads the database
read-only and lists every disagreement it finds. `modelshelf check` runs it. It is the oracle
that crash and fault tests rely on, and it is tested by corrupting libraries on purpose.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from modelshelf.errors import NotFound
from modelshelf.imagefolder import DiskImages, ImageFolder
from modelshelf.records import is_sha256
from modelshelf.renditions import qualities
from modelshelf.storage import consistency
from modelshelf.storage.database import DATABASE_NAME

# The pixel limit plays no part in a check; ImageFolder wants one.
_NO_RENDERING = 1


def check_library(data_dir: Path) -> list[str]:
    """Every problem found, as sentences; an empty list means the library is consistent.
    Raises NotFound if `data_dir` holds no library."""
    database = data_dir / DATABASE_NAME
    if not database.is_file():
        raise NotFound(f"{data_dir} holds no modelshelf library (no {DATABASE_NAME})")
    folder = ImageFolder(data_dir, _NO_RENDERING)
    disk = folder.scan() if folder.root.is_dir() else DiskImages()
    with consistency.open_read_only(database) as conn:
        hashes = {str(h) for h in consistency.model_hashes(conn)}
        problems = [f"model hash {h!r} is not 64 lowercase hex" for h in hashes if not is_sha256(h)]
        problems += [f"foreign key broken: {r}" for r in consistency.foreign_key_problems(conn)]
        problems += _check_index(consistency.index_rows(conn), hashes, disk)
        problems += _check_pending_images(consistency.pending_images(conn), disk)
        problems += [
            f"unfinished file journal entry {i} (the next start carries it out)"
            for i in consistency.unfinished_journal(conn)
        ]
        problems += [
            f"file journal entry {i} was set aside: {reason}"
            for i, reason in consistency.set_aside_journal(conn)
        ]
    return problems + (folder.leftovers() if folder.root.is_dir() else [])


def _check_index(rows: list[tuple[str, int]], hashes: set[str], disk: DiskImages) -> list[str]:
    problems: list[str] = []
    seqs: dict[str, list[int]] = defaultdict(list)
    for sha256, seq in rows:
        seqs[sha256].append(seq)
        present = disk.renditions.get((sha256, seq), set())
        missing = [q for q in qualities() if q not in present]
        if sha256 not in hashes:
            problems.append(f"image index row {sha256}_{seq} for unknown model")
        if not present:
            problems.append(f"image {sha256}_{seq} is listed but none of its renditions is on disk")
        elif missing:
            problems.append(f"image {sha256}_{seq} is listed but lacks {', '.join(missing)}")
    problems += [
        f"model {h} has image seqs {s}, not 0..{len(s) - 1}"
        for h, s in seqs.items()
        if s != list(range(len(s)))
    ]
    listed = set(rows)
    problems += [
        f"image {h}_{s} is on disk but not listed (orphan)"
        for h, s in sorted(set(disk.renditions) - listed)
    ]
    return problems


def _check_pending_images(indexed: dict[int, str], disk: DiskImages) -> list[str]:
    problems = [
        f"pending image {i}.{e} is recorded but missing"
        for i, e in sorted(indexed.items())
        if disk.pending.get(i) != e
    ]
    problems += [
        f"pending image {i}.{e} is on disk but not recorded"
        for i, e in sorted(disk.pending.items())
        if indexed.get(i) != e
    ]
    return problems
