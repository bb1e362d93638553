"""What several benchmarks print the same way: percentiles of latencies and the machine."""

from __future__ import annotations

import os
from pathlib import Path


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
