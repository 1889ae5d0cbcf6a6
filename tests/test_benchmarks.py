"""Every benchmark runs: each script under benchmarks/ declares a small configuration, ``SMOKE_ARGS``
(a module constant: its command-line options for a run of seconds), and runs with it to the end and
prints its figures; every run starts with the machine-speed calibration line. Figures are never
asserted: a smoke run on a shared machine measures nothing (benchmarks/README.md)."""

from __future__ import annotations

import ast
import os
import re
import shutil
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


def smoke_args(script: Path) -> list[str] | None:
    """The script's ``SMOKE_ARGS = [...]`` (read, not imported: importing would start nothing, but the
    literal is what the test runs), or None when it has none."""
    for node in ast.parse(script.read_text(encoding="utf-8")).body:
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        if any(isinstance(t, ast.Name) and t.id == "SMOKE_ARGS" for t in targets) and node.value is not None:
            value = ast.literal_eval(node.value)
            assert isinstance(value, list) and all(isinstance(a, str) for a in value), \
                f"{script.name}: SMOKE_ARGS must be a list of strings (command-line options)"
            return value
    return None


@pytest.mark.slow
@pytest.mark.parametrize("script", scripts(), ids=lambda p: p.name)
def test_every_benchmark_runs_to_its_figures_in_its_small_configuration(script: Path) -> None:
    args = smoke_args(script)
    assert args is not None, (f"{script.name} has no SMOKE_ARGS: give it a module constant with the options of a "
                              "run of a few seconds (benchmarks/README.md)")
    root = BENCHMARKS.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, str(script), *args], cwd=root, env=env, capture_output=True, text=True,
                          timeout=PATIENCE_S, check=False)
    assert done.returncode == 0, f"{script.name} {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}"
    lines = [line for line in done.stdout.splitlines() if line.strip()]
    assert lines and LINE.match(lines[0]), f"{script.name} did not start with the calibration line:\n{done.stdout}"
    figures = [line for line in lines[1:] if re.search(r"\d", line)]
    assert figures, f"{script.name} printed no figures after the calibration:\n{done.stdout}"


def test_the_estimator_a_b_runs_each_tree_s_own_compiled_loop(tmp_path: Path) -> None:
    """``estimator_cost.py --against TREE`` times TREE's estimator: the loop its estimator imports
    lazily at the first estimate must be TREE's own, not the one of the tree the script runs from."""
    copy = tmp_path / "tree"
    ignore = shutil.ignore_patterns("__pycache__")
    for part in ("queue_server", "benchmarks"):
        shutil.copytree(BENCHMARKS.parent / part, copy / part, ignore=ignore)
    with (copy / "queue_server" / "domain" / "estimate_loop.py").open("a", encoding="utf-8") as loop:
        loop.write("\n_compiled_play = play\n\n\ndef play(*args):\n    print('the copy loop')\n    _compiled_play(*args)\n")
    driver = (
        "import random, sys; from pathlib import Path\n"
        "import estimator_cost as ec\n"
        f"tree = ec._load_tree(Path({str(copy)!r}))\n"
        "for t in (tree, ec._this_tree()):\n"
        "    snap = t.busy_office(random.Random(1), t.orders('counter_procedure_order'), 20, 3)\n"
        "    t.estimate(snap, runs=10)\n"
        "    print('estimated by', t.name)\n"
    )
    done = subprocess.run([sys.executable, "-c", driver], cwd=BENCHMARKS, capture_output=True, text=True,
                          timeout=PATIENCE_S, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["the copy loop", f"estimated by {copy}", "estimated by this tree"], done.stdout
