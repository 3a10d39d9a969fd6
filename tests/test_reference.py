"""The reference solutions get full marks; untouched stubs get 0 with a clear message and no crash."""
from __future__ import annotations

import numpy as np
import pytest

import course_config
from autograder import results as R
from autograder.mutants import copy_reference, write_stubs
from conftest import FF, SOLUTIONS, by_task, grade

TOPICS = pytest.mark.parametrize("topic", course_config.TOPICS, ids=lambda t: t.slug)


@TOPICS
@pytest.mark.parametrize("visibility", ["hidden", "public"])
def test_reference_gets_full_marks(topic, visibility):
    result = grade(SOLUTIONS / topic.slug, visibility=visibility, topic=topic)
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


def test_accuracy_bar_is_calibrated():
    """The reference clears the test-accuracy bar at 5 seeds with margin (same data and settings as grading)."""
    import sys

    sys.path.insert(0, str(SOLUTIONS))
    from feedforward.net import TwoLayerNet, predict, train
    from toolkit.data import load_mnist

    t = FF.training
    x_tr, y_tr, x_te, y_te = load_mnist(t.train_size, t.test_size)
    accs = []
    for seed in t.calibration_seeds:
        model = TwoLayerNet(784, t.hidden_dim, 10, "relu", "he", 1e-2, t.reg, seed)
        train(model, x_tr, y_tr, x_tr[:1000], y_tr[:1000], t.learning_rate, t.epochs, t.batch_size, t.lr_decay, seed)
        accs.append(float(np.mean(predict(model, x_te) == y_te)))
    assert min(accs) >= t.min_accuracy + 0.003, accs  # margin: 30 of 10,000 test images
