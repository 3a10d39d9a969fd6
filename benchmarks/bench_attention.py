"""Topic 7 (attention): the reference attention against F.scaled_dot_product_attention on the CPU, and the cost
of grading the topic.

- attention_forward + attention_backward (B=8, h=4 heads, T=128, d=64, float32; the heads as batch rows, no mask)
  vs F.scaled_dot_product_attention forward and backward (goal: within 1.2 times);
- the reference submission graded with the hidden suite, the toy model trained, on one CPU (goal: 90 s, 1 GiB).
One thread throughout; ratios from the same run (see measure.py). Figures go to benchmarks/results.json
("attention").

Run: python benchmarks/bench_attention.py [--no-grading]
"""
from __future__ import annotations

import sys

import measure
import numpy as np
import torch
import torch.nn.functional as F

from attention import attention


def attention_vs_torch() -> dict:
    B, h, T, d = 8, 4, 128, 64
    rng = np.random.default_rng(0)
    q, k, v, dout = (rng.standard_normal((B, h, T, d), dtype=np.float32) for _ in range(4))
    qt, kt, vt = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    dt = torch.tensor(dout)

    def reference():
        out, cache = attention.attention_forward(q, k, v)
        return attention.attention_backward(dout, cache)

    def pytorch():
        qt.grad = kt.grad = vt.grad = None
        F.scaled_dot_product_attention(qt, kt, vt).backward(dt)

    grads = reference()
    pytorch()
    assert all(g.dtype == np.float32 for g in grads)  # float32 stays float32
    assert np.allclose(grads[0], qt.grad.numpy(), rtol=1e-3, atol=1e-4)
    return measure.versus(measure.interleaved({"reference": reference, "torch": pytorch}), "reference", "torch", 1.2)


def main() -> None:
    measure.one_thread()
    report = {"environment": measure.environment(), "attention_fwd_bwd_vs_torch": attention_vs_torch()}
    if "--no-grading" not in sys.argv:
        report["graded"] = measure.grading_cost("attention", 90.0, 1024.0)
    measure.save("attention", report)


if __name__ == "__main__":
    main()
