"""The access log's writer thread: every queued line is logged, in order, and none is lost at
exit."""

from __future__ import annotations

import logging

import pytest

from modelshelf.web.access_log import ACCESS_LINE, LineWriter


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def logger() -> logging.Logger:
    access = logging.getLogger("modelshelf.test.access")
    access.propagate = False
    access.setLevel(logging.INFO)
    return access


def line(number: int) -> tuple[object, ...]:
    return ("127.0.0.1", "GET", f"/api/images/{number}.webp", 1, 1, 200, 43660, 0.001)


@pytest.mark.parametrize("count", [1, 3, 500])
def test_close_writes_every_queued_line_in_order(logger: logging.Logger, count: int) -> None:
    lines = Lines()
    logger.addHandler(lines)
    try:
        writer = LineWriter()
        for number in range(count):
            writer.put((logger, line(number)))
        writer.close()
    finally:
        logger.removeHandler(lines)
    assert lines.lines == [ACCESS_LINE % line(number) for number in range(count)]
