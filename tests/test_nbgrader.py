"""End to end with the real nbgrader CLI (no mocks): the feedforward source notebook goes through
`generate_assignment`, then `autograde` scores two students.

- "ref" submits the instructor (source) notebook with the reference modules from solutions/feedforward: it must
  get every auto-graded point (all but the manually graded written answer).
- "stub" submits the released notebook with the released stub modules (every solution region replaced by
  `raise NotImplementedError`): autograding must still complete, and score 0.

The kernel that nbgrader starts runs the notebook in the submission folder (named `feedforward`), so the
notebook's `check(...)` cells grade that student's modules with the public suite, in the sandbox. Slow: the
reference run trains the NumPy and the PyTorch network (about a minute or two on one core).
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
from autograder.release import BEGIN, make_stub
from toolkit.data import DataMissing, dataset_path

REPO = Path(course_config.__file__).resolve().parent
TOPIC = course_config.FEEDFORWARD
ASSIGNMENT = TOPIC.slug
NOTEBOOK = TOPIC.notebook
NOTEBOOK_ID = Path(NOTEBOOK).stem
SOURCE_NB = REPO / "assignments" / ASSIGNMENT / NOTEBOOK
SOLUTIONS = REPO / "solutions" / ASSIGNMENT
COURSE_ID = "dlcore"
MANUAL_IDS = {"written_comparison"}  # instructor-graded cells: no auto score


def _mnist_available() -> bool:
    try:
        dataset_path(TOPIC.dataset, download=False)
        return True
    except DataMissing:
        return False


pytestmark = pytest.mark.skipif(not _mnist_available(),
                                reason="MNIST not found: set DLCORE_DATA to the course data folder")

CONFIG = f"""
c = get_config()
c.CourseDirectory.course_id = {COURSE_ID!r}
c.Execute.timeout = 600            # training cells take tens of seconds on one core
c.ExecutePreprocessor.timeout = 600
"""


def nbgrader(course: Path, *args: str) -> subprocess.CompletedProcess:
    """Run the real nbgrader CLI in `course`; fail with its output if it exits non-zero."""
    env = dict(os.environ)
    env["DLCORE_DATA"] = str(dataset_path(TOPIC.dataset, download=False).parent)  # the kernel inherits it
    env.pop("PYTHONWARNINGS", None)
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={course}"],
                          cwd=course, env=env, capture_output=True, text=True, timeout=1500)
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc


def submit(course: Path, student: str, notebook: Path, modules: dict[str, str]) -> Path:
    """Place a submission: submitted/<student>/feedforward/ with the notebook and the module files."""
    folder = course / "submitted" / student / ASSIGNMENT
    folder.mkdir(parents=True)
    shutil.copy(notebook, folder / NOTEBOOK)
    for name, text in modules.items():
        (folder / name).write_text(text)
    return folder


def scores(course: Path, student: str) -> dict[str, tuple[float | None, float, bool]]:
    """grade_id -> (auto score, max score, needs manual grade) from the gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course}/gradebook.db", COURSE_ID) as gb:
        nb = gb.find_submission_notebook(NOTEBOOK_ID, ASSIGNMENT, student)
        return {g.name: (g.auto_score, g.max_score, g.needs_manual_grade) for g in nb.grades}


def cell_outputs(course: Path, student: str) -> dict[str, str]:
    """grade_id -> text of the cell's outputs in the autograded notebook (for failure messages)."""
    nb = nbformat.read(course / "autograded" / student / ASSIGNMENT / NOTEBOOK, as_version=4)
    out = {}
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid and cell.cell_type == "code":
            out[gid] = "\n".join(o.get("text", "") or "\n".join(o.get("traceback", [])) or str(o.get("data", ""))
                                 for o in cell.outputs)[-3000:]
    return out


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A course directory whose assignment has been generated from the source notebook."""
    root = tmp_path_factory.mktemp("nbgrader-course")
    (root / "nbgrader_config.py").write_text(CONFIG)
    # source/ holds only the notebook: autograde would otherwise overwrite submitted .py files with its copies
    (root / "source" / ASSIGNMENT).mkdir(parents=True)
    shutil.copy(SOURCE_NB, root / "source" / ASSIGNMENT / NOTEBOOK)
    nbgrader(root, "generate_assignment", ASSIGNMENT, "--force")
    return root


def test_source_notebook_is_clean():
    nb = nbformat.read(SOURCE_NB, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    ids = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if "nbgrader" in c.metadata]
    assert len(ids) == len(set(ids)), "grade_ids must be unique"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "clear the outputs of the source notebook"
        meta = cell.metadata.get("nbgrader")
        if meta:
            assert meta["schema_version"] == 3 and meta["task"] is False
            assert ("points" in meta) == meta["grade"], meta
            if meta["grade"] and cell.cell_type == "code":
                # check() returns the points it gave; as a cell's last value nbgrader would read that number as
                # partial credit (and fail when it exceeds the cell's points), so the call must end with ";"
                last = cell.source.strip().splitlines()[-1]
                assert not last.startswith("check(") or last.endswith(";"), cell.source


def test_release_notebook_has_no_solutions(course):
    text = (course / "release" / ASSIGNMENT / NOTEBOOK).read_text()
    for marker in (BEGIN, "### END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text
    assert "np.mean(net.predict(model, X_test)" not in text and "min_accuracy" not in text
    assert "YOUR CODE HERE" in text and "YOUR ANSWER HERE" in text
    assert list((course / "release" / ASSIGNMENT).iterdir()) == [course / "release" / ASSIGNMENT / NOTEBOOK]


def test_reference_gets_every_automatic_point(course):
    modules = {p.name: p.read_text() for p in sorted(SOLUTIONS.glob("*.py"))}
    submit(course, "ref", SOURCE_NB, modules)
    nbgrader(course, "autograde", ASSIGNMENT, "--student", "ref", "--force")
    grades = scores(course, "ref")
    auto = {k: v for k, v in grades.items() if k not in MANUAL_IDS}
    assert auto and all(not manual for _, _, manual in auto.values())
    lost = {k: v for k, v in auto.items() if v[0] != v[1]}
    if lost:
        outputs = cell_outputs(course, "ref")
        pytest.fail("reference lost points:\n" + "\n".join(f"{k} {v}:\n{outputs.get(k, '')}" for k, v in lost.items()))
    total_auto = sum(v[1] for v in auto.values())
    assert sum(v[0] for v in auto.values()) == total_auto
    # the written answer is left for an instructor
    for gid in MANUAL_IDS:
        assert grades[gid][2] is True and grades[gid][1] == 3
    assert sum(v[1] for v in grades.values()) == total_auto + 3


def test_stub_gets_zero(course):
    modules = {}
    for path in sorted(SOLUTIONS.glob("*.py")):
        text = path.read_text()
        modules[path.name] = make_stub(text, ASSIGNMENT, path.name) if BEGIN in text else text
    submit(course, "stub", course / "release" / ASSIGNMENT / NOTEBOOK, modules)
    nbgrader(course, "autograde", ASSIGNMENT, "--student", "stub", "--force")
    grades = scores(course, "stub")
    auto = {k: v for k, v in grades.items() if k not in MANUAL_IDS}
    assert sum(v[1] for v in auto.values()) > 0
    earned = {k: v for k, v in auto.items() if v[0]}
    assert not earned, f"stub earned points: {earned}"
    outputs = cell_outputs(course, "stub")
    assert "NotImplementedError" in outputs["test_affine_forward"] or "FAIL" in outputs["test_affine_forward"]
