"""Timing helpers for the benchmarks: in-process medians, fresh processes with peak RSS."""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Runs:
    seconds: list[float]
    peak_rss_mb: float = 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    def line(self, label: str) -> str:
        ms = [s * 1000 for s in self.seconds]
        spread = f"(min {min(ms):.1f}, max {max(ms):.1f}, n={len(ms)})"
        text = f"{label:<58} median {statistics.median(ms):8.1f} ms  {spread}"
        if self.peak_rss_mb:
            text += f"  peak RSS {self.peak_rss_mb:.0f} MB"
        return text


def timed(fn: Callable[[], object], n: int) -> Runs:
    seconds = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - start)
    return Runs(seconds)


def fresh_process(
    argv: list[str], n: int, cwd: str | None = None, env: dict[str, str] | None = None
) -> Runs:
    """Run a command n times as a new process; wall time and the largest peak RSS."""
    seconds, peak = [], 0
    for _ in range(n):
        start = time.perf_counter()
        proc = subprocess.Popen(
            argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        _, status, usage = os.wait4(proc.pid, 0)
        seconds.append(time.perf_counter() - start)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(
                f"{' '.join(argv)} failed: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        peak = max(peak, usage.ru_maxrss)
    return Runs(seconds, peak_rss_mb=peak / 1024)
