"""Grade one topic of one submission: start sandboxed workers, run a suite's checks, collect results.

This process is trusted: it never imports, execs or unpickles student code or data. Student code runs in the
workers of a Session; only plain arrays and JSON come back.
"""
from __future__ import annotations

import dataclasses
import functools
import importlib
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import course_config
from autograder import results as R
from autograder import wire
from autograder.checks import Context, Suite, task_seed
from autograder.client import StudentError, WorkerClient, WorkerLost
from autograder.confine import sandbox_mode
from course_config import Limits, Task, Topic

REPO = Path(course_config.__file__).resolve().parents[1]
SOLUTIONS = REPO / "solutions"


def toolkit_dir() -> Path:
    import toolkit

    return Path(toolkit.__file__).resolve().parent


class Session:
    """The workers serving one student's topic folder: one for NumPy modules (torch banned), one for torch
    modules, each with its own limits (`Topic.limits`, `Topic.torch_limits`): calls into a worker share that
    worker's wall-clock budget. A worker that dies is restarted on the next call; a module that failed to import
    keeps failing with the same message instead of being retried. Objects a task kept in a worker are released
    when the task ends."""

    def __init__(self, topic: Topic, folder: Path, limits: Limits | None = None,
                 torch_limits: Limits | None = None, patch: tuple[str, ...] = (), device: str | None = None):
        self.topic, self.folder = topic, Path(folder)
        self.device = device  # where the torch worker's tensors live ("cuda"); None: torch's default, the CPU
        self.patch = patch  # functions "topic.module.fn" replaced by the reference (isolated scoring)
        self.unreplaced: set[str] = set()  # of those, the ones that ran the student's code (called with its objects)
        self.parent_objects: dict[int, object] = {}  # reference objects the worker holds only as references
        self.limits = {"numpy": limits or topic.limits, "torch": torch_limits or topic.torch_limits}
        self.workers: dict[str, WorkerClient] = {}
        self.imported: dict[str, set[str]] = {}
        self.import_failures: dict[str, Exception] = {}
        self.student_seconds = 0.0
        self.spent = {"numpy": 0.0, "torch": 0.0}  # seconds spent in each worker's calls
        self.seeded: set[str] = set()  # the worker kinds seeded since the last reseed
        self.seed = 0

    def reseed(self, seed: int) -> None:
        """Seed the workers' global RNGs (random, np.random, torch) before their next call in this task."""
        self.seed, self.seeded = seed, set()

    def kind(self, module: str) -> str:
        return "torch" if module in self.topic.torch_modules else "numpy"

    def _worker(self, module: str) -> WorkerClient:
        if module in self.import_failures:
            raise self.import_failures[module]
        kind = self.kind(module)
        w = self.workers.get(kind)
        if w is None or not w.alive:
            if w is not None:
                w.close()
            banned = course_config.BANNED_IN_NUMPY_WORKER if kind == "numpy" else ()
            folders = {self.topic.slug: self.folder}
            folders.update({r: self.folder.parent / r for r in self.topic.requires
                            if (self.folder.parent / r).is_dir()})  # the same student's earlier topics
            device = self.device if kind == "torch" else None
            w = WorkerClient(folders, self.limits[kind], banned, {"toolkit": toolkit_dir()}, device=device)
            self.workers[kind], self.imported[kind] = w, set()
            self.seeded.discard(kind)
            w.start()
            if device:  # before any student module is imported; a failure here is the grader's, not the student's
                try:
                    w.set_device(device)
                except StudentError as exc:
                    w.close()
                    raise RuntimeError(f"--device {device}: the sandboxed torch worker cannot use it "
                                       f"({exc.info.get('message')})") from None
            if self.patch:
                try:
                    w.patch(self.patch, functools.partial(self._reference_callback, memo=wire.Memo()))
                except StudentError as exc:
                    exc.info["message"] = f"importing the modules for isolated scoring failed: {exc.info.get('message')}"
                    raise
        if module not in self.imported[kind]:
            try:
                w.import_module(f"{self.topic.slug}.{module}")
            except StudentError as exc:
                exc.info["message"] = f"importing {module}.py failed: {exc.info.get('message', '')}"
                self.import_failures[module] = exc
                raise
            except WorkerLost as exc:
                failure = WorkerLost(exc.reason, f"{exc.message} while {module}.py was being imported "
                                                 f"(code at the top level of a module runs at import)")
                self.import_failures[module] = failure
                raise failure from None
            self.imported[kind].add(module)
        if kind not in self.seeded:
            w.seed(self.seed)
            self.seeded.add(kind)
        return w

    def call(self, module: str, target, *args, **kwargs):
        kind = self.kind(module)
        remaining = self.limits[kind].wall_s - self.spent[kind]
        if remaining <= 0:
            raise WorkerLost("budget", f"was not run: the submission used up the grading time of its "
                                       f"{kind} modules ({self.limits[kind].wall_s:g} s)")
        w = self._worker(module)
        if isinstance(target, str):
            target = f"{self.topic.slug}.{module}.{target}"
        # a call may not outlast the worker's grading budget, whatever timeout the check asked for
        kwargs["timeout"] = min(kwargs.get("timeout") or self.limits[kind].call_s, remaining)
        t0 = time.perf_counter()
        try:
            return w.call(target, *args, **kwargs)
        finally:
            self.spent[kind] += time.perf_counter() - t0
            self.student_seconds += time.perf_counter() - t0

    def _reference_callback(self, header: dict, blobs: list[bytes], memo=None) -> tuple[dict, list[bytes]]:
        """Answer a patched function's call in the worker: run the reference here, send back plain data only.
        `memo` (autograder.wire.Memo, one per worker, mirroring the worker's) lets an array that crosses back
        unchanged travel as a number: a layer's cache, returned by one call and passed to the next."""
        from autograder.client import Handle

        memo = memo if memo is not None else wire.Memo()
        objects = self.parent_objects

        def resolve(ref):
            return objects.get(int(ref["__h__"])) if ref.get("parent") else Handle(int(ref["__h__"]), "?")

        def keep(obj):
            objects[len(objects) + 1] = obj
            return {"__h__": len(objects), "parent": True, "type": type(obj).__name__}

        name = str(header.get("callback"))
        try:
            if name not in self.patch:
                return {"ok": False, "error": f"{name} is not a replaced function"}, []
            if header.get("unreplaced"):  # called with the student's own objects: the worker ran the student's code
                self.unreplaced.add(name)
                return {"ok": True}, []
            slug, module, fn = name.split(".")
            import numpy as np

            def named(cls_name, fields):  # a named tuple (a cache) comes back as the reference's own class, if any
                return wire.named_tuple_class(reference(slug, module), cls_name, fields, fresh=False)

            try:
                args = wire.decode(header.get("args", []), blobs, resolve, named, memo)
                kwargs = wire.decode(header.get("kwargs", {"__dict__": []}), blobs, resolve, named, memo)
            except Exception as exc:  # a malformed request
                return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}, []
        finally:
            memo.commit(blobs)  # the request's blobs, numbered as the worker numbered them when it sent them
        out: list[bytes] = []
        try:
            with np.errstate(all="ignore"):  # the student's values may overflow; the reference just returns them
                result = getattr(reference(slug, module), fn)(*args, **kwargs)
            reply = {"ok": True, "value": wire.encode(result, out, keep, memo=memo)}
        except Exception as exc:  # bad arguments from the student's code: its call fails, as it would
            memo.pending, out = [], []
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        memo.commit(out)
        return reply, out

    def end_task(self) -> None:
        """Release every object the task kept in the workers (models, caches), so tasks cannot share state."""
        for w in self.workers.values():
            if w.alive:
                try:
                    w.release_all()
                except (StudentError, WorkerLost):
                    pass

    def getattr(self, module: str, handle, attr: str):
        return self._worker(module).getattr(handle, attr)

    def take_output(self) -> str:
        return "\n".join(filter(None, (w.take_output() for w in self.workers.values())))

    def banned_imports(self) -> list[str]:
        w = self.workers.get("numpy")
        if w is None or not w.alive:
            return []
        try:
            return w.banned_modules()
        except (StudentError, WorkerLost):
            return []

    def close(self) -> None:
        for w in self.workers.values():
            w.close()
        self.workers.clear()


def load_suite(topic: str, visibility: str) -> Suite:
    """The public or hidden suite of a topic (both built from the same checks, see autograder.checks). The hidden
    suite exists only in the instructors' repository."""
    try:
        mod = importlib.import_module(f"autograder.{visibility}.{topic}")
    except ModuleNotFoundError as exc:
        if visibility == "hidden":
            raise SystemExit(f"the hidden suite for {topic!r} is not available here (the student edition ships "
                             f"only public checks; use `dlcore check {topic}`)") from exc
        raise
    return mod.SUITE


@functools.lru_cache(maxsize=None)
def reference(slug: str, module: str):
    """A reference module from solutions/ (trusted process only): the hidden suites' oracle."""
    if not (SOLUTIONS / slug).is_dir():
        raise SystemExit(f"solutions/{slug} not found: the hidden suite needs the instructors' repository")
    if str(SOLUTIONS) not in sys.path:
        sys.path.insert(0, str(SOLUTIONS))
    return importlib.import_module(f"{slug}.{module}")


def missing_files(topic: Topic, folder: Path) -> dict[str, str]:
    """module -> message for student modules that are absent from the folder."""
    out = {}
    for m in topic.modules:
        if not (folder / f"{m}.py").is_file():
            out[m] = (f"{m}.py is missing from {folder}: copy release/{topic.slug}/{m}.py into that folder "
                      f"and fill it in (file names must stay as released)")
    return out


def notebook_problem(topic: Topic, folder: Path) -> str | None:
    """Why the topic notebook in `folder` cannot be read, or None when it is a valid notebook."""
    path = folder / topic.notebook
    if not path.is_file():
        return (f"{topic.notebook} is missing from {folder}: hand in the notebook with your written answers "
                f"(copy release/{topic.slug}/{topic.notebook} and work in it)")
    import nbformat

    try:
        nbformat.validate(nbformat.read(path, as_version=4))
    except Exception as exc:  # JSON errors, schema errors, wrong encodings: all mean "cannot read it"
        first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
        return (f"{topic.notebook} is not a valid notebook ({first}); its written answers cannot be read. "
                f"Open it in JupyterLab and save it again, or copy your answers into a fresh copy of "
                f"release/{topic.slug}/{topic.notebook}")
    return None


def _status(parts: list[R.Part], not_implemented: int) -> str:
    passed = sum(p.passed for p in parts)
    if parts and passed == len(parts):
        return R.PASSED
    if passed == 0 and not_implemented:
        return R.NOT_ATTEMPTED
    return R.PARTIAL if passed else R.FAILED


def run_task(topic: Topic, task: Task, suite: Suite, session: Session, seed: int,
             failed_before: set[str]) -> R.CheckResult:
    tags = (f"{task.module}.{task.function}" if task.function else task.module,)
    base: dict[str, Any] = dict(tags=tags, seed=seed, category=task.category)
    if task.kind == "manual":
        return R.CheckResult(task.name, 0.0, task.points, R.MANUAL, "pending: graded by an instructor", **base)
    check = suite.checks[task.name]  # every automatic task has one (asserted when the suite was built)
    missing = missing_files(topic, session.folder).get(task.module)
    if missing:
        return R.CheckResult(task.name, 0.0, task.points, R.ERROR, missing, **base)
    session.reseed(seed)
    ctx = Context(topic, task, session, seed, suite)
    t0 = time.perf_counter()
    try:
        check(ctx)
    except Exception as exc:  # a grader bug outside any part: the task is the grader's error, not a zero
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        ctx.grader_errors.append(f"{type(exc).__name__}: {exc} at {Path(frame.filename).name}:{frame.lineno}")
    finally:
        session.end_task()
    seconds = time.perf_counter() - t0
    parts = ctx.parts or [R.Part("check", 1.0, False, "the check scored nothing", grader_error=True)]
    total = sum(p.weight for p in parts)
    points = task.points * sum(p.weight for p in parts if p.passed) / total
    status = _status(parts, ctx.not_implemented)
    lost = [p for p in parts if not p.passed]
    message = "; ".join(f"[{p.label}] {p.message}" for p in lost)
    if status == R.NOT_ATTEMPTED:
        message = f"not attempted: {tags[0]} still raises NotImplementedError"
    elif lost and any(d in failed_before for d in task.depends_on):
        deps = ", ".join(d for d in task.depends_on if d in failed_before)
        message += f". Note: this task calls {deps}, which lost points in its own check; fix that first"
    if status == R.FAILED and ctx.worker_errors:
        status = R.ERROR
    if ctx.grader_errors or any(p.grader_error for p in parts):
        status = R.GRADER_ERROR
        message = ("the grader failed while checking this task (not your mistake; the course staff will fix it "
                   "and regrade): " + "; ".join(ctx.grader_errors or [p.message for p in parts if p.grader_error]))
    return R.CheckResult(task.name, round(points, 6), task.points, status, message, tuple(parts),
                         session.take_output(), round(seconds, 3), figures=tuple(ctx.figures),
                         metrics=dict(ctx.metrics), grader_errors=tuple(ctx.grader_errors), **base)


def replaceable_dependencies(task: Task) -> tuple[str, ...]:
    """The functions ("topic.module.function") a task depends on that the reference can stand in for: plain
    functions (classes and methods keep the student's code, since objects cannot cross to the grader). A listed
    function that is called with one of the student's objects (a training loop given the model) still runs the
    student's code at that call: the worker's proxy falls back, and the isolated score's note names it."""
    import inspect

    names = []
    for dep in task.depends_on:
        slug = dep.split(".", 1)[0]
        d = course_config.topic(slug).task(dep)
        if d.kind != "auto" or "." in d.function:
            continue
        if inspect.isfunction(getattr(reference(slug, d.module), d.function, None)):
            names.append(f"{slug}.{d.module}.{d.function}")
    return tuple(names)


def _with_isolated_score(topic: Topic, task: Task, suite: Suite, folder: Path, seed: int, r: R.CheckResult,
                         limits, torch_limits, device: str | None = None) -> R.CheckResult:
    """Dependent scoring (hidden suite): when the task lost points and calls other graded functions, grade it again
    with those functions replaced by the reference, in fresh workers. Both scores are kept; the gradebook counts
    the one course_config.DEPENDENT_SCORING names."""
    r = dataclasses.replace(r, end_to_end_points=r.points)
    patch = replaceable_dependencies(task) if suite.visibility == "hidden" else ()
    # (a dependency of an earlier topic is graded in its own topic, so any lost point here may come from it)
    if r.points >= r.max_points or not patch or r.status in (R.GRADER_ERROR, R.NOT_ATTEMPTED):
        return r
    session = Session(topic, folder, limits, torch_limits, patch=patch, device=device)
    try:
        iso = run_task(topic, task, suite, session, seed, set())
    finally:
        session.close()
    # a function called with the student's own objects (a training loop given the model) cannot run as the
    # reference, which never sees sandbox objects: it ran the student's code, and the note says so
    replaced = ", ".join(p.split(".", 1)[1] for p in patch if p not in session.unreplaced)
    kept = ", ".join(p.split(".", 1)[1] for p in patch if p in session.unreplaced)
    kept_note = f"; {kept} kept your code (called with your objects, which the reference cannot use)" if kept else ""
    note = (f" Isolated score, with the reference in place of {replaced or 'nothing'}{kept_note}: "
            f"{iso.points:g}/{iso.max_points:g}" + (f" ({iso.message})" if iso.message else "") + ".")
    points = iso.points if course_config.DEPENDENT_SCORING == "isolated" else r.points
    return dataclasses.replace(r, points=points, isolated_points=iso.points, message=r.message + note)


def device_problem(device: str) -> str | None:
    """Why torch cannot use `device` ("cpu", "cuda", "cuda:1") here, in one line; None when it can."""
    if device == "cpu":
        return None
    if device.split(":")[0] != "cuda":
        return f"--device {device}: unknown device (use cpu or cuda)"
    import torch

    if not torch.cuda.is_available():
        return (f"--device {device} requested but torch.cuda.is_available() is False on this machine "
                f"(torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'}); grade with --device cpu")
    index = int(device.split(":")[1]) if ":" in device else 0
    if index >= torch.cuda.device_count():
        return f"--device {device} requested but this machine has {torch.cuda.device_count()} CUDA device(s)"
    return None


def grade_topic(topic: Topic, folder: Path, visibility: str = "hidden", student: str = "",
                seed: int | None = None, limits: Limits | None = None, torch_limits: Limits | None = None,
                tasks: list[str] | None = None, device: str | None = None,
                lost: frozenset[str] = frozenset()) -> R.TopicResult:
    """Grade `folder` (a student's copy of release/<topic>/) with the public or hidden suite. `device` is where the
    torch worker's tensors live (see Session); verdicts are the same, since values come back as float64 NumPy.
    `tasks` grades only those; `lost` names tasks left out that lost points when last graded, so a dependent task
    notes them as it would in a full grading (a regrade of some tasks, `dlcore grade --task`)."""
    if device and device_problem(device):
        raise RuntimeError(device_problem(device))
    t0 = time.perf_counter()
    folder = Path(folder)
    suite = load_suite(topic.slug, visibility)
    base = course_config.GRADING_SEED if seed is None else seed
    result = R.TopicResult(student=student, topic=topic.slug, sandbox=sandbox_mode(), device=device or "cpu")
    if not folder.is_dir():
        result.notes.append(f"no folder {folder}: the submission has nothing for {topic.slug}")
    else:
        result.notes.extend(missing_files(topic, folder).values())
        problem = notebook_problem(topic, folder)
        if problem:
            result.notes.append(problem)
        for req in topic.requires:
            if not (folder.parent / req).is_dir():
                result.notes.append(f"{topic.slug} imports your {req} code, but there is no {req}/ folder beside "
                                    f"{folder.name}/: hand in {req}/ too")
    session = Session(topic, folder, limits, torch_limits, device=device)
    budget = session.limits["numpy"].wall_s + (session.limits["torch"].wall_s if topic.torch_modules else 0.0)
    failed: set[str] = set()
    try:
        for task in topic.tasks:
            if tasks and task.name not in tasks:
                if task.name in lost:
                    failed.add(task.name)
                continue
            seed_t = task_seed(base, task.name, student if visibility == "hidden" else "public")
            if time.perf_counter() - t0 > budget and task.kind == "auto":
                r = R.CheckResult(task.name, 0.0, task.points, R.SKIPPED,
                                  f"not run: this submission used up its grading time of {budget:g} s",
                                  seed=seed_t, category=task.category)
            elif not folder.is_dir() and task.kind == "auto":
                r = R.CheckResult(task.name, 0.0, task.points, R.ERROR, f"{folder} does not exist", seed=seed_t,
                                  category=task.category)
            else:
                r = run_task(topic, task, suite, session, seed_t, failed)
                r = _with_isolated_score(topic, task, suite, folder, seed_t, r, limits, torch_limits, device)
            if r.points < r.max_points and r.status != R.MANUAL:
                failed.add(task.name)
            result.results.append(r)
        banned = session.banned_imports()
        if banned:
            result.notes.append(f"policy: the NumPy modules used {', '.join(banned)}; from-scratch tasks may not "
                                f"use them (the functions that did scored 0 there)")
    finally:
        session.close()
    result.seconds = round(time.perf_counter() - t0, 3)
    result.student_seconds = round(session.student_seconds, 3)
    return result
