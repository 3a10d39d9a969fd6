"""The check kit's pieces that need no sandbox: the torch adapter (toolkit.parity.torch_pair) and the rule that the
public checks take every tolerance and speed limit from the configuration."""
import re
from pathlib import Path

import numpy as np
import pytest

import course_config

torch = pytest.importorskip("torch")
from toolkit.parity import torch_pair  # noqa: E402

PUBLIC = Path(__file__).resolve().parents[1] / "autograder" / "public"


def test_torch_pair_passes_non_arrays_through_and_returns_the_gradients_asked_for():
    def conv(x, w, conv_param):
        return torch.nn.functional.conv2d(x, w, stride=conv_param["stride"])

    forward, backward = torch_pair(conv, wrt=("w",))
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 5, 5)), rng.standard_normal((4, 3, 3, 3))
    out, cache = forward(x, w, {"stride": 2})
    assert out.shape == (2, 4, 2, 2) and out.dtype == np.float64
    dout = rng.standard_normal(out.shape)
    dw = backward(dout, cache)  # one gradient asked for: one array, not a tuple
    tx, tw = torch.tensor(x), torch.tensor(w, requires_grad=True)
    conv(tx, tw, {"stride": 2}).backward(torch.tensor(dout))
    np.testing.assert_array_equal(dw, tw.grad.numpy())


def test_torch_pair_with_several_outputs_takes_one_upstream_gradient_each():
    forward, backward = torch_pair(lambda a, b: (a * b, a + b))
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(3), rng.standard_normal(3)
    prod, total, cache = forward(a, b)
    np.testing.assert_allclose(prod, a * b)
    np.testing.assert_allclose(total, a + b)
    d1, d2 = rng.standard_normal(3), rng.standard_normal(3)
    da, db = backward(d1, d2, cache)
    np.testing.assert_allclose(da, d1 * b + d2)
    np.testing.assert_allclose(db, d1 * a + d2)


def test_public_checks_take_tolerances_and_speed_limits_from_the_configuration():
    """No literal rtol / atol (only rtol=0, an exact comparison of integers) and no tolerance or speed-limit
    constants in the released checks: they read ctx.tol and ctx.task.speed_limit."""
    literal = re.compile(r"\b(rtol|atol)=(?!0(\.0)?\b)[0-9]|\b[A-Z_]*(RTOL|ATOL|SPEED_LIMITS?)\s*=")
    found = [f"{f.name}:{i}: {line.strip()}" for f in sorted(PUBLIC.glob("*.py"))
             for i, line in enumerate(f.read_text().splitlines(), 1) if literal.search(line)]
    assert not found, "\n".join(found)
    timed = [t.name for t in course_config.topic("cnn").tasks if t.speed_limit is not None]
    assert timed == ["cnn.conv_forward_fast", "cnn.conv_backward_fast", "cnn.max_pool_forward_fast",
                     "cnn.max_pool_backward_fast"]
