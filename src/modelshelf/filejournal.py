"""File operations that accompany a database change.

A change prepares its files under a staging folder, then commits the database rows together with
a journal row that lists the file operations still to do. After the commit the operations are
carried out and the journal row is deleted. If the process dies in between, start-up replays the
journal. Every operation is therefore idempotent: carrying it out twice, or finishing one that was
cut off halfway, ends in the same state.

Operations are JSON objects with paths relative to the data directory:
- {"op": "move", "src": ..., "dst": ...}: rename src over dst; done once src is gone.
- {"op": "unlink", "path": ...}: remove a file if it exists.
- {"op": "rmtree", "path": ...}: remove a staging folder if it exists.
- {"op": "shift", "hash": ..., "seq": k, "last": n}: delete image k of a model and move images
  k+1..n down by one, resuming where an interrupted run stopped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

FileOp = dict[str, Any]

QUALITIES = ("high", "medium", "low")


def move(src: Path, dst: Path, root: Path) -> FileOp:
    return {"op": "move", "src": _relative(src, root), "dst": _relative(dst, root)}


def unlink(path: Path, root: Path) -> FileOp:
    return {"op": "unlink", "path": _relative(path, root)}


def rmtree(path: Path, root: Path) -> FileOp:
    return {"op": "rmtree", "path": _relative(path, root)}


def shift(sha256: str, seq: int, last: int) -> FileOp:
    return {"op": "shift", "hash": sha256, "seq": seq, "last": last}


def apply_file_ops(root: Path, ops: list[FileOp]) -> None:
    """Carry out `ops` in order under data directory `root`. Raises OSError on a disk failure."""
    for op in ops:
        kind = op["op"]
        if kind == "move":
            src, dst = root / op["src"], root / op["dst"]
            if src.exists():
                dst.parent.mkdir(parents=True, exist_ok=True)
                src.replace(dst)
        elif kind == "unlink":
            with contextlib.suppress(FileNotFoundError):
                (root / op["path"]).unlink()
        elif kind == "rmtree":
            shutil.rmtree(root / op["path"], ignore_errors=True)
        elif kind == "shift":
            shift_down(root / "images", op["hash"], int(op["seq"]), int(op["last"]))
        else:
            raise ValueError(f"unknown file operation {kind!r}")


def shift_down(images_dir: Path, sha256: str, seq: int, last: int) -> None:
    """Remove image `seq` of a model and move images seq+1..last down by one.

    While it runs, each quality has exactly one hole: at `h` once the file of `h` moved to `h-1`.
    Resuming after an interruption continues after that hole; with no hole nothing was moved yet.
    """
    for quality in QUALITIES:

        def path(s: int, q: str = quality) -> Path:
            return images_dir / f"{sha256}_{s}_{q}.webp"

        if seq >= last:
            with contextlib.suppress(FileNotFoundError):
                path(seq).unlink()
            continue
        hole = next((s for s in range(seq + 1, last + 1) if not path(s).exists()), None)
        for s in range(seq + 1 if hole is None else hole + 1, last + 1):
            path(s).replace(path(s - 1))
        # A moved file keeps its mtime, so the new content of a name could look older than what
        # a cache holds under that name (Last-Modified / If-Modified-Since): mark it as new.
        for s in range(seq, last):
            with contextlib.suppress(FileNotFoundError):
                os.utime(path(s))


def _relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root))
