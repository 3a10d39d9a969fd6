"""Topic 3 (cnn): the reference's fast layers against torch on the CPU, and the cost of grading the topic.

- conv_forward_fast + conv_backward_fast (N=64, C 16 -> F 32, 32x32, 3x3, pad 1, float32) vs F.conv2d forward and
  backward (goal: within 1.5 times);
- max_pool_forward_fast + max_pool_backward_fast, 2x2 stride 2 on (64, 32, 32, 32) float32, vs F.max_pool2d
  (goal: 1.0 times);
- the reference submission graded with the hidden suite, both training runs included, on one CPU (goal: 120 s,
  1.5 GiB).
One thread throughout; ratios from the same run (see measure.py). Figures go to benchmarks/results.json ("cnn").

Run: python benchmarks/bench_cnn.py [--no-grading]
"""
from __future__ import annotations

import sys

import measure
import numpy as np
import torch
import torch.nn.functional as F

from cnn import layers


def conv_vs_torch() -> dict:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 16, 32, 32), dtype=np.float32)
    w = rng.standard_normal((32, 16, 3, 3), dtype=np.float32) * 0.1
    b = rng.standard_normal(32, dtype=np.float32)
    dout = rng.standard_normal((64, 32, 32, 32), dtype=np.float32)
    conv_param = {"stride": 1, "pad": 1}
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    dt = torch.tensor(dout)

    def reference():
        out, cache = layers.conv_forward_fast(x, w, b, conv_param)
        return layers.conv_backward_fast(dout, cache)

    def pytorch():
        xt.grad = wt.grad = bt.grad = None
        F.conv2d(xt, wt, bt, padding=1).backward(dt)

    grads = reference()
    pytorch()
    assert all(g.dtype == np.float32 for g in grads)  # float32 stays float32
    assert np.allclose(grads[1], wt.grad.numpy(), rtol=1e-3, atol=1e-2)
    return measure.versus(measure.interleaved({"reference": reference, "torch": pytorch}), "reference", "torch", 1.5)


def max_pool_vs_torch() -> dict:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 32, 32, 32), dtype=np.float32)
    dout = rng.standard_normal((64, 32, 16, 16), dtype=np.float32)
    pool_param = {"pool_height": 2, "pool_width": 2, "stride": 2}
    xt, dt = torch.tensor(x, requires_grad=True), torch.tensor(dout)

    def reference():
        out, cache = layers.max_pool_forward_fast(x, pool_param)
        return layers.max_pool_backward_fast(dout, cache)

    def pytorch():
        xt.grad = None
        F.max_pool2d(xt, 2, 2).backward(dt)

    dx = reference()
    pytorch()
    assert dx.dtype == np.float32 and np.array_equal(dx, xt.grad.numpy())
    return measure.versus(measure.interleaved({"reference": reference, "torch": pytorch}), "reference", "torch", 1.0)


def main() -> None:
    measure.one_thread()
    report = {"environment": measure.environment(), "conv_fwd_bwd_vs_torch": conv_vs_torch(),
              "max_pool_fwd_bwd_vs_torch": max_pool_vs_torch()}
    if "--no-grading" not in sys.argv:
        report["graded"] = measure.grading_cost("cnn", 120.0, 1536.0)
    measure.save("cnn", report)


if __name__ == "__main__":
    main()
