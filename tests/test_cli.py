"""The `dlcore` command as each user runs it: check (students, also from release/ alone), demo (everyone)."""
from __future__ import annotations

import csv
import importlib
import os
import shutil
import subprocess
import sys

import pytest

import course_config
from autograder import demo
from autograder.mutants import write_stubs
from autograder.release import make_stub
from conftest import DEMO_TOPICS, REPO, SOLUTIONS


def dlcore(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "autograder.cli", *args], cwd=cwd, capture_output=True, text=True,
                          env=dict(os.environ, COLUMNS="200"))


# Runs the CLI of a release/ copy as a student's interpreter would see it: without this checkout's editable
# install, whose import hook would otherwise resolve the missing instructor modules from the repository.
STUDENT_PYTHON = ("import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f).lower()]; "
                  "sys.path.insert(0, '.'); from autograder.cli import main; sys.exit(main(sys.argv[1:]))")


def student_dlcore(copy, *args):
    return subprocess.run([sys.executable, "-c", STUDENT_PYTHON, *args], cwd=copy, capture_output=True, text=True,
                          env=dict(os.environ, COLUMNS="200"))


def test_check_reports_not_attempted_and_exit_code(tmp_path):
    folder = write_stubs("feedforward", SOLUTIONS, tmp_path)
    proc = dlcore("check", "feedforward", str(folder), "--task", "feedforward.affine_forward")
    assert proc.returncode == 1
    assert "not attempted" in proc.stdout and "Traceback" not in proc.stdout + proc.stderr


def test_check_passes_the_reference():
    proc = dlcore("check", "feedforward", str(SOLUTIONS / "feedforward"), "--task", "feedforward.affine_backward",
                  "--task", "feedforward.softmax_loss")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "6/6 points" in proc.stdout


def test_check_explains_a_wrong_gradient(tmp_path):
    folder = tmp_path / "feedforward"
    shutil.copytree(SOLUTIONS / "feedforward", folder)
    path = folder / "layers.py"
    path.write_text(path.read_text().replace("db = dout.sum(axis=0)", "db = dout.mean(axis=0)"))
    proc = dlcore("check", "feedforward", str(folder), "--task", "feedforward.affine_backward")
    assert proc.returncode == 1
    assert "db: 5 of 5 entries wrong" in proc.stdout and "factor of 1/2" in proc.stdout, proc.stdout


def test_missing_topic_folder_is_explained(tmp_path):
    proc = dlcore("check", "feedforward", cwd=tmp_path)
    assert proc.returncode != 0 and "no folder feedforward/ here" in proc.stderr


def test_student_edition_checks_from_release_alone(tmp_path):
    """A student with only release/ can run the public checks; grading is not in their edition."""
    copy = tmp_path / "release"
    shutil.copytree(REPO / "release", copy)
    proc = student_dlcore(copy, "check", "feedforward", "--task", "feedforward.relu_forward")
    assert proc.returncode == 1 and "not attempted" in proc.stdout, proc.stdout + proc.stderr
    proc = student_dlcore(copy, "grade", "feedforward", "--submissions", ".", "--out", "o")
    assert proc.returncode == 2 and "not part of this edition" in proc.stderr


@pytest.mark.parametrize("topic", course_config.TOPICS, ids=lambda t: t.slug)
def test_demo_cohort_of_every_topic(tmp_path, topic):
    """The sample cohort `dlcore demo` grades, built for every topic (the suite grades those of DEMO_TOPICS, see
    conftest.demo_run): the reference, the released stubs, each buggy student's one planted bug, the hostile
    student's exit at import, and the notebook each hands in."""
    submitted = demo.build_cohort(tmp_path, topic)
    reference = {p.name: p.read_text() for p in (SOLUTIONS / topic.slug).glob("*.py")}
    by_name = {m.name: m for m in importlib.import_module(f"autograder.hidden.{topic.slug}").MUTANTS}
    for student in demo.STUDENTS:
        kind, folder = demo.kind_of(student, topic), submitted / student / topic.slug
        files = {p.name: p.read_text() for p in folder.glob("*.py")}
        assert set(files) == set(reference), (student, sorted(files))
        changed = {name for name in reference if files[name] != reference[name]}
        notebook = (REPO / ("assignments" if kind == "reference" else "release") / topic.slug / topic.notebook)
        assert (folder / topic.notebook).read_bytes() == notebook.read_bytes(), student
        if kind == "reference":
            assert not changed, student
        elif kind == "stubs":
            assert all(files[n] == make_stub(reference[n], topic.slug, n) for n in changed) and changed, student
        elif kind == "hostile":
            (victim,) = changed
            assert files[victim].replace(demo.HOSTILE_LINE, "", 1) == reference[victim], student
        else:
            mutant = by_name[kind]
            assert changed == {f"{mutant.module}.py"}, (student, changed)
            assert files[f"{mutant.module}.py"] == reference[f"{mutant.module}.py"].replace(mutant.old, mutant.new)


@pytest.mark.xdist_group("demo")
def test_demo_end_to_end(demo_run):
    tmp_path, proc = demo_run
    with open(tmp_path / "graded" / "gradebook.csv") as f:
        rows = {r["student"]: r for r in csv.DictReader(f)}
    assert rows["adaeze"]["letter"] == "A" and float(rows["adaeze"]["percentage"]) == 100.0
    assert rows["bola"]["letter"] == "F" and float(rows["bola"]["total_points"]) == 0
    for student in ("chidi", "damilola", "emeka", "funmi"):
        assert 0 < float(rows[student]["total_points"]) < float(rows[student]["total_max"])
    assert (tmp_path / "graded" / "chidi" / "feedback.html").is_file()
    assert "feedback pages" in proc.stdout


def test_public_checks_run_as_pytest_with_markers_from_config(tmp_path):
    copy = tmp_path / "release"
    shutil.copytree(REPO / "release", copy)
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m",
                           "feedforward.relu_forward", "test_public.py"], cwd=copy, capture_output=True, text=True)
    assert proc.returncode == 1, proc.stdout[-2000:]
    others = sum(t.kind == "auto" for t in course_config.all_tasks()) - 1
    assert f"1 failed, {others} deselected" in proc.stdout and "not attempted: feedforward.relu_forward" in proc.stdout
