"""`--device`: where the PyTorch modules' torch code runs. On this CPU-only machine: an explicit `--device cpu`
grades exactly as the default, and `--device cuda` is a clear error at every level rather than a silent CPU run.
(The CUDA run itself needs a GPU; these tests cannot exercise it.)"""
from __future__ import annotations

import dataclasses
import importlib
import re
import glob

import numpy as np
import pytest
import torch

import course_config
from autograder import batch
from autograder.hidden.feedforward import MUTANTS
from autograder.mutants import apply, copy_reference
from autograder.runner import grade_topic, toolkit_dir
from autograder.client import StudentError, WorkerClient
from autograder.confine import gpu_access
from conftest import FF, SOLUTIONS
from test_cli import dlcore

no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: --device cuda is valid here")
TASK = "feedforward.TorchTwoLayerNet"
NO_CUDA = "--device cuda requested but torch.cuda.is_available() is False"


def without_times(tr) -> list:
    return [dataclasses.replace(r, seconds=0.0) for r in tr.results]


@pytest.mark.parametrize("submission", ["reference", "torch_sum_reduction"])
def test_explicit_cpu_grades_like_the_default(tmp_path, submission):
    folder = (copy_reference("feedforward", SOLUTIONS, tmp_path) if submission == "reference" else
              apply(next(m for m in MUTANTS if m.name == submission), "feedforward", SOLUTIONS, tmp_path))
    default = grade_topic(FF, folder, "hidden", student="dayo", tasks=[TASK])
    cpu = grade_topic(FF, folder, "hidden", student="dayo", tasks=[TASK], device="cpu")
    assert without_times(cpu) == without_times(default)
    assert (default.device, cpu.device) == ("cpu", "cpu")
    r = default.results[0]
    assert r.points == r.max_points if submission == "reference" else r.points < r.max_points


@no_gpu
def test_cuda_without_a_gpu_is_a_clear_error_everywhere(tmp_path):
    sub = tmp_path / "submitted"
    copy_reference("feedforward", SOLUTIONS, sub / "dayo")
    proc = dlcore("grade", "feedforward", "--submissions", str(tmp_path), "--out", str(tmp_path / "out"),
                  "--device", "cuda", "--allow-unisolated-sandbox")
    assert proc.returncode == 2 and NO_CUDA in proc.stderr, proc.stderr
    assert not (tmp_path / "out").exists()  # nothing graded on the CPU instead
    with pytest.raises(SystemExit, match=re.escape(NO_CUDA)):
        batch.grade(["feedforward"], tmp_path, tmp_path / "out", quiet=True, allow_unisolated=True, device="cuda")
    with pytest.raises(RuntimeError, match=re.escape(NO_CUDA)):
        grade_topic(FF, sub / "dayo" / "feedforward", "hidden", tasks=[TASK], device="cuda")


@no_gpu
def test_the_sandboxed_torch_worker_refuses_cuda_it_cannot_use(tmp_path):
    """The worker's own check: were the grader's check passed (a GPU the sandbox cannot see), no CPU fallback."""
    folder = copy_reference("feedforward", SOLUTIONS, tmp_path)
    with WorkerClient({"feedforward": folder}, FF.torch_limits, (), {"toolkit": toolkit_dir()}, device="cuda") as w:
        with pytest.raises(StudentError, match=r"torch\.cuda\.is_available\(\) is False in the sandboxed worker"):
            w.set_device("cuda")
    with WorkerClient({"feedforward": folder}, FF.torch_limits, (), {"toolkit": toolkit_dir()}, device="cpu") as w:
        w.set_device("cpu")
        w.import_module("feedforward.torch_net")
        model = w.call("feedforward.torch_net.TorchTwoLayerNet", 4, 3, 2, "relu", 0.0, "float64", keep=True)
        scores = w.call((model, "loss"), np.ones((5, 4)))  # the released `.numpy()` runs under the device setup
        assert scores.shape == (5, 2) and scores.dtype == np.float64


def test_a_cuda_worker_sees_the_gpu_and_bounds_its_data_not_its_address_space():
    cmd = gpu_access(["prlimit", "--as=8589934592", "--cpu=300", "--", "bwrap", "--dev", "/dev", "--tmpfs", "/tmp"])
    assert "--data=8589934592" in cmd and not [a for a in cmd if a.startswith("--as=")]
    nodes = sorted(glob.glob("/dev/nvidia*"))
    at = cmd.index("--dev") + 2
    assert cmd[at:at + 3 * len(nodes)] == [a for n in nodes for a in ("--dev-bind", n, n)]
    assert cmd[at + 3 * len(nodes):] == ["--tmpfs", "/tmp"]


def test_unknown_device_is_refused():
    from autograder.runner import device_problem

    assert device_problem("cpu") is None
    assert "unknown device" in device_problem("tpu")
    assert course_config.topic("feedforward").torch_modules  # the topic graded above has a torch worker to place


# -- on a GPU machine (skipped here): the CUDA run of every topic's torch tasks gives the CPU verdicts ------------

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU: run `python -m pytest -n 0 -q "
                         "tests/test_device.py -k cuda_gives` on a machine with one")
TORCH_TOPICS = [t for t in course_config.TOPICS if t.torch_modules]


@gpu
@pytest.mark.parametrize("topic", TORCH_TOPICS, ids=lambda t: t.slug)
def test_cuda_gives_the_cpu_verdicts(tmp_path, topic):
    """The reference and one planted bug in a torch module, graded on the torch tasks with --device cpu and
    --device cuda: the same points and status per task (values come back as float64 NumPy either way)."""
    torch_tasks = [t.name for t in topic.tasks if t.kind == "auto" and t.module in topic.torch_modules]
    bugs = [m for m in importlib.import_module(f"autograder.hidden.{topic.slug}").MUTANTS
            if m.module in topic.torch_modules]
    folders = {"reference": SOLUTIONS / topic.slug}
    if bugs:
        folders[bugs[0].name] = apply(bugs[0], topic.slug, SOLUTIONS, tmp_path / bugs[0].name)
    for name, folder in folders.items():
        verdicts = {device: [(r.task, r.points, r.max_points, r.status) for r in
                             grade_topic(topic, folder, "hidden", tasks=torch_tasks, device=device).results]
                    for device in ("cpu", "cuda")}
        assert verdicts["cpu"] == verdicts["cuda"], name
        if name == "reference":
            assert all(points == max_points for _, points, max_points, _ in verdicts["cuda"]), verdicts["cuda"]
