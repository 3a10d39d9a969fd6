"""The course as data: topics, graded tasks, points, tolerances, thresholds, limits and the grade scale.

This is the one place these values live. Markers, manifests, reports, the release step and the hidden suite
read them from here; nothing else retypes them. Every field carries a comment saying what it means.
Unknown keys raise (the dataclasses are frozen and have no catch-all), so a typo fails at import.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

# Assessment categories of the course and their weight in the final percentage. When a gradebook covers only
# some topics, the weights are renormalised over the categories that have points in it (see autograder.scoring).
CATEGORY_WEIGHTS: dict[str, float] = {
    "implementation": 0.50,         # from-scratch NumPy code: layers, nets, training loops
    "visualization": 0.15,          # figures graded by their data (gradient flow, samples, attention maps)
    "comparative": 0.15,            # NumPy-vs-PyTorch parity and written comparisons
    "generative": 0.20,             # VAE / GAN projects
}

# OAU grade scale: (letter, lowest percentage, grade point), highest first.
GRADE_SCALE: tuple[tuple[str, float, int], ...] = (
    ("A", 70.0, 5),
    ("B", 60.0, 4),
    ("C", 50.0, 3),
    ("D", 45.0, 2),
    ("E", 40.0, 1),
    ("F", 0.0, 0),
)


@dataclass(frozen=True)
class Tolerances:
    """Numerical tolerances. Every comparison runs in float64."""

    grad_rtol: float = 1e-6         # norm-relative error ||num - ana|| / (||num|| + ||ana||) for a gradient
    forward_rtol: float = 1e-7      # forward values vs the reference: max |a - b| / max(1, |b|)
    parity_rtol: float = 1e-7       # NumPy vs PyTorch (float64) values and gradients, same measure
    grad_h: float = 1e-6            # central-difference step for directional derivatives
    grad_directions: int = 3        # random unit directions per tensor in a directional gradient check
    kink_margin: float = 1e-3       # inputs closer than this to a kink (ReLU at 0) are pushed away
    stat_rtol: float = 0.08         # relative error allowed on a sampled standard deviation (weight init)
    exact_rtol: float = 1e-12       # values passed on unchanged (an array drawn as given, a plot's x positions)
    scalar_rtol: float = 1e-10      # a scalar autograd engine's values against torch on the same short expression
    formula_rtol: float = 1e-9      # values from a short closed formula (a normalised image, bits per character)
    accumulated_rtol: float = 1e-6  # rounding that accumulates: a loss on scores of 1e3, a few optimiser steps
    float32_rtol: float = 1e-5      # a float32 torch model (the student's own) against float64 formulas on its weights


@dataclass(frozen=True)
class Limits:
    """Resource limits for one sandboxed worker (one submission's module being graded)."""

    wall_s: float = 900.0           # grading time for one submission's topic; tasks after it are skipped
    call_s: float = 20.0            # wall clock for one call into student code
    import_s: float = 10.0          # wall clock for importing the student module
    memory_mb: int = 2048           # address space (RLIMIT_AS) / cgroup memory limit
    cpu_s: int = 120                # CPU seconds (RLIMIT_CPU)
    nproc: int = 64                 # processes and threads (cgroup pids.max, or RLIMIT_NPROC when not root)
    fsize_mb: int = 64              # largest file the worker may write (RLIMIT_FSIZE)
    output_kb: int = 64             # student stdout/stderr kept for feedback (head and tail)


# The Jupyter kernel that nbgrader's autograde runs a student's notebook in (autograder/kernel.py). The notebook
# trains the student's models itself, imports torch, and its check() cells start their own workers inside it, so it
# gets more than one worker: torch's address space, a whole notebook's CPU time, room for those workers' processes.
# nbgrader's per-cell timeout (nbgrader_config.py, from the topics' wall_s) still stops a cell that hangs.
NOTEBOOK_KERNEL_LIMITS = Limits(memory_mb=12288, cpu_s=3600, nproc=512, fsize_mb=256)


@dataclass(frozen=True)
class Task:
    """One graded unit. Its name is the pytest marker, the results.json test name and the gradebook column."""

    name: str                       # "<topic>.<function or check>", e.g. "feedforward.affine_backward"
    points: float                   # maximum points
    category: str                   # a key of CATEGORY_WEIGHTS
    module: str                     # student module (file stem) that holds the graded code, e.g. "layers"
    function: str                   # graded function or class inside that module ("" for a notebook task)
    kind: str = "auto"              # "auto": the hidden suite scores it; "manual": an instructor scores it
    depends_on: tuple[str, ...] = ()  # tasks whose code this one calls; their bugs may cost points here too
    description: str = ""           # one line shown in tables and feedback
    speed_limit: float | None = None  # a timed part fails above this many times the oracle's time (None: untimed)


@dataclass(frozen=True)
class Dataset:
    """A course dataset under DLCORE_DATA (toolkit.data loads it; the torchvision download is the fallback)."""

    name: str                       # registry key, e.g. "mnist"
    kind: str                       # "images": a Keras-style .npz (x_train, y_train, x_test, y_test); "text": a folder
    path: str                       # file or folder name under DLCORE_DATA, e.g. "mnist.npz" or "yoruba"
    torchvision: str = ""           # torchvision.datasets class used to download it where DLCORE_DATA lacks it
    description: str = ""           # shapes and dtypes, shown in messages


# Every dataset a topic may name in Topic.datasets. Images are uint8; text is UTF-8, Unicode NFC.
DATASETS: dict[str, Dataset] = {d.name: d for d in (
    Dataset("mnist", "images", "mnist.npz", "MNIST", "uint8 (N, 28, 28) digits, labels 0..9"),
    Dataset("fashion_mnist", "images", "fashion_mnist.npz", "FashionMNIST", "uint8 (N, 28, 28) garments, labels 0..9"),
    Dataset("cifar10", "images", "cifar10.npz", "CIFAR10", "uint8 (N, 32, 32, 3) RGB images, labels 0..9"),
    Dataset("yoruba", "text", "yoruba", "", "Yoruba text files yoruba/*.txt, UTF-8, Unicode NFC"),
)}


@dataclass(frozen=True)
class TrainingBar:
    """What a trained model must reach when the grader trains the student's code: one bar per trained model.

    `settings` are the hyperparameters passed to the student's training code (named as its arguments); checks read
    them from here through the context, never retype them. `public` is the smaller run of the public suite.
    """

    model: str                      # name of the trained model within its topic, e.g. "net" or "torch_net"
    task: str                       # the task whose check trains it, e.g. "feedforward.train"
    metric: str                     # "accuracy", "bits_per_char", "neg_elbo_nats", "fid", "class_coverage", ...
    higher_is_better: bool          # direction of the metric
    bar: float                      # the value the student's model must reach (>= if higher is better, else <=)
    dataset: str                    # a key of DATASETS, or "" for synthetic data the check generates
    train_size: int                 # training examples used
    test_size: int                  # held-out examples the metric is computed on (labels stay in the grader)
    val_size: int = 0               # examples given to the training code as validation data
    settings: dict = field(default_factory=dict)  # hyperparameters for the student's training code
    time_budget_s: float = 180.0    # wall clock for one training run in the worker
    calibration_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # grading seeds at which the reference must clear the bar
    margin: float = 0.0             # how far past the bar the reference must be at every calibration seed
    public: "TrainingBar | None" = None  # the short run of the public suite (`dlcore check`), if it differs

    def passes(self, value: float) -> bool:
        """True when `value` reaches the bar in the metric's direction (NaN never does)."""
        return bool(value >= self.bar) if self.higher_is_better else bool(value <= self.bar)

    def clears_with_margin(self, value: float) -> bool:
        return bool(value >= self.bar + self.margin) if self.higher_is_better else bool(value <= self.bar - self.margin)

    def describe(self) -> str:
        return f"{self.metric} {'>=' if self.higher_is_better else '<='} {self.bar:g}"


@dataclass(frozen=True)
class Topic:
    """A course topic: a folder of student modules plus an nbgrader notebook."""

    slug: str                       # folder name under solutions/, release/, assignments/ and submissions
    title: str                      # shown in reports
    modules: tuple[str, ...]        # student module file stems, in solutions/<slug>/ and release/<slug>/
    notebook: str                   # nbgrader notebook file name in assignments/<slug>/
    tasks: tuple[Task, ...]         # graded tasks, in report order
    torch_modules: tuple[str, ...] = ()  # modules graded in a worker where torch may be imported
    limits: Limits = field(default_factory=Limits)
    torch_limits: Limits = field(default_factory=lambda: Limits(memory_mb=8192, wall_s=180.0, call_s=120.0,
                                                                import_s=60.0, cpu_s=300))
    bars: tuple[TrainingBar, ...] = ()  # one per model the grader trains
    datasets: tuple[str, ...] = ()  # keys of DATASETS the topic's checks and notebook read
    requires: tuple[str, ...] = ()  # earlier topics whose student code this topic imports (from the same student)
    min_mutants: int = 10           # planted bugs the hidden suite must list (autograder/hidden/<slug>.py MUTANTS)
    demo_mutants: tuple[str, ...] = ()  # three of those MUTANTS, played by the buggy students of `dlcore demo`

    @property
    def max_points(self) -> float:
        return sum(t.points for t in self.tasks)

    def bar(self, model: str) -> TrainingBar:
        for b in self.bars:
            if b.model == model:
                return b
        raise KeyError(f"{self.slug}: no training bar for {model!r}; known: {[b.model for b in self.bars]}")

    def task(self, name: str) -> Task:
        for t in self.tasks:
            if t.name == name:
                return t
        raise KeyError(f"{self.slug}: no task named {name!r}; known: {[t.name for t in self.tasks]}")


def _task(slug: str, fn: str, points: float, module: str, category: str = "implementation",
          depends_on: tuple[str, ...] = (), description: str = "", kind: str = "auto",
          speed_limit: float | None = None) -> Task:
    """A task named "<slug>.<fn>" after the function it grades; bare dependency names are in the same topic."""
    return Task(f"{slug}.{fn}", points, category, module, fn if kind == "auto" else "", kind,
                tuple(d if "." in d else f"{slug}.{d}" for d in depends_on), description, speed_limit)


def _ff(fn: str, points: float, module: str = "layers", **kw) -> Task:
    return _task("feedforward", fn, points, module, **kw)


# The two-layer net trained on MNIST. The reference reaches 0.956-0.959 test accuracy at the 5 calibration seeds
# (the margin 0.003 is 30 of the 10,000 test images); the public run is a 3-epoch smoke test on 2,000 images.
_MNIST_NET = TrainingBar(
    model="net", task="feedforward.train", metric="accuracy", higher_is_better=True, bar=0.95, dataset="mnist",
    train_size=10_000, test_size=10_000, val_size=1_000, margin=0.003, time_budget_s=180.0,
    settings=dict(hidden_dim=128, epochs=20, batch_size=50, learning_rate=0.5, lr_decay=0.9, reg=1e-3),
    public=TrainingBar(model="net", task="feedforward.train", metric="accuracy", higher_is_better=True, bar=0.85,
                       dataset="mnist", train_size=2_000, test_size=1_000, val_size=200, time_budget_s=180.0,
                       settings=dict(hidden_dim=64, epochs=3, batch_size=50, learning_rate=0.5, lr_decay=0.9,
                                     reg=1e-3)))


def _rerun(bar: TrainingBar, model: str, task: str, **settings) -> TrainingBar:
    """The same bar (and public run) for another model of the topic, with some settings added or changed."""
    def one(b: TrainingBar) -> TrainingBar:
        return dataclasses.replace(b, model=model, task=task, settings=dict(b.settings, **settings))
    return dataclasses.replace(one(bar), public=one(bar.public) if bar.public else None)


_LAYERS = ("affine_forward", "affine_backward", "relu_forward", "relu_backward")

FEEDFORWARD = Topic(
    slug="feedforward",
    title="Feedforward networks in NumPy (MNIST)",
    modules=("layers", "net", "torch_net"),
    notebook="feedforward.ipynb",
    torch_modules=("torch_net",),
    datasets=("mnist",),
    min_mutants=12,
    demo_mutants=("softmax_missing_1_over_N", "affine_dw_transposed", "batchnorm_running_not_updated"),
    tasks=(
        _ff("affine_forward", 2, description="fully connected forward, input flattened"),
        _ff("affine_backward", 3, depends_on=("affine_forward",), description="gradients of the affine layer"),
        _ff("relu_forward", 1, description="ReLU forward"),
        _ff("relu_backward", 1, depends_on=("relu_forward",), description="ReLU backward"),
        _ff("sigmoid_forward", 1, description="sigmoid forward, stable for large |x|"),
        _ff("sigmoid_backward", 1, depends_on=("sigmoid_forward",), description="sigmoid backward"),
        _ff("tanh_forward", 1, description="tanh forward"),
        _ff("tanh_backward", 1, depends_on=("tanh_forward",), description="tanh backward"),
        _ff("softmax_loss", 3, description="mean cross-entropy and its gradient, numerically stable"),
        _ff("batchnorm_forward", 3, description="batch normalisation forward, train and test modes"),
        _ff("batchnorm_backward", 3, depends_on=("batchnorm_forward",),
            description="batch normalisation backward"),
        _ff("init_weights", 2, description="zero, small-normal, Xavier and He initialisation"),
        _ff("TwoLayerNet", 4, module="net", depends_on=_LAYERS + ("sigmoid_forward", "sigmoid_backward",
                                                                  "tanh_forward", "tanh_backward",
                                                                  "softmax_loss", "init_weights"),
            description="two-layer net: scores, loss and gradients (CS231n contract)"),
        _ff("train", 3, module="net", depends_on=_LAYERS + ("softmax_loss", "init_weights", "TwoLayerNet"),
            description="mini-batch SGD reaches the accuracy bar on an MNIST subset"),
        _ff("TorchTwoLayerNet", 3, module="torch_net", category="comparative",
            description="the same net in PyTorch: identical weights give the same loss and gradients"),
        _ff("train_torch", 2, module="torch_net", category="comparative", depends_on=("TorchTwoLayerNet",),
            description="the PyTorch net reaches the accuracy bar"),
        _ff("written_comparison", 3, module="feedforward", category="comparative", kind="manual",
            description="written NumPy-vs-PyTorch comparison in the notebook (instructor graded)"),
    ),
    bars=(_MNIST_NET, _rerun(_MNIST_NET, "torch_net", "feedforward.train_torch", dtype="float32")),
)


def _bp(fn: str, points: float, module: str, **kw) -> Task:
    return _task("backprop", fn, points, module, **kw)


BACKPROP = Topic(
    slug="backprop",
    title="Backpropagation by hand, autograd, and gradient flow",
    modules=("manual", "autograd", "gradflow"),
    notebook="backprop.ipynb",
    requires=("feedforward",),
    datasets=("mnist",),
    min_mutants=8,
    demo_mutants=("value_grad_not_accumulated", "flow_plot_linear_scale", "hist_wrong_bins"),
    tasks=(
        _bp("two_layer_forward", 2, "manual", description="staged forward pass naming every intermediate"),
        _bp("two_layer_backward", 4, "manual", depends_on=("two_layer_forward",),
            description="chain rule step by step; equals numerical gradients and torch.autograd"),
        _bp("Value", 3, "autograd", description="scalar values: + - * / **, exp, log, tanh, relu forward"),
        _bp("Value.backward", 4, "autograd", depends_on=("Value",),
            description="reverse mode over a topological order: shared nodes accumulate, deep chains work"),
        _bp("record_gradient_norms", 3, "gradflow",
            depends_on=("feedforward.affine_forward", "feedforward.affine_backward", "feedforward.relu_forward",
                        "feedforward.relu_backward", "feedforward.sigmoid_forward", "feedforward.sigmoid_backward",
                        "feedforward.softmax_loss", "feedforward.init_weights"),
            description="per-layer gradient norms of a deep MLP over training steps"),
        _bp("plot_gradient_flow", 3, "gradflow", category="visualization",
            description="one line per layer, log-scale y axis, labelled axes and legend"),
        _bp("plot_gradient_histograms", 3, "gradflow", category="visualization",
            description="one histogram panel per layer, counts as np.histogram with the same bins"),
        _bp("written_explanation", 3, "backprop", category="comparative", kind="manual",
            description="chain-rule intuition and autograd vs manual gradients (instructor graded)"),
    ),
)


def _cnn(fn: str, points: float, module: str = "layers", **kw) -> Task:
    return _task("cnn", fn, points, module, **kw)


# The tiny CNN (filters (8, 16), 3x3) trained on the first 6,000 CIFAR-10 training images for 3 epochs, scored on
# the first 2,000 test images (chance is 0.10); about 22 s CPU (NumPy) and 7-10 s (torch) per run. At the grading
# seeds of calibration seeds 0-4 the reference reaches NumPy 0.4345-0.5025 and torch 0.388-0.4765; over 15 torch
# and 11 NumPy seeds the lowest were 0.388 (torch; the next is 0.4525) and 0.408 (NumPy; the next 0.423), so 0.42
# would fail correct students. A training loop with steps 50 times too small reaches 0.24. The wall-clock budget
# leaves room for a loaded machine (runs took up to 160 s there). The public run is a smoke test: 2,000 images,
# 2 epochs (about 5 s NumPy; the reference reaches 0.29-0.38 on 500 test images at 4 seeds), bar 0.2.
_CIFAR_CNN = TrainingBar(
    model="net", task="cnn.train", metric="accuracy", higher_is_better=True, bar=0.35, dataset="cifar10",
    train_size=6_000, test_size=2_000, val_size=1_000, margin=0.03, time_budget_s=240.0,
    settings=dict(num_filters=(8, 16), filter_size=3, epochs=3, batch_size=50, learning_rate=0.2, lr_decay=0.7,
                  reg=0.0),
    public=TrainingBar(model="net", task="cnn.train", metric="accuracy", higher_is_better=True, bar=0.2,
                       dataset="cifar10", train_size=2_000, test_size=500, val_size=200, time_budget_s=120.0,
                       settings=dict(num_filters=(8, 16), filter_size=3, epochs=2, batch_size=50, learning_rate=0.2,
                                     lr_decay=0.7, reg=0.0)))

# What the tiny CNN calls: the fast conv and pool layers, and the student's own topic-1 layers and initialisation.
_TINY_CNN_CALLS = ("conv_output_shape", "conv_forward_fast", "conv_backward_fast", "max_pool_forward_fast",
                   "max_pool_backward_fast", "feedforward.affine_forward", "feedforward.affine_backward",
                   "feedforward.relu_forward", "feedforward.relu_backward", "feedforward.softmax_loss",
                   "feedforward.init_weights")

CNN = Topic(
    slug="cnn",
    title="Convolutional networks: conv and pool layers in NumPy, a tiny CNN on CIFAR-10, and PyTorch",
    modules=("layers", "net", "torch_net"),
    notebook="cnn.ipynb",
    torch_modules=("torch_net",),
    requires=("feedforward",),
    datasets=("cifar10",),
    # the NumPy worker trains for about 21 s CPU (more on a loaded machine); RLIMIT_CPU covers all its calls
    limits=Limits(cpu_s=300),
    torch_limits=Limits(memory_mb=8192, wall_s=300.0, call_s=120.0, import_s=60.0, cpu_s=600),
    min_mutants=20,
    demo_mutants=("conv_naive_crop_minus_pad", "maxpool_naive_overlap_overwritten", "residual_skip_missing_backward"),
    # speed_limit: honest fast layers took 1-13 times the oracle's time for conv and 1-27 for pooling, a loop over
    # output pixels 60-200 and 70-1,000 times (2-core machine, quiet and loaded; autograder/public/cnn.py)
    tasks=(
        _cnn("conv_output_shape", 1, description="output size, floored like torch; ValueError for impossible sizes"),
        _cnn("receptive_field", 1, description="receptive field of a conv/pool stack (strides multiply)"),
        _cnn("conv_forward_naive", 2, depends_on=("conv_output_shape",),
             description="convolution with a loop over output pixels: pad 0, stride 2, non-square, N = C = 1"),
        _cnn("conv_backward_naive", 3, depends_on=("conv_forward_naive",),
             description="dx, dw, db of the naive convolution (the padding cropped off dx)"),
        _cnn("conv_forward_fast", 2, depends_on=("conv_output_shape",), speed_limit=25.0,
             description="im2col convolution: the naive result on a realistic size, and fast"),
        _cnn("conv_backward_fast", 3, depends_on=("conv_forward_fast",), speed_limit=25.0,
             description="col2im gradients: the naive ones on a realistic size, and fast"),
        _cnn("max_pool_forward_naive", 1, depends_on=("conv_output_shape",),
             description="max pooling: overlapping and non-square windows"),
        _cnn("max_pool_backward_naive", 2, depends_on=("max_pool_forward_naive",),
             description="gradient to each window's maximum, overlapping windows add; ties"),
        _cnn("max_pool_forward_fast", 1, depends_on=("conv_output_shape",), speed_limit=100.0,
             description="max pooling over strided slices: the naive result, and fast"),
        _cnn("max_pool_backward_fast", 2, depends_on=("max_pool_forward_fast",), speed_limit=100.0,
             description="its gradient: the naive one, ties, and fast"),
        _cnn("avg_pool_forward", 1, depends_on=("conv_output_shape",), description="average pooling"),
        _cnn("avg_pool_backward", 1, depends_on=("avg_pool_forward",), description="average pooling backward"),
        _cnn("residual_block_forward", 1, depends_on=("conv_forward_fast", "feedforward.relu_forward"),
             description="relu(conv2(relu(conv1(x))) + x)"),
        _cnn("residual_block_backward", 2, depends_on=("residual_block_forward", "conv_backward_fast",
                                                       "feedforward.relu_backward"),
             description="its five gradients, the identity path included"),
        _cnn("TinyCNN", 4, module="net", depends_on=_TINY_CNN_CALLS,
             description="conv-relu-pool twice, affine: params, scores, loss and gradients"),
        _cnn("train", 3, module="net", depends_on=_TINY_CNN_CALLS + ("TinyCNN", "feedforward.train"),
             description="the topic-1 SGD loop trains the tiny CNN to the accuracy bar on a CIFAR-10 subset"),
        _cnn("plot_filters", 2, module="net", category="visualization",
             description="one image per first-layer filter, each scaled to 0..1 on its own"),
        _cnn("plot_feature_maps", 2, module="net", category="visualization",
             description="one image per channel of an example's activations, unchanged"),
        _cnn("TorchTinyCNN", 3, module="torch_net", category="comparative",
             description="the same CNN in PyTorch: transplanted weights give the same loss and gradients"),
        _cnn("train_torch", 2, module="torch_net", category="comparative",
             depends_on=("TorchTinyCNN", "feedforward.train_torch"), description="the PyTorch CNN reaches the bar"),
        _cnn("architectures", 2, module="cnn", category="comparative", kind="manual",
             description="receptive fields, and LeNet vs VGG vs ResNet (instructor graded)"),
        _cnn("written_comparison", 3, module="cnn", category="comparative", kind="manual",
             description="written NumPy-vs-PyTorch comparison: speed and memory of conv layers (instructor graded)"),
    ),
    bars=(_CIFAR_CNN, _rerun(_CIFAR_CNN, "torch_net", "cnn.train_torch", dtype="float32")),
)

def _at(fn: str, points: float, module: str = "attention", **kw) -> Task:
    return _task("attention", fn, points, module, **kw)


# The toy model learns to reverse sequences of 16 tokens (vocabulary 20) that the check draws: 3,000 for training,
# 1,000 held out. The reference predicts every held-out sequence exactly (1.000) at the 5 calibration seeds, in
# 180 Adam steps (about 1.5 s CPU); from about 40 steps on it is already at 0.999. The public run is 2 epochs.
_REVERSE = TrainingBar(
    model="toy", task="attention.train", metric="sequence_accuracy", higher_is_better=True, bar=0.95, dataset="",
    train_size=3_000, test_size=1_000, margin=0.04, time_budget_s=60.0,
    settings=dict(task="reverse", T=16, vocab=20, dim=32, epochs=3, batch_size=50, learning_rate=0.01),
    public=TrainingBar(model="toy", task="attention.train", metric="sequence_accuracy", higher_is_better=True,
                       bar=0.9, dataset="", train_size=2_000, test_size=500, time_budget_s=60.0,
                       settings=dict(task="reverse", T=16, vocab=20, dim=32, epochs=2, batch_size=50,
                                     learning_rate=0.01)))

_ATTN = ("attention_forward", "attention_backward")

ATTENTION = Topic(
    slug="attention",
    title="Attention: scaled dot-product and multi-head attention, a toy sequence task",
    modules=("attention", "toy"),
    notebook="attention.ipynb",
    torch_modules=("toy",),
    min_mutants=20,
    demo_mutants=("attn_softmax_wrong_axis", "mha_wo_missing_in_backward", "toy_plot_transposed"),
    tasks=(
        _at("attention_forward", 3, description="softmax(q k^T / sqrt(D)) v with boolean masks, stable; a fully "
                                                "masked row gives zeros"),
        _at("attention_backward", 4, depends_on=("attention_forward",),
            description="dq, dk, dv with and without masks, T_q != T_k, D = 1"),
        _at("multihead_forward", 3, depends_on=("attention_forward",),
            description="project, split into heads, attend, merge the heads in order, project"),
        _at("multihead_backward", 4, depends_on=("multihead_forward",) + _ATTN,
            description="the ten gradients of multi-head attention (dbk is exactly 0)"),
        _at("mha_weights_from_torch", 3, category="comparative", depends_on=_ATTN + ("multihead_forward",
                                                                                     "multihead_backward"),
            description="nn.MultiheadAttention's weights transplanted: the same outputs, per-head weights and "
                        "gradients as torch; attention equals F.scaled_dot_product_attention"),
        _at("NumpyAttention", 2, module="toy", category="comparative", depends_on=_ATTN,
            description="your NumPy attention as a torch.autograd.Function: torch gets your gradients"),
        _at("TinyAttentionModel", 2, module="toy", depends_on=_ATTN + ("NumpyAttention",),
            description="the toy model's logits and attention weights on its own parameters"),
        _at("train", 3, module="toy", depends_on=_ATTN + ("NumpyAttention", "TinyAttentionModel"),
            description="make_task, sequence_accuracy, and the trained model reverses sequences (accuracy bar)"),
        _at("plot_attention", 3, module="toy", category="visualization",
            description="heatmap equal to the weights, tokens as tick labels, a colorbar"),
        _at("written_explanation", 3, category="comparative", kind="manual",
            description="attention explained in the style of Distill / Alammar, from your results (instructor "
                        "graded)"),
    ),
    bars=(_REVERSE,),
)


def _rnn(fn: str, points: float, module: str = "rnn_layers", **kw) -> Task:
    return _task("rnn", fn, points, module, **kw)


# The character-level LSTM language model of Yoruba text. The corpus is the files of yoruba/ joined by newlines
# (in file-name order); char_lm.split_lines(text, 0.1, seed=0) puts 10 % of its lines in validation, and the
# vocabulary is the corpus's 134 NFC code points. For this text bar, train_size is the number of training
# characters trained on (the first ones of the training split; here all 232,460) and test_size the number of
# validation characters scored (here all 23,896). The grader computes the bits per character itself, from the
# scores the trained model returns for the validation text (16 rows, each read from the zero state, the state
# carried across chunks of 100 characters), so the student's code never scores itself.
# Calibration by the reference through the grader (one thread, grading seeds 0-4): NumPy 2.563-2.580, PyTorch
# 2.536-2.608 bits per character (uniform guess: log2(134) = 7.07; after one epoch about 2.74), about 12 s CPU per
# run; the bar is the worst of the ten runs plus 0.09 (1.3 times their spread). The wall-clock budget leaves room
# for a loaded machine (runs took up to 80 s there). The public run is a smoke test: 40,000 characters, one epoch,
# H = 64 (about 1 s CPU in NumPy; the reference reaches 3.37-3.44 on 5,000 validation characters).
_YORUBA_LM = TrainingBar(
    model="char_lstm", task="rnn.train", metric="bits_per_char", higher_is_better=False, bar=2.70, dataset="yoruba",
    train_size=232_460, test_size=23_896, margin=0.07, time_budget_s=150.0,
    settings=dict(wordvec_dim=32, hidden_dim=128, seq_len=50, batch_size=32, epochs=2, learning_rate=3e-2,
                  lr_decay=0.3, clip=5.0, dtype="float32"),
    public=TrainingBar(model="char_lstm", task="rnn.train", metric="bits_per_char", higher_is_better=False, bar=3.6,
                       dataset="yoruba", train_size=40_000, test_size=5_000, time_budget_s=120.0,
                       settings=dict(wordvec_dim=32, hidden_dim=64, seq_len=50, batch_size=32, epochs=1,
                                     learning_rate=3e-2, lr_decay=0.3, clip=5.0, dtype="float32")))

# What the language model calls: the embedding, the LSTM over a sequence (which may loop over the step functions),
# the temporal affine layer and the temporal softmax loss.
_LM_LAYERS = ("word_embedding_forward", "word_embedding_backward", "lstm_step_forward", "lstm_step_backward",
              "lstm_forward", "lstm_backward", "temporal_affine_forward", "temporal_affine_backward",
              "temporal_softmax_loss")

RNN = Topic(
    slug="rnn",
    title="Recurrent networks: RNN, LSTM and GRU in NumPy, a Yoruba character language model, and PyTorch",
    modules=("rnn_layers", "char_lm", "torch_rnn"),
    notebook="rnn.ipynb",
    torch_modules=("torch_rnn",),
    datasets=("yoruba",),
    # one NumPy and one torch training run of about 12 s CPU each dominate (the wall-clock limits leave room for a
    # loaded machine); the NumPy worker needs well under its 1.5 GiB of address space
    limits=Limits(wall_s=300.0, memory_mb=1536),
    torch_limits=Limits(memory_mb=8192, wall_s=300.0, call_s=60.0, import_s=60.0, cpu_s=300),
    min_mutants=40,
    demo_mutants=("lstm_backward_forget_carry_missing", "temporal_softmax_mask_ignored", "tbptt_state_not_carried"),
    tasks=(
        _rnn("rnn_step_forward", 1, description="next_h = tanh(x Wx + prev_h Wh + b), as torch.nn.RNN"),
        _rnn("rnn_step_backward", 1, depends_on=("rnn_step_forward",), description="the five gradients of one step"),
        _rnn("rnn_forward", 1, depends_on=("rnn_step_forward",),
             description="the hidden state carried over T steps from h0 (T = 1 and N = 1 too)"),
        _rnn("rnn_backward", 2, depends_on=("rnn_forward", "rnn_step_backward"),
             description="backpropagation through time: dh accumulated across steps, dh0"),
        _rnn("lstm_step_forward", 1, description="gates i, f, o, g; next_c = f c + i g, next_h = o tanh(next_c)"),
        _rnn("lstm_step_backward", 1, depends_on=("lstm_step_forward",),
             description="the six gradients of one step, dprev_c through the forget gate"),
        _rnn("lstm_forward", 2, depends_on=("lstm_step_forward",),
             description="h over T steps from (h0, c0); the cache's final cell state equals torch's c_n"),
        _rnn("lstm_backward", 3, depends_on=("lstm_forward", "lstm_step_backward"),
             description="BPTT through h and c, dh0; equal to nn.LSTM with the gates reordered"),
        _rnn("gru_step_forward", 1, description="torch.nn.GRU's step: the reset gate scales W_hn h + b_hn"),
        _rnn("gru_step_backward", 1, depends_on=("gru_step_forward",), description="the six gradients of one step"),
        _rnn("gru_forward", 1, depends_on=("gru_step_forward",), description="the GRU over T steps, as nn.GRU"),
        _rnn("gru_backward", 2, depends_on=("gru_forward", "gru_step_backward"),
             description="BPTT through the GRU, dh0; equal to nn.GRU's gradients"),
        _rnn("word_embedding_forward", 1, description="out[n, t] = W[x[n, t]]"),
        _rnn("word_embedding_backward", 1, depends_on=("word_embedding_forward",),
             description="dW with repeated indices adding up"),
        _rnn("temporal_affine_forward", 1, description="the same affine layer at every time step"),
        _rnn("temporal_affine_backward", 1, depends_on=("temporal_affine_forward",),
             description="dx, dw, db summed over batch and time"),
        _rnn("temporal_softmax_loss", 2, description="masked cross-entropy summed over time, averaged over N; "
                                                    "stable for scores of size 1e3"),
        _rnn("build_vocab", 1, module="char_lm", description="sorted NFC code points and their ids"),
        _rnn("encode", 1, module="char_lm", description="ids of the NFC text, whatever its normalisation"),
        _rnn("decode", 1, module="char_lm", description="NFC text of ids: a letter and a combining mark compose"),
        _rnn("split_lines", 1, module="char_lm", description="seeded, reproducible train/validation split by lines"),
        _rnn("CharLSTM", 3, module="char_lm", depends_on=_LM_LAYERS,
             description="the language model's scores, final (h, c), loss and gradients from a given state"),
        _rnn("train", 3, module="char_lm", depends_on=("CharLSTM",),
             description="truncated BPTT with the state carried and teacher forcing; reaches the bits-per-"
                         "character bar on the Yoruba text"),
        _rnn("bits_per_char", 1, module="char_lm", depends_on=("CharLSTM", "temporal_softmax_loss"),
             description="cross-entropy of the next character in bits, state carried across chunks"),
        _rnn("sample", 2, module="char_lm", depends_on=("CharLSTM", "encode", "decode"),
             description="temperature before the softmax, seeded draws, an NFC string over the vocabulary"),
        _rnn("plot_gradient_norms", 2, module="char_lm", category="visualization",
             description="one line per cell of the gradient norm against time, log-scale y axis, labels, legend"),
        _rnn("TorchCharLM", 3, module="torch_rnn", category="comparative",
             description="the model in PyTorch (nn.LSTM, nn.GRU): transplanted NumPy weights give the same scores, "
                         "state, loss and gradients"),
        _rnn("train_torch", 2, module="torch_rnn", category="comparative", depends_on=("TorchCharLM",),
             description="the same truncated BPTT in PyTorch (state detached); reaches its own bar"),
        _rnn("written_explanation", 3, category="comparative", kind="manual",
             description="gating, truncation and teacher forcing, from your results (instructor graded)"),
    ),
    bars=(_YORUBA_LM, _rerun(_YORUBA_LM, "torch_lm", "rnn.train_torch")),
)


def _ae(fn: str, points: float, module: str = "vae_math", **kw) -> Task:
    return _task("autoencoders", fn, points, module, **kw)


# The autoencoder and the VAE (784-128-16 MLPs, float32, Adam) trained on the first 6,000 MNIST training images,
# binarised (pixel > 127), for 6 epochs; both metrics are computed by the grader from the student's encoder and
# decoder on the first 2,000 test images, in nats per image (summed over the 784 pixels): the autoencoder's
# reconstruction cross-entropy, and the VAE's negative ELBO (reconstruction of one sample z ~ q(z | x) plus the
# closed-form KL). The same check asks the trained VAE's importance_weighted_bound (K = iwae_k samples, on the first
# iwae_examples test images) to be no worse than its ELBO. About 3 s CPU per model (20-40 s wall for both on the
# shared 2-core machine). Calibration by the reference through the grader (one thread, grading seeds 0-4):
# autoencoder 91.3-94.0 nats, VAE 129.3-131.4 nats (seeds 5-7: 92.3-94.3 and 127.6-129.4); its 20-sample bound is
# 5.1-6.1 nats above its ELBO. Each bar is the worst of those runs plus about 2.5 times their spread (margin 3 nats).
# The public run is a smoke test: 2,000 images, 3 epochs, H = 64 (the reference reaches 193 and 203 nats on 500
# test images).
_AE_SETTINGS = dict(hidden_dim=128, latent_dim=16, epochs=6, batch_size=100, learning_rate=3e-3, dtype="float32")
_AE_PUBLIC = dict(_AE_SETTINGS, hidden_dim=64, epochs=3)
_MNIST_AE = TrainingBar(
    model="autoencoder", task="autoencoders.train", metric="reconstruction_nats", higher_is_better=False, bar=100.0,
    dataset="mnist", train_size=6_000, test_size=2_000, margin=3.0, time_budget_s=120.0, settings=_AE_SETTINGS,
    public=TrainingBar(model="autoencoder", task="autoencoders.train", metric="reconstruction_nats",
                       higher_is_better=False, bar=230.0, dataset="mnist", train_size=2_000, test_size=500,
                       time_budget_s=60.0, settings=_AE_PUBLIC))
_MNIST_VAE = TrainingBar(
    model="vae", task="autoencoders.train", metric="neg_elbo_nats", higher_is_better=False, bar=137.0,
    dataset="mnist", train_size=6_000, test_size=2_000, margin=3.0, time_budget_s=120.0,
    settings=dict(_AE_SETTINGS, beta=1.0, iwae_k=20, iwae_examples=500),
    public=TrainingBar(model="vae", task="autoencoders.train", metric="neg_elbo_nats", higher_is_better=False,
                       bar=240.0, dataset="mnist", train_size=2_000, test_size=500, time_budget_s=60.0,
                       settings=dict(_AE_PUBLIC, beta=1.0, iwae_k=10, iwae_examples=200)))

# What a VAE check calls of the student's model (methods keep the student's code under isolated scoring).
_VAE_PARTS = ("VAE", "autoencoders.VAE.reparameterize")

AUTOENCODERS = Topic(
    slug="autoencoders",
    title="Autoencoders and variational autoencoders: the ELBO in NumPy, VAEs in PyTorch on MNIST, latent figures",
    modules=("vae_math", "models", "plots"),
    notebook="autoencoders.ipynb",
    torch_modules=("models", "plots"),
    datasets=("mnist",),
    # the NumPy worker only evaluates formulas; the torch worker trains two small MLPs (about 3 s CPU each) and
    # needs torch's address space; its wall clock leaves room for a loaded machine
    limits=Limits(wall_s=120.0, memory_mb=1536, cpu_s=120),
    torch_limits=Limits(memory_mb=8192, wall_s=240.0, call_s=120.0, import_s=60.0, cpu_s=300),
    min_mutants=10,
    demo_mutants=("kl_sign_flipped", "vae_reparam_eps_zero", "traversal_varies_every_dimension"),
    tasks=(
        _ae("kl_divergence", 2, description="KL(N(mu, exp(logvar)) || N(0, I)) per example in closed form; agrees "
                                            "with a Monte Carlo estimate"),
        _ae("kl_divergence_backward", 2, depends_on=("kl_divergence",), description="dmu and dlogvar of the KL"),
        _ae("reparameterize", 1, description="z = mu + exp(logvar / 2) * eps"),
        _ae("reparameterize_backward", 2, depends_on=("reparameterize",),
            description="gradients to mu and logvar, none to the noise eps"),
        _ae("bernoulli_log_likelihood", 2, description="log p(x | logits) summed over pixels, stable for logits of "
                                                       "size 1e3"),
        _ae("bernoulli_log_likelihood_backward", 2, depends_on=("bernoulli_log_likelihood",),
            description="dlogits = x - sigmoid(logits), stable"),
        _ae("elbo", 2, depends_on=("kl_divergence", "bernoulli_log_likelihood"),
            description="log-likelihood minus KL per example, in nats"),
        _ae("Autoencoder", 2, module="models", description="encoder and decoder MLPs: codes and logits on the "
                                                           "model's own weights"),
        _ae("Autoencoder.reconstruction_loss", 1, module="models",
            description="cross-entropy summed over pixels, averaged over the batch, stable"),
        _ae("VAE", 3, module="models", category="generative", depends_on=("autoencoders.VAE.reparameterize",),
            description="encoder to (mu, logvar), Bernoulli decoder logits, forward through one sample"),
        _ae("VAE.reparameterize", 2, module="models", category="generative",
            description="fresh N(0, I) noise per entry, z distributed as N(mu, exp(logvar)), gradients to mu and "
                        "logvar"),
        _ae("VAE.negative_elbo", 3, module="models", category="generative",
            description="reconstruction + beta * KL: sums over pixels and latent dimensions, mean over the batch"),
        _ae("importance_weighted_bound", 3, module="models", category="generative", depends_on=_VAE_PARTS,
            description="the K-sample bound with a log-sum-exp, for given or fresh noise"),
        _ae("train", 4, module="models", category="generative",
            depends_on=("Autoencoder", "autoencoders.Autoencoder.reconstruction_loss",
                        "autoencoders.VAE.negative_elbo", "importance_weighted_bound") + _VAE_PARTS,
            description="Adam on both models: reconstruction and negative-ELBO bars on MNIST; the trained VAE's "
                        "importance-weighted bound is no worse than its ELBO"),
        _ae("plot_latent_traversal", 3, module="plots", category="visualization",
            description="a grid of decoded images: one latent dimension varied, the others fixed"),
        _ae("plot_latent_scatter", 2, module="plots", category="visualization",
            description="the encoder means in the plane of two latent dimensions, one colour per class"),
        _ae("plot_reconstructions", 2, module="plots", category="visualization",
            description="inputs above their reconstructions from the mean code"),
        _ae("beta_sweep", 3, category="generative", kind="manual",
            description="reconstruction against KL across beta, from your sweep (instructor graded)"),
        _ae("written_explanation", 3, category="generative", kind="manual",
            description="the ELBO, the reparameterisation trick, the latent space and sampling (instructor graded)"),
    ),
    bars=(_MNIST_AE, _MNIST_VAE),
)

def _gan(fn: str, points: float, module: str = "gan_pytorch", category: str = "generative", **kw) -> Task:
    return _task("gan", fn, points, module, category, **kw)


# The short GAN run of the grader: the student's discriminator(), generator() at width hidden_dim = 256 (four times
# cheaper than CS231n's 1024), losses, steps, optimizer and training loop, 800 Adam steps of
# 64 images (4 epochs of the first 12,800 MNIST training images), then 2,000 samples, scored in the grader against
# the first 2,000 test images by toolkit.image_metrics (FID on the course classifier's features, through
# torchmetrics; class coverage = classes predicted for at least 5 % of the samples). For scale: the training
# images score FID 12, uniform noise 685, a generator that has collapsed onto one blob 400-470 with coverage 0.1.
# Calibration through the grader (one thread, grading seeds of calibration seeds 0-4): FID 97.4, 103.1, 141.3,
# 118.3, 117.9 and coverage 0.6, 0.7, 0.4, 0.6, 0.7; eight more reference runs at other seeds gave FID 96-167 and
# coverage 0.4-0.8 (GAN training is noisy). So the bars are FID <= 250 (margin 50) and coverage >= 0.3, with a
# margin of 0.05, i.e. one class, as coverage moves in steps of 0.1. About 20 s CPU per run (up to 100 s on a
# loaded machine, hence the budget).
_MNIST_GAN = TrainingBar(
    model="gan", task="gan.train", metric="fid", higher_is_better=False, bar=250.0, dataset="mnist",
    train_size=12_800, test_size=2_000, margin=50.0, time_budget_s=150.0,
    settings=dict(num_epochs=4, batch_size=64, noise_size=96, hidden_dim=256, num_samples=2_000))
# the public suite runs the same training: shorter runs are still collapsed onto a few blobs (after 100 steps FID
# 445-465 and coverage 0.1, which every generator reaches), so they could not tell a student anything
_MNIST_GAN_MODES = dataclasses.replace(
    _MNIST_GAN, model="gan_modes", metric="class_coverage", higher_is_better=True, bar=0.3, margin=0.05)

# What the training loop calls (the grader's run goes through all of them).
_GAN_CALLS = ("sample_noise", "discriminator", "generator", "get_optimizer", "discriminator_loss", "generator_loss",
              "ls_discriminator_loss", "ls_generator_loss", "gradient_penalty", "discriminator_step", "generator_step")

GAN = Topic(
    slug="gan",
    title="Generative adversarial networks: losses, label smoothing, gradient penalty, offline FID and IS",
    modules=("gan_pytorch", "dcgan", "plots"),
    notebook="gan.ipynb",
    torch_modules=("gan_pytorch", "dcgan", "plots"),
    datasets=("mnist", "fashion_mnist"),
    # the short training run (about 20 s CPU on one core) dominates the torch worker's time
    torch_limits=Limits(memory_mb=8192, wall_s=240.0, call_s=60.0, import_s=60.0, cpu_s=300),
    min_mutants=10,
    demo_mutants=("gan_smoothing_on_fake_labels", "gan_penalty_no_create_graph", "gan_grid_transposed"),
    tasks=(
        _gan("sample_noise", 1, description="uniform noise in (-1, 1), seeded"),
        _gan("discriminator", 1, description="the MLP discriminator 784-256-256-1, LeakyReLU 0.01"),
        _gan("generator", 1, description="the MLP generator L-H-H-784 (H = 1024 by default), ReLU, tanh"),
        _gan("build_dc_classifier", 1, module="dcgan", description="the DCGAN discriminator (extension): layers and output shape"),
        _gan("build_dc_generator", 1, module="dcgan", description="the DCGAN generator (extension): layers, output in [-1, 1]"),
        _gan("get_optimizer", 1, description="Adam, learning rate 1e-3, betas (0.5, 0.999)"),
        _gan("discriminator_loss", 3, description="BCE of real logits against real_label plus fake against 0; "
                                                  "one-sided smoothing; (N,) or (N, 1); stable at 1e3"),
        _gan("generator_loss", 2, description="the non-saturating loss, stable at 1e3"),
        _gan("ls_discriminator_loss", 1, description="least-squares discriminator loss"),
        _gan("ls_generator_loss", 1, description="least-squares generator loss"),
        _gan("gradient_penalty", 3, description="WGAN-GP at interpolates, per-example norms; its gradient reaches "
                                                "D's parameters (create_graph)"),
        _gan("discriminator_step", 2, depends_on=("discriminator_loss", "ls_discriminator_loss", "gradient_penalty"),
             description="one D update: fakes detached from G, smoothing and penalty"),
        _gan("generator_step", 2, depends_on=("generator_loss", "ls_generator_loss"),
             description="one G update: gradients through D, none stored on D"),
        _gan("train", 4, depends_on=_GAN_CALLS,
             description="the training loop's history, and a short MNIST run reaching the FID and class-coverage "
                         "bars"),
        _gan("sample_grid", 2, module="plots", category="visualization",
             description="a grid of the generator's samples for given noise, images equal to G(z)"),
        _gan("written_analysis", 3, category="comparative", kind="manual",
             description="training dynamics, mode collapse and the tricks, from your curves and metrics table "
                         "(instructor graded)"),
    ),
    bars=(_MNIST_GAN, _MNIST_GAN_MODES),
)

TOLERANCES = Tolerances()

# All topics of the course, in teaching order (autoencoders and gan follow).
# Listing a topic here is what puts it into release/, the tests and CI: a topic is listed once its calibration,
# mutant and nbgrader runs are verified.
TOPICS: tuple[Topic, ...] = (FEEDFORWARD, BACKPROP, CNN, RNN, AUTOENCODERS, GAN, ATTENTION)

# The fixed folder names of all seven topics (a submission folder for a topic uses the same name).
TOPIC_SLUGS: tuple[str, ...] = ("feedforward", "backprop", "cnn", "rnn", "autoencoders", "gan", "attention")

# Modules a from-scratch NumPy worker refuses to import (the topic's torch_modules are graded elsewhere).
BANNED_IN_NUMPY_WORKER: tuple[str, ...] = ("torch", "torchvision", "jax", "jaxlib", "tensorflow", "autograd",
                                           "functorch", "keras", "cupy", "mxnet")

# Directory name of the bundled sample cohort for `dlcore demo`, and the seed that makes grading reproducible.
GRADING_SEED: int = 20261125

# How a task that calls other graded functions (depends_on) is charged when one of those lost points:
# "end_to_end": with the student's own functions (a wrong layer also costs the net that uses it);
# "isolated": with the functions it depends on replaced by the reference (called back in the trusted process),
# so a correct composition over a wrong layer gets full credit for the composition. Both are always computed and
# shown in the feedback; this chooses which one the gradebook counts.
DEPENDENT_SCORING: str = "end_to_end"


def topic(slug: str) -> Topic:
    """The topic called `slug`, or a KeyError that lists the known ones."""
    for t in TOPICS:
        if t.slug == slug:
            return t
    raise KeyError(f"unknown topic {slug!r}; configured topics: {', '.join(t.slug for t in TOPICS)}")


def all_tasks() -> list[Task]:
    """Every task of every configured topic, in order."""
    return [task for t in TOPICS for task in t.tasks]


def _validate() -> None:
    """Fail at import on inconsistent configuration rather than at grading time."""
    names = [t.name for t in all_tasks()]
    assert len(names) == len(set(names)), "task names must be unique"
    for tp in TOPICS:
        assert tp.slug in TOPIC_SLUGS, tp.slug
        for t in tp.tasks:
            assert t.category in CATEGORY_WEIGHTS, f"{t.name}: unknown category {t.category!r}"
            assert t.kind in ("auto", "manual"), f"{t.name}: unknown kind {t.kind!r}"
            assert t.kind == "manual" or t.module in tp.modules, f"{t.name}: module {t.module!r} not in topic"
            for d in t.depends_on:
                assert d in names, f"{t.name}: depends on unknown task {d!r}"
        for d in tp.datasets:
            assert d in DATASETS, f"{tp.slug}: unknown dataset {d!r}; known: {sorted(DATASETS)}"
        for b in tp.bars:
            for run in (b, b.public) if b.public else (b,):
                assert not run.dataset or run.dataset in tp.datasets, \
                    f"{tp.slug}: bar {b.model!r} reads {run.dataset!r}, not in datasets"
                assert run.task == b.task and run.model == b.model, f"{tp.slug}: public run of {b.model!r} differs"
                assert run.task in names and tp.task(run.task).kind == "auto", f"{tp.slug}: bar task {run.task!r}"
        assert len({b.model for b in tp.bars}) == len(tp.bars), f"{tp.slug}: two bars for one model"
        assert len(tp.demo_mutants) in (0, 3), f"{tp.slug}: demo_mutants names the three buggy demo students' bugs"
        for r in tp.requires:
            assert r in [x.slug for x in TOPICS[:TOPICS.index(tp)]], f"{tp.slug}: requires a later topic {r!r}"
    assert abs(sum(CATEGORY_WEIGHTS.values()) - 1.0) < 1e-12, "category weights must sum to 1"
    assert DEPENDENT_SCORING in ("end_to_end", "isolated"), DEPENDENT_SCORING


_validate()
