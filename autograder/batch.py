"""`dlcore grade`: grade a folder of submissions (nbgrader layout submitted/<student>/<topic>/) in parallel.

Each (student, topic) is graded by `grade_one`, in a pool process of this trusted program (executor "process") or
on a Dask distributed worker (executor "dask": a local cluster, or an existing one given by its scheduler's
address); either way the student's code runs in sandboxed workers. The executors differ only in scheduling:
a Dask worker receives the submission as bytes (a zip of the student's topic folder and the earlier topics it
requires, unpacked into a private temporary folder) and sends the results back as plain JSON data, so no shared
filesystem is needed; a worker that dies mid-grading has its gradings rescheduled elsewhere by Dask.

Only this (client) process writes results: atomically per (student, topic), with a fingerprint of the submission
and the grader; a rerun skips what is already graded with the same fingerprint, so an interrupted batch resumes
where it stopped. Submissions are only read, never modified.
"""
from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import functools
import hashlib
import io
import json
import multiprocessing
import os
import tempfile
import time
import uuid
import zipfile
from pathlib import Path
from typing import Iterator

import course_config
from autograder import reports, scoring
from autograder import results as R
from autograder.runner import REPO
from autograder.confine import sandbox_mode

GRADER_SOURCES = ("autograder", "solutions", "course_config")
EXECUTORS = ("process", "dask")


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


def _one_blas_thread() -> None:
    """One BLAS and torch thread in this grading process (pool process or Dask worker): no contention."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")  # for libraries not loaded yet
    import torch
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # and for those already loaded (a Dask worker started without the variables)
    torch.set_num_threads(1)


def grade_one(student: str, topic: str, folder: str, fp: str, limits: dict | None,
              device: str | None = None) -> dict:
    """Grade one topic of one student; returns the Gradescope dict (plain data). The one code path of every
    executor: a pool process calls it on the submission's folder, a Dask worker on its unpacked copy."""
    from autograder.runner import grade_topic

    lim = course_config.Limits(**limits) if limits else None
    tr = grade_topic(course_config.topic(topic), Path(folder), "hidden", student=student, limits=lim,
                     torch_limits=lim, device=device)
    tr.fingerprint = fp
    return reports.gradescope(tr)  # extra_data.dlcore.sandbox records which sandbox graded it


def grading_version() -> str:
    """What a fingerprint covers besides the submission: the grader, and the sandbox that runs student code
    (installing bubblewrap later regrades what ran without it)."""
    return f"{grader_version()}:{sandbox_mode()}"


def pack(student_dir: Path, topic: str) -> bytes:
    """The student's topic folder and the earlier topics it requires, as a zip in memory: what travels to a Dask
    worker. Links and caches stay behind, as they do when the sandbox copies a submission."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for slug in (topic, *course_config.topic(topic).requires):
            for dirpath, dirnames, filenames in os.walk(student_dir / slug):  # never follows links
                dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
                rel = Path(dirpath).relative_to(student_dir).as_posix()
                z.writestr(rel + "/", b"")  # empty folders too
                for name in sorted(filenames):
                    if not os.path.islink(os.path.join(dirpath, name)):
                        z.write(os.path.join(dirpath, name), f"{rel}/{name}")
    return buf.getvalue()


@functools.lru_cache(maxsize=1)
def _loaded_version() -> str:
    """The grading version of the code this worker process loaded: hashed at its first task, when it imported the
    grader, so a worker whose files were updated but which was not restarted still counts as the old grader."""
    return grading_version()


def _grade_packed(student: str, topic: str, archive: bytes, origin: str, version: str, fp: str,
                  limits: dict | None, device: str | None, allow_unisolated: bool) -> dict:
    """A Dask task: grade one (student, topic) from its zipped folder (see `pack`) through `grade_one`.

    The worker must grade with the client's grader and sandbox (else the fingerprint would lie), and refuses to
    grade without filesystem isolation unless the client allowed it. Paths in the results name the submission's
    folder on the client (`origin`), not the temporary copy."""
    from autograder import confine

    _one_blas_thread()
    mine = _loaded_version()
    if mine != version:
        raise RuntimeError(f"this Dask worker grades with another grader or sandbox ({mine}) than the client "
                           f"({version}): install the same autograder/, solutions/ and course_config/, and "
                           f"bubblewrap, on every worker, and restart the workers after an update")
    why = confine.isolation_problem()
    if why and not allow_unisolated:
        raise RuntimeError(f"refusing to grade on this Dask worker: {why}")
    with tempfile.TemporaryDirectory(prefix="dlcore-dask-") as tmp:
        with zipfile.ZipFile(io.BytesIO(archive)) as z:
            z.extractall(tmp)
        data = grade_one(student, topic, os.path.join(tmp, topic), fp, limits, device)
        text = json.dumps(data).replace(json.dumps(tmp)[1:-1], json.dumps(origin)[1:-1])
    data = json.loads(text)
    from distributed import get_worker

    data["extra_data"]["dlcore"]["graded_on"] = get_worker().address  # which worker graded it, for the audit
    return data


def _internal_error(student: str, topic: str, exc: BaseException) -> R.TopicResult:
    tp = course_config.topic(topic)
    return R.TopicResult(student, topic, [R.CheckResult(t.name, 0.0, t.points, R.GRADER_ERROR,
                                                        f"the grader failed on this submission ({exc!r}); rerun "
                                                        f"`dlcore grade` to retry it", category=t.category,
                                                        grader_errors=(repr(exc),))
                                          for t in tp.tasks], notes=[f"grader error: {exc!r}"])


def grade(topics: list[str], submissions: Path, out: Path, jobs: int = 1, manual: Path | None = None,
          force: bool = False, quiet: bool = False, limits: course_config.Limits | None = None,
          allow_unisolated: bool = False, executor: str = "process", scheduler: str | None = None,
          device: str | None = None) -> list[dict]:
    """Grade every student's topics; write results.json, feedback pages and gradebook.csv under `out`.

    Refuses (SystemExit) where the sandbox has no filesystem isolation, unless `allow_unisolated` (the grader's
    explicit --allow-unisolated-sandbox, or the demo's own sample code). `limits` overrides every topic's worker
    limits (tests use short ones). `executor` "process" grades in `jobs` pool processes; "dask" on a Dask cluster:
    the one at `scheduler` (an address such as tcp://host:8786), else a local cluster of `jobs` workers.
    `device` ("cpu", "cuda") is where the PyTorch modules' torch code runs; None leaves torch's default (CPU).
    """
    from autograder import confine
    from autograder.runner import device_problem

    if scheduler:
        executor = "dask"
    if executor not in EXECUTORS:
        raise SystemExit(f"unknown executor {executor!r}: use one of {', '.join(EXECUTORS)}")
    why = confine.isolation_problem()
    if why and not allow_unisolated:
        raise SystemExit(f"refusing to grade: {why}; student code would run without filesystem isolation. "
                         f"Install bubblewrap (`{confine.INSTALL_BWRAP}`) or allow it explicitly")
    if device and not scheduler and device_problem(device):  # a remote cluster's workers are asked instead
        raise SystemExit(device_problem(device))
    from rich.console import Console
    from rich.progress import Progress

    console = Console(quiet=quiet)
    for t in topics:
        course_config.topic(t)  # unknown topic: a clear KeyError before any work
    work = discover(submissions, topics)
    version = grading_version()
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
    t0 = time.perf_counter()
    lim = dataclasses.asdict(limits) if limits else None
    if executor == "dask":
        finished = _on_dask(todo, lim, device, version, allow_unisolated, scheduler, max(1, jobs))
    else:
        finished = _on_process_pool(todo, lim, device, max(1, jobs))
    with Progress(console=console, transient=False) as progress:
        bar = progress.add_task("grading", total=len(todo))
        for student, topic, outcome in finished:
            try:
                if isinstance(outcome, BaseException):
                    raise outcome
                (out / student / topic).mkdir(parents=True, exist_ok=True)
                reports.write_atomic(out / student / topic / "results.json", json.dumps(outcome, indent=1))
            except Exception as exc:  # a broken pool process or Dask worker costs this submission, not the batch
                record_grader_failure(out, student, topic, exc)
                console.print(f"[red]grader error[/red] on {student}/{topic}: {exc!r}")
            progress.advance(bar)
    rows = write_reports(topics, [s for s, _, _ in work], out, manual)
    console.print(f"graded {len(todo)} in {time.perf_counter() - t0:.1f} s; gradebook: {out / 'gradebook.csv'}")
    return rows


Outcome = Iterator[tuple[str, str, "dict | BaseException"]]  # (student, topic, results.json data or the failure)


def _on_process_pool(todo: list, lim: dict | None, device: str | None, jobs: int) -> Outcome:
    """Grade in `jobs` spawned pool processes of this machine, each running `grade_one` on the folder itself."""
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no locks or threads inherited
    with cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_one_blas_thread) as pool:
        futures = {pool.submit(grade_one, s, t, str(f), fp, lim, device): (s, t) for s, t, f, fp in todo}
        for fut in cf.as_completed(futures):
            student, topic = futures[fut]
            try:
                yield student, topic, fut.result()
            except Exception as exc:
                yield student, topic, exc


def _on_dask(todo: list, lim: dict | None, device: str | None, version: str, allow_unisolated: bool,
             scheduler: str | None, workers: int) -> Outcome:
    """Grade on a Dask cluster: the one at `scheduler`, else a local one of `workers` single-threaded worker
    processes (one BLAS thread each). A task carries its submission as bytes; at most twice as many tasks as the
    cluster has threads are in flight, so the client packs submissions as workers free up. A worker that dies
    mid-grading has its task rescheduled by the scheduler on another worker (up to Dask's
    `distributed.scheduler.allowed-failures` deaths; after that the task fails with KilledWorker and is recorded
    as a grader error without a fingerprint, so the next run regrades it). Each task's result arrives once."""
    from distributed import Client, LocalCluster, as_completed

    if not todo:
        return
    cluster = None if scheduler else LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                                  dashboard_address=None)
    client = Client(scheduler or cluster)
    try:
        if device:  # every worker present must have the device (a worker that joins later is checked per task)
            problems = {w: p for w, p in client.run(_device_problem_here, device).items() if p}
            if problems:
                raise SystemExit("; ".join(f"Dask worker {w}: {p}" for w, p in sorted(problems.items())))
        pending, running, batch_id = iter(todo), {}, uuid.uuid4().hex[:8]
        queue = as_completed()

        def submit_next() -> bool:
            item = next(pending, None)
            if item is None:
                return False
            student, topic, folder, fp = item
            fut = client.submit(_grade_packed, student, topic, pack(folder.parent, topic), str(folder.parent),
                                version, fp, lim, device, allow_unisolated,
                                key=f"dlcore-grade-{topic}-{student}-{batch_id}")
            running[fut.key] = (student, topic)
            queue.add(fut)
            return True

        while len(running) < 2 * max(1, sum(client.nthreads().values())) and submit_next():
            pass
        for fut in queue:
            student, topic = running.pop(fut.key)
            try:
                yield student, topic, fut.result()
            except Exception as exc:  # KilledWorker, or the grading raised on the worker
                yield student, topic, exc
            finally:
                fut.release()
            while len(running) < 2 * max(1, sum(client.nthreads().values())) and submit_next():
                pass
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _device_problem_here(device: str) -> str | None:
    from autograder.runner import device_problem

    return device_problem(device)


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
