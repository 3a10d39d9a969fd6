"""Shared fixtures. Tests use the real sandbox, real torch, real data and the real nbgrader CLI."""
from __future__ import annotations

import os

# One BLAS/OpenMP thread per process, set before NumPy loads and inherited by nbgrader's kernels: with two
# xdist workers on two cores, spinning BLAS threads otherwise slow torch and NumPy several-fold (perf notes).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import dataclasses  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

import course_config  # noqa: E402
from autograder.runner import grade_topic  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SOLUTIONS = REPO / "solutions"
FF = course_config.topic("feedforward")
# The topics whose sample cohorts the suite grades with `dlcore demo` (six students each, the full hidden suites):
# the first topic (the report tests read its buggy students) and the cheapest to grade. Every topic's cohort is
# built and checked without grading (test_cli.test_demo_cohort_of_every_topic), and every topic's reference,
# stubs and planted bugs are graded by test_reference and test_mutants: grading all seven cohorts again here
# (about 18 minutes on 2 cores) would only repeat those gradings.
DEMO_TOPICS = (course_config.TOPICS[0].slug, course_config.topic("attention").slug)

# CI sets DLCORE_DATA; a developer checkout with ../shared beside it works without it.
if "DLCORE_DATA" not in os.environ and (REPO.parent / "shared" / "data" / "mnist.npz").is_file():
    os.environ["DLCORE_DATA"] = str(REPO.parent / "shared" / "data")


@pytest.fixture
def reference_copy(tmp_path) -> Path:
    """A student folder holding the reference solution of topic 1 (to edit into a hostile or buggy one)."""
    folder = tmp_path / "sub" / "feedforward"
    shutil.copytree(SOLUTIONS / "feedforward", folder, ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def edit(folder: Path, module: str, old: str, new: str) -> None:
    """Replace text that must occur exactly once in folder/<module>.py."""
    path = folder / f"{module}.py"
    text = path.read_text()
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times in {path}"
    path.write_text(text.replace(old, new))


def prepend(folder: Path, module: str, code: str) -> None:
    """Insert top-level code into a module, right after its `from __future__` import."""
    marker = "from __future__ import annotations\n"
    edit(folder, module, marker, marker + code + "\n")


def by_task(result) -> dict:
    return {r.task: r for r in result.results}


def grade(folder: Path, tasks=None, visibility="hidden", limits=None, student="tester", topic=FF):
    """Grade a topic folder (topic 1 by default); `limits` shortens the time limits of both workers (the torch worker keeps the
    memory and import time that importing torch needs, about 2 s alone and more on a loaded machine)."""
    torch_limits = dataclasses.replace(limits, memory_mb=FF.torch_limits.memory_mb,
                                       import_s=FF.torch_limits.import_s) if limits else None
    return grade_topic(topic, folder, visibility, student=student, tasks=tasks, limits=limits,
                       torch_limits=torch_limits)


def affected_modules(topic, changed: str) -> set[str]:
    """Modules of the topic that are `changed` or import it, directly or transitively (read from the reference)."""
    import ast

    imports = {}
    for m in topic.modules:
        tree = ast.parse((SOLUTIONS / topic.slug / f"{m}.py").read_text())
        imports[m] = {n.module.split(".")[1] for n in ast.walk(tree)
                      if isinstance(n, ast.ImportFrom) and n.module and n.module.startswith(topic.slug + ".")}
    affected, grew = {changed}, True
    while grew:
        new = {m for m, deps in imports.items() if deps & affected} - affected
        affected |= new
        grew = bool(new)
    return affected


def shared_run(tmp_path_factory, name: str, compute) -> tuple[Path, dict]:
    """Run `compute(folder) -> JSON-able dict` once per test session, whichever xdist worker asks first; the other
    workers wait for it and get the same (folder, dict). The folder is shared: tests read it, and a test that
    changes files works on its own copy."""
    import fcntl
    import json

    base = tmp_path_factory.getbasetemp()
    root = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # the workers' common folder
    folder, done = root / f"shared-{name}", root / f"shared-{name}.json"
    with open(root / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if compute fails
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            data = compute(folder)
            done.write_text(json.dumps(data))
    return folder, json.loads(done.read_text())


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory):
    """`dlcore demo --topics DEMO_TOPICS` run once per test session (whichever xdist worker asks first; the other
    waits and reads the same output): (output folder, the completed process's returncode/stdout/stderr)."""
    import subprocess
    from types import SimpleNamespace

    def run(out: Path) -> dict:
        proc = subprocess.run(["dlcore", "demo", "--out", str(out), "--topics", *DEMO_TOPICS], capture_output=True,
                              text=True, env=dict(os.environ, COLUMNS="200"))
        return dict(returncode=proc.returncode, stdout=proc.stdout, stderr=proc.stderr)

    out, proc = shared_run(tmp_path_factory, "demo", run)
    assert proc["returncode"] == 0, proc["stdout"][-3000:] + proc["stderr"][-3000:]
    return out, SimpleNamespace(**proc)
