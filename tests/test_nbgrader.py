"""End to end with the real nbgrader CLI (no mocks), for every topic in course_config.TOPICS: the topic's source
notebook goes through `generate_assignment`, then `autograde` scores two students.

- "ref" submits the instructor (source) notebook with the reference modules from solutions/<topic>: it must
  get every auto-graded point (all but the manually graded written answer).
- "stub" submits the released notebook with the released stub modules (every solution region replaced by
  `raise NotImplementedError`): autograding must still complete, and score 0.

The kernel that nbgrader starts is the course's sandboxed kernel (autograder/kernel.py); it runs the notebook in
the submission folder (named after the topic), so the notebook's `check(...)` cells grade that student's modules
with the public suite. A topic that
imports an earlier topic's code (`Topic.requires`, e.g. backprop's gradflow.py imports feedforward.layers) needs
that topic's folder beside its own; both students get the *reference* modules there, so that only the topic's own
stubs can make the stub score 0. Slow: the feedforward reference run trains the NumPy and the PyTorch network
(about a minute or two on one core); backprop takes about half a minute.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import course_config
from autograder import confine, kernel
from autograder.release import BEGIN, make_stub, solution_regions, stamp_points
from course_config import Task, Topic
from toolkit.data import DataMissing, dataset_path

REPO = Path(course_config.__file__).resolve().parents[1]
COURSE_ID = "dlcore"
DATASETS = sorted({d for t in course_config.TOPICS for d in t.datasets})  # what the notebooks load


def _data_available() -> bool:
    try:
        for name in DATASETS:
            dataset_path(name, download=False)
        return True
    except DataMissing:
        return False


pytestmark = pytest.mark.skipif(not _data_available(),
                                reason="course data not found: set DLCORE_DATA to the course data folder")


def secrets(topic: Topic) -> list[str]:
    """Text of the source notebook's solution regions and hidden tests, which must not reach the release."""
    nb = nbformat.read(source_notebook(topic), as_version=4)
    found = []
    for cell in nb.cells:
        text = cell.source.replace("BEGIN HIDDEN TESTS", BEGIN).replace("END HIDDEN TESTS", "### END SOLUTION")
        found += [line for line in solution_regions(text) if len(line) >= 12 and cell.cell_type == "code"]
    return found

CONFIG = f"""
c = get_config()
c.CourseDirectory.course_id = {COURSE_ID!r}
c.Execute.timeout = 600            # training cells take tens of seconds on one core
c.ExecutePreprocessor.timeout = 600
"""


def source_notebook(topic: Topic) -> Path:
    return REPO / "assignments" / topic.slug / topic.notebook


def solution_modules(slug: str) -> list[Path]:
    """The reference module files of a topic (solutions/ holds no notebooks)."""
    return sorted((REPO / "solutions" / slug).glob("*.py"))


def check_cell_id(task: Task) -> str:
    """grade_id of the notebook cell that runs check(task): "test_" + the function, dots as underscores."""
    return "test_" + task.name.split(".", 1)[1].replace(".", "_")


def manual_points(topic: Topic) -> dict[str, float]:
    """grade_id -> points of the instructor-graded cells: the topic's manual tasks, named after the task."""
    return {t.name.split(".", 1)[1]: t.points for t in topic.tasks if t.kind == "manual"}


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the real nbgrader CLI in `course`; fail with its output if it exits non-zero."""
    env = dict(os.environ)
    env["DLCORE_DATA"] = os.environ["DLCORE_DATA"]  # the kernel inherits it
    env.pop("PYTHONWARNINGS", None)
    if confine.isolation_problem():
        env["DLCORE_ALLOW_UNISOLATED"] = "1"
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={course}"],
                          cwd=course, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def submit(course: Path, topic: Topic, student: str, notebook: Path, modules: dict[str, str]) -> Path:
    """Place a submission: submitted/<student>/<topic>/ with the notebook and the module files, plus the
    reference code of every earlier topic it imports."""
    folder = course / "submitted" / student / topic.slug
    folder.mkdir(parents=True)
    shutil.copy(notebook, folder / topic.notebook)
    for name, text in modules.items():
        (folder / name).write_text(text)
    for slug in topic.requires:
        # The student hands in the earlier topic's folder beside this one ...
        # ... but `nbgrader autograde` copies only submitted/<student>/<assignment>/ into
        # autograded/<student>/<assignment>/ and runs the notebook there. The notebook's setup cell puts the
        # notebook folder's *parent* on sys.path (`from feedforward import layers`), and check() grades the
        # folder it runs in, whose runner looks for required topics beside it (folder.parent / slug). So the
        # earlier topic must also be in autograded/<student>/<slug>/ before autograde runs; `autograde --force`
        # deletes only autograded/<student>/<assignment>/, so this sibling survives. (An instructor grading a
        # real cohort does the same: copy each student's earlier topic beside the assignment in autograded/.)
        for parent in (course / "submitted" / student, course / "autograded" / student):
            (parent / slug).mkdir(parents=True, exist_ok=True)
            for path in solution_modules(slug):
                shutil.copy(path, parent / slug / path.name)
    return folder


def scores(course: Path, topic: Topic, student: str) -> dict[str, tuple[float | None, float, bool]]:
    """grade_id -> (auto score, max score, needs manual grade) from the gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course}/gradebook.db", COURSE_ID) as gb:
        nb = gb.find_submission_notebook(Path(topic.notebook).stem, topic.slug, student)
        return {g.name: (g.auto_score, g.max_score, g.needs_manual_grade) for g in nb.grades}


def cell_outputs(course: Path, topic: Topic, student: str) -> dict[str, str]:
    """grade_id -> text of the cell's outputs in the autograded notebook (for failure messages)."""
    nb = nbformat.read(course / "autograded" / student / topic.slug / topic.notebook, as_version=4)
    out = {}
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid and cell.cell_type == "code":
            out[gid] = "\n".join(o.get("text", "") or "\n".join(o.get("traceback", [])) or str(o.get("data", ""))
                                 for o in cell.outputs)[-3000:]
    return out


# one xdist group per topic: a topic's tests share its course folder (and nbgrader runs) on one worker
@pytest.fixture(scope="session", ids=lambda t: t.slug,
                params=[pytest.param(t, marks=pytest.mark.xdist_group(f"nbgrader-{t.slug}")) for t in course_config.TOPICS])
def topic(request) -> Topic:
    return request.param


@pytest.fixture(scope="session")
def course(topic, tmp_path_factory) -> Path:
    """A course directory whose assignment has been generated from the topic's source notebook."""
    root = tmp_path_factory.mktemp(f"nbgrader-{topic.slug}")
    # notebooks run in the sandboxed kernel, as in a course `dlcore course init` made (where it cannot start
    # here, for want of bubblewrap, the grader's explicit choice of the plain sandbox is made for the tests)
    (root / "nbgrader_config.py").write_text(CONFIG + "\n".join(kernel.nbgrader_config_lines(root)) + "\n")
    kernel.kernelspec(root)
    # source/ holds only the notebook: autograde would otherwise overwrite submitted .py files with its copies
    (root / "source" / topic.slug).mkdir(parents=True)
    # as `dlcore release` does: the graded cells' points come from course_config
    nb = stamp_points(nbformat.read(source_notebook(topic), as_version=4), topic)
    nbformat.write(nb, root / "source" / topic.slug / topic.notebook)
    nbgrader(root, "generate_assignment", topic.slug, "--force")
    return root


def test_source_notebook_is_clean(topic):
    nb = nbformat.read(source_notebook(topic), as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids)), "grade_ids must be unique"
    graded_code = {}
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "clear the outputs of the source notebook"
        meta = cell.metadata.get("nbgrader")
        if meta:
            assert meta["schema_version"] == 3 and meta["task"] is False
            assert ("points" in meta) == meta["grade"], meta
            if meta["grade"] and cell.cell_type == "code":
                graded_code[meta["grade_id"]] = cell.source.strip()
                # check() returns the points it gave; as a cell's last value nbgrader would read that number as
                # partial credit (and fail when it exceeds the cell's points), so the call must end with ";"
                last = cell.source.strip().splitlines()[-1]
                assert not last.startswith("check(") or last.endswith(";"), cell.source
    # every auto-graded task of the topic has its check cell, named after the task
    for task in topic.tasks:
        if task.kind == "auto":
            assert graded_code.get(check_cell_id(task)) == f'check("{task.name}");', task.name
    # every manual task has its instructor-graded answer cell, with the points of the configuration
    cells = {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}
    for gid, points in manual_points(topic).items():
        meta = cells[gid].metadata["nbgrader"]
        assert cells[gid].cell_type == "markdown" and meta["solution"] and meta["points"] == points, gid


def test_release_notebook_has_no_solutions(course, topic):
    text = (course / "release" / topic.slug / topic.notebook).read_text()
    for marker in (BEGIN, "### END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "Model answer"):
        assert marker not in text
    for secret in secrets(topic):
        assert secret not in text, secret
    assert "YOUR CODE HERE" in text and "YOUR ANSWER HERE" in text
    folder = course / "release" / topic.slug
    assert list(folder.iterdir()) == [folder / topic.notebook]


@pytest.fixture(scope="session")
def autograded(course, topic) -> Path:
    """Both students hand in, then one `nbgrader autograde` of the assignment grades them (one nbgrader start-up,
    about 9 s, instead of one per student)."""
    submit(course, topic, "ref", source_notebook(topic),
           {p.name: p.read_text() for p in solution_modules(topic.slug)})
    modules = {}
    for path in solution_modules(topic.slug):
        text = path.read_text()
        modules[path.name] = make_stub(text, topic.slug, path.name) if BEGIN in text else text
    submit(course, topic, "stub", course / "release" / topic.slug / topic.notebook, modules)
    nbgrader(course, "autograde", topic.slug, "--force")
    return course


def test_reference_gets_every_automatic_point(autograded, topic):
    course = autograded
    grades = scores(course, topic, "ref")
    manual = manual_points(topic)
    auto = {k: v for k, v in grades.items() if k not in manual}
    assert auto and all(not needs_manual for _, _, needs_manual in auto.values())
    lost = {k: v for k, v in auto.items() if v[0] != v[1]}
    if lost:
        outputs = cell_outputs(course, topic, "ref")
        pytest.fail("reference lost points:\n" + "\n".join(f"{k} {v}:\n{outputs.get(k, '')}" for k, v in lost.items()))
    total_auto = sum(v[1] for v in auto.values())
    assert sum(v[0] for v in auto.values()) == total_auto
    # the written answer is left for an instructor
    for gid, points in manual.items():
        assert grades[gid][2] is True and grades[gid][1] == points
    assert sum(v[1] for v in grades.values()) == total_auto + sum(manual.values())


def test_stub_gets_zero(autograded, topic):
    course = autograded
    grades = scores(course, topic, "stub")
    manual = manual_points(topic)
    auto = {k: v for k, v in grades.items() if k not in manual}
    assert sum(v[1] for v in auto.values()) > 0
    earned = {k: v for k, v in auto.items() if v[0]}
    assert not earned, f"stub earned points: {earned}"
    first = check_cell_id(next(t for t in topic.tasks if t.kind == "auto"))
    outputs = cell_outputs(course, topic, "stub")
    assert "NotImplementedError" in outputs[first] or "FAIL" in outputs[first]
