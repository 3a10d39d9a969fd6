"""Topic 3 of the course, cnn: its student modules, graded tasks and points, training bars and limits.

The fields are documented in course_config/schema.py.
"""
from __future__ import annotations

from course_config.schema import Limits, Task, Topic, TrainingBar


def _cnn(fn: str, points: float, module: str = "layers", **kw) -> Task:
    return Task.named("cnn", fn, points, module, **kw)


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

TOPIC = Topic(
    slug="cnn",
    number=3,
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
    bars=(_CIFAR_CNN, _CIFAR_CNN.rerun("torch_net", "cnn.train_torch", dtype="float32")),
)
