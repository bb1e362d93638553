"""File operations that accompany a database change, carried out after its commit.

A change prepares its files in a staging folder, then commits its rows together with a journal
entry listing the operations still to do; after the commit they are carried out and the entry
is forgotten. If the process dies in between, start-up replays the entry. So every operation is
idempotent (carrying it out twice, or finishing one cut off halfway, ends in the same state) and
tolerant (a file already where it should be, or gone, is noted, not an error).

Operations are JSON objects with paths relative to the data directory:
- {"op": "move", "src", "dst"}: rename src over dst; done once src is gone.
- {"op": "unlink", "path"}: remove a file if it exists.
- {"op": "renumber", "hash", "moves": [[old, new], ...], "drop": [old, ...], "folder"}: give a
  model's images new seqs. Every rendition of every old seq involved is first moved aside into
  `folder` (a staging folder created before the commit), then each one in `moves` is moved back
  under its new seq; those in `drop` stay in the folder and go with it. A marker in the folder
  records that the first phase is complete. Because each file moves by its own (seq, quality),
  a rendition that is missing stays missing: the renditions of two images are never mixed.
Staging folders are removed once the operations are carried out (and at start-up, after
replay), so a replay that finds a renumber's folder gone finds it finished.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from modelshelf.crashpoints import crashpoint
from modelshelf.durability import sync_folders
from modelshelf.renditions import qualities, rendition_file_name

FileOp = dict[str, Any]
MOVED_OUT_MARKER = ".moved-out"
# A rendition's file name begins with its model's hash (see renditions.rendition_file_name).
_MODEL_FILE = re.compile(r"([0-9a-f]{64})_")


class FileOpError(Exception):
    """An operation that cannot be carried out as written (malformed, or outside the root)."""


def move(src: Path, dst: Path, root: Path) -> FileOp:
    return {"op": "move", "src": _relative(src, root), "dst": _relative(dst, root)}


def unlink(path: Path, root: Path) -> FileOp:
    return {"op": "unlink", "path": _relative(path, root)}


def renumber(
    sha256: str, moves: Iterable[tuple[int, int]], drop: Iterable[int], folder: Path, root: Path
) -> FileOp:
    return {
        "op": "renumber",
        "hash": sha256,
        "moves": [[old, new] for old, new in moves if old != new],
        "drop": sorted(drop),
        "folder": _relative(folder, root),
    }


def models_touched(ops: Iterable[FileOp]) -> set[str]:
    """The models whose rendition files `ops` move, replace or remove."""
    touched: set[str] = set()
    for op in ops:
        if not isinstance(op, dict):
            continue  # a malformed entry read back from the journal
        if op.get("op") == "renumber":
            touched.add(str(op.get("hash")))
            continue
        for key in ("src", "dst", "path"):
            match = _MODEL_FILE.match(os.path.basename(str(op.get(key, ""))))
            if match:
                touched.add(match[1])
    return touched


def apply_file_ops(root: Path, ops: list[FileOp]) -> list[str]:
    """Carry out `ops` in order under data directory `root`; returns notes on operations found
    already done or impossible (a source gone). Raises OSError on a disk failure and
    FileOpError for an operation that is malformed."""
    notes: list[str] = []
    touched: set[Path] = set()
    for op in ops:
        crashpoint("fileop.before")
        kind = op.get("op")
        if kind == "move":
            destination = _inside(root, op["dst"])
            notes += _move(root, _inside(root, op["src"]), destination)
            touched.add(destination.parent)
        elif kind == "unlink":
            path = _inside(root, op["path"])
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            touched.add(path.parent)
        elif kind == "renumber":
            notes += _renumber(root, op)
            touched.add(root / "images")
        else:
            raise FileOpError(f"unknown file operation {kind!r}")
        crashpoint("fileop.after")
    # On the disk before the caller forgets the journal entry that could replay them.
    sync_folders(sorted(touched))
    return notes


def _move(root: Path, src: Path, dst: Path) -> list[str]:
    try:
        src.replace(dst)
    except FileNotFoundError:
        if not dst.parent.is_dir():
            dst.parent.mkdir(parents=True, exist_ok=True)
            return _move(root, src, dst)
        if src.exists():
            raise
        if dst.exists():
            return []  # done before (a replay)
        return [f"{_relative(src, root)} is gone and {_relative(dst, root)} was never made"]
    return []


def _renumber(root: Path, op: FileOp) -> list[str]:
    sha256, folder = str(op["hash"]), _inside(root, op["folder"])
    images = root / "images"
    moves = [(int(old), int(new)) for old, new in op["moves"]]
    # New seqs too: whatever lies at a target name (an orphan rendition) must not mix in.
    involved = sorted({*(int(s) for s in op["drop"]), *(seq for move in moves for seq in move)})
    if not folder.is_dir():
        # Created before the commit and removed only after the entry was forgotten: a replay
        # that finds it gone finds a renumber that was finished.
        return []
    marker = folder / MOVED_OUT_MARKER
    if not marker.exists():
        for seq in involved:
            for quality in qualities():
                name = rendition_file_name(sha256, seq, quality)
                with contextlib.suppress(FileNotFoundError):
                    (images / name).replace(folder / f"{seq}_{quality}")
                    crashpoint("renumber.moved_aside")
        # The moves aside on the disk before the marker that says they are done.
        sync_folders([images, folder])
        marker.touch()
        crashpoint("renumber.moved_out")
    for old, new in moves:
        for quality in qualities():
            target = images / rendition_file_name(sha256, new, quality)
            with contextlib.suppress(FileNotFoundError):
                (folder / f"{old}_{quality}").replace(target)
                # A moved file keeps its mtime, so the new content of a name could look older
                # than what a cache holds under it (If-Modified-Since): mark it as new.
                os.utime(target)
            crashpoint("renumber.moved_in")
    return []


def _inside(root: Path, relative: object) -> Path:
    if not isinstance(relative, str) or not relative or os.path.isabs(relative):
        raise FileOpError(f"{relative!r} is not a path inside the data directory")
    path = root / relative
    if ".." in Path(relative).parts:
        raise FileOpError(f"{relative!r} leaves the data directory")
    return path


def _relative(path: Path, root: Path) -> str:
    return str(path.relative_to(root))
