"""Named points where a test can make the process die or pause, to prove that every change
survives a crash at every step (as SQLite tests its own commit by simulating a crash at every
write), and to let a test act at an exact moment without sleeping.

All off unless a test turns them on; in production `crashpoint()` is one test of a boolean.

- MODELSHELF_CRASH_AT=`<name>` or `<name>#<n>`, set when the process starts: at the n-th time
  the point is reached (counting from 1) the process ends with os._exit(CRASH_EXIT_CODE): no
  cleanup, no flushing, like a SIGKILL.
- MODELSHELF_PAUSE_AT=`<name>` or `<name>#<n>`: there, the thread that reached the point writes
  "pause point <name>#<n> reached" to stderr and blocks until a line arrives on stdin. Only for
  points reached in a worker thread: paused on the event loop, the whole service stands still.
- MODELSHELF_CRASHPOINT_LOG=`<file>`: every point reached is appended to the file, one name a
  line (the census a crash test checks its table of points against).
- `hooked(name, callback)`: in-process tests run `callback()` in the thread that reaches `name`.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

CRASH_EXIT_CODE = 77
ENVIRONMENT_VARIABLE = "MODELSHELF_CRASH_AT"
PAUSE_VARIABLE = "MODELSHELF_PAUSE_AT"
LOG_VARIABLE = "MODELSHELF_CRASHPOINT_LOG"

# Every point, so a test can enumerate them; `crashpoint` refuses names not listed here.
POINTS = (
    "hash.reading",  # a model file is open and being hashed (in a worker thread)
    "change.before_commit",  # rows and journal written, not committed
    "change.after_commit",  # committed, no file operation carried out
    "fileop.before",  # before each file operation after a commit
    "fileop.after",  # after each file operation
    "renumber.moved_aside",  # after each file a renumber moved aside, before its marker
    "renumber.moved_out",  # a renumber moved the old files aside, none moved back yet
    "renumber.moved_in",  # after each file a renumber moved to its new name
    "change.carried_out",  # every file operation done, journal row not yet forgotten
    "legacy.batch_done",  # stage 1 finished one batch, the next one not begun
    "recovery.replayed",  # start-up replayed one journal entry
)


def _target(variable: str) -> tuple[str, int] | None:
    raw = os.environ.get(variable)
    if not raw:
        return None
    name, _, count = raw.partition("#")
    return name, int(count or 1)


_CRASH = _target(ENVIRONMENT_VARIABLE)
_PAUSE = _target(PAUSE_VARIABLE)
_LOG = os.environ.get(LOG_VARIABLE) or None
_hits: dict[str, int] = {}
_hooks: dict[str, list[Callable[[], None]]] = {}
_lock = threading.Lock()
_active = _CRASH is not None or _PAUSE is not None or _LOG is not None


def crashpoint(name: str) -> None:
    """Die, pause or call a hook here if a test asked for it."""
    if not _active:
        return
    if name not in POINTS:
        raise ValueError(f"unknown crash point {name!r}")
    with _lock:  # file operations reach points from several threads
        _hits[name] = _hits.get(name, 0) + 1
        hit = (name, _hits[name])
        hooks = list(_hooks.get(name, ()))
        if _LOG is not None:
            with open(_LOG, "a", encoding="utf-8") as log:
                log.write(name + "\n")
    if hit == _CRASH:
        sys.stderr.write(f"crash point {name}#{hit[1]} reached: exiting\n")
        sys.stderr.flush()
        os._exit(CRASH_EXIT_CODE)
    if hit == _PAUSE:
        sys.stderr.write(f"pause point {name}#{hit[1]} reached\n")
        sys.stderr.flush()
        sys.stdin.readline()
    for hook in hooks:
        hook()


@contextmanager
def hooked(name: str, callback: Callable[[], None]) -> Iterator[None]:
    """For in-process tests: call `callback()` each time `name` is reached while the block
    runs, in the thread that reaches it (on the event loop it must not block)."""
    global _active
    if name not in POINTS:
        raise ValueError(f"unknown crash point {name!r}")
    with _lock:
        _hooks.setdefault(name, []).append(callback)
        _active = True
    try:
        yield
    finally:
        with _lock:
            _hooks[name].remove(callback)
            if not _hooks[name]:
                del _hooks[name]
            _active = bool(_hooks) or _CRASH is not None or _PAUSE is not None or _LOG is not None
