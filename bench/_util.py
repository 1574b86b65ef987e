"""Timing helpers for the benchmarks: in-process medians, fresh processes with peak RSS, and
the request figures of the service benchmarks (bench_web, bench_api)."""

from __future__ import annotations

import http.client
import os
import socket
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


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


# Run by a fresh interpreter between the benchmark and the command measured. A child's peak
# RSS (ru_maxrss) counts the memory of the process it was forked from, kept across exec: a
# benchmark that has just imported a million rows would pass its own size to every command it
# runs. Forked from this small process instead, the command's peak is its own.
_MEASURER = """
import json, os, subprocess, sys
proc = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(proc.pid, 0)
with open(sys.argv[1], "w") as out:
    json.dump([os.waitstatus_to_exitcode(status), usage.ru_maxrss, usage.ru_utime + usage.ru_stime], out)
"""


@dataclass
class Measured:
    returncode: int
    seconds: float
    cpu_seconds: float  # user + sys
    peak_rss_mb: float


def measured(argv: list[str], **popen: Any) -> Measured:
    """Run a command to its end: wall time, and its own CPU time and peak RSS (see above)."""
    import json
    import sys
    import tempfile

    with tempfile.NamedTemporaryFile("r", suffix=".json") as report:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", _MEASURER, report.name, *argv], **popen)
        seconds = time.perf_counter() - start
        code, maxrss_kb, cpu = json.load(report)
    return Measured(code, seconds, cpu, maxrss_kb / 1024)


def fresh_process(argv: list[str], n: int, cwd: str | None = None, warm_up: bool = True) -> Runs:
    """Run a command n times as a new process (after one warm-up run); wall time and the
    largest peak RSS. Bytecode caching is allowed, as on an installed system, even where
    the environment sets PYTHONDONTWRITEBYTECODE."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    if warm_up:
        subprocess.run(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds, cpu, peak = [], [], 0.0
    for _ in range(n):
        run = measured(argv, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if run.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed (exit {run.returncode})")
        seconds.append(run.seconds)
        peak = max(peak, run.peak_rss_mb)
        cpu.append(run.cpu_seconds)
    return Runs(seconds, peak_rss_mb=peak, cpu_seconds=cpu)


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


# method, path, body, headers, and what a 200 answer must hold (None: anything goes)
Job = tuple[str, str, bytes | None, dict[str, str], bytes | None]


def run_clients(
    port: int, jobs: list[Job], clients: int
) -> tuple[float, list[float], dict[int, int], list[str]]:
    """Send every job from `clients` keep-alive connections on loopback: (seconds, each
    request's latency, the count of each status, the answers that were not as expected)."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    wrong: list[str] = []
    lock = threading.Lock()
    queue = list(reversed(jobs))

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        seen: dict[int, int] = {}
        bad: list[str] = []
        while True:
            with lock:
                if not queue:
                    break
                method, path, body, headers, expect = queue.pop()
            start = time.perf_counter()
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            answer = response.read()
            mine.append(time.perf_counter() - start)
            seen[response.status] = seen.get(response.status, 0) + 1
            if expect is not None and (response.status != 200 or expect not in answer):
                bad.append(f"{method} {path}: {response.status} {answer[:200]!r}")
        conn.close()
        with lock:
            latencies.extend(mine)
            wrong.extend(bad)
            for k, v in seen.items():
                statuses[k] = statuses.get(k, 0) + v

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, latencies, statuses, wrong
