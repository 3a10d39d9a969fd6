"""Grading at scale: the process pool against Dask distributed, and a simulated cohort (docs/benchmarks.md).

Measured in one run, on the `backprop` topic (the cheapest: no training runs, a grading takes seconds), with the
hidden suite and the sandbox that `dlcore grade` uses here:

- throughput (submissions per minute) of `dlcore grade` with the process pool at 1 and 2 jobs and on a local Dask
  cluster of 1 and 2 single-threaded workers, on copies of the reference; each figure includes starting the pool
  or the cluster;
- overhead per grading: each executor slot's time not spent inside `grade_topic` (start-up, imports, packing and
  shipping the submission, scheduling, writing results), per grading; plus the round trip of an empty Dask task
  and the size and packing time of one submission's zip;
- memory: peak RSS of each Dask worker process and of the largest sandboxed process it ran;
- a simulated cohort of 200 submissions (reference, stubs and planted bugs mixed) graded on 2 Dask workers: its
  wall time, the mean grading time per kind, and the projection for 7,000 gradings with its assumptions.

Run: DLCORE_DATA=../shared/data python benchmarks/bench_scale.py [--copies 3] [--cohort 200]
It adds its figures under "scale" in benchmarks/results.json (the other keys are bench_grading.py's). A Dask worker
refuses to grade when the grader's files change under it (the fingerprint would lie), so do not edit autograder/,
solutions/ or course_config/ while it runs ("grader_errors" counts such refusals; it must be 0).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
REPO = Path(__file__).resolve().parents[1]

import course_config  # noqa: E402
from autograder import batch  # noqa: E402
from autograder.hidden.backprop import MUTANTS  # noqa: E402
from autograder.mutants import apply, copy_reference, write_stubs  # noqa: E402
from autograder.confine import sandbox_mode  # noqa: E402

TOPIC = "backprop"
SOLUTIONS = REPO / "solutions"


def make_cohort(root: Path, n: int, kinds=("reference", "stub", "mutant")) -> dict[str, str]:
    """n students under root/submitted, kinds in turn (so a third each); mutants cycle through the topic's MUTANTS."""
    kind_of = {}
    for i in range(n):
        kind = kinds[i % len(kinds)]
        name = f"s{i:04d}"
        dest = root / "submitted" / name
        if kind == "reference":
            copy_reference(TOPIC, SOLUTIONS, dest)
        elif kind == "stub":
            for slug in (*course_config.topic(TOPIC).requires, TOPIC):
                write_stubs(slug, SOLUTIONS, dest)
        else:
            apply(MUTANTS[(i // len(kinds)) % len(MUTANTS)], TOPIC, SOLUTIONS, dest)
        kind_of[name] = kind
    return kind_of


def grading_seconds(out: Path) -> dict[str, float]:
    return {p.parts[-3]: json.loads(p.read_text())["execution_time"] for p in out.glob(f"*/{TOPIC}/results.json")}


def worker_memory(client) -> list[dict]:
    def peak():
        return {"worker_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "largest_sandboxed_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)}
    return list(client.run(peak).values())


def run(root: Path, executor: str, slots: int, label: str) -> dict:
    """Grade root/submitted with `executor` on `slots` pool processes or Dask workers, timed from a cold start."""
    out = root / f"out-{label}"
    memory = None
    t0 = time.perf_counter()
    if executor == "process":
        batch.grade([TOPIC], root, out, jobs=slots, quiet=True, allow_unisolated=True, force=True)
    else:
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=slots, threads_per_worker=1, processes=True, dashboard_address=None,
                          silence_logs=40) as cluster, Client(cluster) as client:
            batch.grade([TOPIC], root, out, quiet=True, allow_unisolated=True, force=True,
                        scheduler=cluster.scheduler_address)
            memory = worker_memory(client)
    wall = time.perf_counter() - t0
    inside = grading_seconds(out)
    n = len(inside)
    errors = sum("grader failed" in json.loads(p.read_text())["output"] for p in out.glob(f"*/{TOPIC}/results.json"))
    row = {"executor": executor, "slots": slots, "submissions": n, "grader_errors": errors, "seconds": round(wall, 1),
           "per_minute": round(60 * n / wall, 2), "mean_grading_s": round(sum(inside.values()) / n, 2),
           "overhead_per_grading_s": round((wall * slots - sum(inside.values())) / n, 2)}
    if memory is not None:
        row["memory_per_worker"] = memory
    return row


def dask_round_trip(sample: Path) -> dict:
    from distributed import Client, LocalCluster

    t0 = time.perf_counter()
    archive = batch.pack(sample, TOPIC)
    pack_ms = (time.perf_counter() - t0) * 1e3
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster) as client:
        client.submit(len, archive).result()  # warm up
        t0 = time.perf_counter()
        for i in range(30):
            assert client.submit(len, archive, key=f"rt-{i}").result() == len(archive)
        trip = (time.perf_counter() - t0) / 30
    return {"submission_zip_kb": round(len(archive) / 1024, 1), "pack_ms": round(pack_ms, 1),
            "task_round_trip_ms": round(trip * 1e3, 1)}


def projection(cohort: dict, efficiency: float) -> dict:
    """7,000 gradings on W single-threaded workers, at the cohort's mean time per grading (grading plus overhead)
    and at 60 s per grading (the topics whose hidden suites train models): linear in W (dedicated cores), and at the
    1 -> 2 worker efficiency measured in this run (on a shared machine, a pessimistic bound)."""
    per = cohort["mean_grading_s"] + cohort["overhead_per_grading_s"]
    per_60 = 60 + cohort["overhead_per_grading_s"]

    def hours(seconds: float, eff: float) -> dict:
        return {f"{w}_workers": round(7000 * seconds / (w * eff) / 3600, 2) for w in (2, 16, 64, 128)}
    return {"gradings": 7000, "seconds_per_grading_cohort_mix": round(per, 2),
            "hours_linear": {"cohort_mix": hours(per, 1.0), "60_s_per_grading": hours(per_60, 1.0)},
            "measured_efficiency": round(efficiency, 2),
            "hours_at_measured_efficiency": {"cohort_mix": hours(per, efficiency),
                                             "60_s_per_grading": hours(per_60, efficiency)},
            "assumptions": "one single-threaded Dask worker per dedicated core, each grading as fast as the cohort "
                           "did here (2 slots on 2 shared cores, so slower than on a quiet core); no shared disk, "
                           "and the scheduler is far from its limit (a task carries about 12 kB and is a few ms of "
                           "scheduling against seconds of grading); the cohort's topic (backprop, no training) or "
                           "60 s per grading for topics that train models"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=3)
    ap.add_argument("--cohort", type=int, default=200)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results.json"))
    args = ap.parse_args()
    report = {"topic": TOPIC, "sandbox": sandbox_mode(), "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory(prefix="dlcore-bench-") as tmp:
        same = Path(tmp) / "same"
        for i in range(args.copies):
            copy_reference(TOPIC, SOLUTIONS, same / "submitted" / f"s{i}")
        report["zip"] = dask_round_trip(same / "submitted" / "s0")
        report["throughput"] = [run(same, ex, k, f"{ex}{k}") for ex, k in
                                (("process", 1), ("process", 2), ("dask", 1), ("dask", 2))]
        print(json.dumps(report, indent=1), flush=True)
        cohort_root = Path(tmp) / "cohort"
        kinds = make_cohort(cohort_root, args.cohort)
        row = run(cohort_root, "dask", 2, "cohort")
        inside = grading_seconds(cohort_root / "out-cohort")
        row["mean_grading_s_by_kind"] = {k: round(sum(s for n, s in inside.items() if kinds[n] == k)
                                                  / max(1, sum(kinds[n] == k for n in inside)), 2)
                                         for k in sorted(set(kinds.values()))}
        row["kinds"] = {k: sum(v == k for v in kinds.values()) for k in sorted(set(kinds.values()))}
        report["cohort"] = row
        shutil.rmtree(cohort_root, ignore_errors=True)
    d1, d2 = report["throughput"][2], report["throughput"][3]
    report["projection"] = projection(report["cohort"], min(1.0, d2["per_minute"] / (2 * d1["per_minute"])))
    path = Path(args.out)
    results = json.loads(path.read_text()) if path.is_file() else {}
    results["scale"] = report
    path.write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    sys.exit(main())
