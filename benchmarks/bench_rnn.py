"""Topic 4 (rnn): the reference LSTM against nn.LSTM on the CPU, and the cost of grading the topic.

- lstm_forward + lstm_backward over time (N=32, T=50, D=64, H=128, float32, upstream gradient on every h_t) vs
  nn.LSTM(batch_first=True) forward and backward, gradients on x, h0 and the weights (goal: within 1.2 times);
- the reference submission graded with the hidden suite, the NumPy and PyTorch language models trained, on one CPU
  (goal: 120 s, 1.5 GiB).
One thread throughout; ratios from the same run (see measure.py). Figures go to benchmarks/results.json ("rnn").

Run: python benchmarks/bench_rnn.py [--no-grading]
"""
from __future__ import annotations

import sys

import measure
import numpy as np
import torch

from rnn import rnn_layers


def lstm_vs_torch() -> dict:
    N, T, D, H = 32, 50, 64, 128
    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, T, D), dtype=np.float32)
    h0 = rng.standard_normal((N, H), dtype=np.float32)
    Wx = rng.standard_normal((D, 4 * H), dtype=np.float32) / np.float32(np.sqrt(D))
    Wh = rng.standard_normal((H, 4 * H), dtype=np.float32) / np.float32(np.sqrt(H))
    b = np.zeros(4 * H, dtype=np.float32)
    dh = rng.standard_normal((N, T, H), dtype=np.float32)
    lstm = torch.nn.LSTM(D, H, batch_first=True)
    xt, h0t = torch.tensor(x, requires_grad=True), torch.tensor(h0[None], requires_grad=True)
    c0t, dht = torch.zeros(1, N, H), torch.tensor(dh)

    def reference():
        h, cache = rnn_layers.lstm_forward(x, h0, Wx, Wh, b)
        return rnn_layers.lstm_backward(dh, cache)

    def pytorch():
        xt.grad = h0t.grad = None
        lstm.zero_grad(set_to_none=True)
        lstm(xt, (h0t, c0t))[0].backward(dht)

    assert all(g.dtype == np.float32 for g in reference())  # float32 stays float32
    return measure.versus(measure.interleaved({"reference": reference, "torch": pytorch}), "reference", "torch", 1.2)


def main() -> None:
    measure.one_thread()
    report = {"environment": measure.environment(), "lstm_fwd_bwd_vs_torch": lstm_vs_torch()}
    if "--no-grading" not in sys.argv:
        report["graded"] = measure.grading_cost("rnn", 120.0, 1536.0)
    measure.save("rnn", report)


if __name__ == "__main__":
    main()
