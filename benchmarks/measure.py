"""Shared by the topic benchmarks (bench_cnn.py, bench_rnn.py, bench_attention.py): interleaved timing against
torch in one process, the cost of grading a topic, and the results file.

Everything runs on one thread (BLAS, OpenMP and torch): the one-thread figures are the reproducible ones on a
shared machine, and they compare like with like. A ratio is the median of per-round ratios: each round times every
implementation once, back to back, so a burst of load from other processes hits both sides of a ratio. Goals are
reported, never asserted (tests never time anything).
"""
from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results.json"
sys.path.insert(0, str(REPO / "solutions"))
if "DLCORE_DATA" not in os.environ and (REPO.parent / "shared" / "data").is_dir():
    os.environ["DLCORE_DATA"] = str(REPO.parent / "shared" / "data")

import numpy as np  # noqa: E402


def one_thread() -> None:
    import torch

    torch.set_num_threads(1)


def interleaved(fns: dict, rounds: int = 15, min_round_s: float = 0.1) -> dict[str, np.ndarray]:
    """Seconds per call of each function in `fns` (name -> callable), one entry per round. Each round calls every
    function in turn, as many times as fill about `min_round_s` (fixed after two warm-up calls)."""
    reps = {}
    for name, fn in fns.items():
        fn()
        t0 = time.perf_counter()
        fn()
        reps[name] = max(1, int(min_round_s / max(time.perf_counter() - t0, 1e-6)))
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(reps[name]):
                fn()
            times[name].append((time.perf_counter() - t0) / reps[name])
    return {name: np.array(v) for name, v in times.items()}


def versus(times: dict[str, np.ndarray], ours: str, theirs: str, goal: float) -> dict:
    """Median times (ms) of both and the median [min, max] of the per-round ratio ours / theirs, with the goal."""
    ratio = times[ours] / times[theirs]
    med = float(np.median(ratio))
    return {f"{ours}_ms": round(1e3 * float(np.median(times[ours])), 2),
            f"{theirs}_ms": round(1e3 * float(np.median(times[theirs])), 2),
            "ratio": round(med, 2), "ratio_range": [round(float(ratio.min()), 2), round(float(ratio.max()), 2)],
            "goal": goal, "meets_goal": med <= goal}


def grading_cost(slug: str, seconds_goal: float, memory_goal_mb: float) -> dict:
    """Grade the reference submission of a topic with the hidden suite (every task, the training runs included),
    in a fresh process pinned to one CPU, and report its wall time and peak memory: the max RSS of the grading
    process and of its largest sandboxed worker. The goal applies to each process (the larger of the two); their
    sum, also reported, bounds what both hold at once (it counts the shared libraries twice)."""
    proc = subprocess.run([sys.executable, __file__, "--grade", slug], capture_output=True, text=True,
                          cwd=REPO, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"grading {slug} failed:\n{proc.stderr[-3000:]}")
    cost = json.loads(proc.stdout.strip().splitlines()[-1])
    cost["goal_s"], cost["goal_mb"] = seconds_goal, memory_goal_mb
    cost["meets_goal"] = cost["wall_s"] <= seconds_goal and max(cost["peak_mb_grader"],
                                                                cost["peak_mb_largest_worker"]) <= memory_goal_mb
    return cost


def _grade(slug: str) -> None:
    """(child process) Grade solutions/<slug> with the hidden suite on one CPU; print the cost as one JSON line."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # the workers inherit the one CPU
    import course_config
    from autograder.runner import grade_topic
    from autograder.confine import sandbox_mode

    t0 = time.perf_counter()
    result = grade_topic(course_config.topic(slug), REPO / "solutions" / slug, "hidden", student="bench")
    wall = time.perf_counter() - t0
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    auto = [r for r in result.results if r.status != "manual"]
    print(json.dumps({
        "wall_s": round(wall, 1), "load_average_1min": round(os.getloadavg()[0], 2),
        "student_code_s": result.student_seconds, "sandbox": sandbox_mode(),
        "points": round(sum(r.points for r in auto), 3), "max_points": sum(r.max_points for r in auto),
        "slowest_tasks_s": dict(sorted(((r.task, r.seconds) for r in result.results), key=lambda kv: -kv[1])[:3]),
        "peak_mb_grader": round(me.ru_maxrss / 1024), "peak_mb_largest_worker": round(kids.ru_maxrss / 1024),
        "peak_mb_sum": round((me.ru_maxrss + kids.ru_maxrss) / 1024)}))


def save(key: str, report: dict) -> None:
    """Write `report` under `key` in benchmarks/results.json, keeping what the other benchmarks wrote there."""
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    results[key] = report
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps({key: report}, indent=1))


def environment() -> dict:
    import torch

    return {"numpy": np.__version__, "torch": torch.__version__, "cpus": os.cpu_count(),
            "load_average_1min": round(os.getloadavg()[0], 2), "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                                  time.gmtime())}


if __name__ == "__main__" and sys.argv[1:2] == ["--grade"]:
    _grade(sys.argv[2])
