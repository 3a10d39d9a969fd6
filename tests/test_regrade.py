"""Regrades during term (`dlcore grade --task`, `--student`) and one set of manual scores everywhere: the graded
folder records the manual scores it was graded with, and later runs and the course report use them."""
from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

import course_config
from autograder import batch, course_report, demo, scoring

TOPIC = course_config.topic("attention")  # the cheapest topic to grade
MANUAL = f"{TOPIC.slug}.written_explanation"
pytestmark = pytest.mark.xdist_group("regrade")


def results(out: Path, student: str) -> dict:
    return json.loads((out / student / TOPIC.slug / "results.json").read_text())


def entries(data: dict) -> dict[str, str]:
    """task -> its full record (timings included), as text: equal text means not graded again."""
    return {r["task"]: json.dumps(r, sort_keys=True) for r in data["extra_data"]["dlcore"]["results"]}


def gradebook(out: Path) -> dict[str, dict]:
    with open(out / "gradebook.csv", newline="") as f:
        return {r["student"]: r for r in csv.DictReader(f)}


@pytest.fixture(scope="session")
def graded(tmp_path_factory):
    """The reference (adaeze) and a buggy student (chidi), graded once with a manual score for adaeze."""
    root = tmp_path_factory.mktemp("term")
    demo.build_cohort(root, TOPIC)
    for extra in ("bola", "damilola", "emeka", "funmi"):
        for path in sorted((root / "submitted" / extra).rglob("*"), reverse=True):
            path.unlink() if path.is_file() else path.rmdir()
        (root / "submitted" / extra).rmdir()
    manual = root / "manual.csv"
    manual.write_text(f"student,task,points\nadaeze,{MANUAL},2\n")
    out = root / "graded"
    batch.grade([TOPIC.slug], root, out, jobs=2, manual=manual, quiet=True, allow_unisolated=True)
    return root, out


def test_manual_scores_are_recorded_and_used_by_every_later_command(graded, capsys):
    root, out = graded
    assert (out / scoring.MANUAL_RECORD).read_text() == (root / "manual.csv").read_text()
    book = gradebook(out)
    full = float(book["adaeze"]["total_points"])
    assert float(book["adaeze"]["pending_manual_points"]) == 0 and float(book["chidi"]["pending_manual_points"]) == 3
    capsys.readouterr()
    course_report.run(out)  # no --manual: the graded folder's own scores
    assert "other percentages" not in capsys.readouterr().out
    cohort = course_report.load(out)
    row = next(r for r in cohort.rows if r["student"] == "adaeze")
    assert row["total_points"] == full and f"{row['percentage']:.2f}" == f"{float(book['adaeze']['percentage']):.2f}"
    other = root / "other.csv"
    other.write_text("student,task,points\n")
    course_report.run(out, manual=other)  # told otherwise: other numbers, and the report says they differ
    assert "other percentages for adaeze" in capsys.readouterr().out
    batch.write_reports([TOPIC.slug], ["adaeze", "chidi"], out)  # a later gradebook without --manual keeps them
    assert float(gradebook(out)["adaeze"]["total_points"]) == full


def test_a_regrade_of_one_task_reruns_only_that_task_and_updates_every_output(graded):
    root, out = graded
    chidi = results(out, "chidi")
    good = next(r for r in chidi["extra_data"]["dlcore"]["results"]  # a task the buggy student passes
                if r["points"] == r["max_points"] and r["status"] == "passed")
    task = good["task"]
    # as if the check had been wrong when the batch ran: chidi lost the task's points
    for r in chidi["extra_data"]["dlcore"]["results"]:
        if r["task"] == task:
            r["points"], r["status"] = 0.0, "failed"
    (out / "chidi" / TOPIC.slug / "results.json").write_text(json.dumps(chidi))
    batch.write_reports([TOPIC.slug], ["adaeze", "chidi"], out)
    wrong = float(gradebook(out)["chidi"]["total_points"])
    before = {s: entries(results(out, s)) for s in ("adaeze", "chidi")}

    batch.grade([TOPIC.slug], root, out, tasks=[task], quiet=True, allow_unisolated=True)

    for student in ("adaeze", "chidi"):
        after = entries(results(out, student))
        assert list(after) == [t.name for t in TOPIC.tasks]
        assert {k: v for k, v in after.items() if k != task} == {k: v for k, v in before[student].items()
                                                                 if k != task}, "another task was graded again"
        assert results(out, student)["extra_data"]["dlcore"]["regraded_tasks"] == [task]
    fixed = results(out, "chidi")
    assert next(r for r in fixed["tests"] if r["name"].startswith(task))["score"] == good["max_points"]
    assert fixed["score"] == pytest.approx(sum(t["score"] for t in fixed["tests"]))
    assert float(gradebook(out)["chidi"]["total_points"]) == wrong + good["max_points"]
    assert f"{float(gradebook(out)['chidi']['total_points']):g} of" in (out / "chidi" / "feedback.html").read_text()
    resumed = subprocess.run([str(Path(sys.executable).with_name("dlcore")), "grade", TOPIC.slug, "--submissions",
                              str(root), "--out", str(out), "--allow-unisolated-sandbox"],
                             capture_output=True, text=True, timeout=600)
    assert "resuming: 2 of 2" in resumed.stdout, resumed.stdout + resumed.stderr  # the merged results are current


def test_a_regrade_of_one_student_leaves_the_others_alone(graded):
    root, out = graded
    other = out / "chidi" / TOPIC.slug / "results.json"
    stamp, text = other.stat().st_mtime_ns, other.read_text()
    mine = results(out, "adaeze")
    proc = subprocess.run([str(Path(sys.executable).with_name("dlcore")), "grade", TOPIC.slug, "--submissions",
                           str(root), "--out", str(out), "--student", "adaeze", "--allow-unisolated-sandbox"],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert other.stat().st_mtime_ns == stamp and other.read_text() == text
    again = results(out, "adaeze")
    assert again["extra_data"]["dlcore"]["seconds"] != mine["extra_data"]["dlcore"]["seconds"]  # graded again
    assert [(t["name"], t["score"]) for t in again["tests"]] == [(t["name"], t["score"]) for t in mine["tests"]]
    assert set(gradebook(out)) == {"adaeze", "chidi"}  # the gradebook still has everyone


def test_regrade_names_are_checked(graded):
    root, out = graded
    with pytest.raises(SystemExit, match="not a task of attention"):
        batch.grade([TOPIC.slug], root, out, tasks=["attention.nonexistent"], quiet=True, allow_unisolated=True)
    with pytest.raises(SystemExit, match="no such student folder"):
        batch.grade([TOPIC.slug], root, out, students=["nobody"], quiet=True, allow_unisolated=True)
