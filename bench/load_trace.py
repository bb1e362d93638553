"""Reading what bench/tracing/sitecustomize.py recorded inside the server: per phase of the
load test, how long work waited in each thread pool and ran there, how long SQLite operations
waited for their connection thread and for the loop to resume, how long a read waited for a
connection, and how late the event loop woke up."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

from load_client import Phase
from load_measure import percentile

TRACING = Path(__file__).resolve().parent / "tracing"


def server_env(trace_file: Path) -> dict[str, str]:
    """The environment that makes a server record into `trace_file` (PYTHONPATH kept)."""
    path = os.pathsep.join(p for p in (str(TRACING), os.environ.get("PYTHONPATH", "")) if p)
    return {"PYTHONPATH": path, "LOADTRACE_FILE": str(trace_file)}


def summarise(trace_file: Path, phases: list[Phase]) -> list[dict[str, Any]]:
    """One row per (phase, kind of wait): count, p50/p99 of the wait, run and resume times."""
    if not trace_file.exists():
        return []
    samples = json.loads(trace_file.read_text())
    rows = []
    for phase in phases:
        kinds: dict[str, list[tuple[float, float, float]]] = defaultdict(list)
        for kind, at, wait, run, back in samples:
            if phase.started <= at < phase.ended:
                kinds[kind].append((wait, run, back))
        for kind in sorted(kinds):
            values = kinds[kind]
            row: dict[str, Any] = {"phase": phase.name, "kind": kind, "n": len(values)}
            for index, part in enumerate(("wait", "run", "back")):
                series = [v[index] for v in values]
                row[f"{part}_p50_ms"] = percentile(series, 50) * 1000
                row[f"{part}_p99_ms"] = percentile(series, 99) * 1000
            row["wait_max_ms"] = max(v[0] for v in values) * 1000
            rows.append(row)
    return rows


def print_summary(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    print()
    print("inside the server (ms; wait: queued or late, run: in the thread, back: until resumed):")
    print(
        f"  {'phase':<10} {'kind':<22} {'n':>7} {'wait p50':>9} {'p99':>7} {'max':>7}"
        f" {'run p50':>8} {'p99':>7} {'back p50':>9} {'p99':>7}"
    )
    for r in rows:
        print(
            f"  {r['phase']:<10} {r['kind']:<22} {r['n']:>7} {r['wait_p50_ms']:>9.2f}"
            f" {r['wait_p99_ms']:>7.2f} {r['wait_max_ms']:>7.1f} {r['run_p50_ms']:>8.2f}"
            f" {r['run_p99_ms']:>7.2f} {r['back_p50_ms']:>9.2f} {r['back_p99_ms']:>7.2f}"
        )
