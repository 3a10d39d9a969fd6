"""From task results to category points, a weighted percentage and an OAU letter grade (all from config)."""
from __future__ import annotations

import csv
import io
from pathlib import Path

from autograder import results as R
from autograder.reports import write_atomic
from course_config import CATEGORY_WEIGHTS, GRADE_SCALE


def letter(percent: float) -> tuple[str, int]:
    """OAU letter and grade point for a percentage (A 70-100 (5) ... F 0-39 (0))."""
    for name, lowest, point in GRADE_SCALE:
        if percent >= lowest - 1e-9:
            return name, point
    return GRADE_SCALE[-1][0], GRADE_SCALE[-1][2]


def category_points(topic_results: list[R.TopicResult]) -> dict[str, tuple[float, float]]:
    """category -> (earned, possible) over the given topics, from each result's explicit category."""
    out = {c: [0.0, 0.0] for c in CATEGORY_WEIGHTS}
    for tr in topic_results:
        for r in tr.results:
            if r.category not in out:
                raise ValueError(f"{tr.student}/{tr.topic}: result {r.task} has category {r.category!r}, "
                                 f"not one of {sorted(CATEGORY_WEIGHTS)}; regrade with --force")
            out[r.category][0] += r.points * tr.factor  # the late penalty takes the same share of every point
            out[r.category][1] += r.max_points
    return {c: (e, p) for c, (e, p) in out.items()}


def percentage(cats: dict[str, tuple[float, float]]) -> float:
    """Weighted percentage; weights are renormalised over the categories that have points possible."""
    used = {c: w for c, w in CATEGORY_WEIGHTS.items() if cats.get(c, (0, 0))[1] > 0}
    if not used:
        return 0.0
    total_w = sum(used.values())
    return 100.0 * sum(w * cats[c][0] / cats[c][1] for c, w in used.items()) / total_w


def gradebook_row(student: str, topic_results: list[R.TopicResult]) -> dict:
    """One gradebook line: per-topic and per-category points, total, percentage, letter and grade point."""
    row: dict = {"student": student}
    for tr in sorted(topic_results, key=lambda t: t.topic):
        row[f"{tr.topic}_points"] = round(tr.points, 2)  # after the late penalty
        row[f"{tr.topic}_max"] = round(tr.max_points, 2)
        late = tr.lateness
        if late is not None and late.status != R.NO_DEADLINE:  # beside the points: what lateness cost
            row[f"{tr.topic}_points_before_penalty"] = round(tr.raw_points, 2)
            row[f"{tr.topic}_late"] = late.status  # on_time | grace | late | no_time (flagged: check it)
            row[f"{tr.topic}_days_late"] = late.days_late
            row[f"{tr.topic}_penalty"] = round(tr.penalty, 2)
    cats = category_points(topic_results)
    for c, (earned, possible) in cats.items():
        if possible:
            row[f"{c}_points"], row[f"{c}_max"] = round(earned, 2), round(possible, 2)
    row["total_points"] = round(sum(tr.points for tr in topic_results), 2)
    row["total_max"] = round(sum(tr.max_points for tr in topic_results), 2)
    pct = percentage(cats)
    row["percentage"] = round(pct, 2)
    row["letter"], row["grade_point"] = letter(pct)
    pending = sum(r.max_points for tr in topic_results for r in tr.results if r.status == R.MANUAL)
    row["pending_manual_points"] = round(pending, 2)
    # topics submitted without a known time: lateness unchecked, for the staff to settle (never taken as on time)
    row["no_submission_time"] = " ".join(tr.topic for tr in topic_results
                                         if tr.lateness is not None and tr.lateness.status == R.NO_TIME)
    # tasks the grader itself failed on: their points are not the student's verdict; fix the grader and regrade
    row["grader_errors"] = sum(tr.grader_errors for tr in topic_results)
    row["sandbox"] = "+".join(sorted({tr.sandbox for tr in topic_results if tr.sandbox})) or "-"  # bwrap | plain
    return row


MANUAL_RECORD = "manual_scores.csv"  # in a graded folder: the manual scores its gradebook was computed with


def recorded_manual(graded: Path, given: Path | None = None) -> Path | None:
    """The manual scores to use for `graded`: those `given` (a --manual CSV), else those its gradebook was last
    computed with (GRADED/manual_scores.csv), else none. Every command that turns results into grades asks this,
    so the gradebook, the feedback pages and the course report give the same numbers."""
    if given is not None:
        return Path(given)
    path = Path(graded) / MANUAL_RECORD
    return path if path.is_file() else None


def record_manual(graded: Path, given: Path | None) -> Path | None:
    """Keep a copy of the manual scores `given` as GRADED/manual_scores.csv (checked first, written atomically)
    and return the scores now recorded for `graded` (see `recorded_manual`)."""
    record = Path(graded) / MANUAL_RECORD
    if given is not None and Path(given).resolve() != record.resolve():
        load_manual(Path(given))  # a malformed CSV stops here, before it replaces the recorded one
        write_atomic(record, Path(given).read_text())
    return recorded_manual(graded)


def write_manual(graded: Path, scores: dict[tuple[str, str], float]) -> Path:
    """Record manual scores from elsewhere (nbgrader's database) as GRADED/manual_scores.csv, atomically."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["student", "task", "points"])
    w.writerows([s, t, p] for (s, t), p in sorted(scores.items()))
    write_atomic(Path(graded) / MANUAL_RECORD, buf.getvalue())
    return Path(graded) / MANUAL_RECORD


def load_manual(path: Path | None) -> dict[tuple[str, str], float]:
    """Instructor scores for manual tasks from a CSV with columns student, task, points."""
    if path is None:
        return {}
    scores = {}
    with open(path, newline="") as f:
        for i, row in enumerate(csv.DictReader(f), start=2):
            try:
                scores[(row["student"].strip(), row["task"].strip())] = float(row["points"])
            except (KeyError, ValueError) as exc:
                raise SystemExit(f"{path}:{i}: expected columns student,task,points with a number ({exc})")
    return scores


def apply_manual(tr: R.TopicResult, manual: dict[tuple[str, str], float]) -> R.TopicResult:
    """Replace pending manual results with instructor scores (clipped to the task's points)."""
    for i, r in enumerate(tr.results):
        if r.status == R.MANUAL and (tr.student, r.task) in manual:
            pts = min(max(manual[(tr.student, r.task)], 0.0), r.max_points)
            status = R.PASSED if pts == r.max_points else (R.PARTIAL if pts else R.FAILED)
            tr.results[i] = R.CheckResult(r.task, pts, r.max_points, status, "scored by an instructor",
                                          tags=r.tags, seed=r.seed, category=r.category)
    return tr
