"""The reference solutions get full marks; untouched stubs get 0 with a clear message and no crash."""
from __future__ import annotations

import numpy as np
import pytest

from autograder import results as R
from autograder.mutants import write_stubs
from conftest import FF, SOLUTIONS, by_task, grade

AUTO = [t for t in FF.tasks if t.kind == "auto"]
AUTO_POINTS = sum(t.points for t in AUTO)


@pytest.mark.parametrize("visibility", ["hidden", "public"])
def test_reference_gets_full_marks(visibility):
    result = grade(SOLUTIONS / "feedforward", visibility=visibility)
    lost = {r.task: r.message for r in result.results if r.points < r.max_points and r.status != R.MANUAL}
    assert not lost, lost
    assert result.points == AUTO_POINTS
    manual = [r for r in result.results if r.status == R.MANUAL]
    assert [r.task for r in manual] == ["feedforward.written_comparison"]


def test_untouched_stubs_get_zero_without_crash(tmp_path):
    folder = write_stubs("feedforward", SOLUTIONS, tmp_path)
    result = grade(folder)
    assert result.points == 0
    for task in AUTO:
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
