"""Grade the reference, the stubs and every planted bug of each topic with the hidden suite and write the results
without timings, so two versions of the engine can be compared grade for grade (a refactor must not change one).

    python benchmarks/grade_snapshot.py --out before.json [--topics cnn rnn] [--jobs 2]
    python benchmarks/grade_snapshot.py --compare before.json after.json
    python benchmarks/grade_snapshot.py --suite public --out public.json [--topics cnn]   # reference and stubs

Each mutant is graded on the tasks its test grades (tests/test_mutants.py: the tasks that run the mutated module,
less those allowed to lose points), the reference and the stubs on every automatic task. Per task the snapshot keeps
points, status, message, parts, metrics and both dependent scores; it drops seconds and the student's output."""
from __future__ import annotations

import argparse
import importlib
import json
import os
import shutil
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests")]
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

DROP = {"seconds", "output"}


def _clean(tr) -> list[dict]:
    out = []
    for r in tr.results:
        d = {k: v for k, v in r.to_json().items() if k not in DROP}
        d["figures"] = len(r.figures)  # base64 PNGs differ with matplotlib's rendering, not with the grade
        out.append(d)
    return out


def _job(job: tuple[str, str, str, str]) -> tuple[str, list[dict]]:
    import course_config
    from autograder.mutants import apply, copy_reference
    from conftest import SOLUTIONS, affected_modules, grade

    slug, kind, name, suite = job
    topic = course_config.topic(slug)
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp)
        if kind == "mutant":
            m = next(m for m in importlib.import_module(f"autograder.hidden.{slug}").MUTANTS if m.name == name)
            folder = apply(m, slug, SOLUTIONS, dest)
            modules = affected_modules(topic, m.module)
            allowed = m.allowed(topic)
            tasks = [t.name for t in topic.tasks if t.kind == "auto" and t.module in modules
                     and (t.name == m.primary or t.name not in allowed)]
        else:
            folder = copy_reference(slug, SOLUTIONS, dest)
            if kind == "stubs":
                for f in (REPO / "release" / slug).glob("*.py"):
                    shutil.copy(f, folder / f.name)
            tasks = None
        tr = grade(folder, tasks=tasks, visibility=suite, topic=topic)
    return f"{slug}/{kind}/{name}", _clean(tr)


def snapshot(topics: list[str], jobs: int, suite: str = "hidden") -> dict:
    """The hidden suite on the reference, the stubs and every mutant; the public suite on the reference and stubs."""
    import course_config

    work = []
    for slug in topics or [t.slug for t in course_config.TOPICS]:
        work += [(slug, "reference", "", suite), (slug, "stubs", "", suite)]
        if suite == "hidden":
            work += [(slug, "mutant", m.name, suite)
                     for m in importlib.import_module(f"autograder.hidden.{slug}").MUTANTS]
    with ProcessPoolExecutor(jobs) as pool:
        return dict(sorted(pool.map(_job, work)))


def compare(a: dict, b: dict) -> list[str]:
    diffs = [f"only in one snapshot: {k}" for k in sorted(set(a) ^ set(b))]
    for key in sorted(set(a) & set(b)):
        ra, rb = {r["task"]: r for r in a[key]}, {r["task"]: r for r in b[key]}
        for task in sorted(set(ra) | set(rb)):
            if ra.get(task) != rb.get(task):
                fields = sorted(f for f in set(ra.get(task, {})) | set(rb.get(task, {}))
                                if ra.get(task, {}).get(f) != rb.get(task, {}).get(f))
                diffs.append(f"{key} {task}: {', '.join(fields)} differ")
    return diffs


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path)
    p.add_argument("--topics", nargs="*", default=[])
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--suite", choices=("hidden", "public"), default="hidden")
    p.add_argument("--compare", nargs=2, type=Path, metavar=("BEFORE", "AFTER"))
    args = p.parse_args()
    if args.compare:
        diffs = compare(*(json.loads(f.read_text()) for f in args.compare))
        print("\n".join(diffs) or "identical grades")
        return 1 if diffs else 0
    snap = snapshot(args.topics, args.jobs, args.suite)
    args.out.write_text(json.dumps(snap, indent=1, sort_keys=True))
    print(f"{len(snap)} gradings written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
