"""Progress of long work: a bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

import logging
import sys
import time
from types import TracebackType
from typing import Any

from tqdm import tqdm

log = logging.getLogger("modelshelf.progress")

LOG_EVERY_SECONDS = 5.0


class Progress:
    """Counts done units of `total`. Use as a context manager; call `advance(n)`."""

    def __init__(self, total: int, what: str, bar: bool | None = None) -> None:
        self.total = total
        self.what = what
        self.done = 0
        self._bar_wanted = sys.stderr.isatty() if bar is None else bar
        self._bar: tqdm[Any] | None = None
        self._started = time.monotonic()
        self._last_log = self._started

    def __enter__(self) -> Progress:
        if self._bar_wanted:
            self._bar = tqdm(total=self.total, desc=self.what, unit="model", file=sys.stderr)
        else:
            log.info("%s: starting, %d to do", self.what, self.total)
        return self

    def advance(self, count: int = 1) -> None:
        self.done += count
        if self._bar is not None:
            self._bar.update(count)
            return
        now = time.monotonic()
        if now - self._last_log >= LOG_EVERY_SECONDS:
            self._last_log = now
            log.info("%s: %s", self.what, self.summary())

    def summary(self) -> str:
        elapsed = time.monotonic() - self._started
        percent = 100.0 * self.done / self.total if self.total else 100.0
        rate = self.done / elapsed if elapsed > 0 else 0.0
        return f"{self.done}/{self.total} ({percent:.0f}%), {rate:.1f}/s, {elapsed:.1f} s"

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.close()
        log.info("%s: %s %s", self.what, "stopped at" if exc else "finished", self.summary())
