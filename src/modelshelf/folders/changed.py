"""What changed at some paths under the model roots (a watcher's events): the model files to
look at again, with their companions; folders that appeared, to walk; paths that are gone.

Synchronous and stat-only, like the walk: the scan runs it in an executor.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from modelshelf.folders.names import (
    EMPTY_MODEL_FILE,
    companion_stems,
    companions_by_stem,
    is_model_name,
    model_stem,
)
from modelshelf.folders.problems import Problem, is_valid_utf8, printable
from modelshelf.folders.roots import ModelRoots, Root
from modelshelf.folders.walk import FoundFile

Signatures = dict[str, tuple[int, int]]


@dataclass
class Changed:
    """`found`: model files to look at again; `folders`: folders to walk (with the type of
    the root holding them); `gone`: paths where nothing is any more."""

    found: list[FoundFile] = field(default_factory=list)
    folders: list[Root] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def look_at(roots: ModelRoots, paths: Iterable[str]) -> Changed:
    """Sort changed paths: a model file is looked at again; a sidecar or example image makes
    the models of its stem beside it looked at again; a folder is to be walked; a path where
    nothing is any more is gone (and its stem's models are looked at again, a sidecar may
    have gone). Paths outside the roots, hidden or unfinished are left out."""
    changed = Changed()
    listings: dict[Path, list[str]] = {}
    models: dict[Path, str] = {}
    resolved = roots.resolved()
    for text in sorted(set(_walked_paths(roots, paths, resolved))):
        path = Path(text)
        kind = roots.type_of(path)
        if kind is None or _hidden(roots, path):
            continue
        # As a walk gives it: a root reached through a link into another's folder is known.
        kind = roots.walked_type(path, resolved) or kind
        try:
            st = os.stat(path)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                changed.gone.append(text)
                models.update(_models_of_companion(path, listings, kind))
            else:
                changed.problems.append(Problem(printable(path), f"cannot read: {exc.strerror}"))
            continue
        if stat.S_ISDIR(st.st_mode):
            changed.folders.append(Root(path, kind))
        elif stat.S_ISREG(st.st_mode) and is_model_name(path.name) and not st.st_size:
            changed.problems.append(Problem(printable(path), EMPTY_MODEL_FILE))
            changed.gone.append(text)  # a location there no longer holds its content
        elif stat.S_ISREG(st.st_mode) and is_model_name(path.name):
            models[path] = kind
        elif stat.S_ISREG(st.st_mode):
            models.update(_models_of_companion(path, listings, kind))
    for path, kind in sorted(models.items()):
        found = found_file(path, kind, listings)
        if found is not None:
            changed.found.append(found)
    return changed


def _walked_paths(roots: ModelRoots, paths: Iterable[str], resolved: list[Path]) -> Iterator[str]:
    """Each path under the roots by the path a walk finds it by: a change reported through a
    symlinked folder that leads into a root is a change at the real path (a walk never makes
    a location of the linked one, and inotify reports a folder's changes by whichever path
    to it was watched last). Names that are not UTF-8 are left out, as the walk leaves them."""
    for text in paths:
        path = Path(text)
        if roots.type_of(path) is None or not is_valid_utf8(text):
            continue
        walked = str(roots.walked_path(path, resolved))
        if is_valid_utf8(walked):
            yield walked


def found_file(
    path: Path, kind: str, listings: dict[Path, list[str]] | None = None
) -> FoundFile | None:
    """The model file at `path` as a walk would find it, or None if it is not one now (not a
    regular file, or empty)."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or not st.st_size:
        return None
    return FoundFile(
        path=path,
        type=kind,
        size=st.st_size,
        mtime_ns=st.st_mtime_ns,
        inode=st.st_ino,
        device=st.st_dev,
        companions=companions_of(path, listings),
    )


def companions_of(model: Path, listings: dict[Path, list[str]] | None = None) -> Signatures:
    """The sidecars and example images beside `model` with their (size, mtime_ns): what a
    walk gives as `FoundFile.companions`. Stat only."""
    names = _listing(model.parent, {} if listings is None else listings)
    stem = model_stem(model.name)
    found: Signatures = {}
    for name in companions_by_stem(names, {stem}).get(stem, []):
        try:
            st = os.stat(model.parent / name)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            found[name] = (st.st_size, st.st_mtime_ns)
    return found


def _models_of_companion(path: Path, listings: dict[Path, list[str]], kind: str) -> dict[Path, str]:
    stems = {stem for stem, _suffix in companion_stems(path.name)}
    if not stems:
        return {}
    return {
        path.parent / name: kind
        for name in _listing(path.parent, listings)
        if is_model_name(name) and model_stem(name) in stems
    }


def _listing(folder: Path, listings: dict[Path, list[str]]) -> list[str]:
    if folder not in listings:
        try:
            listings[folder] = sorted(os.listdir(folder))
        except OSError:
            listings[folder] = []
    return listings[folder]


def _hidden(roots: ModelRoots, path: Path) -> bool:
    """True if a folder or file name below the deepest root holding `path` starts with a
    dot (a walk never enters such a folder)."""
    holding = [r.path for r in roots.roots if path != r.path and path.is_relative_to(r.path)]
    if not holding:
        return True
    deepest = max(holding, key=lambda p: len(p.parts))
    return any(part.startswith(".") for part in path.relative_to(deepest).parts)
