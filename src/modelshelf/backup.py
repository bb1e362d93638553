"""A backup of a library that is itself a library: `modelshelf backup TARGET` copies the
database and the image files of a data directory into TARGET, while the service runs or not,
and checks the copy as `modelshelf check` would.

While the service runs, the database is copied as of one instant (SQLite's online backup) and
the image files after it. That copy is kept only if no change put files in place or removed
them in between (the file journal's marks, storage.snapshot, are unchanged); otherwise it is
made again, and the files already copied are not copied twice (same size and time). The
service is never stopped or slowed beyond the reads of a copy.

TARGET is a folder of its own: made if missing, else empty or an earlier backup (it holds the
file BACKUP_MARK). Files a backup no longer holds are removed from it. Its database is removed
first and put in place last, so a backup cut short is never taken for a library.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from modelshelf.durability import sync_folders
from modelshelf.errors import Conflict, InvalidInput, NotFound, Unprocessable
from modelshelf.imagefolder import ImageFolder
from modelshelf.integrity import check_library
from modelshelf.progress import Progress
from modelshelf.renditions import rendition_file_name
from modelshelf.storage.database import DATABASE_NAME
from modelshelf.storage.dirlock import LOCK_NAME, DataDirInUse, DirectoryLock
from modelshelf.storage.snapshot import (
    FileMarks,
    copy_database,
    file_marks,
    remove_database,
    schema_behind,
)

BACKUP_MARK = ".modelshelf-backup"
ATTEMPTS = 5
# A change's files are put in place within milliseconds of its commit.
UNFINISHED_WAIT_S = 0.5
_PARTIAL_DATABASE = ".modelshelf.db.partial"
# The pixel limit plays no part in listing files; ImageFolder wants one.
_NO_RENDERING = 1


@dataclass
class BackupReport:
    """What a backup did. `problems` are what `modelshelf check` finds in the copy (none: it
    is a consistent library); `attempts` how many copies it took (more than one while the
    service changed images meanwhile)."""

    target: str
    attempts: int = 0
    files_copied: int = 0
    files_kept: int = 0
    files_removed: int = 0
    bytes_copied: int = 0
    problems: list[str] = field(default_factory=list)


def back_up(
    data_dir: Path,
    target: Path,
    *,
    bar: bool | None = None,
    copied: Callable[[int], None] | None = None,
) -> BackupReport:
    """Copy the library in `data_dir` into `target` (see the module). `copied(attempt)` is
    called once an attempt's files are copied, before they are judged. Raises NotFound if
    `data_dir` holds no library, InvalidInput for a `target` that is not a backup's folder,
    Conflict if another backup into `target` runs (or a service serves it) or if the images
    kept changing through every attempt, Unprocessable if a change interrupted by a crash
    waits for the service to finish it, OSError for a copy that fails."""
    data_dir, target = data_dir.resolve(), target.resolve()
    if not (data_dir / DATABASE_NAME).is_file():
        raise NotFound(f"{data_dir} holds no modelshelf library (no {DATABASE_NAME})")
    behind = schema_behind(data_dir / DATABASE_NAME)
    if behind:
        raise Unprocessable(
            f"the library in {data_dir} is not at this version's schema ({behind}): back it up"
            " with the modelshelf that serves it, or start this one on it once (it migrates"
            " the library), then back up"
        )
    _check_target(data_dir, target)
    report = BackupReport(target=str(target))
    target.mkdir(parents=True, exist_ok=True)
    with _service_stopped(data_dir) as stopped, _target_held(target):
        (target / BACKUP_MARK).touch()
        try:
            while not _attempt(data_dir, target, report, stopped=stopped, bar=bar, copied=copied):
                if report.attempts >= ATTEMPTS:
                    raise _unsettled(data_dir / DATABASE_NAME)
        except BaseException:  # Ctrl-C too: no half-made database is left behind
            remove_database(target / _PARTIAL_DATABASE)
            raise
        _flush_everything()  # the files' bytes on the disk before the copy is a library
        os.replace(target / _PARTIAL_DATABASE, target / DATABASE_NAME)
        sync_folders([target])
    report.problems = check_library(target)
    return report


def _attempt(
    data_dir: Path,
    target: Path,
    report: BackupReport,
    *,
    stopped: bool,
    bar: bool | None,
    copied: Callable[[int], None] | None,
) -> bool:
    """One copy of the database, then of the files; whether it holds (nothing changed files
    meanwhile)."""
    report.attempts += 1
    database = data_dir / DATABASE_NAME
    marks = copy_database(database, target / _PARTIAL_DATABASE)
    if marks.unfinished and stopped:
        raise Unprocessable(
            f"the service on {data_dir} stopped before a change was finished: start it once"
            " (it finishes the change), then back up again"
        )
    if marks.unfinished:  # a change's files are being put in place right now
        time.sleep(UNFINISHED_WAIT_S)
        return False
    # An earlier backup stays a library until this one changes its files: a backup refused
    # before then (a change unfinished, a full disk for the database) leaves it as it was.
    remove_database(target / DATABASE_NAME)
    library, copy = ImageFolder(data_dir, _NO_RENDERING), ImageFolder(target, _NO_RENDERING)
    _copy_files(library, copy, report, bar)
    if copied is not None:
        copied(report.attempts)
    return stopped or file_marks(database) == FileMarks(marks.last, 0)


def _unsettled(database: Path) -> Conflict:
    if file_marks(database).unfinished:
        return Conflict(
            "the service had a change whose image files were still not in place after"
            f" {ATTEMPTS} tries: a large change still running, or one the images folder"
            " refused (full or read-only: the service's log then says so); back up again later"
        )
    return Conflict(
        f"the library's images changed during each of {ATTEMPTS} copies; back up when it is"
        " quieter, or stop the service first"
    )


def _flush_everything() -> None:
    """Every file system's written data to its disk: one call, not one fsync per file of a
    backup of 150,000 (Windows has no such call; there, the files are as durable as NTFS
    makes them)."""
    if hasattr(os, "sync"):
        os.sync()


def _check_target(data_dir: Path, target: Path) -> None:
    if target == data_dir or data_dir in target.parents or target in data_dir.parents:
        raise InvalidInput(f"{target}: a backup goes outside the data directory, and holds none")
    if target.exists() and not target.is_dir():
        raise InvalidInput(f"{target} is not a folder")
    # Its lock file alone (a backup stopped before it marked the folder) is no content.
    if target.is_dir() and not (target / BACKUP_MARK).exists() and _holds_files(target):
        raise InvalidInput(
            f"{target} is not empty and holds no earlier backup: choose a new or empty folder"
        )


def _holds_files(folder: Path) -> bool:
    return any(entry.name != LOCK_NAME for entry in folder.iterdir())


@contextmanager
def _service_stopped(data_dir: Path) -> Iterator[bool]:
    """Whether no service runs on the data directory; if none does, the directory's lock is
    held meanwhile, so none starts during the backup."""
    lock = DirectoryLock(data_dir)
    try:
        lock.acquire()
    except (DataDirInUse, OSError):
        # OSError: a lock file this process may not open (a read-only snapshot of the data
        # directory, another user's): the journal's marks then tell, as beside a service.
        yield False
        return
    try:
        yield True
    finally:
        lock.release()


@contextmanager
def _target_held(target: Path) -> Iterator[None]:
    """The target's directory lock, as a data directory's: two backups into one folder would
    interleave their files, and a service of the copy would read it half-written. Raises
    Conflict if it is held."""
    lock = DirectoryLock(target)
    try:
        lock.acquire()
    except DataDirInUse:
        raise Conflict(
            f"{target} is in use: another backup into it is running, or a service serves it"
        ) from None
    try:
        yield
    finally:
        lock.release()


def _copy_files(
    source: ImageFolder, copy: ImageFolder, report: BackupReport, bar: bool | None
) -> None:
    """The library's image files into `copy`, each copied unless there with its size and time;
    files of the copy the library no longer has are removed. Paths are strings: 150,000
    Paths, made and parsed, cost seconds."""
    wanted = dict(_library_files(source, copy))
    copy.root.mkdir(exist_ok=True)
    copy.pending_dir.mkdir(exist_ok=True)
    to_copy: list[tuple[str, str, int, bool]] = []
    for there, here in wanted.items():
        try:
            info = os.stat(here)
        except FileNotFoundError:
            continue  # removed by a change since it was listed: the marks tell
        had = _size_and_time(there)
        if had == (info.st_size, info.st_mtime_ns):
            report.files_kept += 1
        else:
            to_copy.append((here, there, info.st_size, had is not None))
    with Progress(len(to_copy), "backup", bar, unit="file") as progress:
        progress.set_total(len(to_copy), bytes_total=sum(c[2] for c in to_copy))
        for here, there, size, replaced in to_copy:
            copied = _copy_file(here, there, replace=replaced)
            if copied is not None:
                report.files_copied += 1
                report.bytes_copied += copied
            progress.advance(1, nbytes=size)
    report.files_removed += _remove_others(copy, set(wanted))
    sync_folders([copy.root, copy.pending_dir])


def _library_files(source: ImageFolder, copy: ImageFolder) -> Iterator[tuple[str, str]]:
    """(path in the copy, path in the library) of every rendition and pending original."""
    disk = source.scan()
    into, out_of = str(copy.root), str(source.root)
    for (sha256, seq), found in disk.renditions.items():
        for quality in found:
            name = rendition_file_name(sha256, seq, quality)
            yield os.path.join(into, name), os.path.join(out_of, name)
    # Every original of an id (one put beside the recorded one by hand too): the scan keeps
    # one extension an id, which may not be the one the database records.
    for pending_id, exts in source.pending_originals().items():
        for ext in exts:
            there, here = copy.pending_path(pending_id, ext), source.pending_path(pending_id, ext)
            yield str(there), str(here)


def _size_and_time(path: str) -> tuple[int, int] | None:
    try:
        had = os.stat(path)
    except FileNotFoundError:
        return None
    return had.st_size, had.st_mtime_ns


def _copy_file(here: str, there: str, *, replace: bool) -> int | None:
    """`here` copied to `there`, its time kept (so the next backup knows it); the bytes
    copied, or None if `here` was removed meanwhile. A file the backup had is replaced by way
    of a temporary name: its inode may be a hard link in a snapshot of an earlier backup
    (`cp -al` rotations), which must keep its bytes. A new one is written in place: one name
    made, not two (a copy cut short has another size or time, and is copied again by the next
    backup)."""
    folder, name = os.path.split(there)
    target = os.path.join(folder, f".{name}.partial") if replace else there
    try:
        reading = os.open(here, os.O_RDONLY | _BINARY)
    except FileNotFoundError:
        return None
    try:
        # The file opened is the one copied: the library replaces files by rename, never
        # rewrites them, so this inode's bytes and time hold for as long as it is open.
        info = os.fstat(reading)
        writing = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _BINARY, 0o644)
        try:
            _copy_bytes(reading, writing, info.st_size)
        finally:
            os.close(writing)
    finally:
        os.close(reading)
    os.utime(target, ns=(info.st_atime_ns, info.st_mtime_ns))
    if replace:
        os.replace(target, there)
    return info.st_size


_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation
_CHUNK = 1024 * 1024


def _copy_bytes(reading: int, writing: int, size: int) -> None:
    """Every byte of `reading` into `writing`: in the kernel (sendfile, Linux) where it can,
    else through a buffer."""
    offset = 0
    if hasattr(os, "sendfile"):
        try:
            while sent := os.sendfile(writing, reading, offset, max(size - offset, _CHUNK)):
                offset += sent
            return
        except OSError:
            if offset:
                raise
    while chunk := os.read(reading, _CHUNK):
        view = memoryview(chunk)
        while view:
            view = view[os.write(writing, view) :]


def _remove_others(copy: ImageFolder, wanted: set[str]) -> int:
    removed = 0
    for folder in (copy.root, copy.pending_dir):
        with os.scandir(folder) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False) and entry.path not in wanted:
                    os.unlink(entry.path)
                    removed += 1
    return removed
