"""A realistic cohort for one training topic, graded one submission at a time with the hidden suite: what isolated
scoring (dependent tasks regraded with the reference layers) costs against the reference's own grading.

    DLCORE_DATA=../shared/data python benchmarks/bench_cohort.py --topic feedforward [--size 20] [--out F.json]

The cohort is 30 % copies of the reference, 50 % with one planted layer bug (the topic's MUTANTS of its first
module, in turn) and 20 % partial work (the released stubs, every other one with the reference's first module
filled in). Every submission is graded on every automatic task, as a real one is. Reported: submissions per
minute, each kind's median grading time against the reference's, the worst layer-bug ratio (the issue's goal:
<= 1.3), and the peak memory (max RSS) of this process and of its children (the sandboxed workers). Goals are
printed, never asserted; `--size 5` makes a quick run."""
from __future__ import annotations

import argparse
import importlib
import json
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def cohort(slug: str, size: int) -> list[tuple[str, str]]:
    """(kind, name) for `size` submissions: 30 % reference, 50 % one layer bug, 20 % partial or stubs."""
    import course_config

    first = course_config.topic(slug).modules[0]
    mutants = [m.name for m in importlib.import_module(f"autograder.hidden.{slug}").MUTANTS if m.module == first]
    n_ref, n_bug = round(0.3 * size), round(0.5 * size)
    out = [("reference", "")] * n_ref
    out += [("bug", mutants[i % len(mutants)]) for i in range(n_bug)]
    out += [("partial" if i % 2 else "stubs", "") for i in range(size - n_ref - n_bug)]
    return out


def build(slug: str, kind: str, name: str, dest: Path) -> Path:
    import course_config
    from autograder.mutants import apply, copy_reference

    solutions = REPO / "solutions"
    if kind == "bug":
        m = next(m for m in importlib.import_module(f"autograder.hidden.{slug}").MUTANTS if m.name == name)
        return apply(m, slug, solutions, dest)
    folder = copy_reference(slug, solutions, dest)
    if kind in ("stubs", "partial"):
        keep = course_config.topic(slug).modules[0] if kind == "partial" else None
        for f in (REPO / "release" / slug).glob("*.py"):
            if f.stem != keep:
                shutil.copy(f, folder / f.name)
    return folder


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--topic", default="feedforward")
    p.add_argument("--size", type=int, default=20)
    p.add_argument("--out", type=Path)
    a = p.parse_args()
    import course_config
    from autograder.runner import grade_topic

    topic = course_config.topic(a.topic)
    rows = []
    t_all = time.perf_counter()
    for i, (kind, name) in enumerate(cohort(a.topic, a.size)):
        with tempfile.TemporaryDirectory() as tmp:
            folder = build(a.topic, kind, name, Path(tmp))
            t0 = time.perf_counter()
            tr = grade_topic(topic, folder, "hidden", student=f"s{i:03d}")
            seconds = time.perf_counter() - t0
        iso = [r for r in tr.results if r.isolated_points is not None]
        rows.append({"kind": kind, "name": name, "seconds": round(seconds, 2),
                     "points": round(sum(r.points for r in tr.results), 4),
                     "end_to_end": round(sum(r.end_to_end_points if r.end_to_end_points is not None else r.points
                                             for r in tr.results), 4),
                     "regraded": [r.task for r in iso]})
        print(json.dumps(rows[-1]), flush=True)
    total = time.perf_counter() - t_all
    ref = statistics.median(r["seconds"] for r in rows if r["kind"] == "reference")
    summary = {"topic": a.topic, "size": a.size, "seconds": round(total, 1),
               "per_minute": round(60 * len(rows) / total, 2), "reference_s": ref,
               "peak_rss_mb": {"grader": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss >> 10,
                               "workers": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss >> 10}}
    for kind in ("bug", "partial", "stubs"):
        times = [r["seconds"] for r in rows if r["kind"] == kind]
        if times:
            summary[f"{kind}_median_ratio"] = round(statistics.median(times) / ref, 2)
    bugs = [r for r in rows if r["kind"] == "bug"]
    if bugs:
        summary["bug_worst_ratio"] = round(max(r["seconds"] for r in bugs) / ref, 2)
        summary["goal"] = "a submission with one layer bug takes at most 1.3x the reference's grading time"
    print(json.dumps(summary, indent=1))
    if a.out:
        a.out.write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
