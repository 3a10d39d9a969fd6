"""A whole term on nbgrader, through the real commands (no mocks): `dlcore course ...` for the instructor and
nbgrader's own fetch_assignment / submit / fetch_feedback for three students, each with a home folder of their
own, over a temporary course and exchange.

The cheapest topic that imports an earlier one is used: backprop (its notebook's checks run in about half a
minute). Its earlier topic, feedforward, is put in submitted/<student>/feedforward/ as its own collect step earlier
in the term would have left it (the same commands; each nbgrader command costs seconds just to start), with the
reference modules for everyone, so only backprop's own modules decide the scores:

- "ref" hands in the reference modules and the model answers;
- "stub" hands in the released stubs and the notebook as fetched;
- "mutant" hands in the reference with one planted bug of the hidden suite's MUTANTS and answers of its own.

Every step's scores are checked: nbgrader's verdict on each graded cell after autograde, the hidden suite's task
points in nbgrader's database (equal to `dlcore grade`'s results.json), the manual grades set as formgrader sets
them read back into dlcore's gradebook, the feedback pages (generated and fetched) and `nbgrader export`'s totals.
"""
from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import course_config
from autograder import mutants
from autograder.hidden.backprop import MUTANTS
from toolkit.data import DataMissing, dataset_path

REPO = Path(course_config.__file__).resolve().parents[1]
SOLUTIONS = REPO / "solutions"
TOPIC = course_config.topic("backprop")
EARLIER = course_config.topic(TOPIC.requires[0])
COURSE_ID = "dlcore"
MUTANT = next(m for m in MUTANTS if m.name == "value_grad_not_accumulated")
STUDENTS = ("ref", "stub", "mutant")
NOTEBOOK_ID = Path(TOPIC.notebook).stem
# the instructor's manual grades for the written answer, as set in formgrader; stub left it blank: nbgrader gives 0
MANUAL = {"ref": 2.5, "mutant": 1.0}
WRITTEN = next(t for t in TOPIC.tasks if t.kind == "manual")


def _data_available() -> bool:
    try:
        for name in TOPIC.datasets:
            dataset_path(name, download=False)
        return True
    except DataMissing:
        return False


pytestmark = [pytest.mark.skipif(not _data_available(),
                                 reason="course data not found: set DLCORE_DATA to the course data folder"),
              pytest.mark.xdist_group("nbgrader_term")]


def run(args: list[str], cwd: Path, env: dict | None = None) -> str:
    env = dict(os.environ if env is None else env)
    env.pop("PYTHONWARNINGS", None)
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout[-6000:]}\n" \
                                 f"{proc.stderr[-6000:]}"
    return proc.stdout + proc.stderr


def dlcore_course(course: Path, *args: str) -> str:
    return run([sys.executable, "-m", "autograder.cli", "course", *args], cwd=course)


def as_student(home: Path, student: str, exchange: Path, *args: str) -> str:
    """A student's nbgrader command, in their own home folder (nbgrader's cache lives there)."""
    env = dict(os.environ, HOME=str(home))
    return run([sys.executable, "-m", "nbgrader", *args, f"--course={COURSE_ID}", f"--Exchange.root={exchange}",
                f"--CourseDirectory.student_id={student}"], cwd=home, env=env)


def modules_of(student: str, scratch: Path) -> Path:
    """The student's topic folder of modules: the reference, the released stubs, or a planted bug."""
    dest = scratch / student
    if student == "ref":
        return mutants.copy_reference(TOPIC.slug, SOLUTIONS, dest)
    if student == "stub":
        return mutants.write_stubs(TOPIC.slug, SOLUTIONS, dest)
    return mutants.apply(MUTANT, TOPIC.slug, SOLUTIONS, dest)


def answer(notebook: Path, student: str) -> None:
    """Fill the fetched notebook's answer cells: the model answers (ref), an answer of its own (mutant)."""
    if student == "stub":
        return
    source = nbformat.read(REPO / "assignments" / TOPIC.slug / TOPIC.notebook, as_version=4)
    model = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells if "nbgrader" in c.metadata}
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            own = student == "mutant" and cell.cell_type == "markdown"
            cell.source = "The gradient reaches W1 through z1, h1 and z2, in reverse order." if own \
                else model[meta["grade_id"]]
    nbformat.write(nb, notebook)


def db_grades(course: Path) -> dict[str, dict[str, tuple]]:
    """student -> grade_id -> (auto_score, manual_score, max_score, needs_manual_grade) from nbgrader's database."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course}/gradebook.db", COURSE_ID) as gb:
        return {s: {g.name: (g.auto_score, g.manual_score, g.max_score, g.needs_manual_grade)
                    for g in gb.find_submission_notebook(NOTEBOOK_ID, TOPIC.slug, s).grades} for s in STUDENTS}


def kernel_verdicts(course: Path, student: str) -> dict[str, float | None]:
    """grade_id -> the score nbgrader's autograde gave each graded cell of the executed notebook (nbgrader's own
    determine_grade on its output: the public suite's verdict in the kernel)."""
    from nbgrader.utils import determine_grade

    nb = nbformat.read(course / "autograded" / student / TOPIC.slug / TOPIC.notebook, as_version=4)
    return {c.metadata["nbgrader"]["grade_id"]: determine_grade(c)[0] for c in nb.cells
            if c.metadata.get("nbgrader", {}).get("grade")}


def hidden_points(course: Path, student: str) -> dict[str, float]:
    """task -> points of `dlcore grade`'s results.json (Gradescope format) for the student's topic."""
    import json

    data = json.loads((course / "graded" / student / TOPIC.slug / "results.json").read_text())
    return {t["name"].split(": ", 1)[0]: t["score"] for t in data["tests"]}  # "<task>: <description>"


def gradebook(course: Path) -> dict[str, dict]:
    with open(course / "graded" / "gradebook.csv", newline="") as f:
        return {row["student"]: row for row in csv.DictReader(f)}


def cell_id(task: course_config.Task) -> str:
    """grade_id of a task's graded cell: test_<function> for an automatic task, the name for a manual one."""
    fn = task.name.split(".", 1)[1]
    return f"test_{fn.replace('.', '_')}" if task.kind == "auto" else fn


@pytest.fixture(scope="session")
def term(tmp_path_factory) -> dict:
    """Run the term up to autograde, recording what each step left; later steps run in the tests, in order."""
    from autograder import confine

    tmp = tmp_path_factory.mktemp("term")
    course, exchange, scratch = tmp / "course", tmp / "exchange", tmp / "scratch"
    dlcore_course(tmp, "init", str(course), f"--exchange={exchange}", f"--course-id={COURSE_ID}",
                  "--topics", TOPIC.slug)
    dlcore_course(course, "release", TOPIC.slug)
    homes = {}
    for student in STUDENTS:
        home = homes[student] = tmp / "home" / student
        home.mkdir(parents=True)
        as_student(home, student, exchange, "fetch_assignment", TOPIC.slug)
        for path in modules_of(student, scratch).glob("*.py"):
            shutil.copy(path, home / TOPIC.slug / path.name)
        answer(home / TOPIC.slug / TOPIC.notebook, student)
        as_student(home, student, exchange, "submit", TOPIC.slug)
        # the earlier topic, as collected earlier in the term: the reference for everyone
        shutil.copytree(SOLUTIONS / EARLIER.slug, course / "submitted" / student / EARLIER.slug,
                        ignore=shutil.ignore_patterns("__pycache__"))
    out = dlcore_course(course, "collect", TOPIC.slug)
    assert f"collected {TOPIC.slug} from: mutant, ref, stub" in out, out
    unisolated = ["--allow-unisolated-sandbox"] if confine.isolation_problem() else []
    dlcore_course(course, "autograde", TOPIC.slug, "--jobs=2", *unisolated)
    return dict(course=course, exchange=exchange, homes=homes, after_autograde=db_grades(course),
                gradebook_after_autograde=gradebook(course))


def test_release_fetch_submit_collect(term):
    course = term["course"]
    assert sorted(p.name for p in (course / "source" / TOPIC.slug).iterdir()) == [TOPIC.notebook]
    assert (term["exchange"] / COURSE_ID / "outbound" / TOPIC.slug / TOPIC.notebook).is_file()
    for student in STUDENTS:  # fetched, submitted and collected with the student's modules
        folder = course / "submitted" / student / TOPIC.slug
        assert {f"{m}.py" for m in TOPIC.modules} <= {p.name for p in folder.iterdir()}
        # autograde put the student's earlier topic beside the notebook it runs
        assert (course / "autograded" / student / EARLIER.slug / "layers.py").is_file()
    # autograde used the student's modules, never instructor copies
    graded = course / "autograded" / "stub" / TOPIC.slug / f"{MUTANT.module}.py"
    assert "NotImplementedError" in graded.read_text()


def test_nbgrader_autograde_scores_each_cell_in_the_kernel(term):
    """nbgrader's own verdict on each graded cell (the public suite, run by check() in the kernel)."""
    course = term["course"]
    allowed = MUTANT.allowed(TOPIC)
    for student in STUDENTS:
        verdict = kernel_verdicts(course, student)
        for task in TOPIC.tasks:
            got = verdict[cell_id(task)]
            if task.kind == "manual":  # an answer is left to a grader; an answer left as released scores 0
                assert got == (0 if student == "stub" else None), (student, task.name, got)
            elif student == "ref" or (student == "mutant" and task.name not in allowed):
                assert got == task.points, (student, task.name, got)
            elif student == "stub" or task.name == MUTANT.primary:
                assert got == 0, (student, task.name, got)


def test_hidden_suite_scores_are_in_nbgraders_database(term):
    """(The gradebook's points are compared before the late penalty: the students submit today, and whether that is
    after the configured due date depends on the day the test runs; tests/test_lateness.py covers the penalty.)"""
    course, grades = term["course"], term["after_autograde"]
    allowed = MUTANT.allowed(TOPIC)
    for student in STUDENTS:
        hidden = hidden_points(course, student)
        for task in TOPIC.tasks:
            auto, manual, max_score, needs_manual = grades[student][cell_id(task)]
            assert max_score == task.points and manual is None
            if task.kind == "manual":
                assert needs_manual == (student != "stub") and auto == (0 if student == "stub" else None)
                continue
            assert auto == pytest.approx(hidden[task.name], abs=1e-9) and needs_manual is False, (student, task.name)
            if student == "ref" or (student == "mutant" and task.name not in allowed):
                assert auto == task.points, (student, task.name, auto)
            elif student == "stub":
                assert auto == 0, (student, task.name, auto)
    # the mutant loses on its task in the hidden suite too, and this is what nbgrader now holds
    primary = next(t for t in TOPIC.tasks if t.name == MUTANT.primary)
    assert grades["mutant"][cell_id(primary)][0] < primary.points
    auto_max = sum(t.points for t in TOPIC.tasks if t.kind == "auto")
    book = term["gradebook_after_autograde"]
    assert float(book["ref"][f"{TOPIC.slug}_points_before_penalty"]) == auto_max
    assert float(book["stub"][f"{TOPIC.slug}_points_before_penalty"]) == 0
    assert float(book["ref"]["pending_manual_points"]) == float(book["mutant"]["pending_manual_points"]) == \
        WRITTEN.points
    assert float(book["stub"]["pending_manual_points"]) == 0  # blank answer: nbgrader's 0, read back


def grade_written_answers(term) -> None:
    """A grader scores the written answers in nbgrader's database, as formgrader does, then `dlcore course
    gradebook` reads them back (once per term: the feedback test needs it too, and xdist may run it on another
    worker than test_manual_grades_from_formgrader_reach_the_gradebook)."""
    from nbgrader.api import Gradebook

    if term.get("manual_done"):
        return
    course = term["course"]
    with Gradebook(f"sqlite:///{course}/gradebook.db", COURSE_ID) as gb:
        for student, points in MANUAL.items():
            grade = gb.find_grade(cell_id(WRITTEN), NOTEBOOK_ID, TOPIC.slug, student)
            grade.manual_score = points
        gb.db.commit()
    dlcore_course(course, "gradebook")
    term["manual_done"] = True


def test_manual_grades_from_formgrader_reach_the_gradebook(term):
    """The written answers' scores from formgrader reach dlcore's gradebook."""
    course = term["course"]
    grade_written_answers(term)
    book, before = gradebook(course), term["gradebook_after_autograde"]
    for student in STUDENTS:
        added = MANUAL.get(student, 0.0)
        assert float(book[student][f"{TOPIC.slug}_points_before_penalty"]) == \
            pytest.approx(float(before[student][f"{TOPIC.slug}_points_before_penalty"]) + added, abs=0.011)
        assert float(book[student]["pending_manual_points"]) == 0
    auto_max = sum(t.points for t in TOPIC.tasks if t.kind == "auto")
    assert float(book["ref"][f"{TOPIC.slug}_points_before_penalty"]) == auto_max + MANUAL["ref"]
    # the hidden-suite scores in the database are untouched by the manual step
    grades = db_grades(course)
    for student in STUDENTS:
        for task in TOPIC.tasks:
            if task.kind == "auto":
                assert grades[student][cell_id(task)][0] == term["after_autograde"][student][cell_id(task)][0]
    term["gradebook"] = book


def test_feedback_and_export(term):
    """Feedback pages show nbgrader's totals (hidden suite + manual), students fetch them; the export has them."""
    course = term["course"]
    grade_written_answers(term)
    book = gradebook(course)
    dlcore_course(course, "feedback", TOPIC.slug)
    for student in STUDENTS:
        page = course / "feedback" / student / TOPIC.slug / f"{NOTEBOOK_ID}.html"
        total = float(book[student][f"{TOPIC.slug}_points_before_penalty"])
        assert f"{NOTEBOOK_ID} (Score: {round(total, 2)} / {float(TOPIC.max_points)})" in page.read_text(), student
    home = term["homes"]["mutant"]
    as_student(home, "mutant", term["exchange"], "fetch_feedback", TOPIC.slug)
    assert list((home / TOPIC.slug / "feedback").glob(f"*/{NOTEBOOK_ID}.html"))
    dlcore_course(course, "export", "--to=grades.csv")
    with open(course / "grades.csv", newline="") as f:
        rows = {r["student_id"]: r for r in csv.DictReader(f) if r["assignment"] == TOPIC.slug}
    assert sorted(rows) == sorted(STUDENTS)
    for student in STUDENTS:
        assert float(rows[student]["score"]) == pytest.approx(float(book[student][f"{TOPIC.slug}_points_before_penalty"]), abs=0.011)
        assert float(rows[student]["max_score"]) == TOPIC.max_points
