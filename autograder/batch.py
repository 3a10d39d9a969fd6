"""`dlcore grade`: grade a folder of submissions (nbgrader layout submitted/<student>/<topic>/) in parallel.

Each (student, topic) is graded in a pool process of this trusted program, which in turn runs the student's code
in sandboxed workers. Results are written atomically per (student, topic) with a fingerprint of the submission
and the grader; a rerun skips what is already graded with the same fingerprint, so an interrupted batch resumes
where it stopped. Submissions are only read, never modified.
"""
from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import hashlib
import json
import multiprocessing
import os
import time
from pathlib import Path

import course_config
from autograder import reports, scoring
from autograder import results as R
from autograder.runner import REPO
from autograder.sandbox import sandbox_mode

GRADER_SOURCES = ("autograder", "solutions", "course_config.py")


def discover(submissions: Path, topics: list[str]) -> list[tuple[str, str, Path]]:
    """(student, topic, folder) for every student folder; accepts a course root that holds submitted/."""
    root = submissions / "submitted" if (submissions / "submitted").is_dir() else submissions
    if not root.is_dir():
        raise SystemExit(f"{submissions}: no such folder (expected submitted/<student>/<topic>/ inside it)")
    students = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not students:
        raise SystemExit(f"{root}: no student folders (expected {root}/<student>/<topic>/)")
    return [(s, t, root / s / t) for s in students for t in topics]


def _hash_tree(h, folder: Path, base: Path) -> None:
    if not folder.exists():
        h.update(f"<missing {folder.name}>".encode())
        return
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and not path.is_symlink():
            h.update(str(path.relative_to(base)).encode() + b"\0" + path.read_bytes() + b"\0")


def grader_version() -> str:
    """Hash of the grading code, references, config and seed: a change regrades everything."""
    h = hashlib.sha256(str(course_config.GRADING_SEED).encode())
    for name in GRADER_SOURCES:
        p = REPO / name
        if p.is_file():
            h.update(p.read_bytes())
        else:
            _hash_tree(h, p, REPO)
    return h.hexdigest()[:16]


def fingerprint(folder: Path, version: str) -> str:
    h = hashlib.sha256(version.encode())
    _hash_tree(h, folder, folder)
    return h.hexdigest()[:24]


def _init_pool() -> None:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    import torch

    torch.set_num_threads(1)


def _grade_job(student: str, topic: str, folder: str, fp: str, limits: dict | None) -> dict:
    """Runs in a pool process: grade one topic of one student; returns the Gradescope dict (plain data)."""
    from autograder.runner import grade_topic

    lim = course_config.Limits(**limits) if limits else None
    tr = grade_topic(course_config.topic(topic), Path(folder), "hidden", student=student, limits=lim,
                     torch_limits=lim)
    tr.fingerprint = fp
    return reports.gradescope(tr)  # extra_data.dlcore.sandbox records which sandbox graded it


def _internal_error(student: str, topic: str, exc: BaseException) -> R.TopicResult:
    tp = course_config.topic(topic)
    return R.TopicResult(student, topic, [R.CheckResult(t.name, 0.0, t.points, R.GRADER_ERROR,
                                                        f"the grader failed on this submission ({exc!r}); rerun "
                                                        f"`dlcore grade` to retry it", category=t.category,
                                                        grader_errors=(repr(exc),))
                                          for t in tp.tasks], notes=[f"grader error: {exc!r}"])


def grade(topics: list[str], submissions: Path, out: Path, jobs: int = 1, manual: Path | None = None,
          force: bool = False, quiet: bool = False, limits: course_config.Limits | None = None,
          allow_unisolated: bool = False) -> list[dict]:
    """Grade every student's topics; write results.json, feedback pages and gradebook.csv under `out`.

    Refuses (SystemExit) where the sandbox has no filesystem isolation, unless `allow_unisolated` (the grader's
    explicit --allow-unisolated-sandbox, or the demo's own sample code). `limits` overrides every topic's worker
    limits (tests use short ones).
    """
    from autograder import sandbox

    why = sandbox.isolation_problem()
    if why and not allow_unisolated:
        raise SystemExit(f"refusing to grade: {why}; student code would run without filesystem isolation. "
                         f"Install bubblewrap (`{sandbox.INSTALL_BWRAP}`) or allow it explicitly")
    from rich.console import Console
    from rich.progress import Progress

    console = Console(quiet=quiet)
    for t in topics:
        course_config.topic(t)  # unknown topic: a clear KeyError before any work
    work = discover(submissions, topics)
    version = f"{grader_version()}:{sandbox_mode()}"  # installing bubblewrap later regrades what ran without it
    todo, done = [], 0
    for student, topic, folder in work:
        fp = fingerprint(folder, version)
        prev = reports.read_topic_result(out / student / topic / "results.json")
        if not force and prev is not None and prev.fingerprint == fp:
            done += 1
            continue
        todo.append((student, topic, folder, fp))
    if done:
        console.print(f"resuming: {done} of {len(work)} already graded with the same submission and grader")
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no locks or threads inherited
    t0 = time.perf_counter()
    with Progress(console=console, transient=False) as progress, \
            cf.ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=ctx, initializer=_init_pool) as pool:
        bar = progress.add_task("grading", total=len(todo))
        lim = dataclasses.asdict(limits) if limits else None
        futures = {pool.submit(_grade_job, s, t, str(f), fp, lim): (s, t) for s, t, f, fp in todo}
        for fut in cf.as_completed(futures):
            student, topic = futures[fut]
            try:
                data = fut.result()
                (out / student / topic).mkdir(parents=True, exist_ok=True)
                reports.write_atomic(out / student / topic / "results.json", json.dumps(data, indent=1))
            except Exception as exc:  # a broken pool process costs this submission, not the batch
                record_grader_failure(out, student, topic, exc)
                console.print(f"[red]grader error[/red] on {student}/{topic}: {exc!r}")
            progress.advance(bar)
    rows = write_reports(topics, [s for s, _, _ in work], out, manual)
    console.print(f"graded {len(todo)} in {time.perf_counter() - t0:.1f} s; gradebook: {out / 'gradebook.csv'}")
    return rows


def record_grader_failure(out: Path, student: str, topic: str, exc: BaseException) -> None:
    """The grader itself failed on (student, topic): write its results.json anyway, every task a grader error and
    no fingerprint, so the gradebook shows it and the next run regrades it."""
    reports.write_results(out, _internal_error(student, topic, exc))


def write_reports(topics: list[str], students: list[str], out: Path, manual: Path | None = None) -> list[dict]:
    """Gradebook and feedback pages from the results.json files under `out`."""
    manual_scores = scoring.load_manual(manual)
    rows = []
    for student in dict.fromkeys(students):
        trs = []
        for topic in topics:
            tr = reports.read_topic_result(out / student / topic / "results.json")
            if tr is None:
                tr = _internal_error(student, topic, RuntimeError("no readable results.json: not graded yet"))
            trs.append(scoring.apply_manual(tr, manual_scores))
        row = scoring.gradebook_row(student, trs)
        rows.append(row)
        reports.write_atomic(out / student / "feedback.html", reports.feedback_html(student, trs, row))
    reports.write_gradebook(out / "gradebook.csv", rows)
    return rows
