"""Walking the model roots: every model file with its type and what `stat` says of it, the
companions beside it, and every entry that could not be read, with its reason.

One `os.scandir` per folder and one `stat` per model file, folder and companion; nothing else
is read. Symlinks are followed, but a folder is walked once however many paths lead to it:
folders are known by (device, inode), real paths are walked before symlinked ones, so a loop
or a second path to a folder is reported instead of followed.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path

from modelshelf.folders.names import (
    EMPTY_MODEL_FILE,
    MODEL_EXTENSIONS,
    companions_by_stem,
    extension,
    is_ignored,
    model_stem,
)
from modelshelf.folders.problems import Problem, is_valid_utf8, printable
from modelshelf.folders.roots import ModelRoots, Root

Identity = tuple[int, int]  # (st_dev, st_ino) of a folder
NOT_REGULAR = "not a regular file"


@dataclass(frozen=True, slots=True)
class FoundFile:
    """A model file as the walk saw it. `path` is the path walked (symlinks kept); size, mtime,
    inode and device are those of the file it leads to. `companions` maps the names of its
    sidecars and example images beside it to their (size, mtime_ns)."""

    path: Path
    type: str
    size: int
    mtime_ns: int
    inode: int
    device: int
    companions: dict[str, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Folder:
    path: str
    type: str
    identity: Identity


class Walk:
    """Iterate over a Walk to get the model files under `roots`, folder by folder in name
    order. Never raises for a bad entry: each one is added to `problems`, which is complete
    once the iteration ends. A Walk can be iterated once."""

    def __init__(
        self,
        roots: ModelRoots | Iterable[Root],
        *,
        walked_elsewhere: Iterable[Path] = (),
        as_walked_by: ModelRoots | None = None,
        leave_other_types: bool = True,
    ) -> None:
        """`walked_elsewhere`: folders that a walk of every root reaches by their real path
        (the other roots, when one folder is walked alone): a symlinked folder that leads into
        one of them is skipped, as a walk of every root would skip it. `as_walked_by`: every
        root, when some are walked: each file is given the path and type a walk of every
        root gives it (a root of these reached through a link into a root of another type is
        walked there), and left out if `leave_other_types` and that type is another root's
        (loras nested inside checkpoints, for a walk of checkpoints)."""
        self._roots = roots.roots if isinstance(roots, ModelRoots) else tuple(roots)
        self._all = as_walked_by
        self._leave_other_types = leave_other_types
        self._resolved: list[Path] | None = None
        # Roots already warned about as not folders are not reported again as problems.
        self._warned = {r for r, _ in roots.missing} if isinstance(roots, ModelRoots) else set()
        self._elsewhere = tuple(os.path.realpath(p) for p in walked_elsewhere)
        self.problems: list[Problem] = []
        self.folders = 0  # folders listed so far
        self._root_types: dict[Identity, str] = {}
        self._seen: dict[Identity, str] = {}  # folder -> the path it was walked by
        self._real: list[_Folder] = []  # a stack: depth first
        self._linked: deque[_Folder] = deque()  # symlinked folders wait for every real one

    def __iter__(self) -> Iterator[FoundFile]:
        self._real = self._start()[::-1]
        while self._real or self._linked:
            if self._real:
                folder = self._real.pop()
            else:
                folder = self._linked.popleft()
                if self._leads_elsewhere(folder):
                    continue
            if self._first_visit(folder):
                yield from self._walk_folder(folder)

    def _leads_elsewhere(self, folder: _Folder) -> bool:
        if not self._elsewhere:
            return False
        real = os.path.realpath(folder.path)
        return any(real == r or real.startswith(r + os.sep) for r in self._elsewhere)

    def _start(self) -> list[_Folder]:
        """The roots that exist, in the order listed; a folder that is the root of two types
        takes the type listed first."""
        folders = []
        for root in self._roots:
            try:
                st = os.stat(root.path)
            except OSError as exc:
                if root not in self._warned:
                    self._report(str(root.path), f"model root ({root.type}) {_describe(exc)}")
                continue
            if not stat.S_ISDIR(st.st_mode):
                if root not in self._warned:
                    self._report(str(root.path), f"model root ({root.type}) is not a folder")
                continue
            identity = (st.st_dev, st.st_ino)
            self._root_types.setdefault(identity, root.type)
            folders.append(_Folder(str(root.path), self._root_types[identity], identity))
        return folders

    def _first_visit(self, folder: _Folder) -> bool:
        first = self._seen.get(folder.identity)
        if first is None:
            self._seen[folder.identity] = folder.path
            return True
        if folder.path.startswith(first + os.sep):
            self._report(folder.path, f"symlink loop: leads back to {printable(first)}")
        elif folder.path != first and folder.identity not in self._root_types:
            self._report(folder.path, f"same folder as {printable(first)}, walked there")
        # Otherwise a root met again (nested in another, or listed by two paths): not a problem.
        return False

    def _walk_folder(self, folder: _Folder) -> Iterator[FoundFile]:
        try:
            with os.scandir(folder.path) as listing:
                entries = sorted(listing, key=attrgetter("name"))
        except OSError as exc:
            self._report(folder.path, f"cannot list folder: {_describe(exc)}")
            return
        self.folders += 1
        models: list[tuple[os.DirEntry[str], os.stat_result]] = []
        others: dict[str, os.DirEntry[str]] = {}
        subfolders: list[_Folder] = []
        for entry in entries:
            kind = self._classify(entry, folder, subfolders)
            if kind is None:
                continue
            if isinstance(kind, os.stat_result):
                models.append((entry, kind))
            else:
                others[entry.name] = entry
        self._real.extend(reversed(subfolders))
        yield from self._found(folder, models, others)

    def _classify(
        self, entry: os.DirEntry[str], folder: _Folder, subfolders: list[_Folder]
    ) -> os.stat_result | bool | None:
        """Sort one entry: a folder is queued (None), a model file gives its stat, any other
        file True (it may be a companion), and what is ignored or unreadable None."""
        name = entry.name
        if name.startswith("."):
            return None
        if not is_valid_utf8(name):
            self._report(entry.path, "name is not valid UTF-8")
            return None
        is_model = extension(name) in MODEL_EXTENSIONS  # never hidden or unfinished here
        try:
            link = entry.is_symlink()
            is_folder = not link and entry.is_dir(follow_symlinks=False)
            if not (link or is_folder or is_model):
                return None if is_ignored(name) else True
            st = entry.stat()
        except OSError as exc:
            if not is_ignored(name):
                self._report(entry.path, _describe_entry(exc, entry))
            return None
        if stat.S_ISDIR(st.st_mode):
            identity = (st.st_dev, st.st_ino)
            child = _Folder(entry.path, self._root_types.get(identity, folder.type), identity)
            (self._linked.append if link else subfolders.append)(child)
            return None
        if is_model:
            if stat.S_ISREG(st.st_mode) and st.st_size:
                return st
            self._report(entry.path, EMPTY_MODEL_FILE if stat.S_ISREG(st.st_mode) else NOT_REGULAR)
            return None
        return None if is_ignored(name) else True

    def _found(
        self,
        folder: _Folder,
        models: list[tuple[os.DirEntry[str], os.stat_result]],
        others: dict[str, os.DirEntry[str]],
    ) -> Iterator[FoundFile]:
        stems = {model_stem(entry.name) for entry, _ in models}
        companions = {
            stem: self._signatures(others[name] for name in names)
            for stem, names in companions_by_stem(others, stems).items()
        }
        parent = Path(folder.path)
        kind = folder.type
        if self._all is not None and models:
            if self._resolved is None:
                self._resolved = self._all.resolved()
            placed = parent / models[0][0].name
            parent = self._all.walked_path(placed, self._resolved).parent
            kind = self._all.walked_type(placed, self._resolved) or kind
            if kind != folder.type and self._leave_other_types:
                return  # another type's, walked by its own scan
        for entry, st in models:
            yield FoundFile(
                path=parent / entry.name,
                type=kind,
                size=st.st_size,
                mtime_ns=st.st_mtime_ns,
                inode=st.st_ino,
                device=st.st_dev,
                companions=companions.get(model_stem(entry.name), {}),
            )

    def _signatures(self, entries: Iterable[os.DirEntry[str]]) -> dict[str, tuple[int, int]]:
        signatures = {}
        for entry in entries:
            try:
                st = entry.stat()
            except OSError:
                continue  # vanished since the listing: nothing to read beside the model
            if stat.S_ISREG(st.st_mode):
                signatures[entry.name] = (st.st_size, st.st_mtime_ns)
        return signatures

    def _report(self, path: str, reason: str) -> None:
        self.problems.append(Problem(printable(path), reason))


def _describe(exc: OSError) -> str:
    if exc.errno == errno.ENOENT:
        return "does not exist"
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return (exc.strerror or str(exc)).lower()


def _describe_entry(exc: OSError, entry: os.DirEntry[str]) -> str:
    """Why a listed entry could not be stat'ed."""
    if exc.errno == errno.ELOOP:
        return "symlink loop: the link leads back to itself"
    if exc.errno == errno.ENOENT:
        if entry.is_symlink():
            return "broken symlink: its target does not exist"
        return "vanished during the walk"
    return f"cannot read: {_describe(exc)}"
