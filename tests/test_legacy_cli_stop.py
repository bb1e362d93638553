"""`modelshelf migrate-legacy` stopped by SIGTERM (`docker stop`, systemd, `kill`) stops as
Ctrl-C stops it: at a safe point, saying so, and a second run goes on from there. Before, the
default action of SIGTERM ended the process at once, in the middle of a change and without a
word (exit 143); the library was consistent only thanks to recovery at the next start."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from modelshelf.integrity import check_library
from tests.factories import LegacyLibrary, environ_without_modelshelf, fake_sha, make_image

ROWS = 40


@pytest.mark.parametrize("sigint", ["default", "ignored"], ids=["terminal", "background job"])
def test_sigterm_stops_migrate_legacy_at_a_safe_point_and_a_rerun_finishes(
    tmp_path: Path, sigint: str
) -> None:
    legacy = LegacyLibrary(tmp_path / "legacy")
    make_image(legacy.images_dir / "big.png", width=1600, height=1200)
    for i in range(1, ROWS + 1):
        legacy.add_model(i, hash_hex=fake_sha(i), images=["big.png"])
    command = [sys.executable, "-m", "modelshelf", *legacy.migrate_args(tmp_path / "data")]
    disposition = signal.SIG_DFL if sigint == "default" else signal.SIG_IGN
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=environ_without_modelshelf(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # At a terminal, or as a shell's background job (SIGINT ignored, and so inherited).
        preexec_fn=lambda: signal.signal(signal.SIGINT, disposition),
    )
    assert process.stderr is not None
    for line in process.stderr:  # stage 1 has begun its rows
        if "legacy import: starting" in line:
            break
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=60)

    assert process.returncode == 130, err
    assert "legacy import: stopped at" in err
    assert "interrupted; run it again to go on from here" in err
    assert "Traceback" not in err
    assert out == ""
    assert check_library(tmp_path / "data") == []
    assert not any((tmp_path / "data" / "images" / ".staging").glob("*"))

    again = subprocess.run(
        command, cwd=tmp_path, env=environ_without_modelshelf(), capture_output=True, text=True
    )
    assert again.returncode == 0, again.stderr
    with sqlite3.connect(tmp_path / "data" / "modelshelf.db") as conn:
        assert conn.execute("SELECT count(*) FROM models").fetchone()[0] == ROWS
