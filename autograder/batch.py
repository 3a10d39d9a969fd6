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
import contextlib
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
from collections.abc import Generator, Sequence
from pathlib import Path

import course_config
from autograder import lateness, reports, scoring, stopping
from autograder import results as R
from autograder.runner import REPO
from autograder.confine import sandbox_mode

GRADER_SOURCES = ("autograder", "solutions", "course_config")
# Not part of the grader: the schedule is applied after grading (autograder/lateness.py), so a moved deadline or
# a changed late policy recomputes the gradebook without regrading anyone.
NOT_GRADER = (Path("course_config") / "deadlines.py",)
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


def _hash_tree(h, folder: Path, base: Path, skip: tuple[Path, ...] = ()) -> None:
    if not folder.exists():
        h.update(f"<missing {folder.name}>".encode())
        return
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and not path.is_symlink() \
                and path.relative_to(base) not in skip:
            h.update(str(path.relative_to(base)).encode() + b"\0" + path.read_bytes() + b"\0")


def grader_version() -> str:
    """Hash of the grading code, references, config and seed: a change regrades everything."""
    h = hashlib.sha256(str(course_config.GRADING_SEED).encode())
    for name in GRADER_SOURCES:
        p = REPO / name
        if p.is_file():
            h.update(p.read_bytes())
        else:
            _hash_tree(h, p, REPO, NOT_GRADER)
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
              device: str | None = None, tasks: tuple[str, ...] | None = None,
              lost: frozenset[str] = frozenset()) -> dict:
    """Grade one topic of one student (only `tasks`, if given); returns the Gradescope dict (plain data). The
    one code path of every executor: a pool process calls it on the submission's folder, a Dask worker on its
    unpacked copy."""
    from autograder.runner import grade_topic

    lim = course_config.Limits(**limits) if limits else None
    tr = grade_topic(course_config.topic(topic), Path(folder), "hidden", student=student, limits=lim,
                     torch_limits=lim, device=device, tasks=list(tasks) if tasks else None, lost=frozenset(lost))
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
                  limits: dict | None, device: str | None, allow_unisolated: bool,
                  tasks: tuple[str, ...] | None = None, lost: frozenset[str] = frozenset()) -> dict:
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
        data = grade_one(student, topic, os.path.join(tmp, topic), fp, limits, device, tasks, lost)
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


@dataclasses.dataclass(frozen=True)
class Job:
    """One (student, topic) to grade: all of its tasks, or only `tasks` (a regrade) with `lost` naming the kept
    tasks that lost points (see runner.grade_topic)."""

    student: str
    topic: str
    folder: Path
    fingerprint: str                 # submission + grader: what a later run compares to skip it
    submission: str                  # the submission alone
    tasks: tuple[str, ...] | None = None
    lost: frozenset[str] = frozenset()


def _named_tasks(topics: list[str], tasks: list[str] | None) -> dict[str, tuple[str, ...]]:
    """topic -> the tasks of it named by --task; every name must be a task of one of `topics`."""
    named: dict[str, tuple[str, ...]] = {}
    for name in tasks or ():
        owner = next((t for t in topics if name in {k.name for k in course_config.topic(t).tasks}), None)
        if owner is None:
            raise SystemExit(f"--task {name}: not a task of {', '.join(topics)} (tasks are named TOPIC.FUNCTION, "
                             f"as in results.json)")
        named[owner] = (*named.get(owner, ()), name)
    return named


def grade(topics: list[str], submissions: Path, out: Path, jobs: int = 1, manual: Path | None = None,
          force: bool = False, quiet: bool = False, limits: course_config.Limits | None = None,
          allow_unisolated: bool = False, executor: str = "process", scheduler: str | None = None,
          device: str | None = None, students: list[str] | None = None,
          tasks: list[str] | None = None, extensions: Path | None = None,
          times: Path | None = None) -> list[dict]:
    """Grade every student's topics; write results.json, feedback pages and gradebook.csv under `out`.

    Refuses (SystemExit) where the sandbox has no filesystem isolation, unless `allow_unisolated` (the grader's
    explicit --allow-unisolated-sandbox, or the demo's own sample code). `limits` overrides every topic's worker
    limits (tests use short ones). `executor` "process" grades in `jobs` pool processes; "dask" on a Dask cluster:
    the one at `scheduler` (an address such as tcp://host:8786), else a local cluster of `jobs` workers.
    `device` ("cpu", "cuda") is where the PyTorch modules' torch code runs; None leaves torch's default (CPU).

    What is already graded with the same submission and grader is skipped (resuming), unless `force`. `students`
    and `tasks` regrade: only those students, only those tasks (the topics without a named task are left alone),
    graded again even if unchanged; a regrade of some tasks keeps the other tasks' results where the submission
    is the one they were graded on. `manual` (a CSV student,task,points) is recorded in `out` and used by every
    later run, report and course gradebook on `out` until another is given (scoring.recorded_manual); so are
    `extensions` (student,topic,until|days) and `times` (student,topic,submitted_at), see autograder.lateness.
    Each results.json records the submission time its folder holds (nbgrader's timestamp.txt); the late penalty
    is applied to the reports, after grading. The gradebook and feedback pages cover every student of
    `submissions` and every topic graded in `out`.
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
    named = _named_tasks(topics, tasks)
    work = discover(submissions, topics)
    everyone = list(dict.fromkeys(s for s, _, _ in work))
    unknown = sorted(set(students or ()) - set(everyone))
    if unknown:
        raise SystemExit(f"--student {', '.join(unknown)}: no such student folder in {submissions}")
    work = [(s, t, f) for s, t, f in work if (not students or s in students) and (not named or t in named)]
    out.mkdir(parents=True, exist_ok=True)
    manual = scoring.record_manual(out, manual)
    lateness.record(out, extensions, lateness.EXTENSIONS_RECORD, lateness.load_extensions)
    lateness.record(out, times, lateness.TIMES_RECORD, lateness.load_times)
    reports.remove_temporaries(out)  # left by a run killed while writing: never a finished result
    version = grading_version()
    regrade = force or bool(students) or bool(named)
    todo, kept, done = [], {}, 0
    for student, topic, folder in work:
        fp, submission = fingerprint(folder, version), fingerprint(folder, "")
        prev = reports.read_topic_result(out / student / topic / "results.json")
        if not regrade and prev is not None and prev.fingerprint == fp:
            done += 1
            continue
        only = named.get(topic)
        if only and prev is not None and prev.submission == submission and prev.fingerprint \
                and prev.sandbox == sandbox_mode():  # the others' results still hold: keep them
            kept[(student, topic)] = prev
            broken = [r.task for r in prev.results if r.task not in only and (r.status == R.GRADER_ERROR
                                                                             or r.grader_errors)]
            redo = (*only, *broken)  # a kept result the grader itself failed on is graded again too
            lost = frozenset(r.task for r in prev.results if r.task not in redo and r.points < r.max_points
                             and r.status != R.MANUAL)
            todo.append(Job(student, topic, folder, fp, submission, redo, lost))
        else:
            todo.append(Job(student, topic, folder, fp, submission))
    if done:
        console.print(f"resuming: {done} of {len(work)} already graded with the same submission and grader")
    t0 = time.perf_counter()
    lim = dataclasses.asdict(limits) if limits else None
    if executor == "dask":
        finished = _on_dask(todo, lim, device, version, allow_unisolated, scheduler, max(1, jobs))
    else:
        finished = _on_process_pool(todo, lim, device, max(1, jobs))
    with Progress(console=console, transient=False) as progress, contextlib.closing(finished):
        bar = progress.add_task("grading", total=len(todo))
        for job, outcome in finished:
            student, topic = job.student, job.topic
            try:
                if isinstance(outcome, BaseException):
                    raise outcome
                outcome["extra_data"]["dlcore"]["submission"] = job.submission
                # what the submission folder records (nbgrader's timestamp.txt), read here, never the grading time
                when, source = lateness.submission_time(job.folder)
                outcome["extra_data"]["dlcore"] |= {"submitted_at": when, "submitted_source": source}
                if (student, topic) in kept:
                    outcome = merge(kept[(student, topic)], outcome)
                reports.write_atomic(out / student / topic / "results.json", json.dumps(outcome, indent=1))
            except Exception as exc:  # a broken pool process or Dask worker costs this submission, not the batch
                record_grader_failure(out, student, topic, exc)
                console.print(f"[red]grader error[/red] on {student}/{topic}: {exc!r}")
            progress.advance(bar)
    rows = write_reports(topics, everyone, out, manual)
    console.print(f"graded {len(todo)} in {time.perf_counter() - t0:.1f} s; gradebook: {out / 'gradebook.csv'}")
    return rows


def merge(kept: R.TopicResult, regraded: dict) -> dict:
    """results.json data of a regrade of some tasks (`regraded`, graded now) merged into the earlier grading of the
    same submission (`kept`): the regraded tasks' results replace theirs, the others' are kept as they were, in
    the topic's task order; the notes on the files and the fingerprint are the new grading's."""
    new = reports.topic_result(regraded)
    assert new is not None  # `regraded` is gradescope data this grader has just made (reports.gradescope)
    by_task = {r.task: r for r in kept.results} | {r.task: r for r in new.results}
    order = [t.name for t in course_config.topic(kept.topic).tasks]
    merged = dataclasses.replace(
        new, results=sorted(by_task.values(), key=lambda r: order.index(r.task) if r.task in order else len(order)),
        seconds=round(kept.seconds + new.seconds, 3), student_seconds=round(kept.student_seconds
                                                                           + new.student_seconds, 3))
    data = reports.gradescope(merged)
    extra = regraded["extra_data"]["dlcore"]
    data["extra_data"]["dlcore"] |= {k: v for k, v in extra.items() if k not in data["extra_data"]["dlcore"]}
    data["extra_data"]["dlcore"]["regraded_tasks"] = [r.task for r in new.results]
    return data


Outcome = Generator[tuple[Job, "dict | BaseException"], None, None]  # (the job, its results.json data or the failure)


def _pool_process_start(parent: int) -> None:
    """Initializer of a pool process: stops with the batch (autograder.stopping), one BLAS thread."""
    stopping.in_child(parent)
    _one_blas_thread()


def _on_process_pool(todo: list, lim: dict | None, device: str | None, jobs: int) -> Outcome:
    """Grade in `jobs` spawned pool processes of this machine, each running `grade_one` on the folder itself.

    Stopped (SIGTERM or SIGINT, see autograder.stopping) while waiting, it first hands over every grading that
    had finished, then shuts the pool down without waiting for the queued ones."""
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no locks or threads inherited
    pool = cf.ProcessPoolExecutor(max_workers=jobs, mp_context=ctx, initializer=_pool_process_start,
                                  initargs=(os.getpid(),))
    futures: dict = {}
    finished_normally = False
    try:
        futures = {pool.submit(stopping.run_in_child, grade_one, j.student, j.topic, str(j.folder), j.fingerprint,
                               lim, device, j.tasks, j.lost): j for j in todo}
        try:
            for fut in cf.as_completed(futures):
                yield futures.pop(fut), _outcome(fut)
        except stopping.Stopped:
            done = [f for f in futures if f.done() and not f.cancelled() and f.exception() is None]
            pool.shutdown(wait=False, cancel_futures=True)
            for fut in done:  # finished before the signal: keep them, so the rerun does not grade them again
                yield futures.pop(fut), fut.result()
            raise
        finished_normally = True
    finally:
        pool.shutdown(wait=finished_normally, cancel_futures=not finished_normally)


def _outcome(fut: cf.Future) -> "dict | BaseException":
    try:
        return fut.result()
    except Exception as exc:
        return exc


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
    finished_normally, in_flight = False, {}
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
            fut = client.submit(_grade_packed, item.student, item.topic, pack(item.folder.parent, item.topic),
                                str(item.folder.parent), version, item.fingerprint, lim, device, allow_unisolated,
                                item.tasks, item.lost, key=f"dlcore-grade-{item.topic}-{item.student}-{batch_id}")
            running[fut.key] = item
            in_flight[fut.key] = fut
            queue.add(fut)
            return True

        while len(running) < 2 * max(1, sum(client.nthreads().values())) and submit_next():
            pass
        for fut in queue:
            job = running.pop(fut.key)
            in_flight.pop(fut.key, None)
            try:
                yield job, fut.result()
            except Exception as exc:  # KilledWorker, or the grading raised on the worker
                yield job, exc
            finally:
                fut.release()
            while len(running) < 2 * max(1, sum(client.nthreads().values())) and submit_next():
                pass
        finished_normally = True
    finally:
        if not finished_normally and in_flight:  # stopped: the scheduler forgets the rest (a task already
            client.cancel(list(in_flight.values()), force=True)  # running on a remote worker runs to its end)
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


def graded_topics(out: Path, topics: Sequence[str] = ()) -> list[str]:
    """`topics` and every topic with a results.json under `out`, in the course's order."""
    slugs = set(topics) | {p.parent.name for p in out.glob("*/*/results.json")}
    return [t.slug for t in course_config.TOPICS if t.slug in slugs]


def write_reports(topics: list[str], students: list[str], out: Path, manual: Path | None = None) -> list[dict]:
    """Gradebook and feedback pages from the results.json files under `out`, over `topics` and every other topic
    graded there, with the manual scores given (then recorded in `out`) or else those recorded in `out`, and the
    late penalties from the submission times, deadlines and extensions recorded there (autograder.lateness)."""
    topics = graded_topics(out, topics)
    manual_scores = scoring.load_manual(scoring.record_manual(out, manual))
    extensions, times = lateness.recorded(out)
    rows = []
    for student in dict.fromkeys(students):
        trs = []
        for topic in topics:
            tr = reports.read_topic_result(out / student / topic / "results.json")
            if tr is None:
                tr = _internal_error(student, topic, RuntimeError("no readable results.json: not graded yet"))
            trs.append(lateness.apply(scoring.apply_manual(tr, manual_scores), extensions, times))
        row = scoring.gradebook_row(student, trs)
        rows.append(row)
        reports.write_atomic(out / student / "feedback.html", reports.feedback_html(student, trs, row))
    reports.write_gradebook(out / "gradebook.csv", rows)
    return rows
