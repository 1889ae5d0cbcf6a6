"""How fast this machine runs Python right now: one line printed at the start of every benchmark.

    .venv/bin/python benchmarks/calibration.py      # the line alone

Absolute figures (tickets/s, milliseconds) depend on the machine and on what else runs on it. Two
fixed workloads on one core give a figure to read them against (BENCHMARKS.md explains how):

* pure Python — a loop of the interpreter work the server does (integer arithmetic, a dict update,
  a small string, a function call); one loop iteration is one "op";
* numpy — element-wise arithmetic and a sort over a fixed array, in numpy's own single thread (no
  BLAS, which could use several cores); reported in million array elements per second.

Each is timed several times, by two clocks. The CPU time this thread was given hardly depends on
what else runs: its best gives the machine's speed ("Mops/s"). The wall clock's median shows what
this run actually got while other processes shared the cores ("… by the wall clock"), to be read
together with the load average.
"""

from __future__ import annotations

import contextlib
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import numpy as np

PYTHON_OPS: Final = 300_000
"""Loop iterations per pure-Python timing (about 0.1 s on the project's machine)."""
NUMPY_ELEMENTS: Final = 1_000_000
"""Array length per numpy timing (about 0.1 s on the project's machine)."""
REPEATS: Final = 7
"""Timings of each workload; best and median are reported."""


def _bucket(value: int) -> int:
    """A small function, so the loop also pays for calls as the server's code does."""
    return value % 61


def python_workload(ops: int) -> int:
    """``ops`` iterations of interpreter work; returns a checksum so nothing can be skipped."""
    counts: dict[int, int] = {}
    x, total = 12345, 0
    for _ in range(ops):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF  # a linear congruential step
        key = _bucket(x)
        counts[key] = counts.get(key, 0) + 1
        total += len(str(key))
    return total + len(counts)


def numpy_workload(data: np.ndarray) -> float:
    """Element-wise arithmetic and a sort over ``data``; returns a checksum."""
    return float(np.sort(np.exp(data) * 3.0 - data * data).sum())


def _timings(work: Callable[[], object], repeats: int) -> tuple[list[float], list[float]]:
    """Seconds of this thread's CPU time and of wall-clock time for each of ``repeats`` calls of ``work``.

    One untimed call first warms caches and the allocator.
    """
    work()
    cpu, wall = [], []
    for _ in range(repeats):
        cpu_start, wall_start = time.thread_time(), time.perf_counter()
        work()
        cpu.append(time.thread_time() - cpu_start)
        wall.append(time.perf_counter() - wall_start)
    return cpu, wall


def calibrate(repeats: int = REPEATS) -> dict[str, float]:
    """Pure-Python Mops/s and numpy M elements/s: best by CPU time, median by the wall clock; the load average."""
    data = np.random.default_rng(0).random(NUMPY_ELEMENTS)
    python_cpu, python_wall = _timings(lambda: python_workload(PYTHON_OPS), repeats)
    numpy_cpu, numpy_wall = _timings(lambda: numpy_workload(data), repeats)
    return {
        "python_mops": PYTHON_OPS / min(python_cpu) / 1e6,
        "python_mops_wall": PYTHON_OPS / statistics.median(python_wall) / 1e6,
        "numpy_melems": NUMPY_ELEMENTS / min(numpy_cpu) / 1e6,
        "numpy_melems_wall": NUMPY_ELEMENTS / statistics.median(numpy_wall) / 1e6,
        "load_average": os.getloadavg()[0],
    }


def cpu_name() -> str:
    """The processor's model name (Linux's /proc/cpuinfo), else what the platform module knows."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def calibration_line(repeats: int = REPEATS) -> str:
    """The figure as one line, for a benchmark's output and BENCHMARKS.md."""
    c = calibrate(repeats)
    return (f"calibration: {c['python_mops']:.2f} Mops/s pure Python, numpy {c['numpy_melems']:.0f} M elements/s "
            f"(single core, best CPU time of {repeats}); by the wall clock {c['python_mops_wall']:.2f} and "
            f"{c['numpy_melems_wall']:.0f} (median), load average {c['load_average']:.1f} on {os.cpu_count()} "
            f"CPUs; {cpu_name()}, Python {platform.python_version()}, "
            f"numpy {np.__version__}")


def print_calibration() -> None:
    """Print the calibration line at the start of a benchmark run (before its own load starts)."""
    print(calibration_line(), flush=True)


if __name__ == "__main__":
    print_calibration()
