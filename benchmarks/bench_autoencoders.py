"""Grading cost of topic 5 (autoencoders) and the training throughput of its reference VAE, measured in one run.

- one submission (the reference) graded with the hidden suite on one core: total time, time inside the student's
  code, and peak memory (max RSS) of this process and of the sandbox workers (the issue's goal: 120 s, 1.5 GiB);
- the reference VAE's training throughput (images per second through `models.train`, on the grader's bar settings)
  against the same model trained by a plain PyTorch loop (the same layers, loss, Adam and batches, nothing else),
  so the course's code is seen to cost nothing over plain PyTorch. Goals are printed, never asserted.

Run: DLCORE_DATA=../shared/data OMP_NUM_THREADS=1 python benchmarks/bench_autoencoders.py [--out results.json]
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "solutions"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import course_config  # noqa: E402
from autograder.runner import grade_topic  # noqa: E402
from autograder.confine import sandbox_mode  # noqa: E402

TOPIC = course_config.topic("autoencoders")
GOALS = {"grading_s": 120.0, "peak_rss_mb": 1536.0, "train_vs_plain_torch": 1.2}


def one_submission() -> dict:
    t0 = time.perf_counter()
    result = grade_topic(TOPIC, REPO / "solutions" / TOPIC.slug, "hidden", student="bench")
    total = time.perf_counter() - t0
    return {"total_s": round(total, 2), "student_code_s": result.student_seconds, "points": result.points,
            "max_auto_points": sum(t.points for t in TOPIC.tasks if t.kind == "auto"),
            "per_task_s": {r.task.split(".", 1)[1]: r.seconds for r in result.results if r.seconds > 0.5}}


def _plain_loop(model, X, s: dict) -> None:
    """The same training as models.train, written as a bare PyTorch loop: encode, sample, decode, loss, Adam."""
    opt = torch.optim.Adam(model.parameters(), lr=s["learning_rate"])
    rng = np.random.default_rng(0)
    for _ in range(s["epochs"]):
        order = torch.as_tensor(rng.permutation(len(X)))
        for start in range(0, len(X), s["batch_size"]):
            x = X[order[start:start + s["batch_size"]]]
            h = torch.relu(model.enc1(x))
            mu, logvar = model.enc_mu(h), model.enc_logvar(h)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            logits = model.dec2(torch.relu(model.dec1(z)))
            rec = F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(1)
            loss = (rec + 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()


def throughput(repeats: int = 3) -> dict:
    """Images per second of the reference VAE's training: models.train vs the plain loop (best of `repeats`)."""
    from autoencoders import models

    torch.set_num_threads(1)
    bar = TOPIC.bar("vae")
    s = bar.settings
    X, _, _, _ = models.load_binarized(bar.dataset, bar.train_size, 10)
    X_t = torch.as_tensor(X, dtype=torch.float32)
    times = {"models.train": [], "plain PyTorch loop": []}
    for _ in range(repeats):
        for name in times:
            model = models.VAE(X.shape[1], s["hidden_dim"], s["latent_dim"], s["beta"], s["dtype"], seed=0)
            t0 = time.process_time()
            if name == "models.train":
                models.train(model, X, s["epochs"], s["batch_size"], s["learning_rate"], seed=0)
            else:
                _plain_loop(model, X_t, s)
            times[name].append(time.process_time() - t0)
    images = bar.train_size * s["epochs"]
    best = {name: min(t) for name, t in times.items()}
    return {"images": images, "cpu_s": {k: round(v, 3) for k, v in best.items()},
            "images_per_s": {k: round(images / v) for k, v in best.items()},
            "ratio": round(best["models.train"] / best["plain PyTorch loop"], 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help="also write the figures to this JSON file")
    args = parser.parse_args()
    report = {"sandbox": sandbox_mode(), "cpus": os.cpu_count(), "torch": torch.__version__,
              "one_submission": one_submission(), "vae_training": throughput()}
    report["peak_rss_mb"] = {
        "this_process": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "largest_worker": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1)}
    report["goals"] = {
        f"grading <= {GOALS['grading_s']:g} s": report["one_submission"]["total_s"] <= GOALS["grading_s"],
        f"largest worker <= {GOALS['peak_rss_mb']:g} MB": report["peak_rss_mb"]["largest_worker"]
        <= GOALS["peak_rss_mb"],
        f"models.train / plain loop <= {GOALS['train_vs_plain_torch']:g}": report["vae_training"]["ratio"]
        <= GOALS["train_vs_plain_torch"]}
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
