"""Progress: one counter feeding a job (snapshots and listeners), a bar on a terminal (bytes/s
and ETA) and log lines otherwise."""

from __future__ import annotations

import logging
import re
import sys
import threading

import pytest

from modelshelf.progress import Progress


def test_a_snapshot_has_counts_rate_and_eta_and_leaves_out_bytes_not_counted() -> None:
    with Progress(None, "work", bar=False) as progress:
        assert progress.snapshot().model_dump(mode="json") == {
            "done": 0,
            "total": None,
            "rate": 0.0,
        }
        progress.set_total(10)
        progress.advance(4)
        snapshot = progress.snapshot().model_dump(mode="json")
    assert set(snapshot) == {"done", "total", "rate", "eta_s"}
    assert (snapshot["done"], snapshot["total"]) == (4, 10)
    assert snapshot["rate"] > 0
    assert snapshot["eta_s"] == pytest.approx(6 / snapshot["rate"], rel=0.05, abs=0.1)


def test_with_a_byte_total_the_rate_and_eta_are_in_bytes() -> None:
    with Progress(None, "scan", bar=False, unit="file") as progress:
        progress.set_total(3, bytes_total=4000)
        progress.advance(1, nbytes=1000)
        progress.add_bytes(1000)
        progress.set_phase("hashing")
        snapshot = progress.snapshot()
    assert (snapshot.done, snapshot.total) == (1, 3)
    assert (snapshot.bytes_done, snapshot.bytes_total, snapshot.phase) == (2000, 4000, "hashing")
    assert snapshot.rate is not None and snapshot.eta_s is not None
    assert snapshot.eta_s == pytest.approx(2000 / snapshot.rate, rel=0.05, abs=0.1)


def test_listeners_hear_every_change_from_any_thread() -> None:
    heard: list[int] = []
    progress = Progress(5, "work", bar=False)
    progress.listen(lambda: heard.append(progress.done))
    progress.advance()
    worker = threading.Thread(target=progress.add_bytes, args=(10,))
    worker.start()
    worker.join()
    progress.set_total(6)
    progress.set_phase("end")
    assert heard == [1, 1, 1, 1]


def test_on_a_terminal_a_bar_shows_bytes_per_second_and_the_eta(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with Progress(None, "scan", bar=True, unit="file") as progress:
        progress.set_total(3)  # files known first: the bar counts files
        progress.advance(1)
        progress.set_total(3, bytes_total=3 * 2**20)  # then bytes: it counts bytes
        progress.advance(1, nbytes=2**20)
        progress.advance(1, nbytes=2**20)
        progress.add_bytes(2**20)
    drawn = capsys.readouterr().err
    assert "1/3 [" in drawn  # files
    assert "3.00M/3.00M" in drawn  # then bytes
    assert "B/s" in drawn
    assert "<" in drawn  # tqdm's "elapsed<remaining"
    assert "3/3 files" in drawn


def test_without_a_terminal_progress_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "modelshelf.progress")
    with Progress(4, "legacy import", bar=False) as progress:
        progress.advance(4)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "legacy import: starting, 4 to do"
    assert lines[-1].startswith("legacy import: finished 4/4 models (100%)")


def test_work_stopped_by_an_error_is_logged_as_stopped(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "modelshelf.progress")

    def stopped() -> None:
        with Progress(4, "batch import", bar=False) as progress:
            progress.advance(1)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        stopped()
    assert caplog.records[-1].getMessage().startswith("batch import: stopped at 1/4 models")


def test_use_tells_a_given_progress_the_total_and_leaves_it_open(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "modelshelf.progress")
    with Progress(None, "job", bar=False) as outer:
        with Progress.use(outer, 7, "inner") as used:
            assert used is outer
            used.advance(2)
        assert (outer.total, outer.done) == (7, 2)
        assert not any("finished" in r.getMessage() for r in caplog.records)
    with Progress.use(None, 3, "own") as own:
        own.advance(3)
    assert caplog.records[-1].getMessage().startswith("own: finished 3/3")


def test_log_lines_written_while_a_bar_is_drawn_go_above_it_and_the_console_comes_back(
    capsys: pytest.CaptureFixture[str],
) -> None:
    console = logging.StreamHandler(sys.stderr)  # the console, as the command line sets it
    console.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.addHandler(console)
    try:
        with Progress(2, "scan", bar=True, unit="file") as progress:
            progress.advance(1)
            logging.getLogger("modelshelf.hashing").warning("hashed one.safetensors")
            progress.advance(1)
        assert console in root.handlers  # the console's own handler is back
        logging.getLogger("modelshelf").warning("after the bar")
    finally:
        root.removeHandler(console)
    drawn = capsys.readouterr().err
    # On a line of its own, the bar cleared first (not written after the bar's text).
    assert re.search(r"(^|[\r\n])hashed one\.safetensors\n", drawn), repr(drawn)
    assert "after the bar\n" in drawn


def test_a_bar_names_its_phase_once_and_keeps_it_when_it_counts_bytes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with Progress(None, "scan", bar=True, unit="file") as progress:
        progress.set_phase("walking")
        progress.advance(2)
        progress.set_total(4, bytes_total=2**20)  # a bar of bytes now: the phase stays on it
        progress.advance(1, nbytes=2**20)
    drawn = capsys.readouterr().err
    assert "scan (walking): 2file [" in drawn  # not "scan (walking): : 2file"
    assert ": :" not in drawn
    assert re.search(r"scan \(walking\):\s+100%\|.*\| 1\.00M/1\.00M", drawn), repr(drawn)


def test_rate_and_eta_count_from_when_bytes_began_not_from_the_walk() -> None:
    """A first scan walks for minutes before it reads a byte: bytes over the whole time made
    a rate many times too low, and an ETA of an hour for three minutes of reading."""
    now = [1000.0]
    with Progress(None, "scan", bar=False, unit="file", clock=lambda: now[0]) as progress:
        progress.advance(1000)  # the walk: files found
        now[0] += 180.0  # three minutes of it
        progress.set_total(1000, bytes_total=100 * 2**30, done=0)
        now[0] += 10.0
        progress.add_bytes(5 * 2**30)  # ten seconds of reading at 512 MiB/s
        snapshot = progress.snapshot()
    assert snapshot.rate == pytest.approx(512 * 2**20)
    assert snapshot.eta_s == pytest.approx(190.0)
