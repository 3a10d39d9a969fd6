"""Grading cost of topic 1, measured in one run (docs/benchmarks.md quotes the output).

- one submission graded with the hidden suite: total time, time inside the student's code, time outside it;
- batch throughput with 1 and 2 jobs (submissions per minute);
- peak memory (max RSS) of the grading processes and sandbox workers;
- speed ratios against torch measured in the same run: the reference NumPy two-layer net's training epoch vs
  the same net in torch, and the sandboxed call overhead vs a direct call. Goals are printed, never asserted.

Run: DLCORE_DATA=../shared/data python benchmarks/bench_grading.py [--copies 4]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
import types
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "solutions"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import course_config  # noqa: E402
from autograder import batch  # noqa: E402
from autograder.runner import grade_topic  # noqa: E402
from autograder.client import WorkerClient  # noqa: E402
from autograder.confine import sandbox_mode  # noqa: E402

FF = course_config.topic("feedforward")
GOALS = {"numpy_epoch_vs_torch": 3.0, "outside_student_share": 0.5}


def one_submission() -> dict:
    t0 = time.perf_counter()
    tr = grade_topic(FF, REPO / "solutions" / "feedforward", "hidden", student="bench")
    total = time.perf_counter() - t0
    return {"total_s": round(total, 2), "student_code_s": tr.student_seconds,
            "outside_student_s": round(total - tr.student_seconds, 2),
            "outside_share": round((total - tr.student_seconds) / total, 3), "points": tr.points}


def throughput(copies: int, jobs: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for i in range(copies):
            shutil.copytree(REPO / "solutions" / "feedforward", root / "submitted" / f"s{i}" / "feedforward",
                            ignore=shutil.ignore_patterns("__pycache__"))
        t0 = time.perf_counter()
        batch.grade(["feedforward"], root, root / "out", jobs=jobs, quiet=True, allow_unisolated=True)
        dt = time.perf_counter() - t0
    return {"jobs": jobs, "submissions": copies, "seconds": round(dt, 1), "per_minute": round(60 * copies / dt, 2)}


def epoch_ratio() -> dict:
    """One epoch of the reference NumPy net vs the same net in torch (float32 both, 1 thread)."""
    from feedforward.net import TwoLayerNet
    from toolkit.data import load_mnist

    torch.set_num_threads(1)
    x, y, _, _ = load_mnist(10_000, 10)
    t = types.SimpleNamespace(**FF.bar("net").settings)
    net = TwoLayerNet(784, t.hidden_dim, 10, "relu", "he", 1e-2, t.reg, 0)
    net.params = {k: v.astype(np.float32) for k, v in net.params.items()}
    xs = x.astype(np.float32)

    def numpy_epoch():
        for i in range(0, len(xs), t.batch_size):
            _, grads = net.loss(xs[i:i + t.batch_size], y[i:i + t.batch_size])
            for k, g in grads.items():
                net.params[k] -= t.learning_rate * g

    model = torch.nn.Sequential(torch.nn.Linear(784, t.hidden_dim), torch.nn.ReLU(), torch.nn.Linear(t.hidden_dim, 10))
    opt = torch.optim.SGD(model.parameters(), lr=t.learning_rate)
    xt, yt = torch.as_tensor(xs), torch.as_tensor(y)

    def torch_epoch():
        for i in range(0, len(xt), t.batch_size):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(xt[i:i + t.batch_size]), yt[i:i + t.batch_size]).backward()
            opt.step()

    times = {"numpy": [], "torch": []}
    for _ in range(5):  # interleaved, median
        for name, fn in (("numpy", numpy_epoch), ("torch", torch_epoch)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {k: float(np.median(v)) for k, v in times.items()}
    return {"numpy_epoch_s": round(med["numpy"], 3), "torch_epoch_s": round(med["torch"], 3),
            "ratio": round(med["numpy"] / med["torch"], 2)}


def call_overhead() -> dict:
    """A sandboxed call of affine_forward vs calling the reference directly."""
    from feedforward.layers import affine_forward
    from toolkit import __file__ as tk

    x, w, b = np.ones((8, 16)), np.ones((16, 4)), np.ones(4)
    with WorkerClient({"feedforward": REPO / "solutions" / "feedforward"}, FF.limits, (),
                      {"toolkit": Path(tk).parent}) as wk:
        wk.import_module("feedforward.layers")
        t0 = time.perf_counter()
        for _ in range(200):
            wk.call("feedforward.layers.affine_forward", x, w, b, keep=(1,))
        remote = (time.perf_counter() - t0) / 200
    t0 = time.perf_counter()
    for _ in range(200):
        affine_forward(x, w, b)
    local = (time.perf_counter() - t0) / 200
    return {"sandboxed_call_ms": round(remote * 1e3, 3), "direct_call_ms": round(local * 1e3, 4)}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=4)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results.json"))
    args = ap.parse_args()
    report = {"sandbox": sandbox_mode(), "cpus": os.cpu_count(), "torch": torch.__version__,
              "one_submission": one_submission(), "epoch_vs_torch": epoch_ratio(), "call": call_overhead(),
              "batch": [throughput(args.copies, j) for j in (1, 2)]}
    report["peak_rss_mb"] = {"this_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                             "largest_child": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)}
    report["goals"] = {"numpy_epoch_vs_torch <= %g" % GOALS["numpy_epoch_vs_torch"]:
                       report["epoch_vs_torch"]["ratio"] <= GOALS["numpy_epoch_vs_torch"],
                       "share of grading time outside student code <= %g" % GOALS["outside_student_share"]:
                       report["one_submission"]["outside_share"] <= GOALS["outside_student_share"]}
    out = Path(args.out)  # the topic benchmarks (bench_cnn.py, ...) keep their own keys in the same file
    kept = json.loads(out.read_text()) if out.is_file() else {}
    out.write_text(json.dumps({**kept, **report}, indent=1) + "\n")
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
