"""What a job's record says of how it ended: the reasons it stopped, and the error of a change
that stopped it, told as the job's (what it had done before is kept)."""

from __future__ import annotations

import copy

from modelshelf.errors import NOTHING_CHANGED, ShelfError
from modelshelf.progress import Progress

STOPPED = "the service stopped"
DIED = (
    "the service stopped while this job ran (the process ended); run it again: "
    "what was finished is kept and hashes are cached"
)
CANCELLED_ON_REQUEST = "cancelled on request"
INTERNAL_ERROR = "internal error; see the server log"


def said_of_the_job(exc: ShelfError, progress: Progress) -> str:
    """The error of a change that stopped a job, as the job's error: "nothing was changed" is
    true of that change, not of the job, whose changes before it are kept (if it made any)."""
    if progress.snapshot().done == 0:
        return exc.detail
    kept = f"the job stopped there; the {_done_of(progress)} done before it are kept"
    return exc.detail.replace(NOTHING_CHANGED, kept, 1)


def saying(exc: ShelfError, detail: str) -> ShelfError:
    """`exc` with `detail` in place of its own: a caller waiting for the job (the command
    line, an answer without respond-async) is told what the job's record says."""
    said = copy.copy(exc)
    said.detail, said.args = detail, (detail,)
    return said


def said_of_a_stop(reason: str, progress: Progress) -> str:
    """A cancelled job's error: why it stopped and, if it had done any, that what it did is
    kept ("cancelled on request; the 120 of 500 done before it are kept")."""
    if progress.snapshot().done == 0:
        return reason
    return f"{reason}; the {_done_of(progress)} done before it are kept"


def _done_of(progress: Progress) -> str:
    done = progress.snapshot()
    return f"{done.done:,} of {done.total:,}" if done.total is not None else f"{done.done:,}"
