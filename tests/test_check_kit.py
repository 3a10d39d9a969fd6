"""The check kit's pieces that need no sandbox: the torch adapter (toolkit.parity.torch_pair)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")
from toolkit.parity import torch_pair  # noqa: E402


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
