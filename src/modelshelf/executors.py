"""Thread pools for blocking work, kept apart by the kind of work."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

# Short file work mostly waits on the disk, not on a core.
FILE_WORKERS = 4


@dataclass(frozen=True)
class Executors:
    """`cpu` runs hashing and rendering (one thread per core by default); `files` runs short
    blocking work: stat, rename, unlink, directory scans, serialising large answers.

    Kept apart because, sharing one pool, a stat or a file move queued behind every pending
    rendering (seconds under load) while an import held the database writer.
    """

    cpu: ThreadPoolExecutor
    files: ThreadPoolExecutor

    @classmethod
    def start(cls, cpu_workers: int) -> Executors:
        return cls(
            cpu=ThreadPoolExecutor(cpu_workers, thread_name_prefix="modelshelf-cpu"),
            files=ThreadPoolExecutor(FILE_WORKERS, thread_name_prefix="modelshelf-files"),
        )

    def shutdown(self) -> None:
        self.cpu.shutdown(wait=True)
        self.files.shutdown(wait=True)
