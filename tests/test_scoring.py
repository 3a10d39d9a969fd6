"""Grade scale, category weights and manual scores, all derived from course_config."""
from __future__ import annotations

import pytest

import course_config
from autograder import results as R
from autograder.scoring import apply_manual, gradebook_row, letter, load_manual, percentage


@pytest.mark.parametrize("pct, want", [(100, ("A", 5)), (70, ("A", 5)), (69.99, ("B", 4)), (60, ("B", 4)),
                                       (59.5, ("C", 3)), (50, ("C", 3)), (45, ("D", 2)), (44.9, ("E", 1)),
                                       (40, ("E", 1)), (39.99, ("F", 0)), (0, ("F", 0))])
def test_oau_scale(pct, want):
    assert letter(pct) == want


def test_weights_renormalise_over_present_categories():
    cats = {c: (0.0, 0.0) for c in course_config.CATEGORY_WEIGHTS}
    cats["implementation"] = (5.0, 10.0)
    cats["comparative"] = (10.0, 10.0)
    w_i, w_c = course_config.CATEGORY_WEIGHTS["implementation"], course_config.CATEGORY_WEIGHTS["comparative"]
    assert percentage(cats) == pytest.approx(100 * (0.5 * w_i + 1.0 * w_c) / (w_i + w_c))


def _topic_result(points_by_task: dict) -> R.TopicResult:
    tr = R.TopicResult("ada", "feedforward")
    for t in course_config.topic("feedforward").tasks:
        if t.kind == "manual":
            tr.results.append(R.CheckResult(t.name, 0.0, t.points, R.MANUAL, category=t.category))
        else:
            p = points_by_task.get(t.name, t.points)
            tr.results.append(R.CheckResult(t.name, p, t.points, R.PASSED if p == t.points else R.FAILED,
                                            category=t.category))
    return tr


def test_gradebook_row_and_manual_scores(tmp_path):
    tr = _topic_result({"feedforward.train": 0.0})
    row = gradebook_row("ada", [tr])
    assert row["pending_manual_points"] == 3
    assert row["total_max"] == course_config.topic("feedforward").max_points
    manual = tmp_path / "m.csv"
    manual.write_text("student,task,points\nada,feedforward.written_comparison,2.5\n")
    apply_manual(tr, load_manual(manual))
    row = gradebook_row("ada", [tr])
    assert row["pending_manual_points"] == 0
    assert row["total_points"] == course_config.topic("feedforward").max_points - 3 - 0.5
    assert row["letter"] == letter(row["percentage"])[0]


def test_bad_manual_csv_names_the_line(tmp_path):
    bad = tmp_path / "m.csv"
    bad.write_text("student,task,points\nada,feedforward.written_comparison,lots\n")
    with pytest.raises(SystemExit, match="m.csv:2"):
        load_manual(bad)


def test_config_rejects_unknown_keys():
    with pytest.raises(TypeError):
        course_config.Task("x.y", 1, "implementation", "layers", "f", colour="red")


def test_category_is_explicit_never_guessed():
    """A result without a known category is an error, not silently counted as implementation."""
    tr = _topic_result({})
    row = gradebook_row("ada", [tr])
    by_cat = {c: sum(t.points for t in course_config.topic("feedforward").tasks if t.category == c)
              for c in course_config.CATEGORY_WEIGHTS}
    for c, pts in by_cat.items():
        assert row.get(f"{c}_max", 0) == pts
    tr.results[0] = R.CheckResult(tr.results[0].task, 1.0, 2.0, R.PARTIAL)  # no category
    with pytest.raises(ValueError, match="category"):
        gradebook_row("ada", [tr])


def test_grader_errors_are_counted_not_hidden():
    tr = _topic_result({})
    t = course_config.topic("feedforward").tasks[0]
    tr.results[0] = R.CheckResult(t.name, 0.0, t.points, R.GRADER_ERROR, "grader failed", category=t.category,
                                  grader_errors=("ZeroDivisionError",))
    assert gradebook_row("ada", [tr])["grader_errors"] == 1
