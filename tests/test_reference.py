"""The reference solutions get full marks and clear every training bar with its margin at every calibration seed;
untouched stubs get 0 with a clear message and no crash. Every test loops over the configured topics."""
from __future__ import annotations

import pytest

import course_config
from autograder import results as R
from autograder.mutants import copy_reference, write_stubs
from autograder.runner import grade_topic
from conftest import SOLUTIONS, by_task, grade

TOPICS = pytest.mark.parametrize("topic", course_config.TOPICS, ids=lambda t: t.slug)


# one xdist group per topic: its two tests share the topic's runs on one worker, while topics spread over workers
@pytest.fixture(scope="session", ids=lambda t: t.slug,
                params=[pytest.param(t, marks=pytest.mark.xdist_group(f"hidden_reference-{t.slug}"))
                        for t in course_config.TOPICS])
def hidden_reference(request):
    """The reference graded by the hidden suite at every calibration seed (a full grading at the first seed, only
    the training tasks at the others): one set of expensive runs shared by the full-marks and calibration tests."""
    topic = request.param
    seeds = sorted({s for b in topic.bars for s in b.calibration_seeds}) or [course_config.GRADING_SEED]
    bar_tasks = sorted({b.task for b in topic.bars})
    runs = {seed: grade_topic(topic, SOLUTIONS / topic.slug, "hidden", student="reference", seed=seed,
                              tasks=None if i == 0 else bar_tasks) for i, seed in enumerate(seeds)}
    return topic, seeds, runs


def _lost(result):
    return {r.task: r.message for r in result.results if r.points < r.max_points and r.status != R.MANUAL}


def test_reference_gets_full_marks_hidden(hidden_reference):
    topic, seeds, runs = hidden_reference
    result = runs[seeds[0]]
    assert not _lost(result), _lost(result)
    assert result.points == sum(t.points for t in topic.tasks if t.kind == "auto")
    manual = [r.task for r in result.results if r.status == R.MANUAL]
    assert manual == [t.name for t in topic.tasks if t.kind == "manual"] and manual


def test_training_bars_are_calibrated(hidden_reference):
    """Every bar: the reference reaches it with the configured margin at every calibration seed (same data,
    settings and sandbox as grading), and the bar's check records the measured value."""
    topic, seeds, runs = hidden_reference
    for bar in topic.bars:
        values = {}
        for seed in bar.calibration_seeds:
            r = by_task(runs[seed])[bar.task]
            assert r.points == r.max_points, (seed, r.message)
            values[seed] = r.metrics[f"{bar.model}.{bar.metric}"]
        assert all(bar.clears_with_margin(v) for v in values.values()), (bar.model, bar.describe(), bar.margin, values)


@TOPICS
def test_reference_gets_full_marks_public(topic):
    result = grade(SOLUTIONS / topic.slug, visibility="public", topic=topic)
    lost = {r.task: r.message for r in result.results if r.points < r.max_points and r.status != R.MANUAL}
    assert not lost, lost
    assert result.points == sum(t.points for t in topic.tasks if t.kind == "auto")
    manual = [r.task for r in result.results if r.status == R.MANUAL]
    assert manual == [t.name for t in topic.tasks if t.kind == "manual"] and manual


@TOPICS
def test_untouched_stubs_get_zero_without_crash(tmp_path, topic):
    for required in topic.requires:  # earlier topics are the reference: only this topic's stubs count
        copy_reference(required, SOLUTIONS, tmp_path)
    folder = write_stubs(topic.slug, SOLUTIONS, tmp_path)
    result = grade(folder, topic=topic)
    assert result.points == 0
    for task in [t for t in topic.tasks if t.kind == "auto"]:
        r = by_task(result)[task.name]
        assert r.status == R.NOT_ATTEMPTED, (task.name, r.status, r.message)
        assert "still raises NotImplementedError" in r.message


def test_grading_is_reproducible():
    """Same submission, same seed: the same inputs, so the same messages and points."""
    tasks = ["feedforward.affine_backward", "feedforward.init_weights", "feedforward.TwoLayerNet"]
    a = grade(SOLUTIONS / "feedforward", tasks=tasks, student="s1")
    b = grade(SOLUTIONS / "feedforward", tasks=tasks, student="s1")
    c = grade(SOLUTIONS / "feedforward", tasks=tasks, student="s2")
    assert [r.seed for r in a.results] == [r.seed for r in b.results]
    assert [r.seed for r in a.results] != [r.seed for r in c.results]  # per-student hidden inputs
