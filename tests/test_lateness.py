"""Deadlines and late work (autograder/lateness.py): the policy's arithmetic, where submission times come from,
extensions, and the gradebook, feedback page, course report, Gradescope results.json and nbgrader's due date."""
from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

import course_config
from autograder import batch, course_report, lateness, reports
from autograder import results as R
from course_config import LatePolicy

SLUG = "backprop"
DUE = lateness.deadline(SLUG)  # 2026-10-09 23:59 Africa/Lagos (UTC+1)


def _at(**delta) -> str:
    return lateness.iso(DUE + dt.timedelta(**delta))


def _with_policy(monkeypatch, **kw):
    """The backprop deadline with another late policy (the configuration is frozen data: replaced, not edited)."""
    d = dataclasses.replace(course_config.DEADLINES[SLUG], policy=LatePolicy(**kw))
    monkeypatch.setitem(course_config.DEADLINES, SLUG, d)


def test_deadline_is_lagos_wall_clock_time():
    assert course_config.TIMEZONE == "Africa/Lagos"
    assert DUE.utcoffset() == dt.timedelta(hours=1)
    assert DUE.astimezone(dt.timezone.utc) == dt.datetime(2026, 10, 9, 22, 59, tzinfo=dt.timezone.utc)


def test_on_time_and_within_grace(monkeypatch):
    _with_policy(monkeypatch, kind="per_day", grace_minutes=15, per_day=0.1, cap=0.5)
    on_time = lateness.compute(SLUG, "ada", _at(minutes=-1), "test")
    assert on_time.status == R.ON_TIME and on_time.fraction == 0
    grace = lateness.compute(SLUG, "ada", _at(minutes=14), "test")
    assert grace.status == R.GRACE and grace.fraction == 0 and grace.days_late == 0


def test_per_day_penalty_and_its_cap(monkeypatch):
    _with_policy(monkeypatch, kind="per_day", grace_minutes=15, per_day=0.1, cap=0.25)
    one = lateness.compute(SLUG, "ada", _at(minutes=16), "test")  # past the grace: the first started day
    assert (one.status, one.days_late, one.fraction) == (R.LATE, 1, 0.1)
    two = lateness.compute(SLUG, "ada", _at(days=1, hours=1), "test")
    assert (two.days_late, two.fraction) == (2, 0.2)
    week = lateness.compute(SLUG, "ada", _at(days=7), "test")
    assert (week.days_late, week.fraction) == (7, 0.25)  # capped


def test_zero_after_grace_and_accept(monkeypatch):
    _with_policy(monkeypatch, kind="zero_after_grace", grace_minutes=60)
    assert lateness.compute(SLUG, "ada", _at(minutes=59), "t").fraction == 0
    assert lateness.compute(SLUG, "ada", _at(minutes=61), "t").fraction == 1.0
    _with_policy(monkeypatch, kind="accept")
    late = lateness.compute(SLUG, "ada", _at(days=3), "t")
    assert late.status == R.LATE and late.fraction == 0


def test_extension_moves_the_deadline(tmp_path):
    path = tmp_path / "ext.csv"
    path.write_text("student,topic,until,days\nada,backprop,2026-10-12 23:59,\nbisi,backprop,,2\n")
    ext = lateness.load_extensions(path)
    ada = lateness.compute(SLUG, "ada", _at(days=2), "t", ext)
    assert ada.status == R.ON_TIME and ada.extended and ada.due == "2026-10-12T23:59:00+01:00"
    bisi = lateness.compute(SLUG, "bisi", _at(days=2, minutes=30), "t", ext)
    assert bisi.status == R.LATE and bisi.days_late == 1 and bisi.extended
    assert lateness.compute(SLUG, "chidi", _at(days=2), "t", ext).days_late == 2  # no extension: 2 days late
    bad = tmp_path / "bad.csv"
    bad.write_text("student,topic,until\nada,backprop,next week\n")
    with pytest.raises(SystemExit, match="bad.csv:2"):
        lateness.load_extensions(bad)


def test_without_a_time_is_flagged_never_on_time():
    tr = R.TopicResult("ada", SLUG, [R.CheckResult(f"{SLUG}.Value", 3, 3, R.PASSED, category="implementation")])
    lateness.apply(tr)
    assert tr.lateness.status == R.NO_TIME and tr.points == 3
    assert "No submission time" in lateness.summary(tr.lateness, 3, 3)


def test_nbgrader_timestamp_txt_in_nbgraders_own_format(tmp_path):
    """timestamp.txt as nbgrader's Exchange writes it (timestamp_format "%Y-%m-%d %H:%M:%S.%f %Z" in its
    configured time zone, UTC by default) reads as the instant nbgrader's own parse_utc reads."""
    from zoneinfo import ZoneInfo

    from nbgrader.exchange.abc.exchange import Exchange
    from nbgrader.utils import parse_utc

    fmt = Exchange.timestamp_format.default_value
    for zone in ("UTC", "Africa/Lagos"):
        stamp = dt.datetime(2026, 10, 10, 0, 30, 5, 123456, tzinfo=ZoneInfo(zone)).strftime(fmt)
        (tmp_path / "timestamp.txt").write_text(stamp)
        when, source = lateness.submission_time(tmp_path)
        assert source == "nbgrader timestamp.txt"
        assert dt.datetime.fromisoformat(when).astimezone(dt.timezone.utc).replace(tzinfo=None) == \
            parse_utc(stamp).replace(microsecond=0)
    (tmp_path / "timestamp.txt").write_text("")
    assert lateness.submission_time(tmp_path) == ("", "")


def test_gradescope_metadata_time(tmp_path):
    meta = tmp_path / "submission_metadata.json"
    meta.write_text(json.dumps({"created_at": "2026-10-10T08:00:00.123456+00:00", "users": []}))
    assert lateness.gradescope_time(meta) == "2026-10-10T09:00:00+01:00"
    meta.write_text("{}")
    assert lateness.gradescope_time(meta) is None


def _graded(tmp_path: Path) -> Path:
    """A graded folder with two students' backprop results (as `dlcore grade` writes them), without grading."""
    out = tmp_path / "graded"
    tasks = course_config.topic(SLUG).tasks
    for student, when in (("ada", _at(days=1, hours=2)), ("bisi", "")):
        results = [R.CheckResult(t.name, t.points if t.kind == "auto" else 0, t.points,
                                 R.PASSED if t.kind == "auto" else R.MANUAL, category=t.category) for t in tasks]
        tr = R.TopicResult(student, SLUG, results, fingerprint="x", submitted_at=when,
                           submitted_source="nbgrader timestamp.txt" if when else "")
        reports.write_results(out, tr)
    return out


def test_gradebook_feedback_and_report_show_lateness(tmp_path):
    out = _graded(tmp_path)
    auto = sum(t.points for t in course_config.topic(SLUG).tasks if t.kind == "auto")
    rows = {r["student"]: r for r in batch.write_reports([SLUG], ["ada", "bisi"], out)}
    fraction = min(lateness.policy(SLUG).cap, 2 * lateness.policy(SLUG).per_day)  # 26 h late: 2 started days
    ada = rows["ada"]
    assert ada[f"{SLUG}_late"] == R.LATE and ada[f"{SLUG}_days_late"] == 2
    assert ada[f"{SLUG}_points_before_penalty"] == auto
    assert ada[f"{SLUG}_points"] == pytest.approx(auto * (1 - fraction), abs=0.01)
    assert ada[f"{SLUG}_penalty"] == pytest.approx(auto * fraction, abs=0.01)
    assert ada["total_points"] == ada[f"{SLUG}_points"]
    assert rows["bisi"][f"{SLUG}_late"] == R.NO_TIME and rows["bisi"]["no_submission_time"] == SLUG
    assert rows["bisi"][f"{SLUG}_points"] == auto  # flagged for the staff, not penalised by guesswork
    with open(out / "gradebook.csv", newline="") as f:
        book = {r["student"]: r for r in csv.DictReader(f)}
    assert book["ada"][f"{SLUG}_late"] == "late" and float(book["ada"][f"{SLUG}_penalty"]) > 0
    page = (out / "ada" / "feedback.html").read_text()
    assert "Late by 26.0 h" in page and f"({auto:g} before the late penalty)" in page
    assert "No submission time" in (out / "bisi" / "feedback.html").read_text()
    # results.json keeps the raw task points: lateness is applied to reports, not written into the grading
    data = json.loads((out / "ada" / SLUG / "results.json").read_text())
    assert data["score"] == auto and data["extra_data"]["dlcore"]["submitted_at"] == _at(days=1, hours=2)

    paths = course_report.run(out)
    report = paths["report"].read_text() if "report" in paths else (out / "report.html").read_text()
    assert "2 d late" in report and "no submission time" in report
    transcript = (out / "transcripts" / "ada.html").read_text()
    assert "before late penalty" in transcript and "2 d late" in transcript

    # an extension recorded afterwards recomputes everything without regrading
    ext = tmp_path / "ext.csv"
    ext.write_text("student,topic,days\nada,backprop,3\n")
    lateness.record(out, ext, lateness.EXTENSIONS_RECORD, lateness.load_extensions)
    rows = {r["student"]: r for r in batch.write_reports([SLUG], ["ada", "bisi"], out)}
    assert rows["ada"][f"{SLUG}_late"] == R.ON_TIME and rows["ada"][f"{SLUG}_points"] == auto
    # so does a submission time given by the graders for a folder without one
    times = tmp_path / "times.csv"
    times.write_text("student,topic,submitted_at\nbisi,backprop,2026-10-09 12:00\n")
    lateness.record(out, times, lateness.TIMES_RECORD, lateness.load_times)
    rows = {r["student"]: r for r in batch.write_reports([SLUG], ["ada", "bisi"], out)}
    assert rows["bisi"][f"{SLUG}_late"] == R.ON_TIME and rows["bisi"]["no_submission_time"] == ""


def test_gradescope_results_score_after_penalty_tests_raw():
    tasks = course_config.topic(SLUG).tasks
    tr = R.TopicResult("ada", SLUG, [R.CheckResult(t.name, t.points, t.points, R.PASSED, category=t.category)
                                     for t in tasks], submitted_at=_at(days=1, minutes=30),
                       submitted_source="gradescope submission_metadata.json")
    lateness.apply(tr)
    data = reports.gradescope(tr)
    full = sum(t.points for t in tasks)
    assert data["score"] == pytest.approx(full * (1 - tr.lateness.fraction)) and tr.lateness.fraction > 0
    assert sum(t["score"] for t in data["tests"]) == full
    assert data["extra_data"]["dlcore"]["lateness"]["status"] == R.LATE and "Late by" in data["output"]
    back = reports.topic_result(data)
    assert back.lateness == tr.lateness and back.points == pytest.approx(tr.points)


def test_moving_a_deadline_is_not_a_regrade():
    assert Path("course_config/deadlines.py") in batch.NOT_GRADER


def test_nbgrader_duedate_from_the_configuration(tmp_path):
    """`dlcore course` sets the due date with the real `nbgrader db assignment add`; nbgrader reads the instant."""
    from nbgrader.api import Gradebook

    from autograder import nbgrader_course

    course = tmp_path / "course"
    course.mkdir()
    (course / "nbgrader_config.py").write_text("c = get_config()\nc.CourseDirectory.course_id = 'dlcore'\n")
    assert nbgrader_course.set_duedate(course, SLUG) == "2026-10-09T23:59:00+01:00"
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}", "dlcore") as gb:
        assert gb.find_assignment(SLUG).duedate == dt.datetime(2026, 10, 9, 22, 59)  # nbgrader keeps naive UTC
