"""Every benchmark run starts with the machine-speed calibration line (figures are never asserted)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .waiting import PATIENCE_S

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
HELPERS = {"bench_live.py", "bench_server.py", "calibration.py", "stats.py"}  # imported by the scripts, not run
"""Modules the scripts import; every other file under benchmarks/ is a benchmark someone runs."""
LINE = re.compile(r"^calibration: (\d+\.\d+) Mops/s pure Python, numpy (\d+) M elements/s .*load average \d+\.\d")


def scripts() -> list[Path]:
    return sorted(p for p in BENCHMARKS.glob("*.py") if p.name not in HELPERS)


def test_the_calibration_prints_one_line_with_its_two_figures() -> None:
    done = subprocess.run([sys.executable, str(BENCHMARKS / "calibration.py")], capture_output=True, text=True,
                          timeout=PATIENCE_S, check=False)
    assert done.returncode == 0, done.stderr
    match = LINE.match(done.stdout)
    assert match, done.stdout
    assert float(match[1]) > 0 and float(match[2]) > 0


@pytest.mark.parametrize("script", scripts(), ids=lambda p: p.name)
def test_every_benchmark_script_prints_the_calibration_when_it_runs(script: Path) -> None:
    tree = ast.parse(script.read_text(encoding="utf-8"))
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Name) and node.func.id == "print_calibration"]
    assert calls, f"{script.name} does not print the machine-speed calibration (benchmarks/calibration.py)"
