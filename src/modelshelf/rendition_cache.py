"""The rendition cache: the bytes and validators of renditions served lately, held in memory so
that serving one again needs no file work at all.

It is kept in step by the unit of work, the one door of every change to the images folder:
`Changes` tells it which models a change's file operations touch, once when the change commits
and once when its files are in place, and it forgets everything it holds of them. A read that
began before a change and ends after it cannot put stale bytes back: `put` takes the
`generation` seen before the read began and refuses the entry if any model was forgotten since.
Files changed by hand under a running service are not seen until the model's next change or a
restart (the data directory belongs to the service).

Memory is bounded: entries are dropped least recently served first once the bodies exceed the
byte budget, and a file larger than an eighth of the budget is never held (it is served from
disk). A budget of 0 turns the cache off.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

# (sha256, seq, quality)
RenditionKey = tuple[str, int, str]

# A file larger than budget / FILE_SHARE is never held: one file must not evict all others.
FILE_SHARE = 8


@dataclass(frozen=True, slots=True)
class CachedFile:
    """A rendition's bytes and the validators HTTP answers carry, as aiohttp's FileResponse
    makes them from a stat: ETag `<mtime_ns hex>-<size hex>` (unquoted here), Last-Modified
    the mtime rounded up to the second."""

    body: bytes
    etag: str
    mtime: float
    last_modified: str

    @classmethod
    def of(cls, body: bytes, mtime_ns: int) -> CachedFile:
        mtime = mtime_ns / 1e9
        return cls(
            body=body,
            etag=f"{mtime_ns:x}-{len(body):x}",
            mtime=mtime,
            last_modified=time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(math.ceil(mtime))),
        )


class RenditionCache:
    """Renditions by (sha256, seq, quality), least recently served dropped first. Used from
    the event loop only."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget = max(budget_bytes, 0)
        # Files above this size are served from disk.
        self.file_limit = self.budget // FILE_SHARE
        self.generation = 0
        self.held = 0
        self._entries: OrderedDict[RenditionKey, CachedFile] = OrderedDict()
        self._keys_by_model: dict[str, set[RenditionKey]] = {}

    @property
    def enabled(self) -> bool:
        return self.file_limit > 0

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: RenditionKey) -> CachedFile | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: RenditionKey, entry: CachedFile, generation: int) -> None:
        """Hold `entry`, read from disk when the cache was at `generation`; refused if a
        model was forgotten since (the read may have seen a change's files half moved) or
        the file is over the size bound."""
        size = len(entry.body)
        if generation != self.generation or size > self.file_limit:
            return
        self._drop(key)
        self._entries[key] = entry
        self._keys_by_model.setdefault(key[0], set()).add(key)
        self.held += size
        while self.held > self.budget:
            oldest = next(iter(self._entries))
            self._drop(oldest)

    def forget(self, models: Iterable[str]) -> None:
        """Drop everything held of `models`, and refuse entries read before this call."""
        self.generation += 1
        for sha256 in models:
            for key in self._keys_by_model.pop(sha256, set()):
                entry = self._entries.pop(key, None)
                if entry is not None:
                    self.held -= len(entry.body)

    def _drop(self, key: RenditionKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self.held -= len(entry.body)
        keys = self._keys_by_model.get(key[0])
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._keys_by_model[key[0]]
