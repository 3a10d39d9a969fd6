"""Cost of topic 6 (gan), measured in one run; goals are printed, never asserted.

- FID of 10,000 generated images against the 10,000 MNIST test images (toolkit.image_metrics through torchmetrics):
  the first call (importing torchmetrics and loading the classifier) and a warm one; Inception Score and class
  coverage of 10,000 images; goal: FID under 10 s;
- the reference graded by the hidden suite at the grading seed on one thread: total time, the training task's time,
  peak RSS of this process and of the sandbox workers; goal: under 150 s and 2 GiB.

Run: OMP_NUM_THREADS=1 DLCORE_DATA=../shared/data python benchmarks/bench_gan.py [--no-grade]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(var, "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "solutions"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import course_config  # noqa: E402

GOALS = {"fid_10k_s": 10.0, "grade_s": 150.0, "peak_rss_mb": 2048}


def metrics() -> dict:
    from toolkit import image_metrics
    from toolkit.data import load

    torch.set_num_threads(1)
    d = load("mnist")
    real = d["x_test"]
    fake = np.clip(d["x_train"][:10_000].reshape(10_000, -1) / 127.5 - 1
                   + 0.3 * np.random.default_rng(0).standard_normal((10_000, 784)), -1, 1).astype(np.float32)
    out = {}
    for label in ("fid_10k_first_call_s", "fid_10k_s"):
        t0 = time.perf_counter()
        out["fid"] = image_metrics.fid(real, fake)
        out[label] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    out["inception_score"] = image_metrics.inception_score(fake)[0]
    out["inception_score_10k_s"] = round(time.perf_counter() - t0, 2)
    t0 = time.perf_counter()
    out["class_coverage"] = image_metrics.class_coverage(fake)
    out["class_coverage_10k_s"] = round(time.perf_counter() - t0, 2)
    return out


def grading() -> dict:
    from autograder.runner import grade_topic

    topic = course_config.topic("gan")
    t0 = time.perf_counter()
    result = grade_topic(topic, REPO / "solutions" / "gan", "hidden", student="reference")
    total = time.perf_counter() - t0
    train = next(r for r in result.results if r.task == "gan.train")
    return {"points": result.points, "max_points": sum(t.points for t in topic.tasks if t.kind == "auto"),
            "grade_s": round(total, 1), "metrics": train.metrics,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "workers_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-grade", action="store_true", help="measure the metrics only")
    args = parser.parse_args()
    out = {"cpus": os.cpu_count(), "torch": torch.__version__, "metrics": metrics()}
    if not args.no_grade:
        out["grading"] = grading()
    out["goals"] = GOALS
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
