"""Topic 1 of the course, feedforward: its student modules, graded tasks and points, training bars and limits.

The fields are documented in course_config/schema.py.
"""
from __future__ import annotations

from course_config.schema import Task, Topic, TrainingBar


def _ff(fn: str, points: float, module: str = "layers", **kw) -> Task:
    return Task.named("feedforward", fn, points, module, **kw)


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

_LAYERS = ("affine_forward", "affine_backward", "relu_forward", "relu_backward")

TOPIC = Topic(
    slug="feedforward",
    number=1,
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
    bars=(_MNIST_NET, _MNIST_NET.rerun("torch_net", "feedforward.train_torch", dtype="float32")),
)
