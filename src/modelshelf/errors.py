"""Domain errors. They describe what went wrong in the library's terms; `web.middleware`
decides which HTTP status each one becomes."""

from __future__ import annotations

from typing import Any

# How a refused change ends its sentence; a job stopped by one says what it had done instead.
NOTHING_CHANGED = "nothing was changed"


class ShelfError(Exception):
    """Base class: `detail` is a sentence for a person, `extra` is merged into error answers."""

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidInput(ShelfError):
    """The caller sent something malformed or out of range."""


class NotFound(ShelfError):
    """The thing asked for does not exist."""


class Forbidden(ShelfError):
    """The caller may not touch this path or resource."""


class Conflict(ShelfError):
    """The operation collides with existing data and needs a decision (e.g. a strategy)."""


class PreconditionFailed(ShelfError):
    """The caller's precondition (If-Match) no longer holds; nothing was changed."""


class JobRunning(Conflict):
    """A job of a kind that runs one at a time is running; `job` is that job."""


class JobCancelled(Conflict):
    """The job a caller waited for was cancelled (on request, or the service stopped)."""


class Locked(ShelfError):
    """Another operation holds the resource right now; try again later."""


class TooLarge(ShelfError):
    """The input exceeds a configured size or pixel limit."""


class Unprocessable(ShelfError):
    """The request is well formed but the data it points at cannot be used
    (a model file that is missing or changed, an image that cannot be decoded)."""


class StorageFull(ShelfError):
    """The disk holding the data directory has no room left."""


class StorageUnavailable(ShelfError):
    """The database cannot be written (read-only file or filesystem)."""


class StorageBusy(ShelfError):
    """Another program holds the database's write lock; `retry_after` says when to try again."""


class ServiceStopping(ShelfError):
    """The service is shutting down and starts no new work."""


class PartRefused(Unprocessable):
    """The database refused one part of a larger change (a constraint, a value it cannot
    hold); that part was undone and the rest of the change goes on."""


class ImageError(Unprocessable):
    """An image could not be decoded or rendered."""


class ImageTooLarge(TooLarge):
    """An image has more pixels than the configured limit (decompression-bomb guard)."""
