"""The data-directory lock: exclusive, released on close, and free of POSIX-only imports."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from modelshelf.storage.dirlock import LOCK_NAME, DataDirInUse, DirectoryLock


def test_a_second_lock_on_the_same_directory_is_refused_until_the_first_lets_go(
    tmp_path: Path,
) -> None:
    first, second = DirectoryLock(tmp_path), DirectoryLock(tmp_path)
    first.acquire()
    with pytest.raises(DataDirInUse) as caught:
        second.acquire()
    assert str(tmp_path) in caught.value.detail
    first.release()
    second.acquire()
    second.release()
    assert (tmp_path / LOCK_NAME).is_file()


def test_releasing_a_lock_that_is_not_held_does_nothing(tmp_path: Path) -> None:
    lock = DirectoryLock(tmp_path)
    lock.release()
    lock.acquire()
    lock.release()
    lock.release()


# Where fcntl does not exist (Windows), importing it fails; the service must still import, start
# and keep one process per data directory.
WITHOUT_FCNTL = """
import sys
sys.modules["fcntl"] = None  # any `import fcntl` now raises ImportError
from pathlib import Path
import modelshelf.app, modelshelf.cli
from modelshelf.storage import DataDirInUse
from modelshelf.storage.dirlock import DirectoryLock
first, second = DirectoryLock(Path(sys.argv[1])), DirectoryLock(Path(sys.argv[1]))
first.acquire()
try:
    second.acquire()
except DataDirInUse:
    print("refused")
first.release()
second.acquire()
print("taken")
"""


def test_the_service_imports_and_locks_where_fcntl_does_not_exist(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", WITHOUT_FCNTL, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["refused", "taken"]
