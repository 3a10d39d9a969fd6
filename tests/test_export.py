"""`dlcore export`: the Gradescope zip (run by its own run_autograder in Gradescope's folder layout) and the otter
zip (run by otter-grader's own `otter run`) give every task the score `dlcore grade` gives it.

The topic is the one with no training runs, which imports an earlier topic (`requires`), so the student's folder
for that topic travels too. Three students: the reference, the untouched stubs and one planted bug. The bundles
run without DLCORE_DATA (they carry their data) and in the layouts students may hand in.
"""
from __future__ import annotations

import importlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

import course_config
from autograder import batch, export, mutants, reports
from conftest import SOLUTIONS

TOPIC = course_config.topic("backprop")
REQUIRED = TOPIC.requires[0]
STUDENTS = ("ref", "stubs", "mutant")
pytestmark = pytest.mark.xdist_group("export")  # one xdist worker: the graded cohort and the zips are built once


def bundle_env(tmp: Path, **extra) -> dict:
    """The grader's environment without the course data: a bundle must bring its own."""
    env = {k: v for k, v in os.environ.items() if k not in ("DLCORE_DATA", "DLCORE_STUDENT")}
    env.update(DLCORE_CACHE=str(tmp / "no-cache"), OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", **extra)
    return env


def scores(results: dict) -> dict[str, tuple[float, float]]:
    """task -> (score, max_score) from a results.json (dlcore names tests "<task>: <description>")."""
    tasks = [t.name for t in TOPIC.tasks]
    out = {}
    for test in results["tests"]:
        task = test["name"].split(": ", 1)[0]
        if task in tasks:
            out[task] = (float(test["score"]), float(test["max_score"]))
    return out


@pytest.fixture(scope="session")
def cohort(tmp_path_factory):
    """submitted/<student>/<topic>/ and <required>/, graded by `dlcore grade` (batch.grade)."""
    root = tmp_path_factory.mktemp("export")
    sub = root / "submitted"
    mutants.copy_reference(TOPIC.slug, SOLUTIONS, sub / "ref")
    mutants.write_stubs(TOPIC.slug, SOLUTIONS, sub / "stubs")
    mutants.write_stubs(REQUIRED, SOLUTIONS, sub / "stubs")
    hidden = importlib.import_module(f"autograder.hidden.{TOPIC.slug}")
    bug = next(m for m in hidden.MUTANTS if m.name == TOPIC.demo_mutants[0])
    mutants.apply(bug, TOPIC.slug, SOLUTIONS, sub / "mutant")
    graded = root / "graded"
    batch.grade([TOPIC.slug], root, graded, quiet=True, allow_unisolated=True)
    expected = {s: scores(json.loads((graded / s / TOPIC.slug / "results.json").read_text())) for s in STUDENTS}
    return root, sub, expected


@pytest.fixture(scope="session")
def zips(tmp_path_factory):
    out = tmp_path_factory.mktemp("zips")
    return {kind: export.build(kind, TOPIC.slug, out) for kind in export.KINDS}


def test_the_cohort_is_a_real_test(cohort):
    """The three students differ: full marks, zero, and a loss on the mutant's task only."""
    _, _, expected = cohort
    auto = {t.name for t in TOPIC.tasks if t.kind == "auto"}
    assert all(expected["ref"][t][0] == expected["ref"][t][1] for t in auto)
    assert all(s == 0 for s, _ in expected["stubs"].values())
    lost = {t for t in auto if expected["mutant"][t][0] < expected["mutant"][t][1]}
    assert lost and lost != auto


def test_zips_hold_the_grader_and_the_topic_data_but_no_other_topic(zips):
    for kind, path in zips.items():
        names = set(zipfile.ZipFile(path).namelist())
        config = {"course_config/__init__.py", "course_config/schema.py", "course_config/topics/__init__.py",
                  *(f"course_config/topics/{t.slug}.py" for t in course_config.TOPICS)}  # every topic's declaration
        assert {"setup.sh", "run_autograder", "requirements.txt", "autograder/export.py",
                f"autograder/hidden/{TOPIC.slug}.py", "toolkit/data.py", *config} <= names, kind
        for slug in (TOPIC.slug, REQUIRED):
            assert any(n.startswith(f"solutions/{slug}/") for n in names), (kind, slug)
        others = {t.slug for t in course_config.TOPICS} - {TOPIC.slug, REQUIRED}
        assert not any(n.split("/")[:2] in (["solutions", o] for o in others) for n in names), kind
        assert {f"data/{course_config.DATASETS[d].path}" for d in TOPIC.datasets} <= names, kind
        assert not any("__pycache__" in n for n in names), kind
        reqs = zipfile.ZipFile(path).read("requirements.txt").decode()
        assert "numpy==" in reqs and "torch==" in reqs and ("otter-grader==" in reqs) == (kind == "otter")
    otter = set(zipfile.ZipFile(zips["otter"]).namelist())
    assert {"otter_config.json", "run_otter.py", f"files/{TOPIC.notebook}"} <= otter
    assert len([n for n in otter if n.startswith("tests/")]) == len(TOPIC.tasks)


def gradescope_layout(tmp: Path, bundle: Path, student: str, sub: Path, layout: str) -> Path:
    """/autograder as Gradescope builds it: source/ (the zip), run_autograder, submission/, metadata."""
    ag = tmp / "autograder"
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(ag / "source")
    shutil.copy(ag / "source" / "run_autograder", ag / "run_autograder")
    submission = ag / "submission"
    if layout == "flat":  # the topic's files at the top, the required topic as a folder
        shutil.copytree(sub / student / TOPIC.slug, submission)
        shutil.copytree(sub / student / REQUIRED, submission / REQUIRED)
    else:  # the student's course folder, one level down
        for slug in (TOPIC.slug, REQUIRED):
            shutil.copytree(sub / student / slug, submission / "course" / slug)
    (ag / "submission_metadata.json").write_text(json.dumps(
        {"users": [{"email": f"{student}@example.edu", "sid": student, "name": student}]}))
    return ag


@pytest.mark.parametrize("student,layout", [("ref", "flat"), ("stubs", "nested"), ("mutant", "flat")])
def test_gradescope_bundle_gives_dlcore_grade_scores(cohort, zips, tmp_path, student, layout):
    _, sub, expected = cohort
    ag = gradescope_layout(tmp_path, zips["gradescope"], student, sub, layout)
    proc = subprocess.run(["bash", str(ag / "run_autograder")], capture_output=True, text=True, timeout=900,
                          env=bundle_env(tmp_path, DLCORE_GRADESCOPE_ROOT=str(ag), DLCORE_PYTHON=sys.executable))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((ag / "results" / "results.json").read_text())
    got = scores(results)
    assert got.keys() == expected[student].keys()
    for task, (score, max_score) in expected[student].items():
        assert got[task][1] == max_score
        assert got[task][0] == pytest.approx(score, abs=1e-4), task
    assert results["extra_data"]["dlcore"]["student"] == student  # the roster id seeds the hidden inputs
    assert "dlcore-stage" not in json.dumps(results)  # messages name the student's folders, not the copy


def otter_submission(tmp: Path, sub: Path, student: str, layout: str) -> Path:
    """The zip a student uploads: the topic folders, or the topic's files at the top with a notebook that would
    leave a mark if otter's kernel ever executed it."""
    path = tmp / f"{student}.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for slug in (TOPIC.slug, REQUIRED):
            for f in sorted((sub / student / slug).rglob("*")):
                if f.is_file() and "__pycache__" not in f.parts:
                    top = layout == "flat" and slug == TOPIC.slug
                    zf.write(f, f.relative_to(sub / student / slug) if top else f.relative_to(sub / student))
        if layout == "flat":
            nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
                f"open({str(tmp / 'student-notebook-ran')!r}, 'w').close()")])
            zf.writestr(TOPIC.notebook, nbformat.writes(nb))
    return path


@pytest.mark.parametrize("student,layout", [("ref", "folders"), ("stubs", "flat"), ("mutant", "folders")])
def test_otter_run_gives_dlcore_grade_scores(cohort, zips, tmp_path, student, layout):
    _, sub, expected = cohort
    submission = otter_submission(tmp_path, sub, student, layout)
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.run([sys.executable, "-m", "otter", "run", "-a", str(zips["otter"]), "-o", str(out),
                           "--no-logo", str(submission)], capture_output=True, text=True, timeout=900,
                          env=bundle_env(tmp_path, DLCORE_STUDENT=student), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = json.loads((out / "results.json").read_text())
    assert {t["name"] for t in results["tests"]} == {t.name for t in TOPIC.tasks}, results["tests"]
    got = {t["name"]: (float(t["score"]), float(t["max_score"])) for t in results["tests"]}
    for task, (score, max_score) in expected[student].items():
        assert got[task][1] == pytest.approx(max_score), task
        assert got[task][0] == pytest.approx(score, abs=1e-4), task
    assert not (tmp_path / "student-notebook-ran").exists()  # only the driver ran in otter's kernel


def test_student_id_and_layouts(tmp_path, monkeypatch):
    monkeypatch.delenv("DLCORE_STUDENT", raising=False)
    meta = tmp_path / "submission_metadata.json"
    meta.write_text(json.dumps({"users": [{"email": "b@x.edu", "sid": ""}, {"email": "z@x.edu", "sid": "a1"}]}))
    assert export.student_id(meta) == "a1+b@x.edu"
    assert export.student_id(tmp_path / "absent.json") == "submission"
    monkeypatch.setenv("DLCORE_STUDENT", "kemi")
    assert export.student_id(meta) == "kemi"
    # nothing recognisable: a note that says what was found, and no folder to grade
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "notes.txt").write_text("hi")
    folder, notes = export.stage(TOPIC, tmp_path / "sub", tmp_path / "dest")
    assert not folder.exists() and "notes.txt" in notes[0] and f"{TOPIC.slug}/" in notes[0]


def test_part_cases_add_up_to_the_points(cohort):
    """otter's cases for each task pass for exactly the points `dlcore grade` gave it (partial credit too)."""
    root, _, _ = cohort
    for student in STUDENTS:
        tr = reports.read_topic_result(root / "graded" / student / TOPIC.slug / "results.json")
        for r in tr.results:
            cases = export.part_cases(r)
            assert sum(c["points"] for c in cases) == pytest.approx(r.max_points)
            assert sum(c["points"] for c in cases if c["passed"]) == pytest.approx(r.points, abs=1e-6)
            assert all(c["message"] for c in cases if not c["passed"])
