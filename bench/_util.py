"""Timing helpers for the benchmarks: in-process medians, fresh processes with peak RSS."""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Runs:
    seconds: list[float]
    peak_rss_mb: float = 0.0
    cpu_seconds: list[float] = field(default_factory=list)  # user + sys, fresh processes only

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


def fresh_process(argv: list[str], n: int, cwd: str | None = None, warm_up: bool = True) -> Runs:
    """Run a command n times as a new process (after one warm-up run); wall time and the
    largest peak RSS. Bytecode caching is allowed, as on an installed system, even where
    the environment sets PYTHONDONTWRITEBYTECODE."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if warm_up:
        subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds, cpu, peak = [], [], 0
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
        cpu.append(usage.ru_utime + usage.ru_stime)
    return Runs(seconds, peak_rss_mb=peak / 1024, cpu_seconds=cpu)
