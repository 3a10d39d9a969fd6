"""Batch grading: parallel, one bad submission never hurts the others, atomic results, resumable, read-only."""
from __future__ import annotations

import csv
import hashlib
import json
import shutil

import pytest

from autograder import batch
from autograder.mutants import write_stubs
from conftest import FF, SOLUTIONS, prepend, shared_run

AUTO_POINTS = sum(t.points for t in FF.tasks if t.kind == "auto")
pytestmark = pytest.mark.xdist_group("batch")


def tree_hash(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        h.update(str(p.relative_to(root)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """The cohort graded once per test session (conftest.shared_run: whichever xdist worker asks first), read by
    every test here; a test that changes the output works on a copy."""
    def run(root):
        sub = root / "submitted"
        for name in ("ada", "femi", "kemi"):
            shutil.copytree(SOLUTIONS / "feedforward", sub / name / "feedforward",
                            ignore=shutil.ignore_patterns("__pycache__"))
        write_stubs("feedforward", SOLUTIONS, sub / "bisi")
        prepend(sub / "femi" / "feedforward", "layers", "import os\nos._exit(0)")       # kills its own worker
        (sub / "kemi" / "feedforward" / "feedforward.ipynb").write_text("{ not json")  # broken notebook
        before = tree_hash(sub)
        rows = batch.grade(["feedforward"], root, root / "out", jobs=2, quiet=True, allow_unisolated=True)
        return dict(rows=rows, before=before)

    root, data = shared_run(tmp_path_factory, "batch", run)
    return root, root / "submitted", root / "out", data["rows"], data["before"]


def test_every_student_gets_the_right_score(graded):
    root, sub, out, rows, before = graded
    by = {r["student"]: r for r in rows}
    assert by["ada"]["total_points"] == AUTO_POINTS and by["kemi"]["total_points"] == AUTO_POINTS
    assert by["bisi"]["total_points"] == 0 and by["bisi"]["letter"] == "F"
    torch_points = sum(t.points for t in FF.tasks if t.module == "torch_net")
    assert by["femi"]["total_points"] == torch_points  # only the modules that kill the worker lose
    assert by["ada"]["pending_manual_points"] == 3


def test_submissions_are_never_modified(graded):
    root, sub, out, rows, before = graded
    assert tree_hash(sub) == before


def test_gradescope_results_format(graded):
    root, sub, out, rows, before = graded
    data = json.loads((out / "femi" / "feedforward" / "results.json").read_text())
    assert set(data) >= {"score", "max_score", "execution_time", "tests"}
    assert data["max_score"] == FF.max_points
    for test in data["tests"]:
        assert set(test) >= {"name", "score", "max_score", "status", "output", "visibility", "tags"}
        assert test["status"] in ("passed", "failed")
    affine = next(t for t in data["tests"] if t["name"].startswith("feedforward.affine_backward"))
    assert "layers.affine_backward" in affine["tags"] and "exit status 0" in affine["output"]
    kemi = json.loads((out / "kemi" / "feedforward" / "results.json").read_text())
    assert "feedforward.ipynb is not a valid notebook" in kemi["output"]


def test_gradebook_and_feedback_pages(graded):
    root, sub, out, rows, before = graded
    with open(out / "gradebook.csv") as f:
        table = list(csv.DictReader(f))
    assert [r["student"] for r in table] == ["ada", "bisi", "femi", "kemi"]
    assert {"feedforward_points", "implementation_points", "comparative_points", "total_points", "percentage",
            "letter", "grade_point", "pending_manual_points"} <= set(table[0])
    page = (out / "bisi" / "feedback.html").read_text()
    assert "not attempted" in page and "Feedback for bisi" in page


def test_rerun_resumes_and_regrades_only_what_is_missing(graded, tmp_path):
    root, sub, shared_out, rows, before = graded
    out = tmp_path / "out"  # the shared output stays as graded for the other tests
    shutil.copytree(shared_out, out)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("results.json")}
    (out / "bisi" / "feedforward" / "results.json").unlink()  # as if the batch had stopped before bisi
    batch.grade(["feedforward"], root, out, jobs=1, quiet=True, allow_unisolated=True)
    for p, stamp in stamps.items():
        if "bisi" in p.parts:
            assert p.exists()
        else:
            assert p.stat().st_mtime_ns == stamp, f"{p} was regraded"
    assert not list(out.rglob("*.tmp"))


def test_missing_submissions_folder_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="no such folder"):
        batch.grade(["feedforward"], tmp_path / "nowhere", tmp_path / "out", quiet=True)


def test_the_library_call_refuses_without_isolation_too(tmp_path, monkeypatch):
    """Not only the CLI: batch.grade itself refuses where student code would run without filesystem isolation."""
    from autograder import confine

    monkeypatch.setattr(confine, "isolation_problem", lambda: "bubblewrap is not installed")
    (tmp_path / "submitted" / "ada").mkdir(parents=True)
    with pytest.raises(SystemExit, match="refusing to grade: bubblewrap is not installed"):
        batch.grade(["feedforward"], tmp_path, tmp_path / "out", quiet=True)
