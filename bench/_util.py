"""Timing helpers for the benchmarks: in-process medians, fresh processes with peak RSS, and
the request figures of the service benchmarks (bench_web, bench_api)."""

from __future__ import annotations

import os
import socket
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def percentile_ms(values: list[float], q: int) -> float:
    return statistics.quantiles(values, n=100)[q - 1] * 1000 if len(values) > 1 else 0.0


def report(label: str, seconds: float, latencies: list[float], statuses: dict[int, int]) -> None:
    """One line of requests/s and latency for a run of HTTP requests."""
    n = len(latencies)
    print(
        f"{label}: {n:,} requests in {seconds:.1f} s = {n / seconds:,.0f} req/s; "
        f"latency p50 {percentile_ms(latencies, 50):.1f} ms, "
        f"p99 {percentile_ms(latencies, 99):.1f} ms; statuses {statuses}"
    )
