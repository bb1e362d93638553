"""Progress of long work, told to everyone who follows it: a bar on a terminal (units, or bytes
with bytes/s and ETA), plain log lines otherwise, and listeners (a job) that read `snapshot()`.

Domain functions take an optional `Progress` and report through it:

    with Progress.use(progress, total, "legacy import") as progress:
        ...
        progress.advance(len(rows))

`advance` and `add_bytes` may be called from worker threads (a file being hashed).
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from types import TracebackType
from typing import Any

from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from modelshelf.records import JobProgress

log = logging.getLogger("modelshelf.progress")

LOG_EVERY_SECONDS = 5.0


class Progress:
    """Counts done units of `total` (None: not known yet) and, when told a byte total, bytes.
    Use as a context manager: the bar is drawn inside it and a last line logged at its end.
    `bar`: True draws a bar, False logs lines, None draws one only on a terminal. `job`: the id
    of the job it tells of, named in its log lines (jobs may run side by side)."""

    def __init__(
        self,
        total: int | None,
        what: str,
        bar: bool | None = None,
        *,
        unit: str = "model",
        job: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.what = what
        self._named = what if job is None else f"{what} (job {job})"
        self.unit = unit
        self.total = total
        self.done = 0
        self.bytes_total: int | None = None
        self.bytes_done = 0
        self.phase: str | None = None
        self._bar_wanted = sys.stderr.isatty() if bar is None else bar
        self._bar: tqdm[Any] | None = None
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []
        self._clock = clock
        self._started = clock()
        self._last_log = self._started
        # (when, how much was counted then): the rate counts from when its measure began.
        self._rate_from = (self._started, 0)

    @classmethod
    @contextmanager
    def use(
        cls,
        progress: Progress | None,
        total: int | None,
        what: str,
        bar: bool | None = False,
        *,
        unit: str = "model",
    ) -> Iterator[Progress]:
        """The caller's `progress` told the total (its owner closes it), or a new one of ours."""
        if progress is not None:
            progress.set_total(total)
            yield progress
            return
        with cls(total, what, bar, unit=unit) as own:
            yield own

    def listen(self, callback: Callable[[], None]) -> None:
        """Call `callback` after every change (from whichever thread made it)."""
        self._listeners.append(callback)

    def set_total(
        self, total: int | None, *, bytes_total: int | None = None, done: int | None = None
    ) -> None:
        """`done`: the count starts again from it (it counted something else until now, such
        as the files a walk found before their total was known)."""
        with self._lock:
            measure = (self._counts_bytes(), self.done)
            self.total = total
            if bytes_total is not None:
                self.bytes_total = bytes_total
            if done is not None:
                self.done = done
            # Counted in bytes from now, or from another start: a rate over the time before
            # (a walk of minutes, no byte read) would be many times too low, its ETA too long.
            if (self._counts_bytes(), self.done) != measure:
                self._rate_from = (self._clock(), self._counted()[0])
            self._redraw()
        self._tell()

    def set_phase(self, phase: str | None) -> None:
        self.phase = phase
        if self._bar is not None:
            # _str: set_description adds its own ": ", and tqdm another one while no total is known.
            self._bar.set_description_str(self._description())
        self._tell()

    def advance(self, count: int = 1, *, nbytes: int = 0) -> None:
        """`count` more units done (and `nbytes` more bytes)."""
        with self._lock:
            self.done += count
            self.bytes_done += nbytes
            if self._bar is not None:
                self._bar.update(nbytes if self._counts_bytes() else count)
                if self._counts_bytes():
                    self._bar.set_postfix_str(self._units_text(), refresh=False)
        self._log_now_and_then()
        self._tell()

    def add_bytes(self, nbytes: int) -> None:
        """`nbytes` more bytes of the current unit done (a big file being read)."""
        self.advance(0, nbytes=nbytes)

    def snapshot(self) -> JobProgress:
        """Where the work is: counts, rate (bytes/s when bytes are counted, else units/s) and
        the estimated seconds left."""
        with self._lock:
            since, before = self._rate_from
            elapsed = self._clock() - since
            counted, target = self._counted()
            rate = (counted - before) / elapsed if elapsed > 0 else None
            eta = None
            if rate and target is not None:
                eta = round(max(target - counted, 0) / rate, 1)
            return JobProgress(
                done=self.done,
                total=self.total,
                bytes_done=self.bytes_done if self.bytes_total is not None else None,
                bytes_total=self.bytes_total,
                rate=None if rate is None else round(rate, 2),
                eta_s=eta,
                phase=self.phase,
            )

    def summary(self) -> str:
        elapsed = self._clock() - self._started
        rate = self.done / elapsed if elapsed > 0 else 0.0
        text = f"{self._units_text()}, {rate:.1f}/s, {elapsed:.1f} s"
        if self.bytes_total is not None:
            text += f", {self.bytes_done / 2**20:.0f}/{self.bytes_total / 2**20:.0f} MiB"
        return text

    def __enter__(self) -> Progress:
        self._started = self._last_log = self._clock()
        self._rate_from = (self._started, self._counted()[0])
        if self._bar_wanted:
            self._open_bar()
            _LOGS_ABOVE_BARS.hold()  # once the bar is there: a failed open leaves the logs be
        else:
            log.info("%s: starting, %s to do", self._named, self.total or "unknown")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        log.info("%s: %s %s", self._named, "stopped at" if exc else "finished", self.summary())
        if self._bar_wanted:
            _LOGS_ABOVE_BARS.release()

    def _counted(self) -> tuple[int, int | None]:
        """What the rate and ETA count, and its total."""
        if self._counts_bytes():
            return self.bytes_done, self.bytes_total
        return self.done, self.total

    def _counts_bytes(self) -> bool:
        return self.bytes_total is not None

    def _description(self) -> str:
        return f"{self.what} ({self.phase})" if self.phase else self.what

    def _units_text(self) -> str:
        if self.total is None:
            return f"{self.done} {self.unit}s"
        percent = 100.0 * self.done / self.total if self.total else 100.0
        return f"{self.done}/{self.total} {self.unit}s ({percent:.0f}%)"

    def _open_bar(self) -> None:
        if self._counts_bytes():
            self._bar = tqdm(
                total=self.bytes_total,
                initial=self.bytes_done,
                desc=self._description(),
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                file=sys.stderr,
            )
        else:
            self._bar = tqdm(
                total=self.total,
                initial=self.done,
                desc=self._description(),
                unit=self.unit,
                file=sys.stderr,
            )

    def _redraw(self) -> None:
        """Follow a new total; a bar counting units turns into one counting bytes."""
        if self._bar is None:
            return
        if self._counts_bytes() and self._bar.unit != "B":
            self._bar.close()
            self._open_bar()
            return
        self._bar.total = self.bytes_total if self._counts_bytes() else self.total
        if not self._counts_bytes():
            self._bar.n = self.done
        self._bar.refresh()

    def _log_now_and_then(self) -> None:
        if self._bar is not None:
            return
        now = self._clock()
        if now - self._last_log >= LOG_EVERY_SECONDS:
            self._last_log = now
            eta = self.snapshot().eta_s
            left = f", about {eta:.0f} s left" if eta is not None else ""
            phase = f"{self.phase}, " if self.phase else ""
            log.info("%s: %s%s%s", self._named, phase, self.summary(), left)

    def _tell(self) -> None:
        for listener in self._listeners:
            listener()


class _LogsAboveBars:
    """While any bar is drawn, console log lines are written above it (tqdm.write) rather than
    through it: a scan logs a line per file hashed, which cut its bar into pieces. Held by
    every bar, the first installs the redirection and the last takes it away."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._redirect: AbstractContextManager[None] | None = None

    def hold(self) -> None:
        with self._lock:
            self._holders += 1
            if self._holders == 1:
                self._redirect = logging_redirect_tqdm()
                self._redirect.__enter__()

    def release(self) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0 and self._redirect is not None:
                self._redirect.__exit__(None, None, None)
                self._redirect = None


_LOGS_ABOVE_BARS = _LogsAboveBars()
