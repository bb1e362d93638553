"""What a scan tells while it runs (ScanProgress) and what it found in the end (ScanResult)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Protocol

from modelshelf.folders.problems import Problem

MAX_PROBLEMS_LISTED = 1000

# The phases of a scan, in order.
WALKING = "walking"  # listing the roots, stat only; unchanged files are done here
HASHING = "hashing"  # hashing new and changed files, registering what was found
CHECKING = "checking"  # marking locations whose file is gone missing
READING = "reading metadata"  # reading the facts of models whose files changed


class ScanProgress(Protocol):
    """Told how a scan goes. Every call is made on the event loop and must not block.

    - `phase(name)`: a phase begins (WALKING, HASHING, CHECKING, READING, in that order);
    - `found(files)`: model files found so far, while walking (the total is not known yet);
    - `planned(files, hash_bytes)`: the walk is done: `files` model files in all, of which
      `hash_bytes` bytes are to be read and hashed;
    - `hashed(count)`: `count` more of those bytes were hashed (or skipped: a file that
      failed or turned out to be known counts its remaining bytes, so the two totals meet;
      one a cancelled scan was reading does not);
    - `file_done(path)`: one more file is finished (unchanged, registered or reported);
      called once for each file found.
    """

    def phase(self, name: str) -> None: ...

    def found(self, files: int) -> None: ...

    def planned(self, files: int, hash_bytes: int) -> None: ...

    def hashed(self, count: int) -> None: ...

    def file_done(self, path: str) -> None: ...


class NoProgress:
    """A ScanProgress that listens to nothing."""

    def phase(self, name: str) -> None:
        pass

    def found(self, files: int) -> None:
        pass

    def planned(self, files: int, hash_bytes: int) -> None:
        pass

    def hashed(self, count: int) -> None:
        pass

    def file_done(self, path: str) -> None:
        pass


@dataclass
class ScanCounts:
    """What a scan did, file by file and location by location."""

    files_found: int = 0  # model files under the roots scanned
    unchanged: int = 0  # known, same size, mtime and inode: not read at all
    hashed: int = 0  # read and hashed
    bytes_hashed: int = 0
    recognised: int = 0  # content known without reading: moved, renamed, or hashed before
    failed: int = 0  # could not be read or registered (see problems)
    models_created: int = 0  # content no model had
    locations_added: int = 0  # a new path of content a model already had
    locations_changed: int = 0  # a known path whose content changed
    locations_back: int = 0  # a missing location whose file is there again
    locations_missing: int = 0  # marked missing: the file is gone
    paths_moved: int = 0  # models whose `path` moved to a present location
    metadata_read: int = 0  # models whose files' facts were read
    images_added: int = 0
    tags_added: int = 0


@dataclass
class ScanResult:
    """Counts, and each problem met with its reason (the first MAX_PROBLEMS_LISTED), once,
    however often the files of a model are read in one scan (a header's problems kept from
    before are met again when the sidecars beside it are read)."""

    counts: ScanCounts = field(default_factory=ScanCounts)
    problems: list[Problem] = field(default_factory=list)
    problems_not_listed: int = 0
    warnings: list[str] = field(default_factory=list)
    _met: set[Problem] = field(default_factory=set, repr=False)

    def problem(self, problem: Problem) -> None:
        if problem in self._met:
            return
        self._met.add(problem)
        if len(self.problems) < MAX_PROBLEMS_LISTED:
            self.problems.append(problem)
        else:
            self.problems_not_listed += 1

    def as_json(self) -> dict[str, Any]:
        """`{"counts": {...}, "problems": [{"path", "reason"}], "problems_not_listed",
        "warnings"}`."""
        return {
            "counts": {f.name: getattr(self.counts, f.name) for f in fields(self.counts)},
            "problems": [{"path": p.path, "reason": p.reason} for p in self.problems],
            "problems_not_listed": self.problems_not_listed,
            "warnings": list(self.warnings),
        }
