"""Named points where a test can make the process die, to prove that every change survives a
crash at every step (as SQLite tests its own commit by simulating a crash at every write).

Off unless the environment variable MODELSHELF_CRASH_AT is set when the process starts, to
`<name>` or `<name>#<n>` (die at the n-th time the point is reached, counting from 1). The
process then ends with os._exit(CRASH_EXIT_CODE): no cleanup, no flushing, like a SIGKILL.
In production the check is one comparison against None.
"""

from __future__ import annotations

import os
import sys

CRASH_EXIT_CODE = 77
ENVIRONMENT_VARIABLE = "MODELSHELF_CRASH_AT"

# Every point, so a test can enumerate them; `crashpoint` refuses names not listed here.
POINTS = (
    "change.before_commit",  # rows and journal written, not committed
    "change.after_commit",  # committed, no file operation carried out
    "fileop.before",  # before each file operation after a commit
    "fileop.after",  # after each file operation
    "renumber.moved_out",  # a renumber moved the old files aside, none moved back yet
    "renumber.moved_in",  # after each file a renumber moved to its new name
    "change.carried_out",  # every file operation done, journal row not yet forgotten
    "recovery.replayed",  # start-up replayed one journal entry
)


def _target() -> tuple[str, int] | None:
    raw = os.environ.get(ENVIRONMENT_VARIABLE)
    if not raw:
        return None
    name, _, count = raw.partition("#")
    return name, int(count or 1)


_TARGET = _target()
_hits: dict[str, int] = {}


def crashpoint(name: str) -> None:
    """Die here if this is the configured point (and its n-th hit)."""
    if _TARGET is None:
        return
    if name not in POINTS:
        raise ValueError(f"unknown crash point {name!r}")
    _hits[name] = _hits.get(name, 0) + 1
    if (name, _hits[name]) == _TARGET:
        sys.stderr.write(f"crash point {name}#{_hits[name]} reached: exiting\n")
        sys.stderr.flush()
        os._exit(CRASH_EXIT_CODE)
