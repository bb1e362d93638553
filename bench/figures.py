"""What several benchmarks share: percentiles of latencies, the machine, a measuring child
process, and the pictures the web UI benches seed their libraries with."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyvips


def percentile(samples: list[float], p: float) -> float:
    """The `p`th percentile of `samples` by rank (round(p% of n), at least the first)."""
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(p / 100 * len(ordered)) - 1))]


def machine() -> str:
    """CPU model and load average, for the record."""
    model = "unknown CPU"
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                model = text.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    return f"{os.cpu_count()} CPUs ({model}), load average {load}"


def run_json_child(script: str, *args: object) -> dict[str, Any]:
    """Run `script --child args...` in a new Python process (so its peak RSS and I/O counters
    are its own) and return the JSON object its last line of output holds. Raises
    RuntimeError with the end of its stderr if it fails."""
    done = subprocess.run(
        [sys.executable, script, "--child", *map(str, args)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-3000:])
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def write_gradient_picture(path: Path, n: int) -> Path:
    """A 768x1024 picture at `path` (its format from the suffix), a gradient whose blue is set
    by `n`, so that pictures of different `n` differ."""
    x = pyvips.Image.xyz(768, 1024)
    red = (x[0] * 255 / 768).cast("uchar")
    green = (x[1] * 255 / 1024).cast("uchar")
    blue = (red * 0 + 40 * n).cast("uchar")
    red.bandjoin([green, blue]).copy(interpretation="srgb").write_to_file(str(path))
    return path
